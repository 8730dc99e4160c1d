use otto_db::entities::lead;
use otto_db::{Database, DbSettings, TenantScope, TenantTxn, applied_migrations, connect, migrate};
use otto_domain::TenantId;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::helpers::{TestDatabase, TestResult};

on_both_databases!(
    migrations_are_idempotent,
    tenant_scope_hides_other_tenants_rows
);

async fn migrations_are_idempotent(db: TestDatabase) -> TestResult {
    let conn = connect(&DbSettings::new(db.url())).await?;
    migrate(&conn).await?;
    let applied = applied_migrations(&conn).await?;
    assert!(applied >= 1);
    migrate(&conn).await?;
    assert_eq!(
        applied_migrations(&conn).await?,
        applied,
        "a second run must apply nothing"
    );
    conn.close().await?;
    Ok(())
}

/// A lead without a phone (so a tenant may hold several); the scope stamps `company`.
pub(crate) fn new_lead(name: &str, company: &str) -> lead::ActiveModel {
    let now = chrono::Utc::now();
    lead::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(company.to_owned()),
        name: Set(Some(name.to_owned())),
        phone: Set(None),
        email: Set(None),
        source: Set(Some("test".to_owned())),
        status: Set("new".to_owned()),
        assigned_user_id: Set(None),
        sms_opted_out: Set(false),
        version: Set(1),
        address: Set(None),
        property: Set(None),
        property_status: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

async fn tenant_scope_hides_other_tenants_rows(db: TestDatabase) -> TestResult {
    let conn = connect(&DbSettings::new(db.url())).await?;
    migrate(&conn).await?;
    let tenant_a = TenantScope::new(&conn, TenantId::try_from("org_a")?);
    let tenant_b = TenantScope::new(&conn, TenantId::try_from("org_b")?);

    let row = tenant_a.insert(new_lead("Alice", "ignored")).await?;
    assert_eq!(row.company_id, "org_a", "the scope stamps its own tenant");
    // B tries to plant a row in A's tenant: it lands in B's.
    let planted = tenant_b.insert(new_lead("Mallory", "org_a")).await?;
    assert_eq!(planted.company_id, "org_b");

    assert!(
        tenant_b
            .find_by_id::<lead::Entity, _>(row.id)
            .await?
            .is_none()
    );
    let visible_to_b = tenant_b.select::<lead::Entity>().all(&conn).await?;
    assert_eq!(
        visible_to_b.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![planted.id]
    );

    let changes = lead::ActiveModel {
        name: Set(Some("Hacked".to_owned())),
        company_id: Set("org_b".to_owned()),
        ..Default::default()
    };
    assert!(
        !tenant_b
            .update_by_id::<lead::Entity, _, _>(row.id, changes)
            .await?
    );
    let deleted = tenant_b
        .delete_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(row.id))
        .exec(&conn)
        .await?;
    assert_eq!(deleted.rows_affected, 0);

    let unchanged = lead::Entity::find_by_id(row.id)
        .one(&conn)
        .await?
        .ok_or("lead vanished")?;
    assert_eq!(unchanged.name.as_deref(), Some("Alice"));
    assert_eq!(unchanged.company_id, "org_a");

    // The owner can update, and cannot move the row to another tenant.
    let changes = lead::ActiveModel {
        name: Set(Some("Alicia".to_owned())),
        company_id: Set("org_b".to_owned()),
        ..Default::default()
    };
    assert!(
        tenant_a
            .update_by_id::<lead::Entity, _, _>(row.id, changes)
            .await?
    );
    let updated = tenant_a
        .find_by_id::<lead::Entity, _>(row.id)
        .await?
        .ok_or("lead vanished")?;
    assert_eq!(
        (updated.name.as_deref(), updated.company_id.as_str()),
        (Some("Alicia"), "org_a")
    );
    conn.close().await?;
    Ok(())
}

