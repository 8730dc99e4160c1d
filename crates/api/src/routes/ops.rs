//! Operational endpoints: liveness, readiness, worker heartbeats, Prometheus metrics.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use otto_db::heartbeats;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::problem::Problem;
use crate::request_context::RequestContext;
use crate::state::ApiState;

/// A worker that has not beaten for this long is considered gone.
pub const WORKER_STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
    trace_id: String,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources (not method-guarded routes), so a wrong method answers 405 rather than 404.
    cfg.service(crate::route_list::resource("/health").get(health))
        .service(crate::route_list::resource("/ready").get(ready))
        .service(crate::route_list::resource("/internal/worker/heartbeat").get(worker_heartbeat))
        .service(crate::route_list::resource("/metrics").get(metrics))
        .service(crate::route_list::resource("/internal/dev/error").post(dev_error));
}

#[derive(Deserialize, ToSchema)]
pub struct DevErrorRequest {
    /// Put in the error's cause (scrubbed like the logs before it is reported).
    message: String,
}

/// Fails on purpose (development only, `X-Dev-Key`), so a deployment's error reporting can be
/// checked end to end: a 500 problem, an error log with the cause, a Sentry event with
/// `SENTRY_DSN`. Signed in, the report carries the caller's tenant and user.
#[utoipa::path(post, path = "/internal/dev/error", tag = "ops", request_body = DevErrorRequest,
    responses((status = 500, body = Problem, description = "Always: the deliberate failure"),
        (status = 403, body = Problem, description = "Wrong `X-Dev-Key`"),
        (status = 404, body = Problem, description = "Production, or no `DEV_EMIT_KEY`")))]
pub async fn dev_error(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    _caller: Option<crate::auth::Authorized<crate::auth::AnyRole>>,
    body: web::Json<DevErrorRequest>,
) -> Result<HttpResponse, ApiError> {
    crate::realtime::require_dev_key(&req, &state)?;
    Err(ApiError::Internal(anyhow::anyhow!(
        "deliberate failure for error reporting: {}",
        body.message
    )))
}

/// Liveness: answers without touching any dependency.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, body = Health, description = "OK")))]
pub async fn health() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        service: "otto-api",
        version: env!("CARGO_PKG_VERSION"),
        trace_id: RequestContext::current()
            .map(|c| c.trace_id.to_string())
            .unwrap_or_default(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Components {
    database: bool,
    /// `null` in embedded mode, where Redis is not used.
    redis: Option<bool>,
    workers: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    ready: bool,
    components: Components,
    timestamp: String,
    duration_ms: u64,
    service: &'static str,
}

/// Readiness: database, Redis and workers, checked concurrently, each within a timeout.
#[utoipa::path(get, path = "/ready", tag = "ops", responses(
    (status = 200, body = Readiness, description = "OK"), (status = 503, body = Readiness, description = "Not ready")))]
