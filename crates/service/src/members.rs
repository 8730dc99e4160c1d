//! Company and member records: created on first contact (a token, a Clerk webhook) and kept in
//! step with Clerk, who owns membership and roles. A member whose role is `rep` has an active
//! `sales_reps` row (SPEC section 13), so `/v1/me` can name its rep id.

use chrono::Utc;
use otto_db::entities::{company, sales_rep, user};
use otto_domain::{Role, TenantId, UserId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

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
