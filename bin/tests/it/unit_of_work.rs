//! The tenant unit of work's two PostgreSQL paths (reads as one batch until the first write, then
//! a transaction) and group-committed batches: what a unit of work sees, what it leaves behind.

use std::time::Duration;

use otto_db::entities::lead;
use otto_db::group_commit::{GroupCommit, GroupCommitSettings};
use otto_db::read_connections::{ReadConnection, ReadConnections};
use otto_db::unit_of_work::BoxError;
use otto_db::{
    CommitSink, Database, DbSettings, TenantScope, TenantTxn, TxnConn, connect, migrate,
};
use otto_domain::jobs::NewJob;
use otto_domain::{TenantId, TraceId};
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::helpers::{TestDatabase, TestResult};
use crate::storage::new_lead;

on_both_databases!(a_unit_of_work_reads_its_own_writes_and_leaves_nothing_unless_committed);

/// Tenant reads keep two connections of their own, as `otto-api` does.
async fn opened(db: &TestDatabase) -> Result<Database, sea_orm::DbErr> {
    let conn = connect(&DbSettings::new(db.url())).await?;
    migrate(&conn).await?;
    Ok(Database::new(conn, 2))
}

async fn leads_of(conn: &DatabaseConnection, tenant: &TenantId) -> Result<usize, sea_orm::DbErr> {
    Ok(TenantScope::new(conn, tenant.clone())
        .select::<lead::Entity>()
        .all(conn)
        .await?
        .len())
}

async fn a_unit_of_work_reads_its_own_writes_and_leaves_nothing_unless_committed(
    db: TestDatabase,
) -> TestResult {
    let conn = opened(&db).await?;
    let tenant = TenantId::try_from("org_uow")?;

    let utx = TenantTxn::begin(&conn, &tenant, TraceId::generate()).await?;
    let written = utx.scope().insert(new_lead("Dropped", "")).await?;
    let seen = utx
        .scope()
        .find_by_id::<lead::Entity, _>(written.id)
        .await?;
    assert_eq!(
        seen.map(|l| l.id),
        Some(written.id),
        "reads see the unit's own writes"
    );
    utx.rollback().await?;
    assert_eq!(
        leads_of(&conn, &tenant).await?,
        0,
        "a rolled-back unit leaves nothing"
    );

    let utx = TenantTxn::begin(&conn, &tenant, TraceId::generate()).await?;
    assert!(
        utx.scope()
            .select::<lead::Entity>()
            .all(utx.conn())
            .await?
            .is_empty()
    );
    utx.scope().insert(new_lead("Kept", "")).await?;
    assert_eq!(
        utx.scope()
            .select::<lead::Entity>()
            .all(utx.conn())
            .await?
            .len(),
        1
    );
    utx.commit(&NoSink).await?;
    assert_eq!(leads_of(&conn, &tenant).await?, 1);
    conn.close().await?;
    Ok(())
}

fn one_lane(window_ms: u64) -> GroupCommitSettings {
    GroupCommitSettings {
        window: Duration::from_millis(window_ms),
        max_members: 10,
        lanes: 1,
    }
}

/// Two tenants' deliveries in one batch transaction: each statement runs under its own tenant's
/// context, so an unfiltered read of one sees nothing of the other's uncommitted rows; both
/// commit together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_members_act_for_their_own_tenant_and_commit_together() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let conn = opened(&db).await?;
    let group = GroupCommit::new(conn.get_postgres_connection_pool().clone(), one_lane(200));
    let (tenant_a, tenant_b) = (TenantId::try_from("org_ba")?, TenantId::try_from("org_bb")?);
    let member_a = TenantTxn::join_batch(&group, &tenant_a, None, TraceId::generate())?;
    let member_b = TenantTxn::join_batch(&group, &tenant_b, None, TraceId::generate())?;
    let a = async {
        member_a.scope().insert(new_lead("A", "")).await?;
        member_a.commit(&NoSink).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let b = async {
        // Runs after A's insert, in the same transaction: the row exists but is not B's.
        let everything = lead::Entity::find().all(member_b.conn()).await?;
        member_b.scope().insert(new_lead("B", "")).await?;
        member_b.commit(&NoSink).await?;
        Ok::<_, Box<dyn std::error::Error>>(everything.len())
    };
    let (a, b) = tokio::join!(a, b);
    a?;
    assert_eq!(b?, 0, "B's unfiltered read saw none of A's rows");
    assert_eq!(group.committed(), (1, 2), "one commit carried both");
    assert_eq!(
        (
            leads_of(&conn, &tenant_a).await?,
            leads_of(&conn, &tenant_b).await?
        ),
        (1, 1)
    );
    conn.close().await?;
    Ok(())
}

