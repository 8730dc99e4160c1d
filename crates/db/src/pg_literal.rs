//! A prepared PostgreSQL statement rewritten as one self-contained SQL string: every `$n`
//! placeholder replaced by a literal cast to the type the driver would have bound it as. The
//! tenant read path sends it in a simple-protocol batch behind the row-level security context,
//! so a read costs one round trip (see `tenant_conn`).
//!
//! Strings are written as `E'...'` escape strings: their meaning does not depend on the server's
//! `standard_conforming_strings`, and doubling `'` and `\` leaves nothing that can end the literal.
//! A value this module cannot write (a NUL byte, a type it does not know) makes the whole
//! statement `None`, and the caller runs it prepared instead.

use std::fmt::Write;

use sea_orm::sea_query::Value;
use sea_orm::{Statement, Values};

/// `stmt` with its values inlined, or `None` when one cannot be.
pub(crate) fn inline(stmt: &Statement) -> Option<String> {
    let values = stmt
        .values
        .as_ref()
        .map_or(&[][..], |Values(v)| v.as_slice());
    substitute(&stmt.sql, values)
}

/// `'text'` as an escape-string literal; `None` for text PostgreSQL cannot hold (NUL).
pub(crate) fn quote_text(text: &str) -> Option<String> {
    if text.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Some(out)
}

