//! The connection a unit of work runs its statements on.
//!
//! On PostgreSQL a tenant unit of work does not open its transaction up front. While it only
//! reads, each plain `SELECT` goes out as one simple-protocol batch,
//! `SELECT set_config('app.tenant_id', ..), set_config('role', 'otto_app', ..),
//! set_config('transaction_read_only', 'on', ..); <the select, values inlined>`, which PostgreSQL
//! runs as one implicit transaction: the row-level security context and the query travel
//! together, so a list or detail read costs one round trip instead of four (BEGIN, context,
//! query, COMMIT). Under READ COMMITTED every statement takes its own snapshot anyway, so reading
//! outside an explicit transaction sees exactly what reading inside one would.
//!
//! The first statement that is not a plain read (a write, a locking read, a statement the
//! literal writer cannot inline) opens the real transaction, `BEGIN; <context>` in one round
//! trip, and everything after it runs prepared inside that transaction. A batch refused as a
//! write by the read-only guard (SQLSTATE 25006) is run again that way, so a misjudged
//! statement costs a round trip, never a wrong result.
//!
//! SQLite, and system work that acts for no tenant, use an ordinary transaction.

use std::sync::Arc;

use futures_util::TryStreamExt;
use otto_domain::TenantId;
use otto_migration::m20261122_000002_row_level_security::APP_ROLE;
use sea_orm::sqlx::postgres::{PgConnection, PgRow};
use sea_orm::sqlx::{self, AssertSqlSafe, Either, Postgres, SqlSafeStr, Transaction};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement, Values,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

use crate::group_commit::BatchMember;
use crate::pg_literal;
use crate::read_connections::{ReadConnection, ReadConnections};

/// The statements of one unit of work: an ordinary transaction, or a PostgreSQL tenant session
/// that reads in one round trip until it first writes.
pub enum TxnConn {
    Transaction(DatabaseTransaction),
    Tenant(PgTenantSession),
    /// A webhook delivery's savepoint in a group-committed batch (see `group_commit`).
    Batched(BatchMember),
}

impl TxnConn {
    /// # Errors
    /// On database failure.
    pub async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Transaction(txn) => txn.commit().await,
            Self::Tenant(session) => session.commit().await,
            Self::Batched(member) => member.commit().await,
        }
    }

    /// # Errors
    /// On database failure.
    pub async fn rollback(self) -> Result<(), DbErr> {
        match self {
            Self::Transaction(txn) => txn.rollback().await,
            Self::Tenant(session) => session.rollback().await,
            Self::Batched(member) => member.rollback().await,
        }
    }

    /// The rows of `stmt` on a PostgreSQL tenant path (a batch or the tenant's transaction).
    async fn pg_rows(&self, stmt: Statement) -> Result<Vec<PgRow>, DbErr> {
        match self {
            Self::Transaction(_) => Err(DbErr::Custom("not a PostgreSQL tenant path".into())),
            Self::Tenant(session) => session.rows(stmt).await,
            Self::Batched(member) => fetch_on(member.txn().await?.conn()?, &stmt).await,
        }
    }
}

enum State {
    /// Reading: each plain read is its own batch, on a kept connection held for that batch only
    /// (so a unit of work never holds one while it asks for another).
    Reading,
    /// Writing: the explicit transaction, with the tenant context set.
    Writing(Transaction<'static, Postgres>),
    Ended,
}

pub struct PgTenantSession {
    /// Where reads run; its pool opens the transaction of the first write.
    reads: Arc<ReadConnections>,
    /// `SELECT set_config(..), set_config(..)` for this tenant, literals quoted.
    context: String,
    state: Mutex<State>,
}

impl PgTenantSession {
    pub(crate) fn new(reads: Arc<ReadConnections>, tenant: &TenantId) -> Result<Self, DbErr> {
        Ok(Self {
            reads,
            context: tenant_context(tenant)?,
            state: Mutex::new(State::Reading),
        })
    }

    async fn commit(self) -> Result<(), DbErr> {
        match self.state.into_inner() {
            State::Writing(txn) => txn.commit().await.map_err(exec_err),
            State::Reading | State::Ended => Ok(()),
        }
    }

    async fn rollback(self) -> Result<(), DbErr> {
        match self.state.into_inner() {
            State::Writing(txn) => txn.rollback().await.map_err(exec_err),
            State::Reading | State::Ended => Ok(()),
        }
    }

    /// Rows of `stmt`: one batch while reading, else prepared inside the transaction.
    async fn rows(&self, stmt: Statement) -> Result<Vec<PgRow>, DbErr> {
        let mut state = self.state.lock().await;
        if let State::Reading = &*state
            && let Some(sql) = plain_read(&stmt)
        {
            match self.read_batch(&sql).await {
                Err(err) if is_read_only_violation(&err) => {}
                done => return done.map_err(query_err),
            }
        }
        let txn = self.writing(&mut state).await?;
        fetch_on(txn, &stmt).await
    }

    /// One round trip: the tenant context, read-only, then the query, as one implicit
    /// transaction. A connection found broken is replaced once (the batch has no effect), and
    /// the idle kept ones, probably cut too, are closed.
    async fn read_batch(&self, sql: &str) -> Result<Vec<PgRow>, sqlx::Error> {
        let batch = format!(
            "{}, set_config('transaction_read_only', 'on', true); {sql}",
            self.context
        );
        // A connection dropped mid-exchange is closed, not kept.
        let result = run_batch(&mut self.reads.take().await?, &batch).await;
        if let Err(sqlx::Error::Io(_)) = result {
            self.reads.discard_idle();
            return run_batch(&mut self.reads.take().await?, &batch).await;
        }
        result
    }

