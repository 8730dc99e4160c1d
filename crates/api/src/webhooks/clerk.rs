//! Clerk (delivered by Svix): organizations become companies, memberships become users, user
//! updates refresh their e-mail and name.

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use chrono::Utc;
use otto_db::entities::{company, user};
use otto_domain::catalog::{IDENTITY_USER_CREATED, IDENTITY_USER_UPDATED};
use otto_domain::{Role, UserId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::pipeline::{DeliveryContext, Effects, Provider, deliver};
use super::{json_body, signature, tenants, text_of};
use crate::error::ApiError;
use crate::state::ApiState;

struct ClerkEvent {
    kind: String,
    data: Value,
}

pub async fn receive(
    state: web::Data<ApiState>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let secrets: Vec<String> = state
        .ctx
        .config
        .webhooks
        .clerk
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    if secrets.is_empty() {
        return Err(super::refused(signature::SignatureError::NotConfigured));
    }
    let now = Utc::now().timestamp();
    signature::svix(
        &secrets,
        header("svix-id"),
        header("svix-timestamp"),
        header("svix-signature"),
        &raw,
        now,
    )
    .map_err(super::refused)?;
    let body = json_body(&raw)?;
    let kind =
        text_of(body.get("type")).ok_or_else(|| ApiError::validation("type", "is required"))?;
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let external_id = header("svix-id")
        .map(str::to_owned)
        .or_else(|| text_of(body.get("event_id")))
        .or_else(|| text_of(data.get("id")).map(|id| format!("{kind}:{id}")))
        .ok_or_else(|| ApiError::validation("svix-id", "the delivery has no id"))?;
    let db = &state.ctx.db;
    let tenant = match kind.as_str() {
        "organization.created" | "organization.updated" => {
            text_of(data.get("id")).and_then(tenants::Tenant::new)
        }
        "organizationMembership.created" | "organizationMembership.updated" => {
            text_of(data.pointer("/organization/id")).and_then(tenants::Tenant::new)
        }
        "user.created" | "user.updated" => match text_of(data.get("id")) {
            Some(id) => tenants::by_user(db, &id).await?,
            None => None,
        },
        _ => None,
    };
    let outcome = deliver(
        &state,
        Provider::Clerk,
        &external_id,
        tenant,
        &ClerkEvent { kind, data },
    )
    .await?;
    Ok(outcome.json(Provider::Clerk))
}

#[async_trait(?Send)]
impl Effects for ClerkEvent {
    async fn apply(&self, ctx: &DeliveryContext<'_>) -> Result<(), ApiError> {
        let now = Utc::now();
        match self.kind.as_str() {
            "organization.created" | "organization.updated" => {
                let name = text_of(self.data.get("name")).unwrap_or_else(|| ctx.tenant.to_string());
                let row = company::ActiveModel {
                    id: Set(ctx.tenant.to_string()),
                    name: Set(name),
                    time_zone: Set("UTC".to_owned()),
                    callrail_company_id: Set(None),
                    lockdown_mode: Set(false),
                    missed_call_callbacks: Set(false),
                    quiet_hours_start: Set(None),
                    quiet_hours_end: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                company::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(company::Column::Id)
                            .update_columns([company::Column::Name, company::Column::UpdatedAt])
                            .to_owned(),
                    )
                    .exec_without_returning(ctx.utx.conn())
                    .await?;
                Ok(())
            }
            "organizationMembership.created" | "organizationMembership.updated" => {
                let user_id = text_of(self.data.pointer("/public_user_data/user_id"))
                    .and_then(|id| UserId::try_from(id).ok())
                    .ok_or_else(|| {
                        ApiError::validation("data.public_user_data.user_id", "is required")
                    })?;
                let role = text_of(self.data.get("role"))
                    .and_then(|r| Role::from_clerk(&r))
                    .unwrap_or(Role::Rep);
                let email = text_of(self.data.pointer("/public_user_data/identifier"));
                otto_service::members::provision_member(
                    ctx.utx.conn(),
                    ctx.tenant,
                    &user_id,
                    role,
                    email,
                )
                .await?;
                let event = if self.kind.ends_with("created") {
                    IDENTITY_USER_CREATED
                } else {
                    IDENTITY_USER_UPDATED
                };
                ctx.emit(
                    ctx.event(event, json!({ "user_id": user_id, "role": role }))
                        .with_user(user_id),
                );
                Ok(())
            }
            "user.created" | "user.updated" => {
                let user_id = text_of(self.data.get("id")).unwrap_or_default();
                let email = text_of(self.data.pointer("/email_addresses/0/email_address"));
                let name = [
                    text_of(self.data.get("first_name")),
                    text_of(self.data.get("last_name")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
                user::Entity::update_many()
                    .col_expr(user::Column::Email, Expr::value(email))
                    .col_expr(
                        user::Column::Name,
                        Expr::value((!name.is_empty()).then_some(name)),
                    )
                    .col_expr(user::Column::UpdatedAt, Expr::value(now))
                    .filter(user::Column::Id.eq(user_id.as_str()))
                    .filter(user::Column::CompanyId.eq(ctx.tenant.as_str()))
                    .exec(ctx.utx.conn())
                    .await?;
                let event = if self.kind == "user.created" {
                    IDENTITY_USER_CREATED
                } else {
                    IDENTITY_USER_UPDATED
                };
                let mut envelope = ctx.event(event, json!({ "user_id": user_id }));
                if let Ok(user) = UserId::try_from(user_id) {
                    envelope = envelope.with_user(user);
                }
                ctx.emit(envelope);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
