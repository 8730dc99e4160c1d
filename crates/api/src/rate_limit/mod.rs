//! Rate limits (SPEC section 3). Authenticated routes: a per-user and a per-tenant budget,
//! checked together (a refusal consumes neither). Public routes: a per-client-IP budget.
//! GCRA in Redis (one Lua script, server clock) when Redis is configured; in-process (governor)
//! in embedded mode and whenever Redis fails, so the API keeps serving.

mod client_ip;
mod local;
mod redis_gcra;

use std::time::Duration;

use actix_web::HttpRequest;
use otto_runtime::rate_config::Limit;

pub use client_ip::{client_ip, public_rate_limit};
use local::LocalLimiter;
use redis_gcra::RedisLimiter;

use crate::auth::AuthUser;
use crate::error::ApiError;

/// One budget to check: its key, its limit, and the label it reports under.
#[derive(Debug, Clone)]
pub struct Budget {
    pub key: String,
    pub limit: Limit,
    pub kind: &'static str,
}

/// The outcome of checking budgets together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// `kind` is the first budget that refused.
    Refused {
        kind: &'static str,
        limit: Limit,
        retry_after: Duration,
    },
}

/// A per-route override of the per-user budget, declared next to the route with
/// `web::resource(...).app_data(RouteLimit(Limit::per(10, Duration::from_secs(60))))`.
#[derive(Debug, Clone, Copy)]
pub struct RouteLimit(pub Limit);

pub struct RateLimiter {
    redis: Option<RedisLimiter>,
    local: LocalLimiter,
}

impl RateLimiter {
    pub fn new(redis: Option<(deadpool_redis::Pool, String)>) -> Self {
        Self {
            redis: redis.map(|(pool, prefix)| RedisLimiter::new(pool, prefix)),
            local: LocalLimiter::default(),
        }
    }

    /// Checks every budget atomically: all pass (and are consumed) or the request is refused
    /// (and consumes nothing, in Redis).
    pub async fn check(&self, budgets: &[Budget]) -> Decision {
        if let Some(redis) = &self.redis {
            match redis.check(budgets).await {
                Ok(decision) => return decision,
                Err(err) => {
                    metrics::counter!("rate_limit_backend_errors_total").increment(1);
                    tracing::warn!(error = %err, "rate limiter: Redis failed; limiting in-process");
                }
            }
        }
        self.local.check(budgets)
    }
}

/// The per-user and per-tenant budgets of an authenticated request.
///
/// # Errors
/// 429 when a budget is exhausted.
pub async fn check_authenticated(
    limiter: &RateLimiter,
    defaults: &otto_runtime::rate_config::RateLimitConfig,
    req: &HttpRequest,
    user: &AuthUser,
) -> Result<(), ApiError> {
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let (user_key, user_limit) = match req.app_data::<RouteLimit>() {
        Some(RouteLimit(limit)) => (
            format!(
                "tenant:{}:user:{}:route:{route}",
                user.tenant_id, user.user_id
            ),
            *limit,
        ),
        None => (
            format!("tenant:{}:user:{}", user.tenant_id, user.user_id),
            defaults.user,
        ),
    };
    let budgets = [
        Budget {
            key: user_key,
            limit: user_limit,
            kind: "user",
        },
        Budget {
            key: format!("tenant:{}", user.tenant_id),
            limit: defaults.tenant,
            kind: "tenant",
        },
    ];
    refuse_if_limited(limiter.check(&budgets).await, &route)
}

/// Maps a refusal to the 429 problem and counts it.
///
/// # Errors
/// 429 for [`Decision::Refused`].
pub fn refuse_if_limited(decision: Decision, route: &str) -> Result<(), ApiError> {
    match decision {
        Decision::Allowed => Ok(()),
        Decision::Refused {
            kind,
            limit,
            retry_after,
        } => {
            metrics::counter!("rate_limit_hits_total", "route" => route.to_owned(), "limit_type" => kind).increment(1);
            Err(ApiError::TooManyRequests {
                limit_type: kind,
                limit: limit.burst,
                retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
            })
        }
    }
}
