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
    matches!(
        err,
        Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::WorkerCrashed
    )
}
