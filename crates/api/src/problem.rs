//! RFC 9457 problem details: the one shape of every error Otto answers.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem_kinds::{self as kinds, ProblemKind};
use crate::request_context::RequestContext;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A relative URI naming the kind of problem (see docs/errors.md).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The path of the request that failed.
    pub instance: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `kind` about the current request (trace id and path come from its context).
    pub fn new(kind: &ProblemKind, detail: impl Into<String>) -> Self {
        Self::with_status(kind, kind.status, detail)
    }

    /// As [`Problem::new`], with the status the framework chose (`http-error`).
    fn with_status(kind: &ProblemKind, status: u16, detail: impl Into<String>) -> Self {
        let context = RequestContext::current();
        let title = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(kind.title);
        Self {
            kind: format!("/problems/{}", kind.slug),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            instance: context.as_ref().map(|c| c.path.clone()).unwrap_or_default(),
            trace_id: context.map(|c| c.trace_id.to_string()).unwrap_or_default(),
            errors: None,
            retry_after: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }

    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = HttpResponse::build(status).body(body);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// The kind and default detail for statuses that reach the client without an `ApiError`
/// (unknown route, wrong method, framework-level refusals).
pub fn for_status(status: StatusCode) -> Problem {
    let (kind, detail) = match status {
        StatusCode::NOT_FOUND => (&kinds::NOT_FOUND, "No resource at this path."),
        StatusCode::METHOD_NOT_ALLOWED => (
            &kinds::METHOD_NOT_ALLOWED,
            "This method is not allowed on this resource.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            (&kinds::PAYLOAD_TOO_LARGE, "The request body is too large.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            &kinds::UNSUPPORTED_MEDIA_TYPE,
            "The request body must be application/json.",
        ),
        StatusCode::BAD_REQUEST => (&kinds::BAD_REQUEST, "The request could not be read."),
        StatusCode::SERVICE_UNAVAILABLE => (
            &kinds::SERVICE_UNAVAILABLE,
            "A dependency is unavailable; retry shortly.",
        ),
        s if s.is_server_error() => (&kinds::INTERNAL_ERROR, "An unexpected error occurred."),
        _ => (&kinds::HTTP_ERROR, "The request was refused."),
    };
    Problem::with_status(kind, status.as_u16(), detail)
}
