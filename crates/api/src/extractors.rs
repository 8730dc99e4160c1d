//! Extractor configuration: malformed JSON, path or query input becomes a 422 problem with
//! `errors: [{field, message}]`; oversized bodies 413; a wrong content type 415.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::error::ApiError;

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(json_error)
}

pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::default().limit(limit)
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req: &HttpRequest| {
        let PathError::Deserialize(err) = err else {
            return ApiError::validation("path", "invalid path parameter").into();
        };
        ApiError::validation("path", err.to_string()).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req: &HttpRequest| {
        let message = match err {
            QueryPayloadError::Deserialize(err) => err.to_string(),
            _ => "invalid query string".to_owned(),
        };
        let field = field_named_in(&message).unwrap_or_else(|| "query".to_owned());
        ApiError::validation(field, message).into()
    })
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge.into()
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType.into(),
        JsonPayloadError::Deserialize(err) => {
            let message = strip_position(&err.to_string());
            let field = field_named_in(&message).unwrap_or_else(|| "body".to_owned());
            ApiError::validation(field, message).into()
        }
        other => ApiError::validation("body", other.to_string()).into(),
    }
}

/// serde names the offending field in backticks in some messages ("missing field `name`");
/// other messages quote values, not fields, so only these are trusted.
fn field_named_in(message: &str) -> Option<String> {
    const NAMING_FIELD: [&str; 3] = ["missing field", "unknown field", "duplicate field"];
    if !NAMING_FIELD
        .iter()
        .any(|prefix| message.starts_with(prefix))
    {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Drops serde_json's " at line 1 column 9" suffix, which means nothing to an API client.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_taken_from_serde_messages() {
        assert_eq!(
            field_named_in("missing field `name`").as_deref(),
            Some("name")
        );
        assert_eq!(field_named_in("expected value").as_deref(), None);
        assert_eq!(
            field_named_in("provided string was not `true` or `false`"),
            None
        );
        assert_eq!(
            strip_position("missing field `name` at line 1 column 2"),
            "missing field `name`"
        );
    }
}
