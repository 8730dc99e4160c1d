//! CORS (SPEC section 3): `ALLOWED_ORIGINS` entries may hold `*` wildcards (`exp://*`,
//! `https://*.vercel.app`). A request whose `Origin` is not allowed gets a 403 problem on every
//! route, preflights included; allowed ones have their origin echoed (never `*`, since
//! credentials are allowed), and allowed preflights get 204.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::problem::Problem;
use crate::state::ApiState;

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const EXPOSED_HEADERS: &str = "X-Request-Id, X-Trace-Id, ETag, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset";
const PREFLIGHT_MAX_AGE_SECONDS: &str = "600";

/// Origin patterns; `*` matches any run of characters.
#[derive(Debug, Clone, Default)]
pub struct OriginPatterns(Vec<String>);

impl OriginPatterns {
    pub fn new(patterns: &[String]) -> Self {
        Self(
            patterns
                .iter()
                .map(|p| p.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        // An origin is scheme://host[:port]; anything with a path is not one.
        let Some((_, authority)) = origin.split_once("://") else {
            return false;
        };
        if authority.is_empty() || authority.contains('/') {
            return false;
        }
        self.0.iter().any(|pattern| glob_matches(pattern, &origin))
    }
}

fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The widget's routes (and feedback, which the widget posts): their origins are the company's
/// `widget_allowed_origins`.
fn is_widget_path(path: &str) -> bool {
    path.starts_with("/v1/widget/") || path == "/v1/feedback"
}

async fn widget_origin_allowed(
    state: &ApiState,
    req: &actix_web::HttpRequest,
    origin: &str,
) -> bool {
    let Some(key) = req
        .headers()
        .get(crate::routes::assistant::WIDGET_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        // Without a key the handler answers 401; the origin is not what is wrong.
        return true;
    };
    match state.assistant.widget_owner(&state.ctx, key).await {
        Ok(Some(owner)) => OriginPatterns::new(&owner.allowed_origins).allows(origin),
        // Unknown key: the handler answers 401.
        Ok(None) => true,
        Err(err) => {
            tracing::warn!(error = %err, "widget origin check failed");
            false
        }
    }
}

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = match req.app_data::<web::Data<ApiState>>() {
        None => false,
        Some(state) if is_widget_path(req.path()) => {
            // A preflight carries no widget key: it is answered for any origin, and the request
            // that follows is held to the company's own list.
            preflight || widget_origin_allowed(state, req.request(), &origin).await
        }
        Some(state) => state.origins.allows(&origin),
    };
    if !allowed {
        let problem = Problem::new(
            &crate::problem_kinds::ORIGIN_NOT_ALLOWED,
            format!("Origin {origin} is not allowed."),
        );
        return Ok(req
            .into_response(problem.into_response())
            .map_into_right_body());
    }
    let Ok(origin_value) = HeaderValue::from_str(&origin) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if preflight {
        let requested_headers = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        let mut response = HttpResponse::NoContent();
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin_value))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECONDS))
            .insert_header((
                header::VARY,
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ));
        if let Some(requested) = requested_headers {
            response.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, requested));
        }
        return Ok(req.into_response(response.finish()).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin_value);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_documented() {
        let patterns = OriginPatterns::new(&[
            "exp://*".to_owned(),
            "https://*.vercel.app".to_owned(),
            "https://app.otto.ai".to_owned(),
            "http://localhost:*".to_owned(),
        ]);
        for ok in [
            "exp://192.168.1.20:8081",
            "https://otto-git-main.vercel.app",
            "https://app.otto.ai",
            "http://localhost:3000",
            "HTTPS://APP.OTTO.AI/",
        ] {
            assert!(patterns.allows(ok), "{ok}");
        }
        for refused in [
            "https://vercel.app.evil.com",
            "https://evil.com",
            "http://app.otto.ai",
            "https://app.otto.ai.evil.com",
            "https://evil.com/.vercel.app",
        ] {
            assert!(!patterns.allows(refused), "{refused}");
        }
    }
}
