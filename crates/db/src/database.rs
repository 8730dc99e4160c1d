//! The database handle a process shares: sea-orm's connection (the pool) and, on PostgreSQL,
//! the connections tenant reads keep between requests (see `read_connections`). It derefs to the
//! sea-orm connection, so whatever takes a `&DatabaseConnection` takes a `&Database`.

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, ExecResult, QueryResult, Statement,
};

use crate::read_connections::ReadConnections;

#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    reads: Option<Arc<ReadConnections>>,
}

impl Database {
    /// `conn`, whose tenant reads keep up to `read_connections` connections of their own on
    /// PostgreSQL (0: they use the pool).
    pub fn new(conn: DatabaseConnection, read_connections: usize) -> Self {
        let reads = (conn.get_database_backend() == DatabaseBackend::Postgres).then(|| {
            ReadConnections::new(
                conn.get_postgres_connection_pool().clone(),
                read_connections,
            )
        });
        Self { conn, reads }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Closes the pool; the kept connections close as their last reads end.
    ///
    /// # Errors
    /// On database failure.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(reads) = &self.reads {
            reads.discard_idle();
        }
        self.conn.close().await
    }

    /// Where tenant reads take their connections (PostgreSQL only).
    pub(crate) fn reads(&self) -> Option<&Arc<ReadConnections>> {
        self.reads.as_ref()
    }
}

/// Tenant reads use the pool.
impl From<DatabaseConnection> for Database {
    fn from(conn: DatabaseConnection) -> Self {
        Self::new(conn, 0)
    }
}

impl Deref for Database {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.conn
    }
}

#[async_trait]
impl ConnectionTrait for Database {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.conn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.conn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.conn.query_all_raw(stmt).await
    }
}
