//! Tasks (SPEC section 13): created by people and by call analysis (one per key signal),
//! idempotent on `unique_key`, listed by due time (no due time last), completed by their
//! assignee. Every change emits `task.updated`, which reaches the assignee's
//! `user:{user_id}:tasks` channel and the lead's timeline.

use chrono::{DateTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{call, lead, task};
use otto_domain::UserId;
use otto_domain::catalog::TASK_UPDATED;
use sea_orm::sea_query::{Expr, NullOrdering, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::visibility::Viewer;

pub const OPEN: &str = "open";
pub const DONE: &str = "done";
pub const STATUSES: [&str; 2] = [OPEN, DONE];
const MAX_TITLE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("not found")]
    NotFound,
    #[error("a rep may only change the status of its own tasks")]
    Forbidden,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for TaskError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> TaskError {
    TaskError::Service(ServiceError::invalid(field, message))
}

fn checked_title(title: &str) -> Result<String, TaskError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(invalid(
            "title",
            format!("must be 1-{MAX_TITLE} characters"),
        ));
    }
    Ok(title.to_owned())
}

fn checked_status(status: &str) -> Result<(), TaskError> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(invalid(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ))
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub title: String,
    pub lead_id: Option<Uuid>,
    pub assignee_id: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub unique_key: Option<String>,
}

