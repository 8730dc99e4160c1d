//! `ApiError`: every failure a handler can return, mapped to problem+json in one place.
//! Unknown failures are logged with their cause chain and answered as an opaque 500.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use otto_db::DbErrorKind;
use otto_domain::DomainError;

use crate::problem::{FieldError, Problem};
use crate::problem_kinds as kinds;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required")]
    PreconditionRequired,
    #[error("tenant locked down")]
    Locked,
    #[error("rate limited ({limit_type})")]
    TooManyRequests {
        limit_type: &'static str,
        limit: u32,
        retry_after_secs: u64,
    },
    #[error("validation failed: {detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A rep's overlapping scheduled appointment (`appointment-conflict`).
    #[error("appointment conflict")]
    AppointmentConflict,
    /// A refusal with a kind of its own (`idempotency-key-reused`, `sms-opted-out`...).
    #[error("{detail}")]
    Refused {
        kind: &'static kinds::ProblemKind,
        detail: String,
    },
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self::Validation {
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    fn problem(&self) -> Problem {
        match self {
            ApiError::NotFound => Problem::new(&kinds::NOT_FOUND, "The resource does not exist."),
            ApiError::Unauthorized(detail) => Problem::new(&kinds::UNAUTHORIZED, detail.clone()),
            ApiError::Forbidden(detail) => Problem::new(&kinds::FORBIDDEN, detail.clone()),
            ApiError::PreconditionFailed => Problem::new(
                &kinds::STALE_VERSION,
                "The resource changed since it was read; fetch it again and retry with its ETag.",
            ),
            ApiError::PreconditionRequired => Problem::new(
                &kinds::IF_MATCH_REQUIRED,
                "This update needs an If-Match header with the resource's ETag.",
            ),
            ApiError::TooManyRequests {
                limit_type,
                retry_after_secs,
                ..
            } => {
                let mut problem = Problem::new(
                    &kinds::RATE_LIMITED,
                    format!(
                        "Too many requests ({limit_type} limit); retry in {retry_after_secs} s."
                    ),
                );
                problem.retry_after = Some(*retry_after_secs);
                problem
            }
            ApiError::Locked => Problem::new(
                &kinds::TENANT_LOCKED,
                "The company is in lockdown: automation is paused until an owner lifts it.",
            ),
            ApiError::Validation { detail, errors } => {
                Problem::new(&kinds::VALIDATION_ERROR, detail.clone()).with_errors(errors.clone())
            }
            ApiError::PayloadTooLarge => crate::problem::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType => {
                crate::problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::Conflict(detail) => Problem::new(&kinds::CONFLICT, detail.clone()),
            ApiError::Refused { kind, detail } => Problem::new(kind, detail.clone()),
            ApiError::AppointmentConflict => Problem::new(
                &kinds::APPOINTMENT_CONFLICT,
                "The rep already has a scheduled appointment at that time.",
            ),
            ApiError::Database(err) => match DbErrorKind::of(err) {
                DbErrorKind::NotFound => ApiError::NotFound.problem(),
                DbErrorKind::UniqueViolation => {
                    Problem::new(&kinds::CONFLICT, "The resource already exists.")
                }
                DbErrorKind::Unavailable => unavailable(),
                DbErrorKind::Other => internal(),
            },
            ApiError::Unavailable(_) => unavailable(),
            ApiError::Internal(_) => internal(),
        }
    }
}

fn unavailable() -> Problem {
    Problem::new(
        &kinds::SERVICE_UNAVAILABLE,
        "A dependency is unavailable; retry shortly.",
    )
}

fn internal() -> Problem {
    Problem::new(&kinds::INTERNAL_ERROR, "An unexpected error occurred.")
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::Database(err)
    }
}

impl From<otto_db::UnitOfWorkError> for ApiError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        match err {
            otto_db::UnitOfWorkError::Db(err) => ApiError::Database(err),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<otto_service::ServiceError> for ApiError {
    fn from(err: otto_service::ServiceError) -> Self {
        match err {
            otto_service::ServiceError::Db(err) => ApiError::Database(err),
            otto_service::ServiceError::UnitOfWork(err) => err.into(),
            otto_service::ServiceError::Invalid { field, message } => {
                ApiError::validation(field, message)
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// A job payload that does not serialise: a bug, answered as an opaque 500.
impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> Self {
        ApiError::Internal(err.into())
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid { field, message } => ApiError::validation(field, message),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        let problem_trace = problem.trace_id.clone();
        if problem.status >= 500 {
            tracing::error!(error = %ErrorChain(self), status = problem.status, "request failed");
        }
        let mut response = problem.into_response();
        match self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests {
                limit,
                retry_after_secs,
                ..
            } => {
                let headers = response.headers_mut();
                let number = |n: u64| HeaderValue::from(n);
                headers.insert(RETRY_AFTER, number(*retry_after_secs));
                headers.insert(
                    HeaderName::from_static("ratelimit-limit"),
                    number(u64::from(*limit)),
                );
                headers.insert(HeaderName::from_static("ratelimit-remaining"), number(0));
                headers.insert(
                    HeaderName::from_static("ratelimit-reset"),
                    number(*retry_after_secs),
                );
                if let Ok(trace) = HeaderValue::from_str(&problem_trace) {
                    headers.insert(HeaderName::from_static("x-trace-id"), trace);
                }
            }
            _ => {}
        }
        response
    }
}

/// Displays an error with all its causes (`a: b: c`) for logs; never sent to clients.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