/// A member abandoned after it wrote (its request cancelled) rolls the whole batch back, and the
/// other member hears so instead of "committed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_member_rolls_its_batch_back() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let conn = opened(&db).await?;
    let group = GroupCommit::new(conn.get_postgres_connection_pool().clone(), one_lane(200));
    let tenant = TenantId::try_from("org_abandon")?;
    let abandoned = TenantTxn::join_batch(&group, &tenant, None, TraceId::generate())?;
    let other = TenantTxn::join_batch(&group, &tenant, None, TraceId::generate())?;
    abandoned.scope().insert(new_lead("abandoned", "")).await?;
    drop(abandoned);
    other.scope().insert(new_lead("other", "")).await?;
    assert!(other.commit(&NoSink).await.is_err());
    assert_eq!(group.committed(), (0, 0));
    assert_eq!(
        leads_of(&conn, &tenant).await?,
        0,
        "nothing of the batch was kept"
    );
    conn.close().await?;
    Ok(())
}

/// A commit sink for units of work that enqueue nothing (the tests here use no runtime).
struct NoSink;

#[async_trait::async_trait]
impl CommitSink for NoSink {
    async fn stage(&self, _: &TxnConn, jobs: Vec<NewJob>) -> Result<Vec<NewJob>, BoxError> {
        Ok(jobs)
    }
    fn notify_outbox(&self) {}
    async fn release(&self, _: Vec<NewJob>) {}
}

/// A tenant read's connection comes back for the next read (no ping, no new connection) only
/// when its exchange finished; one left mid-exchange (a cancelled request) is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_connection_is_kept_only_after_a_finished_exchange() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let conn = opened(&db).await?;
    let reads = ReadConnections::new(conn.get_postgres_connection_pool().clone(), 1);

    let mut first = reads.take().await?;
    let kept_pid = backend_pid(&mut first).await?;
    first.finished();
    drop(first);
    let mut again = reads.take().await?;
    assert_eq!(backend_pid(&mut again).await?, kept_pid, "kept and reused");
    again.finished();
    drop(again);

    let mut cancelled = reads.take().await?;
    assert!(cancelled.exchange().is_ok());
    // Dropped before the exchange finished, as a cancelled request drops it.
    drop(cancelled);
    let mut fresh = reads.take().await?;
    assert_ne!(backend_pid(&mut fresh).await?, kept_pid, "closed, not kept");
    fresh.finished();
    drop(fresh);
    conn.close().await?;
    Ok(())
}

async fn backend_pid(read: &mut ReadConnection) -> Result<i32, Box<dyn std::error::Error>> {
    let conn = read.exchange()?;
    Ok(sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await?)
}

/// A unit of work holds a kept connection only for the length of one read, so with a single
/// kept connection two open units of work and a system read through `Database` all proceed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_hold_a_kept_connection_between_statements() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let conn = Database::new(opened(&db).await?.connection().clone(), 1);
    let tenant = TenantId::try_from("org_kept")?;
    let reads = async {
        let first = TenantTxn::begin(&conn, &tenant, TraceId::generate()).await?;
        lead::Entity::find().all(first.conn()).await?;
        let second = TenantTxn::begin(&conn, &tenant, TraceId::generate()).await?;
        lead::Entity::find().all(second.conn()).await?;
        lead::Entity::find().all(&conn).await?;
        lead::Entity::find().all(first.conn()).await?;
        first.finish_read().await?;
        second.finish_read().await?;
        Ok::<_, sea_orm::DbErr>(())
    };
    tokio::time::timeout(Duration::from_secs(10), reads).await??;
    conn.close().await?;
    Ok(())
}
