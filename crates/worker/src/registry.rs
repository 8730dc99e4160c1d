use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use otto_runtime::AppContext;
use serde_json::Value;

/// Why a job attempt failed. `Permanent` skips the remaining attempts (bad payload...).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Retryable(#[source] anyhow::Error),
    #[error("{0}")]
    Permanent(#[source] anyhow::Error),
}

impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        JobError::Retryable(err.into())
    }
}

/// A payload that cannot be serialised will not serialise on retry either.
impl From<serde_json::Error> for JobError {
    fn from(err: serde_json::Error) -> Self {
        JobError::Permanent(err.into())
    }
}

impl From<otto_service::ServiceError> for JobError {
    fn from(err: otto_service::ServiceError) -> Self {
        match err {
            otto_service::ServiceError::Payload(_) => JobError::Permanent(err.into()),
            _ => JobError::Retryable(err.into()),
        }
    }
}

impl From<otto_db::UnitOfWorkError> for JobError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        match err {
            otto_db::UnitOfWorkError::Payload(_) => JobError::Permanent(err.into()),
            _ => JobError::Retryable(err.into()),
        }
    }
}

/// One kind of work. `run` is plain async code that tests can call directly.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, payload: &Value, ctx: &AppContext) -> Result<(), JobError>;
}

/// Job name -> handler. A job whose name is not registered is dead-lettered at once.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn register(
        &mut self,
        name: impl Into<String>,
        handler: impl JobHandler + 'static,
    ) -> &mut Self {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(name).cloned()
    }
}
