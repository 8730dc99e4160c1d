//! Documents and Ask Otto (SPEC section 14): upload (multipart, sniffed, limited), list,
//! delete; `POST /v1/ask`; and `GET /files/{token}`, the signed URL UWC reads documents and
//! recordings through when storage is a local directory. The rules live in
//! `otto_service::{documents, ask}`.

use actix_multipart::{Field, Multipart};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt;
use otto_db::entities::document;
use otto_service::ask::{self, AskError};
use otto_service::documents::{self, DocumentError, NewDocument, sniff::sniff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{begin, timestamp};
use crate::auth::{AnyRole, Authorized, Leadership};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::rate_limit::{Budget, refuse_if_limited};
use crate::state::ApiState;
use crate::uploads;

/// A multipart envelope around the file (boundaries, headers, the title field).
const ENVELOPE_BYTES: u64 = 64 * 1024;
const MAX_TITLE_FIELD: usize = 4096;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/documents")
            .get(list_documents)
            .post(upload_document),
    )
    .service(crate::route_list::resource("/v1/documents/{id}").delete(delete_document))
    .service(crate::route_list::resource("/v1/ask").post(ask_otto))
    .service(crate::route_list::resource("/files/{token}").get(serve_file));
}

#[derive(Serialize, ToSchema)]
pub struct Document {
    id: Uuid,
    title: String,
    content_type: String,
    size_bytes: i64,
    /// `uploaded|indexed|failed`.
    status: String,
    created_at: String,
}

impl From<document::Model> for Document {
    fn from(row: document::Model) -> Self {
        Self {
            id: row.id,
            title: row.title,
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            status: row.status,
            created_at: timestamp(row.created_at),
        }
    }
}

/// Multipart form of `POST /v1/documents`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DocumentUpload {
    /// pdf, txt, md or docx; at most `MAX_DOCUMENT_MB`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    title: Option<String>,
}

fn document_error(err: DocumentError) -> ApiError {
    match err {
        DocumentError::NotFound => ApiError::NotFound,
        DocumentError::Service(err) => err.into(),
        DocumentError::Uwc(err) => ApiError::Unavailable(err.into()),
        DocumentError::Storage(err) => ApiError::Unavailable(err.into()),
    }
}

#[utoipa::path(post, path = "/v1/documents", tag = "documents", security(("bearer" = [])),
    request_body(content = DocumentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Document, description = "Stored; indexing follows"),
        (status = 413, body = crate::problem::Problem, description = "Over MAX_DOCUMENT_MB; nothing stored"),
        (status = 415, body = crate::problem::Problem, description = "Not a pdf, txt, md or docx (by content)"),
        (status = 422, body = crate::problem::Problem, description = "No file, or an invalid title")))]
pub async fn upload_document(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    req: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let limit = state.ctx.config.storage.max_document_bytes;
    uploads::refuse_announced_oversize(&req, limit, ENVELOPE_BYTES)?;
    let id = Uuid::now_v7();
    let key = documents::object_key(&caller.tenant_id, id);
    let mut title = None;
    let mut stored = None;
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| ApiError::validation("body", e.to_string()))?;
        match field.name() {
            Some("title") => title = Some(read_text(field).await?),
            Some("file") if stored.is_none() => {
                let file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or_default()
                    .to_owned();
                let (kind, size) = uploads::store(&state.ctx.storage, &key, limit, field, |head| {
                    sniff(&file_name, head).ok_or(ApiError::UnsupportedMediaType)
                })
                .await?;
                stored = Some((file_name, kind, size));
            }
            _ => drain(field).await?,
        }
    }
    let Some((file_name, kind, size)) = stored else {
        return Err(ApiError::validation("file", "is required"));
    };
    let recorded = async {
        let new = NewDocument {
            id,
            title: documents::title_of(title.as_deref(), &file_name)?,
            content_type: kind.content_type().to_owned(),
            size_bytes: size,
            storage_key: key.clone(),
            created_by: caller.user_id.clone(),
        };
        let utx = begin(&state, &caller).await?;
        let row = documents::record(&utx, new).await?;
        utx.commit(&state.ctx).await?;
        Ok::<_, ApiError>(row)
    }
    .await;
    match recorded {
        Ok(row) => Ok(HttpResponse::build(StatusCode::CREATED).json(Document::from(row))),
        Err(err) => {
            // No row: the bytes must not stay behind.
            let _ = state.ctx.storage.delete(&key).await;
            Err(err)
        }
    }
}

