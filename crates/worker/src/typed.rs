//! Typed jobs: a job is its payload type (`otto_domain::jobs`), which names the job and its
//! queue, and implements [`Perform`] here with the state it needs. One name per job: the type.
//! A payload that does not parse fails permanently.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
pub use otto_domain::jobs::JobKind;
use otto_runtime::AppContext;
use serde_json::Value;

use crate::{JobError, JobHandler, Registry};

#[async_trait]
pub trait Perform: JobKind + 'static {
    /// What the job needs beside the context (a provider client, say); `()` for none.
    type State: Send + Sync + 'static;

    async fn perform(self, state: &Self::State, ctx: &AppContext) -> Result<(), JobError>;
}

struct Typed<J: Perform> {
    state: Arc<J::State>,
    job: PhantomData<fn() -> J>,
}

#[async_trait]
impl<J: Perform> JobHandler for Typed<J> {
    async fn run(&self, payload: &Value, ctx: &AppContext) -> Result<(), JobError> {
        let job: J = serde_json::from_value(payload.clone()).map_err(|e| {
            JobError::Permanent(anyhow::anyhow!(
                "payload of '{}' does not parse: {e}",
                J::NAME
            ))
        })?;
        job.perform(&self.state, ctx).await
    }
}

impl Registry {
    /// Registers job `J` under its name, with its `state`.
    pub fn add<J: Perform>(&mut self, state: J::State) -> &mut Self {
        self.register(
            J::NAME,
            Typed::<J> {
                state: Arc::new(state),
                job: PhantomData,
            },
        )
    }
}
