//! Lockdown (SPEC section 2): while `companies.lockdown_mode` is on, automation (provider
//! webhooks acting for the tenant, SMS sends, AI calls) answers 423 and dashboards keep working.
//! Automation routes declare it by taking `Unlocked<R>` instead of `Authorized<R>`; routes
//! without a user (webhooks) call [`ensure_unlocked`].

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest};
use otto_db::TenantScope;
use otto_db::entities::company;
use otto_domain::TenantId;
use sea_orm::ConnectionTrait;

use super::{Authorized, RoleSet};
use crate::error::ApiError;

/// # Errors
/// 423 when `tenant` is locked down; database failures.
pub async fn ensure_unlocked(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<(), ApiError> {
    let locked = TenantScope::new(conn, tenant.clone())
        .find_by_id::<company::Entity, _>(tenant.to_string())
        .await?
        .is_some_and(|c| c.lockdown_mode);
    if locked {
        Err(ApiError::Locked)
    } else {
        Ok(())
    }
}

/// An [`Authorized`] caller whose company is not in lockdown.
#[derive(Debug, Clone)]
pub struct Unlocked<R: RoleSet>(pub Authorized<R>);

impl<R: RoleSet + 'static> FromRequest for Unlocked<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let authorized = Authorized::<R>::from_request(req, payload);
        let state = super::state_of(req);
        Box::pin(async move {
            let caller = authorized.await?;
            ensure_unlocked(&state?.ctx.db, &caller.tenant_id).await?;
            Ok(Unlocked(caller))
        })
    }
}
