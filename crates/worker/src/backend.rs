//! Otto's durable queues as an apalis backend: apalis's worker asks for a task only when a slot
//! is free (`CallAll` polls the service's readiness, a `ConcurrencyLimit`, before `poll_next`),
//! so a job is leased only when it can start at once and a lease keeps its meaning.
//!
//! The backend never yields an error: apalis ends a worker on any `poll_next` error (that is how
//! apalis-redis 1.0.0's worker dies on a Redis restart), so an unreachable queue is logged and
//! retried after a pause instead.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{Backend, Task, TaskBuilder, TaskId, WorkerContext};
use apalis_core::backend::BackendConfig;
use apalis_core::backend::finalize::Ephemeral;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use otto_runtime::jobs::{JobQueue, LeasedJob, Queue, QueueError};
use tokio_util::sync::CancellationToken;

use crate::ack::AckLayer;

/// Pause after the queue could not be reached.
const UNREACHABLE_PAUSE: Duration = Duration::from_secs(1);

/// What an apalis worker of Otto's runs: the leased job, shared by the ack layer and the handler.
pub type JobTask = Task<Arc<LeasedJob>>;

/// One queue group's source of jobs.
pub struct OttoBackend {
    source: Source,
    fetch: Fetch,
    ack: AckLayer,
}

#[derive(Clone)]
struct Source {
    queue: Arc<dyn JobQueue>,
    queues: Arc<[Queue]>,
    lease: Duration,
    idle_poll: Duration,
    shutdown: CancellationToken,
}

enum Fetch {
    Idle,
    Reserving(BoxFuture<'static, Result<Option<LeasedJob>, QueueError>>),
    Waiting(BoxFuture<'static, ()>),
    /// Shutting down with a job leased but not started: it goes back to the queue.
    Releasing(BoxFuture<'static, ()>),
}

impl OttoBackend {
    pub(crate) fn new(
        queue: Arc<dyn JobQueue>,
        queues: Vec<Queue>,
        lease: Duration,
        idle_poll: Duration,
        shutdown: CancellationToken,
        ack: AckLayer,
    ) -> Self {
        Self {
            source: Source {
                queue,
                queues: queues.into(),
                lease,
                idle_poll,
                shutdown,
            },
            fetch: Fetch::Idle,
            ack,
        }
    }
}

impl Source {
    fn reserve(&self) -> Fetch {
        let source = self.clone();
        Fetch::Reserving(
            async move { source.queue.reserve(&source.queues, source.lease).await }.boxed(),
        )
    }

    /// Sleeps until work may have arrived (the queue's wake-up signal), `pause` at most, or
    /// until shutdown.
    fn wait(&self, pause: Duration) -> Fetch {
        let source = self.clone();
        Fetch::Waiting(
            async move {
                tokio::select! {
                    () = source.shutdown.cancelled() => {}
                    () = source.queue.wait_for_work(&source.queues, pause) => {}
                }
            }
            .boxed(),
        )
    }

    fn release(&self, job: LeasedJob) -> Fetch {
        let queue = self.queue.clone();
        Fetch::Releasing(
            async move {
                if let Err(err) = queue.release(&job).await {
                    tracing::warn!(error = %err, job_id = %job.id, "could not return a job leased at shutdown; its lease will expire");
                }
            }
            .boxed(),
        )
    }
}

/// The apalis task of a leased job; apalis counts the attempt when the task starts, so it
/// starts from the attempts before this one.
pub(crate) fn task_of(job: LeasedJob) -> JobTask {
    let previous_attempts = job.attempts.saturating_sub(1) as usize;
    let max_attempts = job.max_attempts as usize;
    let id = TaskId::from_string(job.id.clone());
    TaskBuilder::new(Arc::new(job))
        .task_id(id)
        .attempt(previous_attempts)
        .max_attempts(max_attempts)
        .build()
}

impl Backend for OttoBackend {
    type Task = JobTask;
    type Error = Infallible;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<JobTask, Infallible>>> {
        loop {
            self.fetch = match &mut self.fetch {
                Fetch::Idle => self.source.reserve(),
                Fetch::Reserving(reserving) => match reserving.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(job))) => {
                        self.fetch = Fetch::Idle;
                        return Poll::Ready(Some(Ok(task_of(job))));
                    }
                    Poll::Ready(Ok(None)) => self.source.wait(self.source.idle_poll),
                    Poll::Ready(Err(err)) => {
                        tracing::warn!(error = %err, "could not lease a job");
                        self.source.wait(UNREACHABLE_PAUSE)
                    }
                },
                Fetch::Waiting(waiting) | Fetch::Releasing(waiting) => match waiting.poll_unpin(cx)
                {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => Fetch::Idle,
                },
            };
        }
    }

    /// Finishes a lease request still in flight and hands its job back, so a stop between
    /// leasing and starting loses nothing and delays nothing.
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Infallible>> {
        loop {
            self.fetch = match &mut self.fetch {
                Fetch::Idle | Fetch::Waiting(_) => return Poll::Ready(Ok(())),
                Fetch::Reserving(reserving) => match reserving.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(job))) => self.source.release(job),
                    Poll::Ready(Ok(None) | Err(_)) => Fetch::Idle,
                },
                Fetch::Releasing(releasing) => match releasing.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => Fetch::Idle,
                },
            };
        }
    }
}

impl BackendConfig for OttoBackend {
    type Args = Arc<LeasedJob>;
    type Id = String;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = AckLayer;

    fn config(&self) -> &() {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> AckLayer {
        self.ack.clone()
    }
}
