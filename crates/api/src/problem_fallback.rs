//! Turns every error response that is not already problem+json (the framework's own 404, 405,
//! 413...) into one, so clients meet a single error format.

use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};

use crate::problem::{self, PROBLEM_JSON};

pub fn error_handlers<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_problem)
}

fn to_problem<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Problems, and JSON bodies a handler chose on purpose (a 503 readiness report), pass.
    let deliberate = response.headers().get(CONTENT_TYPE).is_some_and(|value| {
        let value = value.as_bytes();
        value == PROBLEM_JSON.as_bytes() || value.starts_with(b"application/json")
    });
    if deliberate {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (request, original) = response.into_parts();
    let mut replacement = problem::for_status(status).into_response();
    // Keep protocol headers such as `Allow` (405) and `Retry-After`.
    for (name, value) in original.headers() {
        if name != CONTENT_TYPE && name != actix_web::http::header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
    }
    let response: ServiceResponse<EitherBody<B>> =
        ServiceResponse::new(request, replacement).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}
