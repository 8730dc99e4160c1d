//! Group commit for webhook deliveries (PostgreSQL). Concurrent deliveries join a batch: one
//! transaction on one connection, where each delivery runs inside a savepoint of its own, acting
//! for its own tenant (`SAVEPOINT; set_config(..)` in one round trip), one delivery at a time.
//! The batch closes after a short window or once it is full, and commits once: one WAL flush
//! for many deliveries. A delivery that fails rolls back to its savepoint, which undoes only its
//! own writes and releases only its own idempotency key; the others commit. Each delivery is
//! answered only after the shared commit succeeded, so a crash before it loses nothing a
//! provider was told was processed: the provider retries.
//!
//! A member dropped without finishing (its request cancelled mid-statement) poisons the batch:
//! it rolls back whole and every member answers an error, which the providers retry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnection, PgPool};
use sea_orm::sqlx::{self, AssertSqlSafe, Postgres, Transaction};
use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{Mutex, MutexGuard, Notify, OwnedMutexGuard, watch};

/// How deliveries are gathered (`WEBHOOK_BATCH_WINDOW_MS`, `WEBHOOK_BATCH_MAX`).
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// How long a batch stays open for more deliveries after it began.
    pub window: Duration,
    /// Most deliveries in one batch (each is a subtransaction; PostgreSQL caches 64 per backend).
    pub max_members: usize,
    /// Lanes: each runs one batch at a time (and commits the previous one meanwhile), so holds
    /// at most two pooled connections. A tenant's deliveries about one caller (or about no
    /// caller in particular) always take the same lane.
    pub lanes: usize,
}

pub struct GroupCommit {
    /// Batches committed, and the deliveries they carried (see [`GroupCommit::committed`]).
    commits: AtomicUsize,
    committed_members: AtomicUsize,
    pool: PgPool,
    settings: GroupCommitSettings,
    lanes: Vec<Lane>,
}

/// Deliveries that may write the same rows are never in two open transactions at once: two
/// batches holding each other's rows (the same caller's lead, say) would deadlock, and
/// PostgreSQL would find it only after `deadlock_timeout`. So a tenant's deliveries about one
/// caller take one lane (the rows a telephony delivery writes, its caller's lead and its call,
/// belong to that caller), those about no one caller the tenant's own lane, and a lane runs its
/// batches' deliveries one batch after the other; while one commits, the next already runs.
/// Different callers' deliveries run in parallel lanes. A delivery of the tenant's lane that
/// writes a caller's rows (an analysis of their call) can still wait on a caller's lane, and
/// two such waits crossing deadlock: PostgreSQL then fails one statement after
/// `deadlock_timeout`, that delivery alone rolls back and answers an error, and its provider
/// retries it.
struct Lane {
    open: StdMutex<Option<Arc<Batch>>>,
    turn: Arc<Mutex<()>>,
}

type Outcome = Option<Result<(), String>>;

enum BatchTxn {
    Opening,
    Open(Transaction<'static, Postgres>),
    Failed(String),
    Ended,
}

pub(crate) struct Batch {
    txn: Arc<Mutex<BatchTxn>>,
    /// Set once the transaction is open (or could not be).
    ready: watch::Sender<bool>,
    joined: AtomicUsize,
    /// Members that joined and have not finished.
    pending: watch::Sender<usize>,
    poisoned: AtomicBool,
    full: Notify,
    outcome: watch::Sender<Outcome>,
}

impl GroupCommit {
    pub fn new(pool: PgPool, settings: GroupCommitSettings) -> Arc<Self> {
        Arc::new(Self {
            commits: AtomicUsize::new(0),
            committed_members: AtomicUsize::new(0),
            pool,
            lanes: (0..settings.lanes.max(1))
                .map(|_| Lane {
                    open: StdMutex::new(None),
                    turn: Arc::new(Mutex::new(())),
                })
                .collect(),
            settings,
        })
    }

    /// Batches committed so far, and how many deliveries joined them.
    pub fn committed(&self) -> (usize, usize) {
        (
            self.commits.load(Ordering::SeqCst),
            self.committed_members.load(Ordering::SeqCst),
        )
    }

