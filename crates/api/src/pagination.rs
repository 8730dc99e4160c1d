//! Cursor pagination (SPEC section 3): `?limit=` 1..200 (default 50) and `?cursor=`; bodies are
//! `{"items": [...], "next_cursor": "..." | null}`. Cursors are opaque to clients.

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1..200, default 50.
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    /// # Errors
    /// 422 outside 1..=200.
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::validation(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The cursor of lists ordered by a text key (Clerk ids), as given.
    pub fn cursor_text(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The cursor of id-ordered lists.
    ///
    /// # Errors
    /// 422 when the cursor was not produced by this API.
    pub fn cursor_uuid(&self) -> Result<Option<Uuid>, ApiError> {
        self.cursor_decoded(|raw| Uuid::parse_str(raw).ok())
    }

    /// The cursor of a list with a keyset of its own, read by `decode`.
    ///
    /// # Errors
    /// 422 when `decode` does not recognise it (not a cursor this API issued).
    pub fn cursor_decoded<T>(
        &self,
        decode: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.cursor
            .as_deref()
            .map(|raw| {
                decode(raw).ok_or_else(|| {
                    ApiError::validation("cursor", "is not a cursor this API issued")
                })
            })
            .transpose()
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: the extra row only tells that a next page exists.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        cursor_of: impl Fn(&R) -> String,
        map: impl Fn(R) -> T,
    ) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}