/// Creates `new` unless its `unique_key` already names a task of the tenant; the flag says
/// whether it was created. Emits `task.updated` for a new task.
///
/// # Errors
/// `ServiceError::Invalid` (title, lead); database failures.
pub async fn create(utx: &TenantTxn, new: NewTask) -> Result<(task::Model, bool), TaskError> {
    let title = checked_title(&new.title)?;
    let id = Uuid::now_v7();
    let now = Utc::now();
    let row = task::ActiveModel {
        id: Set(id),
        company_id: Set(utx.tenant().to_string()),
        assignee_user_id: Set(new.assignee_id.clone()),
        lead_id: Set(new.lead_id),
        title: Set(title),
        unique_key: Set(new.unique_key.clone()),
        due_at: Set(new.due_at),
        status: Set(OPEN.to_owned()),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // The insert is the unit of work's first statement (a write), so SQLite never upgrades a
    // read lock here.
    let inserted = task::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([task::Column::CompanyId, task::Column::UniqueKey])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(utx.conn())
        .await?;
    if inserted == 0 {
        let existing = utx
            .scope()
            .select::<task::Entity>()
            .filter(task::Column::UniqueKey.eq(new.unique_key.as_deref()))
            .one(utx.conn())
            .await?
            .ok_or(TaskError::NotFound)?;
        return Ok((existing, false));
    }
    if let Some(lead) = new.lead_id {
        crate::calls::require_lead(utx, lead).await?;
    }
    let created = utx
        .scope()
        .find_by_id::<task::Entity, _>(id)
        .await?
        .ok_or(TaskError::NotFound)?;
    emit(utx, &created);
    Ok((created, true))
}

/// Marks the task of `unique_key` done with `outcome` appended to its title (a provider closing
/// the loop, e.g. Bland after a callback); false when there is no such open task.
///
/// # Errors
/// On database failure.
pub async fn complete_by_key(
    utx: &TenantTxn,
    unique_key: &str,
    outcome: &str,
) -> Result<bool, ServiceError> {
    let Some(row) = utx
        .scope()
        .select::<task::Entity>()
        .filter(task::Column::UniqueKey.eq(unique_key))
        .filter(task::Column::Status.eq(OPEN))
        .one(utx.conn())
        .await?
    else {
        return Ok(false);
    };
    let title: String = format!("{} ({outcome})", row.title)
        .chars()
        .take(MAX_TITLE)
        .collect();
    let now = Utc::now();
    let mut active: task::ActiveModel = row.into();
    active.status = Set(DONE.to_owned());
    active.completed_at = Set(Some(now));
    active.title = Set(title);
    active.updated_at = Set(now);
    let updated = task::Entity::update(active).exec(utx.conn()).await?;
    emit(utx, &updated);
    Ok(true)
}

/// `task.updated` on the tenant's channel, the assignee's tasks channel and the lead's timeline.
fn emit(utx: &TenantTxn, row: &task::Model) {
    let mut event = utx.event(
        TASK_UPDATED,
        json!({ "task_id": row.id, "status": row.status, "title": row.title,
                "assignee_id": row.assignee_user_id, "due_at": row.due_at }),
    );
    if let Some(user) = row
        .assignee_user_id
        .as_deref()
        .and_then(|u| UserId::try_from(u).ok())
    {
        event = event.with_user(user);
    }
    if let Some(lead) = row.lead_id {
        event = event.with_lead(lead);
    }
    utx.emit(event);
}

/// One task per key signal of `call`'s analysis (`unique_key = "call:{call_id}:signal:{n}"`,
/// `n` from 1), assigned to the lead's rep; a signal already turned into a task is skipped, so a
/// repeated analysis creates nothing new. Returns how many were created.
///
/// # Errors
/// On database failure.
pub async fn from_key_signals(
    utx: &TenantTxn,
    call: &call::Model,
    key_signals: &[String],
) -> Result<usize, ServiceError> {
    let assignee = match call.lead_id {
        Some(lead) => utx
            .scope()
            .find_by_id::<lead::Entity, _>(lead)
            .await?
            .and_then(|l| l.assigned_user_id),
        None => None,
    };
    let mut created = 0;
    for (n, signal) in key_signals.iter().enumerate() {
        let new = NewTask {
            title: format!("Follow up on call: {signal}"),
            lead_id: call.lead_id,
            assignee_id: assignee.clone(),
            due_at: None,
            unique_key: Some(format!("call:{}:signal:{}", call.id, n + 1)),
        };
        match create(utx, new).await {
            Ok((_, true)) => created += 1,
            Ok((_, false)) => {}
            Err(TaskError::Service(ServiceError::Invalid { message, .. })) => {
                tracing::warn!(%message, "key signal not turned into a task");
            }
            Err(TaskError::Service(err)) => return Err(err),
            Err(TaskError::NotFound | TaskError::Forbidden) => {}
        }
    }
    Ok(created)
}

/// `GET /v1/tasks` filters.
#[derive(Debug, Clone, Default)]
pub struct TaskFilters {
    pub assignee: Option<String>,
    pub status: Option<String>,
    pub lead_id: Option<Uuid>,
    pub due_before: Option<DateTime<Utc>>,
}

/// Where a page ends: the last task's due time (or none) and id.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCursor {
    due: Option<DateTime<Utc>>,
    id: Uuid,
}

impl TaskCursor {
    pub fn after(row: &task::Model) -> Self {
        Self {
            due: row.due_at,
            id: row.id,
        }
    }

    /// `{due_at in ns | -}.{id}`: opaque to clients.
    pub fn encode(&self) -> String {
        let due = self
            .due
            .and_then(|d| d.timestamp_nanos_opt())
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!("{due}.{}", self.id.simple())
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (due, id) = raw.split_once('.')?;
        let due = match due {
            "-" => None,
            nanos => Some(DateTime::from_timestamp_nanos(nanos.parse().ok()?)),
        };
        Some(Self {
            due,
            id: Uuid::parse_str(id).ok()?,
        })
    }

    /// Rows after this one in `due_at` (no due time last), then id, order.
    fn condition(&self) -> Condition {
        let after_id = Condition::all().add(task::Column::Id.gt(self.id));
        match self.due {
            Some(due) => Condition::any()
                .add(task::Column::DueAt.gt(due))
                .add(after_id.add(task::Column::DueAt.eq(due)))
                .add(task::Column::DueAt.is_null()),
            None => after_id.add(task::Column::DueAt.is_null()),
        }
    }
}

