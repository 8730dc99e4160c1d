//! Typed jobs: a job is its payload type (`otto_domain::jobs`), which names the job and its
//! queue, and implements [`Perform`] here with the state it needs. One name per job: the type.
//! Each runs as an apalis job function ([`perform`]) whose extractors bring the context and the
//! job's state; a payload that does not parse fails permanently.

use std::marker::PhantomData;
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, task_fn};
use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
pub use otto_domain::jobs::JobKind;
use otto_runtime::AppContext;
use tower::Service;

use crate::backend::JobTask;
use crate::registry::Route;
use crate::{JobError, Registry};

#[async_trait]
pub trait Perform: JobKind + 'static {
    /// What the job needs beside the context (a provider client, say); `()` for none.
    type State: Send + Sync + 'static;

    async fn perform(self, state: &Self::State, ctx: &AppContext) -> Result<(), JobError>;
}

/// The apalis job function of every typed job.
async fn perform<J: Perform>(
    job: J,
    state: Data<Arc<J::State>>,
    ctx: Data<AppContext>,
) -> Result<(), JobError> {
    job.perform(&state, &ctx).await
}

struct Typed<J: Perform> {
    state: Arc<J::State>,
    job: PhantomData<fn() -> J>,
}

impl<J: Perform> Route for Typed<J> {
    fn call(&self, mut task: JobTask) -> BoxFuture<'static, Result<(), BoxDynError>> {
        task.inject_data(self.state.clone());
        let parsed = task.try_map_args(|leased| {
            J::deserialize(&leased.payload).map_err(|e| {
                JobError::Permanent(anyhow::anyhow!(
                    "payload of '{}' does not parse: {e}",
                    J::NAME
                ))
            })
        });
        match parsed {
            Ok(task) => task_fn(perform::<J>).call(task),
            Err(err) => std::future::ready(Err(err.into())).boxed(),
        }
    }
}

impl Registry {
    /// Registers job `J` under its name, with its `state`.
    pub fn add<J: Perform>(&mut self, state: J::State) -> &mut Self {
        self.route(
            J::NAME,
            Typed::<J> {
                state: Arc::new(state),
                job: PhantomData,
            },
        )
    }
}
