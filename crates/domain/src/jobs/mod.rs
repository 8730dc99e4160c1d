//! Job contracts: the queues, a job to enqueue, and the payload types of every job Otto runs.
//! Pure data, so the API, the scheduler, the service layer and the worker share one definition
//! of each job without depending on each other; the queue backends live in `otto-runtime`, the
//! handlers in `otto-worker`.

mod contracts;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use contracts::*;

/// The queues of SPEC section 8, so each kind of work can be scaled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    Default,
    Asr,
    Analysis,
    Followups,
    Indexing,
    Uwc,
    Shunya,
}

impl Queue {
    pub const ALL: [Queue; 7] = [
        Queue::Default,
        Queue::Asr,
        Queue::Analysis,
        Queue::Followups,
        Queue::Indexing,
        Queue::Uwc,
        Queue::Shunya,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Default => "default",
            Queue::Asr => "asr",
            Queue::Analysis => "analysis",
            Queue::Followups => "followups",
            Queue::Indexing => "indexing",
            Queue::Uwc => "uwc",
            Queue::Shunya => "shunya",
        }
    }

    pub fn parse(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.as_str() == name)
    }
}

/// A job to enqueue. `payload` carries ids (never rows), the tenant and the trace context.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewJob {
    pub queue: Queue,
    pub name: String,
    pub payload: Value,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
}

impl NewJob {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    pub fn now(queue: Queue, name: impl Into<String>, payload: Value) -> Self {
        Self {
            queue,
            name: name.into(),
            payload,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            run_at: Utc::now(),
        }
    }
}

/// A kind of work: its payload type names its job and queue, so an enqueuer and its handler
/// cannot disagree on either.
pub trait JobKind: Serialize + DeserializeOwned + Send + Sync {
    const NAME: &'static str;
    const QUEUE: Queue;

    /// The job to enqueue now.
    ///
    /// # Errors
    /// When the payload cannot be serialised: the enqueue fails instead of storing `null`.
    fn to_job(&self) -> Result<NewJob, serde_json::Error> {
        let payload = serde_json::to_value(self)?;
        Ok(NewJob::now(Self::QUEUE, Self::NAME, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_round_trip() {
        for queue in Queue::ALL {
            assert_eq!(Queue::parse(queue.as_str()), Some(queue));
        }
    }
}
