//! Otto's durable queues as an apalis backend: apalis's worker asks for a task only when a slot
//! is free (`CallAll` polls the service's readiness, a concurrency limit, before `poll_next`),
//! so a job is leased only when it can start at once and a lease keeps its meaning. The backend
//! shares the limit's semaphore: with `n` slots free and a backlog it sends up to `n` lease
//! requests at once (one round trip each), never more, so a pool fetches as fast as its slots
//! empty; an idle pool probes with one request at a time.
//!
//! The backend never yields an error: apalis ends a worker on any `poll_next` error (that is how
//! apalis-redis 1.0.0's worker dies on a Redis restart), so an unreachable queue is logged and
//! retried after a pause instead.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{Backend, Task, TaskBuilder, TaskId, WorkerContext};
use apalis_core::backend::BackendConfig;
use apalis_core::backend::finalize::Ephemeral;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use otto_runtime::jobs::{JobQueue, LeasedJob, Queue, QueueError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::ack::AckLayer;

/// Pause after the queue could not be reached.
const UNREACHABLE_PAUSE: Duration = Duration::from_secs(1);

/// What an apalis worker of Otto's runs: the leased job, shared by the ack layer and the handler.
pub type JobTask = Task<Arc<LeasedJob>>;

/// One queue group's source of jobs.
pub struct OttoBackend {
    source: Source,
    /// The pool's slots (the same semaphore as its concurrency limit).
    slots: Arc<Semaphore>,
    /// Lease requests on their way.
    leasing: FuturesUnordered<BoxFuture<'static, Result<Option<LeasedJob>, QueueError>>>,
    /// Leased jobs for slots apalis is about to fill.
    leased: VecDeque<LeasedJob>,
    /// Set while the queues are empty (or unreachable): sleep until work may have arrived.
    waiting: Option<BoxFuture<'static, ()>>,
    /// Jobs handed back at shutdown.
    releasing: Option<BoxFuture<'static, ()>>,
    /// Whether the last answer was a job: only then is there a backlog worth several requests.
    backlog: bool,
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

/// How a pool's worker is wired: its queues, lease, idle pause and slots.
pub(crate) struct PoolSource {
    pub queue: Arc<dyn JobQueue>,
    pub queues: Vec<Queue>,
    pub lease: Duration,
    pub idle_poll: Duration,
    pub shutdown: CancellationToken,
    pub slots: Arc<Semaphore>,
}

impl OttoBackend {
    pub(crate) fn new(pool: PoolSource, ack: AckLayer) -> Self {
        Self {
            source: Source {
                queue: pool.queue,
                queues: pool.queues.into(),
                lease: pool.lease,
                idle_poll: pool.idle_poll,
                shutdown: pool.shutdown,
            },
            slots: pool.slots,
            leasing: FuturesUnordered::new(),
            leased: VecDeque::new(),
            waiting: None,
            releasing: None,
            backlog: false,
            ack,
        }
    }

    /// Sends lease requests until every free slot has a job coming: apalis holds one slot
    /// (acquired before it asked), plus the ones still free. With no backlog (the last answer
    /// was "empty") one request probes the queue, so an idle pool does not ask `n` times per job.
    fn request_leases(&mut self) {
        let wanted = if self.backlog {
            1 + self.slots.available_permits()
        } else {
            1
        };
        while self.leasing.len() + self.leased.len() < wanted {
            let source = self.source.clone();
            self.leasing.push(
                async move { source.queue.reserve(&source.queues, source.lease).await }.boxed(),
            );
        }
    }
}

impl Source {
    /// Sleeps until work may have arrived (the queue's wake-up signal), `pause` at most, or
    /// until shutdown.
    fn wait(&self, pause: Duration) -> BoxFuture<'static, ()> {
        let source = self.clone();
        async move {
            tokio::select! {
                () = source.shutdown.cancelled() => {}
                () = source.queue.wait_for_work(&source.queues, pause) => {}
            }
        }
        .boxed()
    }

    fn release(&self, jobs: Vec<LeasedJob>) -> BoxFuture<'static, ()> {
        let queue = self.queue.clone();
        async move {
            for job in jobs {
                if let Err(err) = queue.release(&job).await {
                    tracing::warn!(error = %err, job_id = %job.id, "could not return a job leased at shutdown; its lease will expire");
                }
            }
        }
        .boxed()
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
            if let Some(job) = self.leased.pop_front() {
                return Poll::Ready(Some(Ok(task_of(job))));
            }
            if let Some(waiting) = &mut self.waiting {
                match waiting.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.waiting = None,
                }
            }
            self.request_leases();
            let mut pause = None;
            while let Poll::Ready(Some(answer)) = self.leasing.poll_next_unpin(cx) {
                self.backlog = matches!(answer, Ok(Some(_)));
                match answer {
                    Ok(Some(job)) => self.leased.push_back(job),
                    Ok(None) => pause = pause.or(Some(self.source.idle_poll)),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not lease a job");
                        pause = Some(UNREACHABLE_PAUSE);
                    }
                }
            }
            if !self.leased.is_empty() {
                continue;
            }
            match pause {
                // Every request came back empty (or failed): sleep before asking again.
                Some(pause) if self.leasing.is_empty() => {
                    self.waiting = Some(self.source.wait(pause));
                }
                _ => return Poll::Pending,
            }
        }
    }

    /// Finishes the lease requests still on their way and hands back every job leased but not
    /// started, so a stop loses nothing and delays nothing.
    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Infallible>> {
        while let Poll::Ready(Some(answer)) = self.leasing.poll_next_unpin(cx) {
            if let Ok(Some(job)) = answer {
                self.leased.push_back(job);
            }
        }
        if !self.leasing.is_empty() {
            return Poll::Pending;
        }
        if self.releasing.is_none() && !self.leased.is_empty() {
            let jobs = self.leased.drain(..).collect();
            self.releasing = Some(self.source.release(jobs));
        }
        match &mut self.releasing {
            Some(releasing) => releasing.poll_unpin(cx).map(|()| {
                self.releasing = None;
                Ok(())
            }),
            None => Poll::Ready(Ok(())),
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
