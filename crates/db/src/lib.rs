//! Otto's database layer: entities, connection, the tenant-scoped access handle, and the stores
//! the runtime builds on (transactional outbox, database job queue, worker heartbeats).

pub mod connection;
mod database;
pub mod entities;
pub mod errors;
pub mod group_commit;
pub mod heartbeats;
pub mod idempotency;
pub mod job_store;
pub mod outbox;
mod pg_literal;
pub mod read_connections;
pub mod schedule_runs;
pub mod shunya_jobs;
pub mod tenant_conn;
pub mod tenant_scope;
pub mod unit_of_work;

pub use connection::{DbSettings, applied_migrations, connect, migrate};
pub use database::Database;
pub use errors::DbErrorKind;
pub use sea_orm::{DatabaseConnection, DbErr};
pub use tenant_conn::TxnConn;
pub use tenant_scope::TenantScope;
pub use unit_of_work::{CommitSink, TenantTxn, UnitOfWorkError};
