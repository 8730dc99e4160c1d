//! Clerk session-token verification (SPEC section 2): RS256 only, keys from a PEM
//! (`CLERK_JWT_KEY`), the repository's development key (development only), or a JWKS fetched
//! asynchronously, cached, and refreshed on an unknown `kid` at most once per refresh window.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::config::AuthConfig;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::cors::OriginPatterns;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
pub const DEV_KEY_ID: &str = "otto-dev";
pub const DEV_PUBLIC_KEY_PEM: &str = include_str!("../../../../dev/dev-jwt-public.pem");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("only RS256 tokens are accepted")]
    Algorithm,
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token was issued for another origin")]
    Origin,
}

/// Who a valid token speaks for. `tenant` and `role` are absent for a user outside any
/// organization (answered 403 by the guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user: UserId,
    pub tenant: Option<TenantId>,
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize)]
struct OrgClaims {
    id: Option<String>,
    rol: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ClerkClaims {
    sub: String,
    org_id: Option<String>,
    org_role: Option<String>,
    /// Clerk v2 session tokens nest the organization under `o`.
    o: Option<OrgClaims>,
    azp: Option<String>,
}

struct StaticKey {
    kid: Option<String>,
    key: DecodingKey,
}

struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    refresh_interval: Duration,
}

pub struct TokenVerifier {
    static_keys: Vec<StaticKey>,
    jwks: Option<Jwks>,
    validation: Validation,
    origins: OriginPatterns,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifierSetupError {
    #[error("CLERK_JWT_KEY is not a valid RSA public key in PEM form")]
    BadPem(#[source] jsonwebtoken::errors::Error),
    #[error("could not build the JWKS HTTP client")]
    Client(#[source] reqwest::Error),
}

impl TokenVerifier {
    /// # Errors
    /// When a configured PEM key does not parse.
    pub fn new(config: &AuthConfig, origins: OriginPatterns) -> Result<Self, VerifierSetupError> {
        let mut static_keys = Vec::new();
        if let Some(pem) = &config.jwt_public_key_pem {
            let key =
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(VerifierSetupError::BadPem)?;
            static_keys.push(StaticKey { kid: None, key });
        }
        if config.trust_dev_key {
            let key = DecodingKey::from_rsa_pem(DEV_PUBLIC_KEY_PEM.as_bytes())
                .map_err(VerifierSetupError::BadPem)?;
            static_keys.push(StaticKey {
                kid: Some(DEV_KEY_ID.to_owned()),
                key,
            });
        }
        let jwks = match &config.jwks_url {
            Some(url) => Some(Jwks {
                url: url.clone(),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(VerifierSetupError::Client)?,
                keys: RwLock::new(HashMap::new()),
                last_fetch: Mutex::new(None),
                refresh_interval: config.jwks_refresh_interval,
            }),
            None => None,
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        Ok(Self {
            static_keys,
            jwks,
            validation,
            origins,
        })
    }

    /// Verifies `token` and maps its claims.
    ///
    /// # Errors
    /// [`TokenError`] for anything but a valid, unexpired RS256 token from a trusted key.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let claims = self
            .decode_with_trusted_key(token, header.kid.as_deref())
            .await?;
        if let Some(azp) = &claims.azp
            && !self.origins.is_empty()
            && !self.origins.allows(azp)
        {
            return Err(TokenError::Origin);
        }
        map_claims(claims)
    }

    async fn decode_with_trusted_key(
        &self,
        token: &str,
        kid: Option<&str>,
    ) -> Result<ClerkClaims, TokenError> {
        let decode_with = |key: &DecodingKey| {
            decode::<ClerkClaims>(token, key, &self.validation)
                .map(|data| data.claims)
                .map_err(|e| TokenError::Invalid(e.to_string()))
        };
        // A key without an id (CLERK_JWT_KEY) vouches for any token; one with an id only for its own.
        let mut last_error = None;
        for candidate in self
            .static_keys
            .iter()
            .filter(|k| k.kid.is_none() || k.kid.as_deref() == kid)
        {
            match decode_with(&candidate.key) {
                Ok(claims) => return Ok(claims),
                Err(err) => last_error = Some(err),
            }
        }
        if let (Some(jwks), Some(kid)) = (&self.jwks, kid)
            && let Some(result) = jwks.with_key(kid, decode_with).await
        {
            return result;
        }
        Err(last_error.unwrap_or(TokenError::UnknownKey))
    }

    /// Fetches the JWKS now (at start-up) so the first request does not wait for it.
    pub async fn prefetch(&self) {
        if let Some(jwks) = &self.jwks {
            jwks.refresh_if_due().await;
        }
    }
}

impl Jwks {
    /// Runs `use_key` with the key `kid`, refreshing the set once if `kid` is unknown and the
    /// refresh window allows. `None` when the key is still unknown.
    async fn with_key<T>(&self, kid: &str, use_key: impl Fn(&DecodingKey) -> T) -> Option<T> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Some(use_key(key));
        }
        self.refresh_if_due().await;
        self.keys.read().await.get(kid).map(use_key)
    }

    async fn refresh_if_due(&self) {
        // Holding this lock makes concurrent misses wait for one fetch instead of each fetching.
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < self.refresh_interval) {
            return;
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS refreshed");
                *self.keys.write().await = keys;
            }
            Err(err) => {
                tracing::warn!(error = %err, url = %self.url, "JWKS fetch failed; keeping cached keys")
            }
        }
    }

    async fn fetch(
        &self,
    ) -> Result<HashMap<String, DecodingKey>, Box<dyn std::error::Error + Send + Sync>> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid.clone(), key);
                }
                Err(err) => tracing::warn!(kid, error = %err, "JWKS key skipped"),
            }
        }
        Ok(keys)
    }
}

fn map_claims(claims: ClerkClaims) -> Result<VerifiedToken, TokenError> {
    let user =
        UserId::try_from(claims.sub).map_err(|_| TokenError::Invalid("bad subject".to_owned()))?;
    let (org_v2, role_v2) = claims.o.map(|o| (o.id, o.rol)).unwrap_or_default();
    let tenant = match claims.org_id.or(org_v2) {
        Some(id) => Some(
            TenantId::try_from(id)
                .map_err(|_| TokenError::Invalid("bad organization".to_owned()))?,
        ),
        None => None,
    };
    let role = claims
        .org_role
        .or(role_v2)
        .and_then(|raw| Role::from_clerk(&raw));
    Ok(VerifiedToken { user, tenant, role })
}
