//! The tenant unit of work: the only way tenant data is written. [`TenantTxn::begin`] opens a
//! transaction acting for one tenant (PostgreSQL row-level security context set, see
//! `TenantTxn::begin`) and holds its [`TenantScope`]; the work collects its events and jobs;
//! [`TenantTxn::commit`] writes the outbox rows, stages the jobs the queue keeps in the database,
//! commits, wakes the outbox relay and releases the other jobs, in that order. Dropping it
//! without committing rolls everything back: no row, no event, no job.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use otto_domain::jobs::{JobKind, NewJob};
use otto_domain::{EventEnvelope, TenantId, TraceId};
use sea_orm::{DbErr, TransactionTrait};
use serde_json::Value;

use crate::database::Database;
use crate::group_commit::{BatchMember, GroupCommit};
use crate::tenant_conn::{PgTenantSession, TxnConn, tenant_context};
use crate::tenant_scope::TenantScope;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum UnitOfWorkError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("job queue refused a job: {0}")]
    Queue(#[source] BoxError),
    #[error("job payload cannot be serialised: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Where a committed unit of work sends what it collected: the process's job queue and outbox
/// relay (implemented by the runtime's `AppContext`).
#[async_trait]
pub trait CommitSink: Send + Sync {
    /// Before commit: writes into `txn` the jobs this queue keeps in the database, and returns
    /// the jobs to push once the transaction has committed (a job must never run before the
    /// rows it reads are committed).
    ///
    /// # Errors
    /// When the queue refuses a job (the unit of work then rolls back).
    async fn stage(&self, txn: &TxnConn, jobs: Vec<NewJob>) -> Result<Vec<NewJob>, BoxError>;

    /// After commit: wakes the outbox relay.
    fn notify_outbox(&self);

    /// After commit: pushes the jobs `stage` returned. A failure is logged and counted, not
    /// returned: the data is committed and the sweeps enqueue the work again.
    async fn release(&self, jobs: Vec<NewJob>);
}

type AfterCommit = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Collected {
    events: Vec<EventEnvelope>,
    jobs: Vec<NewJob>,
    after_commit: Vec<AfterCommit>,
}

pub struct TenantTxn {
    txn: TxnConn,
    tenant: TenantId,
    trace: TraceId,
    // Interior mutability so a scope borrowed from the unit of work can be held while events are
    // emitted; never locked across an await.
    collected: Mutex<Collected>,
}

impl TenantTxn {
    /// Opens a unit of work acting for `tenant`; its events carry `trace`. On PostgreSQL every
    /// statement runs as the `otto_app` role, which row-level security applies to, with
    /// `app.tenant_id` set: even a query that forgot its tenant filter sees (and can write) only
    /// this tenant's rows. Reads cost one round trip each until the first write opens the
    /// transaction (see `tenant_conn`).
    ///
    /// # Errors
    /// On database failure.
    pub async fn begin(db: &Database, tenant: &TenantId, trace: TraceId) -> Result<Self, DbErr> {
        let txn = match db.reads() {
            Some(reads) => TxnConn::Tenant(PgTenantSession::new(reads.clone(), tenant)?),
            None => TxnConn::Transaction(db.begin().await?),
        };
        Ok(Self {
            txn,
            tenant: tenant.clone(),
            trace,
            collected: Mutex::default(),
        })
    }

    /// Joins `group`'s open batch as one webhook delivery acting for `tenant`, about `caller`
    /// (the phone number whose lead and calls it writes) if it is about one: its statements
    /// run in a savepoint of the batch's transaction, and `commit` returns once the batch has
    /// committed (see `group_commit`).
    ///
    /// # Errors
    /// When the tenant id cannot be written as a literal (it always can once validated).
    pub fn join_batch(
        group: &Arc<GroupCommit>,
        tenant: &TenantId,
        caller: Option<&str>,
        trace: TraceId,
    ) -> Result<Self, DbErr> {
        Ok(Self {
            txn: TxnConn::Batched(BatchMember::new(
                group,
                tenant.as_str(),
                caller,
                &tenant_context(tenant)?,
            )),
            tenant: tenant.clone(),
            trace,
            collected: Mutex::default(),
        })
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn trace(&self) -> &TraceId {
        &self.trace
    }

    /// The transaction, for statements the scope does not build (system tables, upserts).
    pub fn conn(&self) -> &TxnConn {
        &self.txn
    }

    /// Tenant-filtered queries inside this unit of work.
    pub fn scope(&self) -> TenantScope<'_, TxnConn> {
        TenantScope::new(&self.txn, self.tenant.clone())
    }

    /// An event of this tenant and trace (add a lead or user with the envelope's builders).
    pub fn event(&self, name: &str, data: Value) -> EventEnvelope {
        EventEnvelope::new(name, self.tenant.clone(), self.trace.clone(), data)
    }

    /// Records `envelope` in the outbox if and only if the unit of work commits.
    pub fn emit(&self, envelope: EventEnvelope) {
        self.with_collected(|c| c.events.push(envelope));
    }

    /// Enqueues `job` if and only if the unit of work commits.
    ///
    /// # Errors
    /// When the payload cannot be serialised (nothing is enqueued).
    pub fn enqueue<J: JobKind>(&self, job: &J) -> Result<(), serde_json::Error> {
        let job = job.to_job()?;
        self.with_collected(|c| c.jobs.push(job));
        Ok(())
    }

    /// Runs `action` once the unit of work has committed (counters of what it did).
    pub fn after_commit(&self, action: impl FnOnce() + Send + 'static) {
        self.with_collected(|c| c.after_commit.push(Box::new(action)));
    }

    /// Writes the outbox rows, stages the jobs, commits, wakes the relay, releases the jobs and
    /// runs the after-commit actions.
    ///
    /// # Errors
    /// On database failure or a refused job; nothing is committed then.
    pub async fn commit(self, sink: &dyn CommitSink) -> Result<(), UnitOfWorkError> {
        let collected = self
            .collected
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::outbox::record_all(&self.txn, &collected.events).await?;
        let later = if collected.jobs.is_empty() {
            Vec::new()
        } else {
            sink.stage(&self.txn, collected.jobs)
                .await
                .map_err(UnitOfWorkError::Queue)?
        };
        self.txn.commit().await?;
        if !collected.events.is_empty() {
            sink.notify_outbox();
        }
        if !later.is_empty() {
            sink.release(later).await;
        }
        for action in collected.after_commit {
            action();
        }
        Ok(())
    }

    /// Ends a unit of work that only read: commits the transaction if one was opened, sends
    /// nothing.
    ///
    /// # Errors
    /// On database failure.
    pub async fn finish_read(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    /// Discards everything: no row, no event, no job.
    ///
    /// # Errors
    /// On database failure.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }

    fn with_collected<T>(&self, f: impl FnOnce(&mut Collected) -> T) -> T {
        let mut guard = self
            .collected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}
