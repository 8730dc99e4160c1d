//! Recording sessions (SPEC section 14): open, stream the audio (`PUT .../audio`, a raw
//! `audio/*` body, or `application/octet-stream` as many phone HTTP clients send it, the
//! content sniffed either way; replaced by a second PUT), finish into an `in_person` call that enters the
//! transcription pipeline. The rules live in `otto_service::recordings`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use otto_db::entities::recording_session;
use otto_service::recordings::{self, RecordingError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{begin, timestamp};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::state::ApiState;
use crate::uploads;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/recording-sessions").post(open_session))
        .service(crate::route_list::resource("/v1/recording-sessions/{id}/audio").put(upload_audio))
        .service(
            crate::route_list::resource("/v1/recording-sessions/{id}/finish").post(finish_session),
        );
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    lead_id: Option<Uuid>,
    appointment_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordingSession {
    id: Uuid,
    /// `open|completed`.
    status: String,
    lead_id: Option<Uuid>,
    appointment_id: Option<Uuid>,
    expires_at: Option<String>,
    content_type: Option<String>,
    size_bytes: Option<i64>,
    /// The `in_person` call, once finished.
    call_id: Option<Uuid>,
}

impl From<recording_session::Model> for RecordingSession {
    fn from(row: recording_session::Model) -> Self {
        Self {
            id: row.id,
            status: row.status,
            lead_id: row.lead_id,
            appointment_id: row.appointment_id,
            expires_at: row.expires_at.map(timestamp),
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            call_id: row.call_id,
        }
    }
}

fn recording_error(err: RecordingError) -> ApiError {
    match err {
        RecordingError::NotFound => ApiError::NotFound,
        RecordingError::NotOpen(status) => {
            ApiError::Conflict(format!("the recording session is {status}"))
        }
        RecordingError::NoAudio => {
            ApiError::validation("audio", "upload the audio before finishing")
        }
        RecordingError::Service(err) => err.into(),
    }
}

#[utoipa::path(post, path = "/v1/recording-sessions", tag = "recordings", security(("bearer" = [])), request_body = SessionRequest,
    responses((status = 201, body = RecordingSession, description = "Open for 24 hours"),
        (status = 422, body = crate::problem::Problem, description = "Unknown lead or appointment")))]
pub async fn open_session(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    body: web::Json<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(&state, &caller).await?;
    let session = recordings::open(&utx, &caller.user_id, body.lead_id, body.appointment_id)
        .await
        .map_err(recording_error)?;
    utx.commit(&state.ctx).await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(RecordingSession::from(session)))
}

#[utoipa::path(put, path = "/v1/recording-sessions/{id}/audio", tag = "recordings", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The raw audio with `Content-Type: audio/*` (or `application/octet-stream`), at most MAX_RECORDING_MB; its first bytes must be audio (WAV, MP3, M4A, Ogg, FLAC, WebM, AMR)"),
    responses((status = 200, body = RecordingSession, description = "Stored (replacing an earlier upload)"),
        (status = 404, body = crate::problem::Problem, description = "Not the caller's session"),
        (status = 409, body = crate::problem::Problem, description = "The session is finished or expired"),
        (status = 413, body = crate::problem::Problem, description = "Over MAX_RECORDING_MB; nothing stored"),
        (status = 415, body = crate::problem::Problem, description = "Not audio")))]
pub async fn upload_audio(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Payload,
) -> Result<web::Json<RecordingSession>, ApiError> {
    let limit = state.ctx.config.storage.max_recording_bytes;
    uploads::refuse_announced_oversize(&req, limit, 0)?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| v.starts_with("audio/") || v == "application/octet-stream")
        .ok_or(ApiError::UnsupportedMediaType)?;
    let utx = begin(&state, &caller).await?;
    let open = recordings::find_open(utx.conn(), utx.tenant(), &caller.user_id, *id).await;
    utx.finish_read().await?;
    open.map_err(recording_error)?;
    let key = recordings::object_key(&caller.tenant_id, *id);
    let ((), size) = uploads::store(&state.ctx.storage, &key, limit, body, |head| {
        if recordings::looks_like_audio(head) {
            Ok(())
        } else {
            Err(ApiError::UnsupportedMediaType)
        }
    })
    .await?;
    let utx = begin(&state, &caller).await?;
    let session = recordings::attach_audio(&utx, &caller.user_id, *id, &content_type, size)
        .await
        .map_err(recording_error)?;
    utx.commit(&state.ctx).await?;
    Ok(web::Json(RecordingSession::from(session)))
}

#[utoipa::path(post, path = "/v1/recording-sessions/{id}/finish", tag = "recordings", security(("bearer" = [])),
    responses((status = 200, body = RecordingSession, description = "Finished: `call_id` names the in_person call being transcribed"),
        (status = 404, body = crate::problem::Problem, description = "Not the caller's session"),
        (status = 409, body = crate::problem::Problem, description = "Already finished or expired"),
        (status = 422, body = crate::problem::Problem, description = "No audio uploaded yet")))]
pub async fn finish_session(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<Uuid>,
) -> Result<web::Json<RecordingSession>, ApiError> {
    let utx = begin(&state, &caller).await?;
    let (session, _call) = recordings::finish(&utx, &caller.user_id, *id)
        .await
        .map_err(recording_error)?;
    utx.commit(&state.ctx).await?;
    Ok(web::Json(RecordingSession::from(session)))
}
