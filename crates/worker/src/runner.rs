use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use apalis::layers::TimeoutLayer;
use apalis::layers::limit::GlobalConcurrencyLimitLayer;
use apalis::prelude::{Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use otto_runtime::AppContext;
use otto_runtime::jobs::{LeasedJob, Queue};
use tokio::sync::Semaphore;
use tower::layer::util::{Identity, Stack};

use crate::Registry;
use crate::ack::AckLayer;
use crate::backend::{OttoBackend, PoolSource};
use crate::heartbeat;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub queues: Vec<Queue>,
    /// Slots shared by the queues without slots of their own.
    pub concurrency: usize,
    /// Queues with slots of their own, so a flood on one cannot starve another.
    pub dedicated: Vec<(Queue, usize)>,
    /// How long a job may run before another worker may take it over.
    pub lease: Duration,
    /// How long to wait between polls of an empty queue.
    pub idle_poll: Duration,
    /// First retry delay; doubled per attempt.
    pub retry_base: Duration,
}

impl WorkerSettings {
    pub fn from_context(ctx: &AppContext) -> Self {
        Self {
            queues: ctx.config.worker.queues.clone(),
            concurrency: ctx.config.worker.concurrency.max(1),
            dedicated: ctx
                .config
                .worker
                .queue_concurrency
                .iter()
                .filter(|(queue, _)| ctx.config.worker.queues.contains(queue))
                .copied()
                .collect(),
            lease: ctx.config.worker.lease,
            idle_poll: Duration::from_millis(500),
            retry_base: Duration::from_secs(2),
        }
    }
}

impl WorkerSettings {
    /// Each group of queues with its number of slots: one group per dedicated queue, and the
    /// rest of `queues` sharing `concurrency` slots.
    pub fn pools(&self) -> Vec<(Vec<Queue>, usize)> {
        let mut pools: Vec<(Vec<Queue>, usize)> = self
            .dedicated
            .iter()
            .map(|(queue, count)| (vec![*queue], *count))
            .collect();
        let shared: Vec<Queue> = self
            .queues
            .iter()
            .filter(|queue| !self.dedicated.iter().any(|(d, _)| d == *queue))
            .copied()
            .collect();
        if !shared.is_empty() {
            pools.push((shared, self.concurrency.max(1)));
        }
        pools
    }
}

/// Otto's worker: an apalis `Monitor` with one apalis worker per queue group
/// ([`WorkerSettings::pools`]), each over [`OttoBackend`] with as many slots as its group.
pub struct Worker {
    ctx: AppContext,
    registry: Registry,
    settings: WorkerSettings,
    id: String,
    in_flight: Arc<AtomicUsize>,
}

impl Worker {
    pub fn new(ctx: AppContext, registry: Registry, settings: WorkerSettings) -> Self {
        let id = format!(
            "worker-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            ctx,
            registry,
            settings,
            id,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until the context's shutdown token is cancelled; in-flight jobs get
    /// `shutdown_grace` to finish, then are handed back to the queue.
    pub async fn run(self) {
        let queues: Vec<String> = self
            .settings
            .queues
            .iter()
            .map(|q| q.as_str().to_owned())
            .collect();
        tracing::info!(worker_id = %self.id, queues = %queues.join(","), concurrency = self.settings.concurrency, "worker started");
        let heartbeat = tokio::spawn(heartbeat::beat_until_stopped(
            self.ctx.clone(),
            self.id.clone(),
            queues,
            self.in_flight.clone(),
        ));
        let shutdown = self.ctx.shutdown.clone();
        let monitor = self
            .settings
            .pools()
            .into_iter()
            .enumerate()
            .fold(Monitor::new(), |monitor, (index, (queues, slots))| {
                let pool = self.pool(format!("{}-{index}", self.id), queues, slots);
                monitor.register(move |_restarts| pool.worker())
            })
            .should_restart(|worker, err| {
                tracing::error!(worker = %worker.name(), error = %err, "apalis worker failed; restarting it");
                true
            });
        let stopped = monitor
            .run_with_signal(async move {
                shutdown.cancelled().await;
                Ok(())
            })
            .await;
        if let Err(err) = stopped {
            tracing::error!(error = %err, "worker monitor stopped with an error");
        }
        let _ = heartbeat.await;
        tracing::info!(worker_id = %self.id, "worker stopped");
    }

    fn pool(&self, name: String, queues: Vec<Queue>, slots: usize) -> Pool {
        Pool {
            name,
            queues,
            slots,
            ctx: self.ctx.clone(),
            registry: self.registry.clone(),
            settings: self.settings.clone(),
            ack: AckLayer::new(
                self.ctx.clone(),
                self.settings.lease,
                self.settings.retry_base,
                self.in_flight.clone(),
            ),
        }
    }
}

/// What it takes to (re)build the apalis worker of one queue group.
struct Pool {
    name: String,
    queues: Vec<Queue>,
    slots: usize,
    ctx: AppContext,
    registry: Registry,
    settings: WorkerSettings,
    ack: AckLayer,
}

impl Pool {
    /// Around the registry (dispatching by job name), outermost first: the ack layer (the
    /// backend's middleware), the context as `Data`, the slot limit, the per-job timeout.
    fn worker(&self) -> PoolWorker {
        let slots = Arc::new(Semaphore::new(self.slots.max(1)));
        let source = PoolSource {
            queue: self.ctx.queue.clone(),
            queues: self.queues.clone(),
            lease: self.settings.lease,
            idle_poll: self.settings.idle_poll,
            shutdown: self.ctx.shutdown.clone(),
            slots: slots.clone(),
        };
        WorkerBuilder::new(self.name.clone())
            .backend(OttoBackend::new(source, self.ack.clone()))
            .data(self.ctx.clone())
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(slots))
            .timeout(self.ctx.config.worker.job_timeout)
            .build(self.registry.clone())
    }
}

type PoolWorker = apalis::prelude::Worker<
    Arc<LeasedJob>,
    OttoBackend,
    Registry,
    Stack<TimeoutLayer, Stack<GlobalConcurrencyLimitLayer, Stack<Data<AppContext>, Identity>>>,
>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_queues_get_their_own_slots_and_the_rest_share() {
        let settings = WorkerSettings {
            queues: vec![Queue::Default, Queue::Asr, Queue::Analysis],
            concurrency: 3,
            dedicated: vec![(Queue::Asr, 2)],
            lease: Duration::from_secs(1),
            idle_poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
        };
        assert_eq!(
            settings.pools(),
            vec![
                (vec![Queue::Asr], 2),
                (vec![Queue::Default, Queue::Analysis], 3)
            ]
        );
    }
}