/// The tasks the viewer may see (a rep: those assigned to it), by due time, none last.
///
/// # Errors
/// `ServiceError::Invalid` status; database failures.
pub async fn list(
    utx: &TenantTxn,
    viewer: &Viewer,
    filters: &TaskFilters,
    cursor: Option<&TaskCursor>,
    limit: u64,
) -> Result<Vec<task::Model>, TaskError> {
    let mut query = utx
        .scope()
        .select::<task::Entity>()
        .order_by_with_nulls(task::Column::DueAt, Order::Asc, NullOrdering::Last)
        .order_by_asc(task::Column::Id)
        .limit(limit);
    if let Viewer::Rep(user) = viewer {
        query = query.filter(task::Column::AssigneeUserId.eq(user.as_str()));
    }
    if let Some(assignee) = &filters.assignee {
        query = query.filter(task::Column::AssigneeUserId.eq(assignee.as_str()));
    }
    if let Some(status) = &filters.status {
        checked_status(status)?;
        query = query.filter(task::Column::Status.eq(status.as_str()));
    }
    if let Some(lead) = filters.lead_id {
        query = query.filter(task::Column::LeadId.eq(lead));
    }
    if let Some(before) = filters.due_before {
        query = query.filter(task::Column::DueAt.lt(before));
    }
    if let Some(cursor) = cursor {
        query = query.filter(cursor.condition());
    }
    Ok(query.all(utx.conn()).await?)
}

/// `PATCH /v1/tasks/{id}`: absent fields stay; `due_at`/`assignee_id` `Some(None)` clear.
#[derive(Debug, Clone, Default)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub status: Option<String>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub assignee_id: Option<Option<String>>,
}

impl TaskChanges {
    fn status_only(&self) -> bool {
        self.title.is_none() && self.due_at.is_none() && self.assignee_id.is_none()
    }
}

/// Applies `changes` to task `id`: staff change anything; a rep only the status of a task
/// assigned to it (others' tasks are not found). `done` records `completed_at`; `open` clears
/// it. Emits `task.updated`.
///
/// # Errors
/// `NotFound`, `Forbidden`, `ServiceError::Invalid`; database failures.
pub async fn update(
    utx: &TenantTxn,
    viewer: &Viewer,
    id: Uuid,
    changes: TaskChanges,
) -> Result<task::Model, TaskError> {
    if let Viewer::Rep(_) = viewer
        && !changes.status_only()
    {
        return Err(TaskError::Forbidden);
    }
    if let Some(status) = &changes.status {
        checked_status(status)?;
    }
    let now = Utc::now();
    let mut update = utx
        .scope()
        .update_many::<task::Entity>()
        .filter(task::Column::Id.eq(id))
        .col_expr(task::Column::UpdatedAt, Expr::value(now));
    if let Viewer::Rep(user) = viewer {
        update = update.filter(task::Column::AssigneeUserId.eq(user.as_str()));
    }
    if let Some(title) = &changes.title {
        update = update.col_expr(task::Column::Title, Expr::value(checked_title(title)?));
    }
    if let Some(status) = &changes.status {
        let completed = (status == DONE).then_some(now);
        update = update
            .col_expr(task::Column::Status, Expr::value(status.as_str()))
            .col_expr(task::Column::CompletedAt, Expr::value(completed));
    }
    if let Some(due) = changes.due_at {
        update = update.col_expr(task::Column::DueAt, Expr::value(due));
    }
    if let Some(assignee) = changes.assignee_id {
        update = update.col_expr(task::Column::AssigneeUserId, Expr::value(assignee));
    }
    // Write first (see docs/architecture.md on SQLite), then read what was written.
    if update.exec(utx.conn()).await?.rows_affected == 0 {
        return Err(TaskError::NotFound);
    }
    let row = utx
        .scope()
        .find_by_id::<task::Entity, _>(id)
        .await?
        .ok_or(TaskError::NotFound)?;
    emit(utx, &row);
    Ok(row)
}
