//! Text messages (SPEC section 13): `GET /v1/messages?lead_id=`, newest first; a rep sees the
//! messages of its own leads.

use actix_web::web;
use otto_db::entities::message;
use otto_service::messages;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/messages").get(list_messages));
}

#[derive(Serialize, ToSchema)]
pub struct Message {
    id: Uuid,
    lead_id: Option<Uuid>,
    /// `inbound|outbound`.
    direction: String,
    from: String,
    to: String,
    body: String,
    status: String,
    provider_sid: Option<String>,
    created_at: String,
}

impl From<message::Model> for Message {
    fn from(row: message::Model) -> Self {
        Self {
            id: row.id,
            lead_id: row.lead_id,
            direction: row.direction,
            from: row.from_number,
            to: row.to_number,
            body: row.body,
            status: row.status,
            provider_sid: row.provider_sid,
            created_at: timestamp(row.created_at),
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct MessageQuery {
    lead_id: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/messages", tag = "messages", security(("bearer" = [])), params(PageQuery, MessageQuery),
    responses((status = 200, description = "`{items: [Message], next_cursor}`"),
        (status = 422, body = crate::problem::Problem, description = "Invalid cursor")))]
pub async fn list_messages(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    query: web::Query<MessageQuery>,
) -> Result<web::Json<Page<Message>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_uuid()?;
    let utx = begin(&state, &caller).await?;
    let rows = messages::list(&utx, &viewer(&caller), query.lead_id, cursor, limit + 1).await?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| row.id.to_string(),
        Message::from,
    )))
}