    /// Joins the open batch of the lane of `tenant`'s deliveries about `caller`, or opens one
    /// (and the task that commits it); returns it with this member's number in it.
    pub(crate) fn join(
        self: &Arc<Self>,
        tenant: &str,
        caller: Option<&str>,
    ) -> (Arc<Batch>, usize) {
        let lane = lane_of(self.lanes.len(), tenant, caller);
        let mut open = self.lanes[lane]
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let batch = match open.as_ref() {
            Some(batch) => batch.clone(),
            None => {
                let batch = Arc::new(Batch::new());
                tokio::spawn(self.clone().run(lane, batch.clone()));
                *open = Some(batch.clone());
                batch
            }
        };
        let members = batch.joined.fetch_add(1, Ordering::SeqCst) + 1;
        batch.pending.send_modify(|n| *n += 1);
        if members >= self.settings.max_members {
            *open = None;
            batch.full.notify_one();
        }
        // The member's number in the batch names its savepoint.
        (batch, members)
    }

    /// A batch's life: wait for its lane's turn, begin, stay open for the window (or until
    /// full), wait for every member to finish, commit (or roll back if poisoned), announce.
    async fn run(self: Arc<Self>, lane: usize, batch: Arc<Batch>) {
        let turn = self.lanes[lane].turn.clone().lock_owned().await;
        let begun = self.begin(&batch).await;
        batch.ready.send_replace(true);
        tokio::select! {
            () = tokio::time::sleep(self.settings.window) => {}
            () = batch.full.notified() => {}
        }
        self.close_to_joiners(lane, &batch);
        let mut pending = batch.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
        // The next batch of the lane may run while this one commits: a committing transaction
        // waits for no lock, so the next can wait on this one's rows but never the reverse.
        drop(turn);
        let outcome = match begun {
            Ok(()) => batch.finish().await,
            Err(err) => Err(err),
        };
        metrics::histogram!("webhook_group_commit_size")
            .record(batch.joined.load(Ordering::SeqCst) as f64);
        if outcome.is_err() {
            metrics::counter!("webhook_group_commit_failures_total").increment(1);
        } else {
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.committed_members
                .fetch_add(batch.joined.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        batch.outcome.send_replace(Some(outcome));
    }

    async fn begin(&self, batch: &Batch) -> Result<(), String> {
        let opened = async {
            let conn = self.pool.acquire().await?;
            Transaction::begin(conn, None).await
        }
        .await;
        let mut txn = batch.txn.lock().await;
        match opened {
            Ok(open) => {
                *txn = BatchTxn::Open(open);
                Ok(())
            }
            Err(err) => {
                *txn = BatchTxn::Failed(err.to_string());
                Err(err.to_string())
            }
        }
    }

    fn close_to_joiners(&self, lane: usize, batch: &Arc<Batch>) {
        let mut open = self.lanes[lane]
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, batch)) {
            *open = None;
        }
    }
}

impl Batch {
    fn new() -> Self {
        Self {
            txn: Arc::new(Mutex::new(BatchTxn::Opening)),
            ready: watch::Sender::new(false),
            joined: AtomicUsize::new(0),
            pending: watch::Sender::new(0),
            poisoned: AtomicBool::new(false),
            full: Notify::new(),
            outcome: watch::Sender::new(None),
        }
    }

    async fn finish(&self) -> Result<(), String> {
        let mut txn = self.txn.lock().await;
        match std::mem::replace(&mut *txn, BatchTxn::Ended) {
            BatchTxn::Open(open) if self.poisoned.load(Ordering::SeqCst) => {
                let _ = open.rollback().await;
                Err("a delivery of the batch was abandoned; the batch was rolled back".into())
            }
            BatchTxn::Open(open) => open.commit().await.map_err(|e| e.to_string()),
            BatchTxn::Failed(err) => Err(err),
            BatchTxn::Opening | BatchTxn::Ended => Ok(()),
        }
    }
}

/// One delivery's share of a batch: exclusive use of the batch's transaction from its first
/// statement until it finishes.
pub struct BatchMember {
    batch: Arc<Batch>,
    /// `SAVEPOINT m<n>; SELECT set_config(..)` for this delivery's tenant.
    enter: String,
    savepoint: String,
    slot: Mutex<Option<OwnedMutexGuard<BatchTxn>>>,
    finished: AtomicBool,
}

impl BatchMember {
    pub(crate) fn new(
        group: &Arc<GroupCommit>,
        tenant: &str,
        caller: Option<&str>,
        tenant_context: &str,
    ) -> Self {
        let (batch, n) = group.join(tenant, caller);
        let savepoint = format!("m{n}");
        Self {
            batch,
            enter: format!("SAVEPOINT {savepoint}; {tenant_context}"),
            savepoint,
            slot: Mutex::new(None),
            finished: AtomicBool::new(false),
        }
    }