async fn read_text(mut field: Field) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| ApiError::validation("title", e.to_string()))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_TITLE_FIELD {
            return Err(ApiError::validation("title", "is too long"));
        }
    }
    String::from_utf8(bytes).map_err(|_| ApiError::validation("title", "is not UTF-8"))
}

async fn drain(mut field: Field) -> Result<(), ApiError> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(|e| ApiError::validation("body", e.to_string()))?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/documents", tag = "documents", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, description = "`{items: [Document], next_cursor}`, newest first")))]
pub async fn list_documents(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Document>>, ApiError> {
    let limit = page.limit()?;
    let before = page.cursor_uuid()?;
    let utx = begin(&state, &caller).await?;
    let rows = documents::list(&utx, before, limit + 1).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| row.id.to_string(),
        Document::from,
    )))
}

#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    responses((status = 204, description = "Deleted, with its stored file"),
        (status = 404, body = crate::problem::Problem, description = "Not a document of the company")))]
pub async fn delete_document(
    state: web::Data<ApiState>,
    caller: Authorized<Leadership>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let utx = begin(&state, &caller).await?;
    let key = documents::remove(&utx, *id).await.map_err(document_error)?;
    utx.commit(&state.ctx).await?;
    if let Some(key) = key
        && let Err(err) = state.ctx.storage.delete(&key).await
    {
        tracing::warn!(error = %err, key = key.as_str(), "document row deleted but its object remains");
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    question: String,
    /// Narrows the answer to one lead's calls and documents.
    lead_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Citation {
    /// `document|call`.
    kind: &'static str,
    id: Uuid,
    snippet: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AskAnswer {
    answer: String,
    citations: Vec<Citation>,
}

#[utoipa::path(post, path = "/v1/ask", tag = "documents", security(("bearer" = [])), request_body = AskRequest,
    responses((status = 200, body = AskAnswer, description = "UWC's answer; citations are the company's own documents and calls"),
        (status = 422, body = crate::problem::Problem, description = "Empty question or unknown lead"),
        (status = 429, body = crate::problem::Problem, description = "Over RATE_LIMIT_ASK"),
        (status = 503, body = crate::problem::Problem, description = "RAG disabled or UWC unavailable: no answer")))]
pub async fn ask_otto(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    body: web::Json<AskRequest>,
) -> Result<web::Json<AskAnswer>, ApiError> {
    let budget = Budget {
        key: format!("tenant:{}:user:{}:ask", caller.tenant_id, caller.user_id),
        limit: state.ctx.config.rate_limits.ask,
        kind: "user",
    };
    refuse_if_limited(state.rate_limiter.check(&[budget]).await, "/v1/ask")?;
    let utx = begin(&state, &caller).await?;
    let answered = ask::ask(&utx, state.rag.as_deref(), &body.question, body.lead_id).await;
    utx.finish_read().await?;
    let answer = answered.map_err(|err| match err {
        AskError::Service(err) => err.into(),
        other => ApiError::Unavailable(other.into()),
    })?;
    Ok(web::Json(AskAnswer {
        answer: answer.answer,
        citations: answer
            .citations
            .into_iter()
            .map(|c| Citation {
                kind: c.kind.as_str(),
                id: c.id,
                snippet: c.snippet,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/files/{token}", tag = "documents",
    responses((status = 200, description = "The file (what the signed URL names)"),
        (status = 403, body = crate::problem::Problem, description = "Tampered or expired URL"),
        (status = 404, body = crate::problem::Problem, description = "The file is gone")))]
pub async fn serve_file(
    state: web::Data<ApiState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let grant = state
        .ctx
        .storage
        .open_file_token(&token, Utc::now())
        .map_err(|err| ApiError::Forbidden(err.to_string()))?;
    let (size, stream) = match state.ctx.storage.read(&grant.key).await {
        Ok(found) => found,
        Err(otto_runtime::storage::StorageError::NotFound) => return Err(ApiError::NotFound),
        Err(err) => return Err(ApiError::Unavailable(err.into())),
    };
    Ok(HttpResponse::Ok()
        .content_type(grant.content_type)
        .no_chunking(size)
        .streaming(stream))
}