/// Replaces `$n` outside quoted strings and identifiers with the n-th value's literal.
fn substitute(sql: &str, values: &[Value]) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + values.len() * 16);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => i = skip_string(bytes, i)?,
            b'"' => i = skip_until(bytes, i + 1, b'"')?,
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = (i + 1..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                let index: usize = sql[i + 1..end].parse().ok()?;
                let value = values.get(index.checked_sub(1)?)?;
                out.push_str(&sql[copied..i]);
                out.push_str(&literal(value)?);
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// The index just past the string literal opening at `start` (`E'..'` honours backslashes).
fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    let escapes = start > 0 && matches!(bytes[start - 1], b'E' | b'e');
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_until(bytes: &[u8], from: usize, end: u8) -> Option<usize> {
    (from..bytes.len())
        .find(|&j| bytes[j] == end)
        .map(|j| j + 1)
}

const TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.6f";
const TIMESTAMPTZ: &str = "%Y-%m-%dT%H:%M:%S%.6f%:z";

/// A value as the literal of the type `sea-query-sqlx` binds it as.
fn literal(value: &Value) -> Option<String> {
    fn typed(text: Option<String>, pg_type: &str) -> Option<String> {
        match text {
            Some(text) => Some(format!("{}::{pg_type}", quote_text(&text)?)),
            None => Some(format!("NULL::{pg_type}")),
        }
    }
    fn number<T: ToString>(n: &Option<T>, pg_type: &str) -> Option<String> {
        Some(match n {
            Some(n) => format!("'{}'::{pg_type}", n.to_string()),
            None => format!("NULL::{pg_type}"),
        })
    }
    match value {
        Value::Bool(b) => Some(match b {
            Some(b) => format!("{b}::boolean"),
            None => "NULL::boolean".to_owned(),
        }),
        Value::TinyInt(n) => number(n, "int2"),
        Value::SmallInt(n) => number(n, "int2"),
        Value::Int(n) => number(n, "int4"),
        Value::BigInt(n) => number(n, "int8"),
        Value::TinyUnsigned(n) => number(n, "int2"),
        Value::SmallUnsigned(n) => number(n, "int4"),
        Value::Unsigned(n) => number(n, "int8"),
        Value::BigUnsigned(n) => number(n, "int8"),
        Value::Float(n) => float(n.map(f64::from), "float4"),
        Value::Double(n) => float(*n, "float8"),
        Value::String(s) => typed(s.clone(), "text"),
        Value::Char(c) => typed(c.map(String::from), "text"),
        Value::Json(j) => typed(j.as_ref().map(|j| j.to_string()), "jsonb"),
        Value::Uuid(u) => number(u, "uuid"),
        Value::ChronoDate(d) => number(d, "date"),
        // Microseconds, truncated, as the driver binds them (PostgreSQL would round nanoseconds).
        Value::ChronoTime(t) => number(&t.map(|t| t.format("%H:%M:%S%.6f")), "time"),
        Value::ChronoDateTime(t) => number(&t.map(|t| t.format(TIMESTAMP)), "timestamp"),
        Value::ChronoDateTimeUtc(t) => number(&t.map(|t| t.format(TIMESTAMPTZ)), "timestamptz"),
        Value::ChronoDateTimeWithTimeZone(t) => {
            number(&t.map(|t| t.format(TIMESTAMPTZ)), "timestamptz")
        }
        _ => None,
    }
}

/// Finite floats in full precision; NaN and infinities in PostgreSQL's spelling.
fn float(n: Option<f64>, pg_type: &str) -> Option<String> {
    let Some(n) = n else {
        return Some(format!("NULL::{pg_type}"));
    };
    let mut out = String::new();
    let text = if n.is_nan() {
        "NaN".to_owned()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        format!("{n:?}")
    };
    write!(out, "'{text}'::{pg_type}").ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use sea_orm::DatabaseBackend;

    fn stmt(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
    }

    #[test]
    fn quotes_cannot_be_escaped_from() {
        assert_eq!(quote_text("o'brien").as_deref(), Some("E'o''brien'"));
        assert_eq!(quote_text(r"a\'; DROP").as_deref(), Some(r"E'a\\''; DROP'"));
        assert_eq!(quote_text("nul\0byte"), None);
    }

    #[test]
    fn placeholders_become_typed_literals_in_order() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 3, 4, 5).single();
        let sql = stmt(
            r#"SELECT "a" FROM "t" WHERE "c" = $1 AND "id" < $2 AND "n" = $10 AND "at" > $3 LIMIT $4"#,
            vec![
                Value::String(Some("org_1".into())),
                Value::Uuid(Some(uuid::Uuid::nil())),
                Value::ChronoDateTimeUtc(at),
                Value::BigUnsigned(Some(51)),
                Value::Int(None),
                Value::Bool(Some(true)),
                Value::Double(Some(0.5)),
                Value::Json(Some(Box::new(serde_json::json!({"k": "it's"})))),
                Value::Char(Some('x')),
                Value::Int(Some(-7)),
            ],
        );
        assert_eq!(
            inline(&sql).as_deref(),
            Some(
                "SELECT \"a\" FROM \"t\" WHERE \"c\" = E'org_1'::text AND \"id\" < \
                 '00000000-0000-0000-0000-000000000000'::uuid AND \"n\" = '-7'::int4 AND \"at\" > \
                 '2026-11-30T03:04:05.000000+00:00'::timestamptz LIMIT '51'::int8"
            )
        );
    }

    #[test]
    fn dollars_inside_strings_and_identifiers_are_left_alone() {
        let sql = stmt(
            r#"SELECT '$1', E'\'$1', "$1" FROM t WHERE a = $1"#,
            vec![Value::Int(Some(3))],
        );
        assert_eq!(
            inline(&sql).as_deref(),
            Some(r#"SELECT '$1', E'\'$1', "$1" FROM t WHERE a = '3'::int4"#)
        );
    }

    #[test]
    fn what_cannot_be_written_is_refused_not_mangled() {
        assert_eq!(inline(&stmt("SELECT $2", vec![Value::Int(Some(1))])), None);
        assert_eq!(
            inline(&stmt("SELECT $1", vec![Value::String(Some("a\0".into()))])),
            None
        );
        assert_eq!(inline(&stmt("SELECT 'open", vec![])), None);
        assert_eq!(
            inline(&stmt("SELECT $1", vec![Value::Bytes(Some(vec![1]))])),
            None
        );
    }
}
