//! `Idempotency-Key` (SPEC section 13), for any non-repeatable POST in one line:
//! `idempotency::once(&state, &caller, &req, &body, |claim| handler(claim)).await`. A handler
//! that writes records its answer with `claim.record(&utx, &answer)` in its own unit of work, so
//! the answer commits with its effects (one commit less than storing it afterwards).
//!
//! The key (any string up to 255 characters) is claimed per company with a fingerprint of the
//! request (method, path, body) before the handler runs, in a unit of work of its own. The first
//! request runs and its answer is stored; a repeat with the same fingerprint gets the stored
//! answer byte for byte with `Idempotent-Replayed: true`; another fingerprint is 422
//! `idempotency-key-reused`; a repeat while the first still runs is 409 `idempotency-key-in-use`.
//! A 5xx answer is not stored (the key is released so a retry runs again). Keys live 24 hours:
//! an older claim is replaced, and `purge-idempotency-keys` deletes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::{Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::api_idempotency_key as key_row;
use otto_domain::TraceId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::problem_kinds as kinds;
use crate::state::ApiState;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a key answers for its first request.
pub const KEY_HOURS: i64 = 24;
const MAX_KEY: usize = 255;
const IN_FLIGHT: &str = "in_flight";
const DONE: &str = "done";

/// Runs `handler` at most once per `Idempotency-Key` of the caller's company (see the module
/// doc); without the header it simply runs it.
///
/// # Errors
/// A bad key (422), a reused key (422), a key in use (409), database failures.
pub async fn once<F, Fut>(
    state: &ApiState,
    caller: &AuthUser,
    req: &HttpRequest,
    body: &[u8],
    handler: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(Arc<Claim>) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ApiError>>,
{
    let Some(key) = key_of(req)? else {
        return handler(Arc::new(Claim::none())).await;
    };
    let fingerprint = fingerprint(req, body);
    if let Some(answer) = claim(state, caller, &key, &fingerprint).await? {
        return Ok(answer);
    }
    let claim = Arc::new(Claim {
        key: Some(key.clone()),
        recorded: AtomicBool::new(false),
    });
    match handler(claim.clone()).await {
        Ok(response) if claim.recorded.load(Ordering::SeqCst) => Ok(response),
        Ok(response) => finish(state, caller, &key, response).await,
        // An error rolled the handler's unit of work back, a recorded answer with it.
        Err(err) => finish(state, caller, &key, err.error_response()).await,
    }
}

/// The key a handler runs under (none without the header).
pub struct Claim {
    key: Option<String>,
    recorded: AtomicBool,
}

impl Claim {
    fn none() -> Self {
        Self {
            key: None,
            recorded: AtomicBool::new(false),
        }
    }

    /// Stores `answer` as this key's answer inside `utx`: it commits with the handler's writes.
    ///
    /// # Errors
    /// On database failure.
    pub async fn record(&self, utx: &TenantTxn, answer: &Answer) -> Result<(), ApiError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        store(utx, key, answer.status, &answer.body).await?;
        self.recorded.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A JSON answer a handler records and returns, the same bytes both ways.
pub struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    /// # Errors
    /// A value that does not serialise (a bug).
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status,
            body: serde_json::to_string(value)?,
        })
    }

    pub fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((CONTENT_TYPE, content_type(self.status.as_u16())))
            .body(self.body)
    }
}

fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_KEY).contains(&k.chars().count()))
        .ok_or_else(|| ApiError::validation(HEADER, "must be 1-255 visible characters"))?;
    Ok(Some(key.to_owned()))
}

fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str().as_bytes());
    hash.update(b" ");
    hash.update(req.path().as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

async fn unit_of_work(state: &ApiState, caller: &AuthUser) -> Result<TenantTxn, ApiError> {
    Ok(TenantTxn::begin(&state.ctx.db, &caller.tenant_id, TraceId::generate()).await?)
}

/// Claims the key for this request; `Some(answer)` when the request must not run (a replay,
/// a reuse, or one in flight).
async fn claim(
    state: &ApiState,
    caller: &AuthUser,
    key: &str,
    fingerprint: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    let now = Utc::now();
    let utx = unit_of_work(state, caller).await?;
    // Writes first (docs/architecture.md): an expired claim goes, then this one is tried.
    utx.scope()
        .delete_many::<key_row::Entity>()
        .filter(key_row::Column::IdempotencyKey.eq(key))
        .filter(key_row::Column::CreatedAt.lt(now - Duration::hours(KEY_HOURS)))
        .exec(utx.conn())
        .await?;
    let claimed = key_row::Entity::insert(key_row::ActiveModel {
        company_id: Set(caller.tenant_id.to_string()),
        idempotency_key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        state: Set(IN_FLIGHT.to_owned()),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([key_row::Column::CompanyId, key_row::Column::IdempotencyKey])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(utx.conn())
    .await?;
    if claimed == 1 {
        utx.commit(&state.ctx).await?;
        return Ok(None);
    }
    let existing = utx
        .scope()
        .select::<key_row::Entity>()
        .filter(key_row::Column::IdempotencyKey.eq(key))
        .one(utx.conn())
        .await?;
    utx.finish_read().await?;
    let Some(existing) = existing else {
        // Purged between the two statements: ask the client to retry.
        return Err(in_use());
    };
    if existing.fingerprint != fingerprint {
        return Err(ApiError::Refused {
            kind: &kinds::IDEMPOTENCY_KEY_REUSED,
            detail: "This Idempotency-Key was used with another request.".to_owned(),
        });
    }
    if existing.state != DONE {
        return Err(in_use());
    }
    Ok(Some(replay(&existing)))
}

/// Records `key`'s answer (state `done`).
async fn store(utx: &TenantTxn, key: &str, status: StatusCode, body: &str) -> Result<(), ApiError> {
    utx.scope()
        .update_many::<key_row::Entity>()
        .filter(key_row::Column::IdempotencyKey.eq(key))
        .col_expr(key_row::Column::State, Expr::value(DONE))
        .col_expr(
            key_row::Column::ResponseStatus,
            Expr::value(i32::from(status.as_u16())),
        )
        .col_expr(key_row::Column::ResponseBody, Expr::value(body))
        .col_expr(key_row::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    Ok(())
}

fn in_use() -> ApiError {
    ApiError::Refused {
        kind: &kinds::IDEMPOTENCY_KEY_IN_USE,
        detail: "A request with this Idempotency-Key is still being processed.".to_owned(),
    }
}

fn content_type(status: u16) -> &'static str {
    if status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    }
}

fn replay(row: &key_row::Model) -> HttpResponse {
    let status = row.response_status.unwrap_or(200) as u16;
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header((CONTENT_TYPE, content_type(status)))
        .insert_header((REPLAYED, "true"))
        .body(row.response_body.clone().unwrap_or_default())
}

/// Stores the first request's answer (or releases the key after a 5xx) and returns it.
async fn finish(
    state: &ApiState,
    caller: &AuthUser,
    key: &str,
    response: HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let status = response.status();
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("response body: {e}")))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let utx = unit_of_work(state, caller).await?;
    let ours = utx
        .scope()
        .update_many::<key_row::Entity>()
        .filter(key_row::Column::IdempotencyKey.eq(key));
    if status.is_server_error() {
        utx.scope()
            .delete_many::<key_row::Entity>()
            .filter(key_row::Column::IdempotencyKey.eq(key))
            .exec(utx.conn())
            .await?;
    } else {
        ours.col_expr(key_row::Column::State, Expr::value(DONE))
            .col_expr(
                key_row::Column::ResponseStatus,
                Expr::value(i32::from(status.as_u16())),
            )
            .col_expr(key_row::Column::ResponseBody, Expr::value(text.clone()))
            .col_expr(key_row::Column::UpdatedAt, Expr::value(Utc::now()))
            .exec(utx.conn())
            .await?;
    }
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, content_type(status.as_u16())))
        .body(text))
}