    /// Opens the transaction (once): `BEGIN` and the tenant context in one round trip. A pooled
    /// connection found broken is replaced once (nothing had run on it).
    async fn writing<'s>(
        &self,
        state: &'s mut State,
    ) -> Result<&'s mut Transaction<'static, Postgres>, DbErr> {
        if let State::Reading = state {
            *state = State::Ended;
            for attempt in 0..2 {
                let conn = self.reads.pool().acquire().await.map_err(conn_err)?;
                let begin = AssertSqlSafe(format!("BEGIN; {}", self.context)).into_sql_str();
                match Transaction::begin(conn, Some(begin)).await {
                    Ok(txn) => {
                        *state = State::Writing(txn);
                        break;
                    }
                    Err(sqlx::Error::Io(_)) if attempt == 0 => {}
                    Err(err) => return Err(conn_err(err)),
                }
            }
        }
        match state {
            State::Writing(txn) => Ok(txn),
            State::Reading | State::Ended => {
                Err(DbErr::Custom("unit of work already ended".into()))
            }
        }
    }

    async fn execute_statement(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut state = self.state.lock().await;
        execute_on(self.writing(&mut state).await?, &stmt).await
    }

    async fn execute_sql(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut state = self.state.lock().await;
        execute_sql_on(self.writing(&mut state).await?, sql).await
    }
}

/// `SELECT set_config('app.tenant_id', ..), set_config('role', ..)`, local to the transaction.
pub(crate) fn tenant_context(tenant: &TenantId) -> Result<String, DbErr> {
    // A TenantId is validated when built ([A-Za-z0-9_.:-]); quoting makes it safe anyway.
    let tenant = pg_literal::quote_text(tenant.as_str())
        .ok_or_else(|| DbErr::Custom("tenant id cannot be quoted".into()))?;
    let role = pg_literal::quote_text(APP_ROLE)
        .ok_or_else(|| DbErr::Custom("role cannot be quoted".into()))?;
    Ok(format!(
        "SELECT set_config('app.tenant_id', {tenant}, true), set_config('role', {role}, true)"
    ))
}

/// The rows of the batch's last statement (the first only sets the context).
async fn run_batch(kept: &mut ReadConnection, batch: &str) -> Result<Vec<PgRow>, sqlx::Error> {
    let rows = last_statement_rows(kept.exchange()?, batch).await;
    kept.settle(&rows);
    rows
}

async fn last_statement_rows(
    conn: &mut PgConnection,
    batch: &str,
) -> Result<Vec<PgRow>, sqlx::Error> {
    let mut results = sqlx::raw_sql(AssertSqlSafe(batch.to_owned())).fetch_many(conn);
    let mut past_context = false;
    let mut rows = Vec::new();
    while let Some(item) = results.try_next().await? {
        match item {
            Either::Left(_) => past_context = true,
            Either::Right(row) if past_context => rows.push(row),
            Either::Right(_) => {}
        }
    }
    Ok(rows)
}

/// The statement, values inlined, if it only reads: a `SELECT` without a locking clause.
fn plain_read(stmt: &Statement) -> Option<String> {
    let sql = stmt.sql.trim_start();
    let is_select = sql
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("SELECT "));
    if !is_select || sql.contains(" FOR ") {
        return None;
    }
    pg_literal::inline(stmt)
}

fn is_read_only_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("25006"))
}

/// The statement runners both PostgreSQL paths share, on the unit of work's connection.
async fn fetch_on(conn: &mut PgConnection, stmt: &Statement) -> Result<Vec<PgRow>, DbErr> {
    sqlx_query(stmt).fetch_all(conn).await.map_err(query_err)
}

async fn execute_on(conn: &mut PgConnection, stmt: &Statement) -> Result<ExecResult, DbErr> {
    sqlx_query(stmt)
        .execute(conn)
        .await
        .map(ExecResult::from)
        .map_err(exec_err)
}

async fn execute_sql_on(conn: &mut PgConnection, sql: &str) -> Result<ExecResult, DbErr> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(ExecResult::from)
        .map_err(exec_err)
}

pub(crate) fn sqlx_query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

pub(crate) fn query_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

fn exec_err(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
}

pub(crate) fn conn_err(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
        }
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for TxnConn {
    fn get_database_backend(&self) -> DatabaseBackend {
        match self {
            Self::Transaction(txn) => txn.get_database_backend(),
            Self::Tenant(_) | Self::Batched(_) => DatabaseBackend::Postgres,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Self::Transaction(txn) => txn.execute_raw(stmt).await,
            Self::Tenant(session) => session.execute_statement(stmt).await,
            Self::Batched(member) => execute_on(member.txn().await?.conn()?, &stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Transaction(txn) => txn.execute_unprepared(sql).await,
            Self::Tenant(session) => session.execute_sql(sql).await,
            Self::Batched(member) => execute_sql_on(member.txn().await?.conn()?, sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Transaction(txn) => txn.query_one_raw(stmt).await,
            _ => Ok(self
                .pg_rows(stmt)
                .await?
                .into_iter()
                .next()
                .map(QueryResult::from)),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Transaction(txn) => txn.query_all_raw(stmt).await,
            _ => Ok(self
                .pg_rows(stmt)
                .await?
                .into_iter()
                .map(QueryResult::from)
                .collect()),
        }
    }
}
