//! Recording sessions (SPEC section 14): a rep records an in-home visit on a phone. The session
//! is opened (24 h to finish), its audio streamed to `{company}/recordings/{session id}` (a
//! second upload replaces the first), and finishing it creates an `in_person` call whose
//! recording is that object, with its transcription job, in one unit of work: the visit then
//! goes through the same pipeline as a phone call. An open session past its expiry is deleted
//! with its object by `cleanup-ephemeral-sessions`.

use chrono::{DateTime, Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, call, recording_session};
use otto_domain::jobs::TranscribeCall;
use otto_domain::{TenantId, UserId};
use otto_runtime::storage::ObjectKey;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::calls::{CallFacts, upsert_call};

pub const OPEN: &str = "open";
pub const COMPLETED: &str = "completed";
pub const OBJECT_KIND: &str = "recordings";
/// The provider of the calls sessions create.
pub const PROVIDER: &str = "otto";
const LIFETIME_HOURS: i64 = 24;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("not found")]
    NotFound,
    #[error("the session is {0}, not open")]
    NotOpen(String),
    #[error("the session has no audio yet")]
    NoAudio,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<DbErr> for RecordingError {
    fn from(err: DbErr) -> Self {
        Self::Service(err.into())
    }
}

/// Whether `head` starts like an audio file a phone records: WAV, MP3 (ID3 tag or frame sync),
/// Ogg, FLAC, MP4/M4A/3GP (`ftyp`), WebM/Matroska, AMR.
pub fn looks_like_audio(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    (at(0, b"RIFF") && at(8, b"WAVE"))
        || at(0, b"ID3")
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
        || at(0, b"OggS")
        || at(0, b"fLaC")
        || at(4, b"ftyp")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || at(0, b"#!AMR")
}

/// The key a session's audio is stored under.
pub fn object_key(tenant: &TenantId, session: Uuid) -> ObjectKey {
    ObjectKey::new(tenant, OBJECT_KIND, session)
}

/// Opens a session for `user`, about a lead or an appointment of the tenant.
///
/// # Errors
/// `Service(Invalid)` for a lead or appointment the tenant does not have.
pub async fn open(
    utx: &TenantTxn,
    user: &UserId,
    lead_id: Option<Uuid>,
    appointment_id: Option<Uuid>,
) -> Result<recording_session::Model, RecordingError> {
    let now = Utc::now();
    let row = recording_session::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(utx.tenant().to_string()),
        user_id: Set(user.to_string()),
        appointment_id: Set(appointment_id),
        status: Set(OPEN.to_owned()),
        audio_key: Set(None),
        started_at: Set(now),
        ended_at: Set(None),
        expires_at: Set(Some(now + Duration::hours(LIFETIME_HOURS))),
        lead_id: Set(lead_id),
        content_type: Set(None),
        size_bytes: Set(None),
        call_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // Written first: on SQLite a unit of work must write before it reads.
    let created = utx.scope().insert(row).await?;
    if let Some(lead) = lead_id {
        crate::calls::require_lead(utx, lead).await?;
    }
    if let Some(appointment) = appointment_id
        && utx
            .scope()
            .find_by_id::<appointment::Entity, _>(appointment)
            .await?
            .is_none()
    {
        return Err(ServiceError::invalid(
            "appointment_id",
            "is not an appointment of the company",
        )
        .into());
    }
    Ok(created)
}

/// `user`'s open session `id` (someone else's is not found).
///
/// # Errors
/// `NotFound`, `NotOpen` (finished or expired).
pub async fn find_open<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    user: &UserId,
    id: Uuid,
) -> Result<recording_session::Model, RecordingError> {
    let session = otto_db::TenantScope::new(conn, tenant.clone())
        .find_by_id::<recording_session::Entity, _>(id)
        .await?
        .filter(|s| s.user_id == user.as_str())
        .ok_or(RecordingError::NotFound)?;
    let expired = session.expires_at.is_some_and(|at| at < Utc::now());
    if session.status != OPEN || expired {
        let status = if expired {
            "expired"
        } else {
            session.status.as_str()
        };
        return Err(RecordingError::NotOpen(status.to_owned()));
    }
    Ok(session)
}

