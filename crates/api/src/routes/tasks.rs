//! Tasks (SPEC section 13): the list (by due time, none last), creation idempotent on
//! `unique_key`, and changes (a rep only completes or reopens its own). The rules live in
//! `otto_service::tasks`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otto_db::entities::task;
use otto_service::tasks::{self, NewTask, TaskChanges, TaskCursor, TaskError, TaskFilters};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::pagination::{Page, PageQuery};
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::route_list::resource("/v1/tasks")
            .get(list_tasks)
            .post(create_task),
    )
    .service(crate::route_list::resource("/v1/tasks/{id}").patch(patch_task));
}

#[derive(Serialize, ToSchema)]
pub struct Task {
    id: Uuid,
    title: String,
    lead_id: Option<Uuid>,
    assignee_id: Option<String>,
    due_at: Option<String>,
    /// `open|done`.
    status: String,
    unique_key: Option<String>,
    created_at: String,
    completed_at: Option<String>,
}

impl From<task::Model> for Task {
    fn from(row: task::Model) -> Self {
        Self {
            id: row.id,
            title: row.title,
            lead_id: row.lead_id,
            assignee_id: row.assignee_user_id,
            due_at: row.due_at.map(timestamp),
            status: row.status,
            unique_key: row.unique_key,
            created_at: timestamp(row.created_at),
            completed_at: row.completed_at.map(timestamp),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    title: String,
    lead_id: Option<Uuid>,
    /// A user id of the company; a rep's own tasks are its own.
    assignee_id: Option<String>,
    /// RFC 3339.
    due_at: Option<DateTime<Utc>>,
    /// The same key again answers 200 with the existing task.
    unique_key: Option<String>,
}

/// `PATCH /v1/tasks/{id}`: absent fields stay; `null` clears `due_at` or `assignee_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    title: Option<String>,
    /// `open|done`.
    status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    due_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    assignee_id: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, IntoParams)]
pub struct TaskQuery {
    /// `me` or a user id.
    assignee: Option<String>,
    /// `open|done`.
    status: Option<String>,
    lead_id: Option<Uuid>,
    /// RFC 3339: tasks due before.
    due_before: Option<DateTime<Utc>>,
}

fn api_error(err: TaskError) -> ApiError {
    match err {
        TaskError::NotFound => ApiError::NotFound,
        TaskError::Forbidden => {
            ApiError::Forbidden("a rep may only change the status of its own tasks".to_owned())
        }
        TaskError::Service(err) => err.into(),
    }
}

#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", security(("bearer" = [])), params(PageQuery, TaskQuery),
    responses((status = 200, description = "`{items: [Task], next_cursor}`, by due time (none last)"),
        (status = 422, body = crate::problem::Problem, description = "Invalid filter or cursor")))]
pub async fn list_tasks(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    page: web::Query<PageQuery>,
    query: web::Query<TaskQuery>,
) -> Result<web::Json<Page<Task>>, ApiError> {
    let limit = page.limit()?;
    let cursor = page.cursor_decoded(TaskCursor::decode)?;
    let query = query.into_inner();
    let assignee = match query.assignee.as_deref() {
        Some("me") => Some(caller.user_id.to_string()),
        other => other.map(str::to_owned),
    };
    let filters = TaskFilters {
        assignee,
        status: query.status,
        lead_id: query.lead_id,
        due_before: query.due_before,
    };
    let utx = begin(&state, &caller).await?;
    let rows = tasks::list(&utx, &viewer(&caller), &filters, cursor.as_ref(), limit + 1)
        .await
        .map_err(api_error)?;
    utx.finish_read().await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |row| TaskCursor::after(row).encode(),
        Task::from,
    )))
}

#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", security(("bearer" = [])), request_body = TaskRequest,
    responses((status = 201, body = Task, description = "Created; `task.updated` reaches the assignee"),
        (status = 200, body = Task, description = "The task this `unique_key` already names"),
        (status = 422, body = crate::problem::Problem, description = "Invalid title or lead")))]
pub async fn create_task(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    body: web::Json<TaskRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewTask {
        title: body.title,
        lead_id: body.lead_id,
        assignee_id: body.assignee_id,
        due_at: body.due_at,
        unique_key: body.unique_key,
    };
    let utx = begin(&state, &caller).await?;
    let (row, created) = tasks::create(&utx, new).await.map_err(api_error)?;
    if created {
        utx.commit(&state.ctx).await?;
    } else {
        utx.rollback().await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(Task::from(row)))
}

#[utoipa::path(patch, path = "/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])), request_body = TaskPatch,
    responses((status = 200, body = Task, description = "Changed; `task.updated` reaches the assignee"),
        (status = 403, body = crate::problem::Problem, description = "A rep changing more than its own task's status"),
        (status = 404, body = crate::problem::Problem, description = "Not found (or not the rep's)"),
        (status = 422, body = crate::problem::Problem, description = "Invalid input")))]
pub async fn patch_task(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    id: web::Path<Uuid>,
    body: web::Json<TaskPatch>,
) -> Result<web::Json<Task>, ApiError> {
    let body = body.into_inner();
    let changes = TaskChanges {
        title: body.title,
        status: body.status,
        due_at: body.due_at,
        assignee_id: body.assignee_id,
    };
    let utx = begin(&state, &caller).await?;
    let row = tasks::update(&utx, &viewer(&caller), *id, changes)
        .await
        .map_err(api_error)?;
    utx.commit(&state.ctx).await?;
    Ok(web::Json(Task::from(row)))
}
