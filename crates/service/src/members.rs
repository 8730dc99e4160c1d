//! Company and member records: created on first contact (a token, a Clerk webhook) and kept in
//! step with Clerk, who owns membership and roles. A member whose role is `rep` has an active
//! `sales_reps` row (SPEC section 13), so `/v1/me` can name its rep id.

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{company, sales_rep, user};
use otto_domain::catalog::IDENTITY_USER_UPDATED;
use otto_domain::{Role, TenantId, TraceId, UserId};
use otto_integrations::clerk::ClerkClient;
use otto_runtime::AppContext;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::ServiceError;

/// Creates the tenant's company row (named after its id until Clerk tells its name) if absent.
///
/// # Errors
/// On database failure.
pub async fn provision_company(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    let new_company = company::ActiveModel {
        id: Set(tenant.to_string()),
        name: Set(tenant.to_string()),
        time_zone: Set("UTC".to_owned()),
        callrail_company_id: Set(None),
        lockdown_mode: Set(false),
        missed_call_callbacks: Set(false),
        quiet_hours_start: Set(None),
        quiet_hours_end: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    company::Entity::insert(new_company)
        .on_conflict(
            OnConflict::column(company::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Creates the company if absent and the user, or moves an existing user to `tenant` with
/// `role`: the latest token or Clerk membership is the source of truth for both.
///
/// # Errors
/// On database failure.
pub async fn provision_member(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &UserId,
    role: Role,
    email: Option<String>,
) -> Result<(), sea_orm::DbErr> {
    provision_company(conn, tenant).await?;
    let now = Utc::now();
    let new_user = user::ActiveModel {
        id: Set(user_id.to_string()),
        company_id: Set(tenant.to_string()),
        role: Set(role.as_str().to_owned()),
        email: Set(email),
        name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    user::Entity::insert(new_user)
        .on_conflict(
            OnConflict::column(user::Column::Id)
                .update_columns([
                    user::Column::CompanyId,
                    user::Column::Role,
                    user::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    sync_rep(conn, tenant, user_id, role).await
}

/// A rep has an active `sales_reps` row in its company; anyone else's row (a former rep, a rep
/// who moved company) is inactive. Idempotent: the unique `(company_id, user_id)` keeps one row.
///
/// # Errors
/// On database failure.
pub async fn sync_rep(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &UserId,
    role: Role,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    let here = role == Role::Rep;
    if here {
        let row = sales_rep::ActiveModel {
            id: Set(Uuid::now_v7()),
            company_id: Set(tenant.to_string()),
            user_id: Set(user_id.to_string()),
            display_name: Set(user_id.to_string()),
            phone: Set(None),
            active: Set(true),
            training_status: Set(None),
            training_job_id: Set(None),
            trained_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        sales_rep::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([sales_rep::Column::CompanyId, sales_rep::Column::UserId])
                    .update_columns([sales_rep::Column::Active, sales_rep::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    let mut others = sales_rep::Entity::update_many()
        .col_expr(sales_rep::Column::Active, Expr::value(false))
        .col_expr(sales_rep::Column::UpdatedAt, Expr::value(now))
        .filter(sales_rep::Column::UserId.eq(user_id.as_str()))
        .filter(sales_rep::Column::Active.eq(true));
    if here {
        others = others.filter(sales_rep::Column::CompanyId.ne(tenant.as_str()));
    }
    others.exec(conn).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RoleChangeError {
    #[error("no such user in this company")]
    NotFound,
    #[error(transparent)]
    Clerk(#[from] otto_integrations::clerk::ClerkError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for RoleChangeError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

impl From<otto_db::UnitOfWorkError> for RoleChangeError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        Self::Service(err.into())
    }
}

/// Gives `user` of `tenant` the `role` (SPEC section 13): Clerk first, since Clerk owns roles and
/// the next token carries them (skipped without a Clerk client, in development), then Otto's
/// record, the rep row and `identity.user.updated`, in one unit of work. The membership webhook
/// Clerk sends afterwards finds everything in place.
///
/// # Errors
/// `NotFound` for a user of another company (or none); Clerk's refusal; database failures.
pub async fn change_role(
    ctx: &AppContext,
    clerk: Option<&ClerkClient>,
    tenant: &TenantId,
    trace: TraceId,
    user_id: &UserId,
    role: Role,
) -> Result<user::Model, RoleChangeError> {
    let exists = {
        let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
        let found = utx
            .scope()
            .find_by_id::<user::Entity, _>(user_id.to_string())
            .await?;
        utx.finish_read().await?;
        found.is_some()
    };
    if !exists {
        return Err(RoleChangeError::NotFound);
    }
    if let Some(clerk) = clerk {
        clerk
            .update_membership_role(tenant.as_str(), user_id.as_str(), role.clerk_key())
            .await?;
    }
    // Writes first, then reads: see "SQLite and units of work" in docs/architecture.md.
    let utx = TenantTxn::begin(&ctx.db, tenant, trace).await?;
    let changed = utx
        .scope()
        .update_many::<user::Entity>()
        .filter(user::Column::Id.eq(user_id.as_str()))
        .col_expr(user::Column::Role, Expr::value(role.as_str()))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    if changed.rows_affected == 0 {
        utx.rollback().await?;
        return Err(RoleChangeError::NotFound);
    }
    sync_rep(utx.conn(), tenant, user_id, role).await?;
    let user = utx
        .scope()
        .find_by_id::<user::Entity, _>(user_id.to_string())
        .await?
        .ok_or(RoleChangeError::NotFound)?;
    utx.emit(
        utx.event(
            IDENTITY_USER_UPDATED,
            serde_json::json!({ "user_id": user_id, "role": role }),
        )
        .with_user(user_id.clone()),
    );
    utx.commit(ctx).await?;
    Ok(user)
}
