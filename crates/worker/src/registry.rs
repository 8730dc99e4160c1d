use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use apalis::prelude::{BoxDynError, Data, FromRequest};
use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use otto_runtime::AppContext;
use serde_json::Value;
use tower::Service;

use otto_runtime::jobs::LeasedJob;

use crate::backend::{JobTask, task_of};

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
            otto_service::ServiceError::Payload(_) | otto_service::ServiceError::Invalid { .. } => {
                JobError::Permanent(err.into())
            }
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

/// A job handler over the raw JSON payload, for jobs without a payload type (tests, benches).
/// Otto's own jobs are typed (`typed::Perform`).
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, payload: &Value, ctx: &AppContext) -> Result<(), JobError>;
}

/// How one job name is run: an apalis service over the leased job.
pub(crate) trait Route: Send + Sync {
    fn call(&self, task: JobTask) -> BoxFuture<'static, Result<(), BoxDynError>>;
}

/// Job name -> handler. A job whose name is not registered is dead-lettered at once. As an
/// apalis service (`Service<JobTask>`), it dispatches each job to its handler by name, since one
/// queue carries several kinds of job.
#[derive(Clone, Default)]
pub struct Registry {
    routes: HashMap<String, Arc<dyn Route>>,
}

impl Registry {
    pub fn register(
        &mut self,
        name: impl Into<String>,
        handler: impl JobHandler + 'static,
    ) -> &mut Self {
        self.route(name, Raw(Arc::new(handler)))
    }

    pub(crate) fn route(
        &mut self,
        name: impl Into<String>,
        route: impl Route + 'static,
    ) -> &mut Self {
        self.routes.insert(name.into(), Arc::new(route));
        self
    }

    /// The handler of job `name`, to run a job directly (tests, one-off runs).
    pub fn get(&self, name: &str) -> Option<DirectRun> {
        self.routes.get(name).map(|route| DirectRun {
            name: name.to_owned(),
            route: route.clone(),
        })
    }
}

/// One job's handler, run outside any queue: the same apalis service the worker calls.
pub struct DirectRun {
    name: String,
    route: Arc<dyn Route>,
}

impl DirectRun {
    /// Runs the job once with `payload`, as a first attempt.
    ///
    /// # Errors
    /// The job's own failure.
    pub async fn run(&self, payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let job = LeasedJob {
            id: format!("direct-{}", uuid::Uuid::new_v4()),
            queue: String::new(),
            name: self.name.clone(),
            payload: payload.clone(),
            attempts: 1,
            max_attempts: 1,
        };
        let mut task = task_of(job);
        task.inject_data(ctx.clone());
        self.route.call(task).await.map_err(job_error)
    }
}

/// Handlers fail with a [`JobError`]; anything else (a timeout, a missing extractor) is worth
/// another attempt.
pub(crate) fn job_error(err: BoxDynError) -> JobError {
    match err.downcast::<JobError>() {
        Ok(job_error) => *job_error,
        Err(other) => JobError::Retryable(anyhow::anyhow!(other)),
    }
}

impl Service<JobTask> for Registry {
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: JobTask) -> Self::Future {
        match self.routes.get(&task.args.name) {
            Some(route) => route.call(task),
            None => {
                let err =
                    JobError::Permanent(anyhow::anyhow!("no handler for job '{}'", task.args.name));
                std::future::ready(Err(err.into())).boxed()
            }
        }
    }
}

struct Raw(Arc<dyn JobHandler>);

impl Route for Raw {
    fn call(&self, task: JobTask) -> BoxFuture<'static, Result<(), BoxDynError>> {
        let handler = self.0.clone();
        async move {
            let ctx = Data::<AppContext>::from_request(&task).await?;
            handler.run(&task.args.payload, &ctx).await?;
            Ok(())
        }
        .boxed()
    }
}
