//! Request bodies streamed into object storage: the first bytes are held back until they can be
//! checked (what the file really is), then everything goes out part by part, so an upload of
//! any size costs a few megabytes of memory. Past its limit an upload is aborted: 413, and
//! nothing is stored.

use actix_web::HttpRequest;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use otto_runtime::storage::{ObjectKey, Storage, StorageError};

use crate::error::ApiError;

/// Bytes held back for the check.
pub const HEAD_BYTES: usize = 4096;

/// 413 at once when the request announces more than `limit` bytes (plus `slack` for a
/// multipart envelope), before reading any of it.
///
/// # Errors
/// `PayloadTooLarge`.
pub fn refuse_announced_oversize(
    req: &HttpRequest,
    limit: u64,
    slack: u64,
) -> Result<(), ApiError> {
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit.saturating_add(slack) => Err(ApiError::PayloadTooLarge),
        _ => Ok(()),
    }
}

/// Streams `body` into `key` (replacing any object there); `check` sees the first bytes (up
/// to [`HEAD_BYTES`], or the whole body if shorter) before anything is written and refuses
/// with its own error. Returns what `check` decided and the object's size.
///
/// # Errors
/// `check`'s error, `PayloadTooLarge` past `limit`, `Validation` for a broken body, storage
/// failures (503).
pub async fn store<S, E, T>(
    storage: &Storage,
    key: &ObjectKey,
    limit: u64,
    body: S,
    check: impl FnOnce(&[u8]) -> Result<T, ApiError>,
) -> Result<(T, u64), ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // Fused: some bodies (multipart fields) must not be polled again once they have ended.
    let mut body = body.fuse();
    let mut held: Vec<Bytes> = Vec::new();
    let mut held_len = 0;
    while held_len < HEAD_BYTES {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(broken)?;
                held_len += chunk.len();
                held.push(chunk);
            }
            None => break,
        }
    }
    let head: Vec<u8> = held
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(HEAD_BYTES)
        .collect();
    let decided = check(&head)?;
    let mut writer = storage.writer(key, limit);
    let mut pending = futures_util::stream::iter(held.into_iter().map(Ok::<Bytes, E>)).chain(body);
    while let Some(chunk) = pending.next().await {
        let written = match chunk {
            Ok(chunk) => writer.write(chunk).await.map_err(stored),
            Err(err) => Err(broken(err)),
        };
        if let Err(err) = written {
            writer.abort().await;
            return Err(err);
        }
    }
    let size = writer.finish().await.map_err(stored)?;
    Ok((decided, size))
}

fn broken(err: impl std::fmt::Display) -> ApiError {
    ApiError::validation("body", format!("the upload could not be read: {err}"))
}

fn stored(err: StorageError) -> ApiError {
    match err {
        StorageError::TooLarge { .. } => ApiError::PayloadTooLarge,
        other => ApiError::Unavailable(other.into()),
    }
}