/// Defence in depth: under tenant B's transaction even queries that forgot the tenant filter
/// see, change and create nothing of tenant A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_confines_unfiltered_queries() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let conn = connect(&DbSettings::new(db.url())).await?;
    migrate(&conn).await?;
    let (org_a, org_b) = (
        TenantId::try_from("org_rls_a")?,
        TenantId::try_from("org_rls_b")?,
    );
    let secret = TenantScope::new(&conn, org_a.clone())
        .insert(new_lead("A's secret", ""))
        .await?;
    TenantScope::new(&conn, org_b.clone())
        .insert(new_lead("B's own", ""))
        .await?;

    // Reads keep one connection of their own, so every read below shares it.
    let kept = Database::new(conn.clone(), 1);
    let utx = TenantTxn::begin(&kept, &org_b, otto_domain::TraceId::generate()).await?;
    let txn = utx.conn();
    let everything = lead::Entity::find().all(txn).await?;
    assert_eq!(
        everything
            .iter()
            .map(|l| l.company_id.as_str())
            .collect::<Vec<_>>(),
        ["org_rls_b"]
    );
    let touched = lead::Entity::update_many()
        .col_expr(
            lead::Column::Name,
            sea_orm::sea_query::Expr::value("overwritten"),
        )
        .exec(txn)
        .await?;
    assert_eq!(touched.rows_affected, 1, "only B's row can be updated");
    let removed = lead::Entity::delete_many()
        .filter(lead::Column::Id.eq(secret.id))
        .exec(txn)
        .await?;
    assert_eq!(removed.rows_affected, 0);
    // Inside the transaction the first write opened, an unfiltered read is still confined.
    assert!(
        lead::Entity::find_by_id(secret.id)
            .one(txn)
            .await?
            .is_none()
    );
    assert_eq!(lead::Entity::find().all(txn).await?.len(), 1);
    let planted = lead::Entity::insert(new_lead("planted", "org_rls_a"))
        .exec(txn)
        .await;
    assert!(
        planted.is_err(),
        "a row for another tenant is refused by the policy"
    );
    utx.rollback().await?;

    // A read-only unit of work (one batch per read, no explicit transaction) is confined too,
    // and cannot write even through a statement that looks like a read.
    let reader = TenantTxn::begin(&kept, &org_b, otto_domain::TraceId::generate()).await?;
    assert!(
        lead::Entity::find_by_id(secret.id)
            .one(reader.conn())
            .await?
            .is_none()
    );
    let counted = reader
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*)::int8 AS n, current_user::text AS who FROM leads",
        ))
        .await?
        .ok_or("no count")?;
    assert_eq!(counted.try_get::<i64>("", "n")?, 1);
    assert_eq!(counted.try_get::<String>("", "who")?, "otto_app");
    reader.finish_read().await?;

    // The one kept connection, used by B, then A, then B, carries no tenant from one read to
    // the next.
    for (tenant, own) in [(&org_a, "A's secret"), (&org_b, "B's own")] {
        let reader = TenantTxn::begin(&kept, tenant, otto_domain::TraceId::generate()).await?;
        let names: Vec<_> = lead::Entity::find()
            .all(reader.conn())
            .await?
            .into_iter()
            .filter_map(|l| l.name)
            .collect();
        assert_eq!(names, [own]);
        reader.finish_read().await?;
    }

    let unchanged = lead::Entity::find_by_id(secret.id)
        .one(&conn)
        .await?
        .ok_or("A's lead vanished")?;
    assert_eq!(unchanged.name.as_deref(), Some("A's secret"));
    conn.close().await?;
    Ok(())
}

/// Every tenant-owned entity's table is under a row-level-security policy, and nothing else is:
/// a new tenant table without a policy (or a policy on a system table) fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_covers_exactly_the_tenant_owned_tables() -> TestResult {
    use sea_orm::ConnectionTrait;
    let db = TestDatabase::postgres().await?;
    let conn = connect(&DbSettings::new(db.url())).await?;
    migrate(&conn).await?;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT c.relname AS tbl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relrowsecurity \
               AND EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname) \
             ORDER BY c.relname",
        ))
        .await?;
    let protected: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "tbl"))
        .collect::<Result<_, _>>()?;
    assert_eq!(protected, otto_db::entities::tenant_owned_tables());
    conn.close().await?;
    Ok(())
}
