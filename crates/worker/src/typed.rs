//! Typed jobs: each kind of work is a payload type naming its job and queue, so an enqueuer and
//! its handler cannot disagree on either, and a payload that does not parse fails permanently.

use async_trait::async_trait;
use otto_runtime::AppContext;
use otto_runtime::jobs::{NewJob, Queue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{JobError, JobHandler, Registry};

pub trait JobKind: Serialize + DeserializeOwned + Send + Sync {
    const NAME: &'static str;
    const QUEUE: Queue;

    fn to_job(&self) -> NewJob {
        let payload = serde_json::to_value(self).unwrap_or(Value::Null);
        NewJob::now(Self::QUEUE, Self::NAME, payload)
    }
}

#[async_trait]
pub trait TypedHandler: Send + Sync + 'static {
    type Job: JobKind;
    async fn handle(&self, job: Self::Job, ctx: &AppContext) -> Result<(), JobError>;
}

struct Typed<H>(H);

#[async_trait]
impl<H: TypedHandler> JobHandler for Typed<H> {
    async fn run(&self, payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let job = serde_json::from_value(payload.clone()).map_err(|e| {
            JobError::Permanent(anyhow::anyhow!(
                "payload of '{}' does not parse: {e}",
                H::Job::NAME
            ))
        })?;
        self.0.handle(job, ctx).await
    }
}

impl Registry {
    /// Registers `handler` under its job's name.
    pub fn add<H: TypedHandler>(&mut self, handler: H) -> &mut Self {
        self.register(H::Job::NAME, Typed(handler))
    }
}

/// Declares the payload of a scheduled job: the schedule that fired and its slot.
#[macro_export]
macro_rules! scheduled_job {
    ($(#[$doc:meta])* $name:ident, $job:literal, $queue:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            pub schedule: String,
            pub slot: chrono::DateTime<chrono::Utc>,
        }

        impl $crate::typed::JobKind for $name {
            const NAME: &'static str = $job;
            const QUEUE: otto_runtime::jobs::Queue = $queue;
        }
    };
}
