//! Relays committed outbox rows to the event bus, then marks them sent. Runs in every process;
//! on PostgreSQL each batch is claimed with `FOR UPDATE SKIP LOCKED`, so replicas share the work
//! without sending a row twice. A crash between publish and mark re-sends that batch on restart
//! (at-least-once); a rolled-back transaction never had a row to send.

use std::sync::Arc;
use std::time::Duration;

use otto_db::outbox;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::event_bus::{BusError, EventBus};

const BATCH: u64 = 200;
/// After a wake-up the relay waits this long so commits arriving together go out as one batch
/// (one relay transaction, one fsync, instead of one per event).
const GATHER: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database error: {0}")]
    Db(#[from] DbErr),
    #[error("outbox publish failed: {0}")]
    Bus(#[from] BusError),
}

#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    poll_interval: Duration,
}

impl OutboxRelay {
    pub fn new(db: DatabaseConnection, bus: Arc<dyn EventBus>, poll_interval: Duration) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            poll_interval,
        }
    }

    /// Wakes the relay now (call after committing a transaction that recorded events); other
    /// processes' rows are picked up by the poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Relays until `shutdown`, then makes one last pass so committed events are not left behind.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(err) = self.relay_pending().await {
                tracing::warn!(error = %err, "outbox relay pass failed; will retry");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => tokio::time::sleep(GATHER).await,
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
        // At shutdown some pooled connections belong to HTTP worker runtimes that have just
        // stopped; the pool discards them on failure, so a retry gets a fresh connection.
        for attempt in 1..=3 {
            match self.relay_pending().await {
                Ok(_) => break,
                Err(err) if attempt == 3 => {
                    tracing::warn!(error = %err, "outbox relay final pass failed; events stay queued for the next start")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Sends every pending event; returns how many were sent.
    ///
    /// # Errors
    /// When the database or the bus fails; unsent rows stay pending.
    pub async fn relay_pending(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let sent = self.relay_batch().await?;
            total += sent;
            if sent < BATCH as usize {
                return Ok(total);
            }
        }
    }

    async fn relay_batch(&self) -> Result<usize, RelayError> {
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            let txn = self.db.begin().await?;
            let sent = relay_batch_on(&txn, self.bus.as_ref()).await?;
            txn.commit().await?;
            Ok(sent)
        } else {
            // SQLite: one process, one relay; no row locks to take.
            relay_batch_on(&self.db, self.bus.as_ref()).await
        }
    }
}

async fn relay_batch_on<C: ConnectionTrait>(
    conn: &C,
    bus: &dyn EventBus,
) -> Result<usize, RelayError> {
    let batch = outbox::pending(conn, BATCH).await?;
    let mut done = Vec::with_capacity(batch.len());
    for (id, envelope) in batch {
        match envelope {
            Ok(envelope) => bus.publish(&envelope).await?,
            // A row that no longer parses can never be sent; keeping it would block nothing but
            // would be retried forever, so it is logged and marked.
            Err(err) => {
                tracing::error!(outbox_id = id, error = %err, "outbox row is not a valid envelope; skipped")
            }
        }
        done.push(id);
    }
    outbox::mark_published(conn, &done).await?;
    Ok(done.len())
}