/// Records the stored audio of an open session (replacing an earlier upload's facts).
///
/// # Errors
/// `NotFound`, `NotOpen`.
pub async fn attach_audio(
    utx: &TenantTxn,
    user: &UserId,
    id: Uuid,
    content_type: &str,
    size_bytes: u64,
) -> Result<recording_session::Model, RecordingError> {
    let changed = utx
        .scope()
        .update_many::<recording_session::Entity>()
        .col_expr(
            recording_session::Column::AudioKey,
            Expr::value(object_key(utx.tenant(), id).as_str()),
        )
        .col_expr(
            recording_session::Column::ContentType,
            Expr::value(content_type),
        )
        .col_expr(
            recording_session::Column::SizeBytes,
            Expr::value(i64::try_from(size_bytes).unwrap_or(i64::MAX)),
        )
        .col_expr(
            recording_session::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .filter(recording_session::Column::Id.eq(id))
        .filter(recording_session::Column::UserId.eq(user.as_str()))
        .filter(recording_session::Column::Status.eq(OPEN))
        .exec(utx.conn())
        .await?
        .rows_affected;
    let session = find_open(utx.conn(), utx.tenant(), user, id).await?;
    if changed == 0 {
        return Err(RecordingError::NotOpen(session.status));
    }
    Ok(session)
}

/// Finishes an open session: an `in_person` call (the session's lead, or its appointment's)
/// whose recording is the stored audio, and its transcription job.
///
/// # Errors
/// `NotFound`, `NotOpen`, `NoAudio`.
pub async fn finish(
    utx: &TenantTxn,
    user: &UserId,
    id: Uuid,
) -> Result<(recording_session::Model, call::Model), RecordingError> {
    let now = Utc::now();
    // The claim comes first (a write, and the guard against two finishes).
    let claimed = utx
        .scope()
        .update_many::<recording_session::Entity>()
        .col_expr(recording_session::Column::Status, Expr::value(COMPLETED))
        .col_expr(recording_session::Column::EndedAt, Expr::value(now))
        .col_expr(recording_session::Column::UpdatedAt, Expr::value(now))
        .filter(recording_session::Column::Id.eq(id))
        .filter(recording_session::Column::UserId.eq(user.as_str()))
        .filter(recording_session::Column::Status.eq(OPEN))
        .filter(recording_session::Column::ExpiresAt.gt(now))
        .exec(utx.conn())
        .await?
        .rows_affected;
    if claimed == 0 {
        // Not ours, not open, or expired: say which.
        find_open(utx.conn(), utx.tenant(), user, id).await?;
        return Err(RecordingError::NotOpen(COMPLETED.to_owned()));
    }
    let session = utx
        .scope()
        .find_by_id::<recording_session::Entity, _>(id)
        .await?
        .ok_or(RecordingError::NotFound)?;
    let Some(audio_key) = session.audio_key.clone() else {
        return Err(RecordingError::NoAudio);
    };
    let lead_id = match (session.lead_id, session.appointment_id) {
        (Some(lead), _) => Some(lead),
        (None, Some(appointment)) => utx
            .scope()
            .find_by_id::<appointment::Entity, _>(appointment)
            .await?
            .map(|a| a.lead_id),
        (None, None) => None,
    };
    let call = upsert_call(
        utx,
        CallFacts {
            provider: PROVIDER,
            provider_call_id: session.id.to_string(),
            lead_id: lead_id.map(Into::into),
            direction: Some("in_person".to_owned()),
            answered: Some(true),
            recording_key: Some(audio_key),
            status: COMPLETED.to_owned(),
            started_at: Some(session.started_at),
            ..CallFacts::default()
        },
    )
    .await?;
    utx.scope()
        .update_many::<recording_session::Entity>()
        .col_expr(recording_session::Column::CallId, Expr::value(call.id))
        .filter(recording_session::Column::Id.eq(id))
        .exec(utx.conn())
        .await?;
    utx.enqueue(&TranscribeCall {
        tenant_id: utx.tenant().clone(),
        call_id: call.id.into(),
        trace_id: utx.trace().clone(),
    })
    .map_err(ServiceError::from)?;
    let session = recording_session::Model {
        call_id: Some(call.id),
        ..session
    };
    Ok((session, call))
}

/// Open sessions past their expiry, any tenant (the cleanup job's batch).
///
/// # Errors
/// On database failure.
pub async fn expired<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<recording_session::Model>, DbErr> {
    recording_session::Entity::find()
        .filter(recording_session::Column::Status.eq(OPEN))
        .filter(recording_session::Column::ExpiresAt.lt(now))
        .order_by_asc(recording_session::Column::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Removes an expired session's row (its object is deleted first by the caller).
///
/// # Errors
/// On database failure.
pub async fn delete_expired<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<(), DbErr> {
    recording_session::Entity::delete_many()
        .filter(recording_session::Column::Id.eq(id))
        .filter(recording_session::Column::Status.eq(OPEN))
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::looks_like_audio;

    #[test]
    fn audio_is_told_from_other_bytes() {
        assert!(looks_like_audio(b"RIFF\x24\x08\x00\x00WAVEfmt "));
        assert!(looks_like_audio(b"ID3\x04\x00"));
        assert!(looks_like_audio(&[0xFF, 0xFB, 0x90, 0x64]));
        assert!(looks_like_audio(b"\x00\x00\x00\x20ftypM4A "));
        assert!(looks_like_audio(b"OggS\x00\x02"));
        assert!(!looks_like_audio(b"MZ\x90\x00"));
        assert!(!looks_like_audio(b"%PDF-1.7"));
        assert!(!looks_like_audio(b"RIFF\x24\x08\x00\x00AVI "));
        assert!(!looks_like_audio(b""));
    }
}
