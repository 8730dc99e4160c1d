//! Connections kept for tenant reads outside sqlx's pool. sqlx pings every connection that
//! returns to its pool (a `Sync` round trip that flushes whatever a cancelled query may have
//! left), so a read that costs one round trip would cost two, and the connection would be out of
//! use for the second. A read that finished leaves its connection in a known state: it comes back
//! here without the ping. One that a cancelled or failed exchange may have left mid-way is
//! closed instead.
//!
//! These connections are in addition to the pool's (`DB_READ_CONNECTIONS`, 0 to read from the
//! pool like everything else).

use std::sync::{Arc, Mutex};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnection, PgPool};
use sea_orm::sqlx::{self, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `keep` connections, taken from the pool (which opens others in their place) and
/// kept between reads; with `keep` 0, reads take pooled connections.
pub struct ReadConnections {
    pool: PgPool,
    idle: Mutex<Vec<PgConnection>>,
    /// `None` when nothing is kept.
    permits: Option<Arc<Semaphore>>,
}

enum Held {
    Kept(PgConnection, OwnedSemaphorePermit),
    Pooled(PoolConnection<Postgres>),
    Gone,
}

/// One read's connection; kept on drop unless an exchange on it did not finish.
pub struct ReadConnection {
    held: Held,
    home: Arc<ReadConnections>,
    finished: bool,
}

impl ReadConnections {
    pub fn new(pool: PgPool, keep: usize) -> Arc<Self> {
        Arc::new(Self {
            pool,
            idle: Mutex::new(Vec::with_capacity(keep)),
            permits: (keep > 0).then(|| Arc::new(Semaphore::new(keep))),
        })
    }

    /// An idle kept connection, or one detached from the pool; waits while `keep` are in use.
    ///
    /// # Errors
    /// When the pool cannot give a connection.
    pub async fn take(self: &Arc<Self>) -> Result<ReadConnection, sqlx::Error> {
        let held = match &self.permits {
            None => Held::Pooled(self.pool.acquire().await?),
            Some(permits) => {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| sqlx::Error::PoolClosed)?;
                let kept = self.lock_idle().pop();
                let conn = match kept {
                    Some(conn) => conn,
                    None => self.pool.acquire().await?.detach(),
                };
                Held::Kept(conn, permit)
            }
        };
        Ok(ReadConnection {
            held,
            home: self.clone(),
            finished: true,
        })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every idle connection: once one is found cut (a server restart, say), the others
    /// opened to the same server probably are too.
    pub fn discard_idle(&self) {
        self.lock_idle().clear();
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadConnection {
    /// The connection for one exchange; until [`ReadConnection::finished`] is called the
    /// connection counts as mid-exchange and is closed, not kept, when dropped.
    ///
    /// # Errors
    /// Never while the `ReadConnection` lives (it has a connection until dropped).
    pub fn exchange(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.finished = false;
        match &mut self.held {
            Held::Kept(conn, _) => Ok(conn),
            Held::Pooled(conn) => Ok(&mut **conn),
            Held::Gone => Err(sqlx::Error::PoolClosed),
        }
    }

    /// The exchange read its last message: the connection is ready for the next one.
    pub fn finished(&mut self) {
        self.finished = true;
    }

    /// Marks the exchange that ended with `result` finished if it read the server's whole
    /// answer: it did when it succeeded or the server reported an error (sqlx reads the rest of
    /// that answer before the connection's next exchange); an I/O or protocol error may have
    /// left it mid-way.
    pub(crate) fn settle<T>(&mut self, result: &Result<T, sqlx::Error>) {
        if matches!(result, Ok(_) | Err(sqlx::Error::Database(_))) {
            self.finished();
        }
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.held, Held::Gone) {
            Held::Kept(conn, _permit) if self.finished && !self.home.pool.is_closed() => {
                self.home.lock_idle().push(conn);
            }
            // The pool pings it before reuse; one left mid-exchange it closes.
            Held::Pooled(mut conn) if !self.finished => conn.close_on_drop(),
            Held::Kept(..) | Held::Pooled(_) | Held::Gone => {}
        }
    }
}
