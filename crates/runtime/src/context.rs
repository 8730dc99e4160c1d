//! What every Otto process holds: configuration, the database, the event bus, the job queue,
//! the outbox relay, Redis (in distributed mode) and the shutdown token.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::Pool;
use otto_db::TxnConn;
use otto_db::group_commit::{GroupCommit, GroupCommitSettings};
use otto_db::unit_of_work::BoxError;
use otto_db::{CommitSink, Database, DbSettings};
use otto_domain::jobs::NewJob;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::config::{Config, Mode};
use crate::event_bus::{EventBus, InProcessBus, RedisBus};
use crate::jobs::{DbJobQueue, JobQueue, RedisJobQueue};
use crate::outbox_relay::OutboxRelay;
use crate::redis_pool;

const OUTBOX_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database unavailable: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("invalid REDIS_URL: {0}")]
    RedisPool(#[from] deadpool_redis::CreatePoolError),
    #[error("invalid REDIS_URL: {0}")]
    Redis(#[from] crate::event_bus::BusError),
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub db: Database,
    pub redis: Option<Pool>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn JobQueue>,
    pub outbox: OutboxRelay,
    /// Computed answers with a time to live (Redis, or memory in embedded mode).
    pub cache: Arc<Cache>,
    /// The receptionist's conversations between turns (Redis, or memory in embedded mode).
    pub conversations: Arc<crate::conversations::ConversationStore>,
    /// Documents and recordings (S3, or a local directory).
    pub storage: Arc<crate::storage::Storage>,
    /// Group commit of webhook deliveries (PostgreSQL with `WEBHOOK_BATCH_WINDOW_MS` > 0).
    pub delivery_batches: Option<Arc<GroupCommit>>,
    pub shutdown: CancellationToken,
}

impl AppContext {
    /// Connects to the database (migrating it when `migrate_on_start` is set) and picks the bus and queue
    /// for the configured mode. Redis is connected lazily, so a process starts while Redis is
    /// down and reports it through `/ready`.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated, or `REDIS_URL` is malformed.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, StartError> {
        let mut settings = DbSettings::new(config.database.url.expose());
        settings.max_connections = config.database.max_connections;
        let db = otto_db::connect(&settings).await?;
        if config.database.migrate_on_start {
            otto_db::migrate(&db).await?;
        }
        let (redis, bus, queue): (Option<Pool>, Arc<dyn EventBus>, Arc<dyn JobQueue>) = match config
            .mode()
        {
            Mode::Embedded => (
                None,
                Arc::new(InProcessBus::new()),
                Arc::new(DbJobQueue::new(db.clone())),
            ),
            Mode::Distributed => {
                let url = config
                    .redis
                    .url
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default();
                let pool = redis_pool::build(&url, config.redis.pool_size)?;
                let bus =
                    RedisBus::start(&url, pool.clone(), &config.redis.prefix, shutdown.clone())?;
                let queue = RedisJobQueue::new(pool.clone(), config.redis.prefix.clone());
                (Some(pool), Arc::new(bus), Arc::new(queue))
            }
        };
        let storage = crate::storage::Storage::from_config(&config.storage)
            .map_err(|err| StartError::Config(err.to_string()))?;
        let outbox = OutboxRelay::new(db.clone(), bus.clone(), OUTBOX_POLL);
        let cache = Arc::new(match &redis {
            Some(pool) => Cache::redis(pool.clone(), &config.redis.prefix),
            None => Cache::memory(),
        });
        let conversations = Arc::new(match &redis {
            Some(pool) => {
                crate::conversations::ConversationStore::redis(pool.clone(), &config.redis.prefix)
            }
            None => crate::conversations::ConversationStore::memory(),
        });
        Ok(Self {
            delivery_batches: delivery_batches(&config, &db),
            conversations,
            storage: Arc::new(storage),
            db: Database::new(db, config.database.read_connections as usize),
            config: Arc::new(config),
            redis,
            bus,
            queue,
            outbox,
            cache,
            shutdown,
        })
    }

    /// Starts the outbox relay of this process.
    pub fn spawn_outbox_relay(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.outbox.clone().run(self.shutdown.clone()))
    }
}

/// A committed unit of work hands its jobs and events to this process's queue and relay.
#[async_trait::async_trait]
impl CommitSink for AppContext {
    async fn stage(&self, txn: &TxnConn, jobs: Vec<NewJob>) -> Result<Vec<NewJob>, BoxError> {
        if !self.queue.enqueues_in_transaction() {
            return Ok(jobs);
        }
        for job in jobs {
            self.queue.push_in(txn, job).await?;
        }
        Ok(Vec::new())
    }

    fn notify_outbox(&self) {
        self.outbox.notify();
    }

    async fn release(&self, jobs: Vec<NewJob>) {
        for job in jobs {
            let name = job.name.clone();
            if let Err(err) = self.queue.push(job).await {
                metrics::counter!("job_enqueue_failures_total", "name" => name.clone())
                    .increment(1);
                tracing::error!(error = %err, job = %name, "could not enqueue a job after commit; the sweep will retry it");
            }
        }
    }
}

/// Webhook deliveries are group-committed on PostgreSQL unless the window is 0. A lane holds at
/// most two connections (one batch running, the previous one committing), so a quarter as many
/// lanes as connections leaves half the pool to reads and the tenant lookups that precede a
/// delivery.
fn delivery_batches(config: &Config, db: &DatabaseConnection) -> Option<Arc<GroupCommit>> {
    let settings = &config.database;
    let postgres = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    (postgres && !settings.webhook_batch_window.is_zero()).then(|| {
        GroupCommit::new(
            db.get_postgres_connection_pool().clone(),
            GroupCommitSettings {
                window: settings.webhook_batch_window,
                max_members: settings.webhook_batch_max,
                lanes: (settings.max_connections as usize / 4).max(1),
            },
        )
    })
}
