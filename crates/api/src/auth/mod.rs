//! Authentication and authorization as extractors: a handler that takes `Authorized<Staff>`
//! can only run for a verified user of a tenant whose role is leadership or csr. The roles of a
//! route are visible in its signature.

pub mod dev_token;
pub mod jwt;
pub mod lockdown;
mod provisioning;
pub use provisioning::refuse;
pub mod roles;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use otto_domain::{Role, TenantId, UserId};

use crate::error::ApiError;
use crate::state::ApiState;
pub use roles::{AnyRole, Leadership, RoleSet, Staff};

/// A verified user acting inside their tenant.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: Role,
}

/// An [`AuthUser`] whose role is one of `R::ROLES`.
#[derive(Debug, Clone)]
pub struct Authorized<R: RoleSet> {
    pub user: AuthUser,
    roles: PhantomData<R>,
}

impl<R: RoleSet> std::ops::Deref for Authorized<R> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.user
    }
}

type Extraction<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<R: RoleSet + 'static> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = Extraction<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let user = authenticate(&req, &state).await?;
            crate::rate_limit::check_authenticated(
                &state.rate_limiter,
                &state.ctx.config.rate_limits,
                &req,
                &user,
            )
            .await?;
            if !R::ROLES.contains(&user.role) {
                return Err(provisioning::refuse(&state, &req, &user, R::ROLES).await);
            }
            Ok(Authorized {
                user,
                roles: PhantomData,
            })
        })
    }
}

fn state_of(req: &HttpRequest) -> Result<web::Data<ApiState>, ApiError> {
    req.app_data::<web::Data<ApiState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("ApiState missing from app data")))
}

/// The bearer token of the `Authorization` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Verifies the request's token, provisions its tenant and user on first contact, and tags the
/// request's span with both.
///
/// # Errors
/// 401 without a valid token; 403 for a token outside any organization or with an unknown role.
pub async fn authenticate(req: &HttpRequest, state: &ApiState) -> Result<AuthUser, ApiError> {
    authenticate_token(bearer_token(req), state).await
}

/// As [`authenticate`], for a token found elsewhere (the WebSocket `access_token` parameter).
///
/// # Errors
/// As [`authenticate`].
pub async fn authenticate_token(
    token: Option<&str>,
    state: &ApiState,
) -> Result<AuthUser, ApiError> {
    let token =
        token.ok_or_else(|| ApiError::Unauthorized("A bearer token is required.".to_owned()))?;
    let verified = state.verifier.verify(token).await.map_err(|err| {
        tracing::info!(reason = %err, "token refused");
        ApiError::Unauthorized("The token is invalid or expired.".to_owned())
    })?;
    let Some(tenant_id) = verified.tenant else {
        return Err(ApiError::Forbidden(
            "The token carries no organization.".to_owned(),
        ));
    };
    let Some(role) = verified.role else {
        return Err(ApiError::Forbidden(
            "The token's organization role is not an Otto role.".to_owned(),
        ));
    };
    let user = AuthUser {
        user_id: verified.user,
        tenant_id,
        role,
    };
    let span = tracing::Span::current();
    span.record("tenant_id", user.tenant_id.as_str());
    span.record("user_id", user.user_id.as_str());
    provisioning::ensure_known(state, &user).await?;
    Ok(user)
}
