//! The database handle a process shares: sea-orm's connection (the pool) and, on PostgreSQL,
//! the connections reads keep between requests (see `read_connections`). It derefs to the
//! sea-orm connection, so whatever takes a `&DatabaseConnection` takes a `&Database`. As a
//! `ConnectionTrait` itself (code generic over the connection, or taking `&Database`), its
//! queries run on the kept connections too: a system read such as a webhook's tenant lookup
//! then skips the pool's ping as tenant reads do. Statements that return no rows use the pool.

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, ExecResult, QueryResult, Statement,
};

use crate::read_connections::ReadConnections;
use crate::tenant_conn::{conn_err, query_err, sqlx_query};

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
        match &self.reads {
            Some(reads) => Ok(kept_rows(reads, &stmt)
                .await?
                .into_iter()
                .next()
                .map(QueryResult::from)),
            None => self.conn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.reads {
            Some(reads) => Ok(kept_rows(reads, &stmt)
                .await?
                .into_iter()
                .map(QueryResult::from)
                .collect()),
            None => self.conn.query_all_raw(stmt).await,
        }
    }
}

/// `stmt`'s rows, prepared (and cached) on a kept connection, outside any transaction.
async fn kept_rows(reads: &Arc<ReadConnections>, stmt: &Statement) -> Result<Vec<PgRow>, DbErr> {
    let mut read = reads.take().await.map_err(conn_err)?;
    let rows = sqlx_query(stmt)
        .fetch_all(read.exchange().map_err(conn_err)?)
        .await;
    read.settle(&rows);
    rows.map_err(query_err)
}
