//! Documents for Ask Otto (SPEC section 14): an upload is streamed to object storage under
//! `{company}/documents/{id}`, recorded `uploaded` with a `documents.index` job in the same unit
//! of work, handed to UWC's `index_document` with a URL it can read for an hour, and set
//! `indexed` or `failed` by UWC's `rag/indexed` callback (`document.indexed`). Deleting a
//! document removes its row, then its object.

pub mod sniff;

use std::time::Duration;

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::document;
use otto_domain::catalog::DOCUMENT_INDEXED;
use otto_domain::jobs::IndexDocument;
use otto_domain::{TenantId, UserId};
use otto_integrations::uwc::{IndexRequest, UwcClient, UwcError};
use otto_runtime::AppContext;
use otto_runtime::storage::{ObjectKey, StorageError};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;

pub const UPLOADED: &str = "uploaded";
pub const INDEXED: &str = "indexed";
pub const FAILED: &str = "failed";
/// The `{kind}` of document objects' keys.
pub const OBJECT_KIND: &str = "documents";
const MAX_TITLE: usize = 200;
/// How long UWC may take to fetch a document it was asked to index.
const INDEX_URL_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Uwc(#[from] UwcError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for DocumentError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

/// A document whose bytes are already stored.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: Uuid,
    pub title: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub storage_key: ObjectKey,
    pub created_by: UserId,
}

/// The title given, else the file name without its directory.
pub fn title_of(given: Option<&str>, file_name: &str) -> Result<String, ServiceError> {
    let title = given
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| file_name.rsplit(['/', '\\']).next().unwrap_or(file_name))
        .trim()
        .to_owned();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(ServiceError::invalid(
            "title",
            format!("must be 1-{MAX_TITLE} characters"),
        ));
    }
    Ok(title)
}

/// Records an uploaded document and enqueues its indexing.
///
/// # Errors
/// On database failure.
pub async fn record(utx: &TenantTxn, new: NewDocument) -> Result<document::Model, ServiceError> {
    let now = Utc::now();
    let row = document::ActiveModel {
        id: Set(new.id),
        company_id: Set(utx.tenant().to_string()),
        title: Set(new.title),
        content_type: Set(new.content_type),
        storage_key: Set(Some(new.storage_key.as_str().to_owned())),
        status: Set(UPLOADED.to_owned()),
        uwc_document_id: Set(None),
        size_bytes: Set(i64::try_from(new.size_bytes).unwrap_or(i64::MAX)),
        created_by: Set(Some(new.created_by.to_string())),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let created = utx.scope().insert(row).await?;
    utx.enqueue(&IndexDocument {
        tenant_id: utx.tenant().clone(),
        document_id: new.id,
        trace_id: utx.trace().clone(),
    })?;
    Ok(created)
}

/// The tenant's documents, newest first, after `before` (an id: ids are time-ordered).
///
/// # Errors
/// On database failure.
pub async fn list(
    utx: &TenantTxn,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<document::Model>, ServiceError> {
    let mut query = utx.scope().select::<document::Entity>();
    if let Some(before) = before {
        query = query.filter(document::Column::Id.lt(before));
    }
    Ok(query
        .order_by_desc(document::Column::Id)
        .limit(limit)
        .all(utx.conn())
        .await?)
}

/// Removes the document's row; returns its object's key for the caller to delete after the
/// commit (a failed commit must not leave a row without its bytes).
///
/// # Errors
/// `NotFound` for a document of no such id in the tenant.
pub async fn remove(utx: &TenantTxn, id: Uuid) -> Result<Option<ObjectKey>, DocumentError> {
    let Some(row) = utx.scope().find_by_id::<document::Entity, _>(id).await? else {
        return Err(DocumentError::NotFound);
    };
    utx.scope()
        .delete_many::<document::Entity>()
        .filter(document::Column::Id.eq(id))
        .exec(utx.conn())
        .await?;
    Ok(row.storage_key.map(ObjectKey::stored))
}

/// The `documents.index` job: a URL UWC can read, `index_document`, and UWC's job id kept on
/// the document so its `rag/indexed` callback finds it. A document deleted meanwhile is skipped;
/// one already handed over is not handed over again.
///
/// # Errors
/// UWC or storage failures (retried), database failures.
pub async fn index(
    ctx: &AppContext,
    uwc: &UwcClient,
    job: &IndexDocument,
) -> Result<(), DocumentError> {
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    let Some(doc) = utx
        .scope()
        .find_by_id::<document::Entity, _>(job.document_id)
        .await?
    else {
        utx.rollback().await?;
        return Ok(());
    };
    utx.rollback().await?;
    if doc.uwc_document_id.is_some() {
        return Ok(());
    }
    let Some(key) = doc.storage_key.clone().map(ObjectKey::stored) else {
        return Err(DocumentError::NotFound);
    };
    let content_url = ctx
        .storage
        .read_url(&key, &doc.content_type, INDEX_URL_TTL)
        .await?;
    let accepted = uwc
        .index_document(&IndexRequest {
            company_id: job.tenant_id.to_string(),
            document_id: doc.id.to_string(),
            title: doc.title.clone(),
            content_url,
            callback_url: ctx
                .config
                .http
                .public_base_url
                .as_ref()
                .map(|base| format!("{}/webhooks/uwc/rag/indexed", base.trim_end_matches('/'))),
        })
        .await?;
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    utx.scope()
        .update_many::<document::Entity>()
        .col_expr(
            document::Column::UwcDocumentId,
            Expr::value(accepted.job_id),
        )
        .col_expr(document::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(document::Column::Id.eq(doc.id))
        .exec(utx.conn())
        .await?;
    utx.commit(ctx).await.map_err(ServiceError::from)?;
    Ok(())
}

/// UWC's `rag/indexed` callback: the document it names (by `document_id`, else by UWC's job
/// id) becomes `indexed` or `failed`, once, with `document.indexed`.
///
/// # Errors
/// On database failure.
pub async fn mark_indexed(
    utx: &TenantTxn,
    document_id: Option<Uuid>,
    uwc_job_id: &str,
    succeeded: bool,
) -> Result<Option<document::Model>, ServiceError> {
    let status = if succeeded { INDEXED } else { FAILED };
    let target = match document_id {
        Some(id) => document::Column::Id.eq(id),
        None => document::Column::UwcDocumentId.eq(uwc_job_id),
    };
    let changed = utx
        .scope()
        .update_many::<document::Entity>()
        .col_expr(document::Column::Status, Expr::value(status))
        .col_expr(document::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(target.clone())
        .filter(document::Column::Status.ne(status))
        .exec(utx.conn())
        .await?
        .rows_affected;
    if changed == 0 {
        return Ok(None);
    }
    let row = utx
        .scope()
        .select::<document::Entity>()
        .filter(target)
        .one(utx.conn())
        .await?;
    if let Some(row) = &row {
        utx.emit(utx.event(
            DOCUMENT_INDEXED,
            json!({ "document_id": row.id, "status": row.status }),
        ));
    }
    Ok(row)
}

/// The key a new document of `tenant` is stored under.
pub fn object_key(tenant: &TenantId, id: Uuid) -> ObjectKey {
    ObjectKey::new(tenant, OBJECT_KIND, id)
}
