//! Opening the database (SQLite in embedded mode, PostgreSQL in production) and migrating it.

use std::time::Duration;

use otto_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Pool settings, read from configuration by the runtime crate.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
}

impl DbSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool (SQLite connections configured for concurrent use, see below).
///
/// # Errors
/// When the database cannot be reached or the URL is invalid.
pub async fn connect(settings: &DbSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        .sqlx_logging(false)
        // A busy connection is not pinged before use (sqlx pings on release already); one idle
        // for a second may have been cut, so it is. The tenant session replaces a connection
        // found broken on its first statement once more (see `tenant_conn`).
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        // Every SQLite connection: WAL (readers never wait for the writer), NORMAL sync (safe
        // in WAL), and a busy timeout so concurrent writers queue instead of failing.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(options).await
}

/// Applies every pending migration; a no-op when the schema is current.
///
/// # Errors
/// When a migration fails; it is rolled back on PostgreSQL.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Number of migrations applied so far (used by tests and `otto-api migrate`).
///
/// # Errors
/// When the migrations table cannot be read.
pub async fn applied_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_applied_migrations(db).await?.len())
}