pub async fn ready(state: web::Data<ApiState>) -> HttpResponse {
    let started = Instant::now();
    let limit = state.ctx.config.http.ready_check_timeout;
    let redis = async {
        match &state.ctx.redis {
            Some(pool) => Some(within(limit, otto_runtime::redis_pool::ping(pool)).await),
            None => None,
        }
    };
    let (database, redis, workers) = tokio::join!(
        within(limit, database_ok(&state.ctx.db)),
        redis,
        within(limit, workers_alive(&state.ctx.db)),
    );
    let ready = database && redis.unwrap_or(true) && workers;
    let body = Readiness {
        ready,
        components: Components {
            database,
            redis,
            workers,
        },
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        duration_ms: started.elapsed().as_millis() as u64,
        service: "otto-api",
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(body)
}

/// A check that did not answer in time counts as failed.
async fn within(limit: Duration, check: impl Future<Output = bool>) -> bool {
    tokio::time::timeout(limit, check).await.unwrap_or(false)
}

async fn database_ok(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

async fn workers_alive(db: &DatabaseConnection) -> bool {
    live_workers(db)
        .await
        .is_ok_and(|workers| !workers.is_empty())
}

async fn live_workers(
    db: &DatabaseConnection,
) -> Result<Vec<otto_db::entities::worker_heartbeat::Model>, sea_orm::DbErr> {
    let stale = chrono::Duration::from_std(WORKER_STALE_AFTER).unwrap_or_default();
    heartbeats::live_since(db, Utc::now() - stale).await
}

#[derive(Serialize, ToSchema)]
pub struct WorkerBeat {
    id: String,
    queues: Vec<String>,
    last_beat: String,
    age_seconds: f64,
    in_flight: i32,
}

#[derive(Serialize, ToSchema)]
pub struct Heartbeats {
    workers: Vec<WorkerBeat>,
}

#[derive(Deserialize, IntoParams)]
pub struct HeartbeatQuery {
    /// Also list workers silent for more than 30 s (killed ones never remove themselves).
    include_stale: Option<bool>,
}

/// Every live worker (beat within the last 30 s).
#[utoipa::path(get, path = "/internal/worker/heartbeat", tag = "ops", params(HeartbeatQuery),
    responses((status = 200, body = Heartbeats, description = "OK"), (status = 422, body = Problem, description = "Invalid input (field errors)")))]
pub async fn worker_heartbeat(
    state: web::Data<ApiState>,
    query: web::Query<HeartbeatQuery>,
) -> Result<web::Json<Heartbeats>, ApiError> {
    let now = Utc::now();
    let rows = if query.include_stale.unwrap_or(false) {
        heartbeats::live_since(&state.ctx.db, chrono::DateTime::<Utc>::MIN_UTC).await
    } else {
        live_workers(&state.ctx.db).await
    };
    let workers = rows?
        .into_iter()
        .map(|row| WorkerBeat {
            id: row.worker_id,
            queues: row
                .queues
                .split(',')
                .filter(|q| !q.is_empty())
                .map(str::to_owned)
                .collect(),
            last_beat: row.last_beat.to_rfc3339_opts(SecondsFormat::Millis, true),
            age_seconds: ((now - row.last_beat).num_milliseconds() as f64 / 1000.0).max(0.0),
            in_flight: row.in_flight,
        })
        .collect();
    Ok(web::Json(Heartbeats { workers }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", description = "OK")))]
pub async fn metrics(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::Unavailable(anyhow::anyhow!(
            "metrics recorder not installed"
        )));
    };
    record_pool_gauges(&state.ctx.db);
    record_dependency_gauges(&state).await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render()))
}

/// What the alert rules need at scrape time: each dependency up (1) or not (0), as `/ready`
/// checks it, and the age of the freshest worker heartbeat.
async fn record_dependency_gauges(state: &ApiState) {
    let limit = state.ctx.config.http.ready_check_timeout;
    let database = within(limit, database_ok(&state.ctx.db)).await;
    metrics::gauge!("otto_dependency_up", "dependency" => "database")
        .set(f64::from(u8::from(database)));
    if let Some(pool) = &state.ctx.redis {
        let redis = within(limit, otto_runtime::redis_pool::ping(pool)).await;
        metrics::gauge!("otto_dependency_up", "dependency" => "redis")
            .set(f64::from(u8::from(redis)));
    }
    let newest = heartbeats::live_since(&state.ctx.db, chrono::DateTime::<Utc>::MIN_UTC)
        .await
        .ok()
        .and_then(|beats| beats.into_iter().map(|b| b.last_beat).max());
    // Never beaten: a day, far past any threshold.
    let age = newest.map_or(86_400.0, |at| {
        (Utc::now() - at).num_milliseconds() as f64 / 1000.0
    });
    metrics::gauge!("worker_heartbeat_age_seconds").set(age.max(0.0));
}

fn record_pool_gauges(db: &DatabaseConnection) {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    let idle = idle as f64;
    ::metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
    ::metrics::gauge!("db_pool_connections", "state" => "active")
        .set((f64::from(size) - idle).max(0.0));
}
