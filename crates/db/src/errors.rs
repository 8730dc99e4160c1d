use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What a database error means to a caller, decided once here so every layer maps it the same
/// way (not found -> 404, unique violation -> 409, unavailable -> 503, anything else -> 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    NotFound,
    UniqueViolation,
    Unavailable,
    Other,
}

impl DbErrorKind {
    pub fn of(err: &DbErr) -> Self {
        if matches!(err, DbErr::RecordNotFound(_)) {
            return Self::NotFound;
        }
        if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return Self::UniqueViolation;
        }
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable,
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_unavailable(e.as_ref()) =>
            {
                Self::Unavailable
            }
            _ => Self::Other,
        }
    }
}

fn is_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| is_unavailable_state(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs of a server going away or not yet back: class 08 (connection
/// exception) and class 57P (a shutdown ending the session, or "starting up").
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P")
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_state;

    #[test]
    fn a_server_shutting_down_or_starting_is_unavailable_not_a_bug() {
        for code in ["57P01", "57P02", "57P03", "08006", "08001"] {
            assert!(is_unavailable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "40001", "22P02"] {
            assert!(!is_unavailable_state(code), "{code}");
        }
    }
}
