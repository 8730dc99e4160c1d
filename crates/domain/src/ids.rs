//! Typed identifiers. A `TenantId` can never be passed where a `UserId` is expected, and each is
//! validated once when it is built.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainError;

/// Longest external identifier we accept (Clerk ids are ~32 characters).
const MAX_EXTERNAL_ID_LEN: usize = 128;

macro_rules! external_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                let ok = !value.is_empty()
                    && value.len() <= MAX_EXTERNAL_ID_LEN
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
                if ok {
                    Ok(Self(value))
                } else {
                    Err(DomainError::invalid(
                        $field,
                        "must be 1-128 characters of letters, digits, '_', '-', '.' or ':'",
                    ))
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = DomainError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7), so ids sort by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

external_id!(
    /// A tenant: one customer company. Equal to its Clerk organization id (`org_...`).
    TenantId,
    "tenant_id"
);
external_id!(
    /// A person who signs in. Equal to their Clerk user id (`user_...`).
    UserId,
    "user_id"
);

uuid_id!(LeadId);
uuid_id!(CallId);
uuid_id!(AppointmentId);
uuid_id!(TaskId);

/// The id that threads one request's logs, errors, events and jobs together: the caller's
/// `X-Request-Id`, else the trace id of its W3C `traceparent`, else a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    /// Longest caller-supplied id we echo back; anything longer is replaced.
    const MAX_LEN: usize = 128;

    pub fn generate() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// Accepts a caller-supplied id if it is printable ASCII without spaces and not too long,
    /// so it is safe to echo in a header and a log line.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
        ok.then(|| Self(value.to_owned()))
    }

    /// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace, 32)
            && trace.bytes().any(|b| b != b'0')
            && hex(parent, 16)
            && hex(flags, 2);
        valid.then(|| Self(trace.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_validated() {
        assert!(TenantId::try_from("org_2abcDEF").is_ok());
        assert!(TenantId::try_from("").is_err());
        assert!(TenantId::try_from("org 1").is_err());
        assert!(TenantId::try_from("x".repeat(129)).is_err());
    }

    #[test]
    fn traceparent_yields_its_trace_id() {
        let id =
            TraceId::from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
        assert_eq!(
            id.map(|t| t.to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(
            TraceId::from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .is_none()
        );
        assert!(TraceId::from_traceparent("garbage").is_none());
    }

    #[test]
    fn request_ids_must_be_header_safe() {
        assert!(TraceId::parse("abc-123").is_some());
        assert!(TraceId::parse("has space").is_none());
        assert!(TraceId::parse("").is_none());
    }
}
