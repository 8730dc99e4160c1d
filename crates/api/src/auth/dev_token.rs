//! Development tokens: `otto-api token --tenant ... --user ... --role ...` signs a Clerk-shaped
//! session token with the repository's development key, which only development and test
//! deployments trust. Refused in staging and production.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::Config;
use serde::Serialize;

use super::jwt::DEV_KEY_ID;

const DEV_PRIVATE_KEY_PEM: &str = include_str!("../../../../dev/dev-jwt-private.pem");

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("development tokens are refused when ENVIRONMENT={0}")]
    Deployed(&'static str),
    #[error("could not sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Serialize)]
struct DevClaims<'a> {
    sub: &'a str,
    org_id: &'a str,
    org_role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// A token for `user` as `role` in `tenant`, valid for `ttl`.
///
/// # Errors
/// In staging or production, or if signing fails.
pub fn mint(
    config: &Config,
    tenant: &TenantId,
    user: &UserId,
    role: Role,
    ttl: Duration,
) -> Result<String, MintError> {
    if config.environment.is_deployed() {
        return Err(MintError::Deployed(config.environment.as_str()));
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = DevClaims {
        sub: user.as_str(),
        org_id: tenant.as_str(),
        org_role: format!("org:{}", role.as_str()),
        iss: config.auth.issuer.as_deref(),
        iat: now,
        nbf: now,
        exp: now + ttl.as_secs(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(DEV_KEY_ID.to_owned());
    let key = EncodingKey::from_rsa_pem(DEV_PRIVATE_KEY_PEM.as_bytes())?;
    Ok(encode(&header, &claims, &key)?)
}
