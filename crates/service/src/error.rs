use otto_db::{DbErr, UnitOfWorkError};

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    UnitOfWork(#[from] UnitOfWorkError),
    /// A follow-on job's payload could not be serialised (a bug, never retried usefully).
    #[error("job payload cannot be serialised: {0}")]
    Payload(#[from] serde_json::Error),
    /// Input the operation refuses (a field and why), answered as a validation error.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl ServiceError {
    /// Input refused: `field` and why.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