    /// The batch's transaction, held by this member until it finishes; the first call enters
    /// this member's savepoint.
    pub(crate) async fn txn(&self) -> Result<MemberTxn<'_>, DbErr> {
        let mut slot = self.slot.lock().await;
        if slot.is_none() {
            if self.finished.load(Ordering::SeqCst) {
                return Err(DbErr::Custom("unit of work already ended".into()));
            }
            let mut ready = self.batch.ready.subscribe();
            let _ = ready.wait_for(|r| *r).await;
            let mut guard = self.batch.txn.clone().lock_owned().await;
            let BatchTxn::Open(txn) = &mut *guard else {
                return Err(unavailable("the batch transaction could not be opened"));
            };
            sqlx::raw_sql(AssertSqlSafe(self.enter.clone()))
                .execute(&mut **txn)
                .await
                .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
            *slot = Some(guard);
        }
        Ok(MemberTxn(slot))
    }

    /// Hands the transaction to the next member and waits for the batch's commit.
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let ran = self.slot.lock().await.take().is_some();
        let mut outcome = self.batch.outcome.subscribe();
        self.finish();
        if !ran {
            return Ok(());
        }
        let done = match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone(),
            Err(_) => None,
        };
        match done {
            Some(Ok(())) => Ok(()),
            Some(Err(err)) => Err(unavailable(&err)),
            None => Err(unavailable("the batch ended without an outcome")),
        }
    }

    /// Undoes this member's writes (and its idempotency key) only.
    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        let guard = self.slot.lock().await.take();
        let result = match guard {
            Some(mut guard) => match &mut *guard {
                BatchTxn::Open(txn) => {
                    let sql = format!("ROLLBACK TO SAVEPOINT {}", self.savepoint);
                    sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&mut **txn)
                        .await
                        .map(drop)
                        .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e))))
                }
                _ => Ok(()),
            },
            None => Ok(()),
        };
        if result.is_err() {
            self.batch.poisoned.store(true, Ordering::SeqCst);
        }
        self.finish();
        result
    }

    fn finish(&self) {
        if !self.finished.swap(true, Ordering::SeqCst) {
            self.batch.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

impl Drop for BatchMember {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) {
            let ran = self
                .slot
                .try_lock()
                .map(|slot| slot.is_some())
                .unwrap_or(true);
            if ran {
                self.batch.poisoned.store(true, Ordering::SeqCst);
            }
            self.finish();
        }
    }
}

/// A member's hold on the batch transaction (see [`BatchMember::txn`]).
pub(crate) struct MemberTxn<'m>(MutexGuard<'m, Option<OwnedMutexGuard<BatchTxn>>>);

impl MemberTxn<'_> {
    pub(crate) fn conn(&mut self) -> Result<&mut PgConnection, DbErr> {
        match self.0.as_deref_mut() {
            Some(BatchTxn::Open(txn)) => Ok(&mut **txn),
            _ => Err(unavailable("the batch transaction is gone")),
        }
    }
}

/// The lane of `tenant`'s deliveries about `caller`, of `lanes`.
fn lane_of(lanes: usize, tenant: &str, caller: Option<&str>) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(tenant, caller), &mut hasher);
    (std::hash::Hasher::finish(&hasher) % lanes.max(1) as u64) as usize
}

fn unavailable(reason: &str) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("group commit: {reason}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::lane_of;

    #[test]
    fn a_callers_deliveries_keep_one_lane_and_callers_spread_over_all() {
        let caller = |n: usize| format!("+1555{n:07}");
        let first: Vec<usize> = (0..100)
            .map(|n| lane_of(8, "org_a", Some(&caller(n))))
            .collect();
        let again: Vec<usize> = (0..100)
            .map(|n| lane_of(8, "org_a", Some(&caller(n))))
            .collect();
        assert_eq!(first, again);
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), 8);
        assert!(first.iter().all(|lane| *lane < 8));
        assert_eq!(lane_of(8, "org_a", None), lane_of(8, "org_a", None));
        assert_eq!(lane_of(1, "org_a", Some(&caller(3))), 0);
    }
}
