//! Booking (SPEC section 13): the one operation the CRM routes, the AI receptionist and the
//! calendar sync share. A booking locks its lead (setting it `booked`) and then its rep (a write
//! to the rep's row), in that order, before it reads anything, so two bookings of one rep's slot
//! run one after the other on PostgreSQL (row locks) and on SQLite (one writer), and the overlap
//! check that follows sees every committed appointment: exactly one wins. The check is an index
//! range on `(company_id, rep_id, scheduled_start)` bounded by the longest appointment.

use chrono::{DateTime, Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, call, company, lead, sales_rep};
use otto_domain::catalog::{
    APPOINTMENT_ASSIGNED, APPOINTMENT_CREATED, APPOINTMENT_UPDATED, LEAD_UPDATED,
};
use otto_domain::{TenantId, UserId};
use otto_runtime::AppContext;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::visibility::Viewer;
use crate::zone::Zone;

/// An appointment lasts at most this long (it bounds the overlap check's index range).
pub const MAX_LENGTH_HOURS: i64 = 24;
pub const STATUSES: [&str; 4] = ["scheduled", "completed", "cancelled", "no_show"];
const SCHEDULED: &str = "scheduled";

#[derive(Debug, thiserror::Error)]
pub enum AppointmentError {
    #[error("not found")]
    NotFound,
    #[error("the rep has a scheduled appointment at that time")]
    Conflict,
    #[error("the appointment changed since it was read")]
    Stale,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for AppointmentError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

impl From<otto_db::UnitOfWorkError> for AppointmentError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        Self::Service(err.into())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AppointmentError {
    AppointmentError::Service(ServiceError::invalid(field, message))
}

/// `POST /v1/appointments`; times as given (RFC 3339, or naive in the company's zone).
#[derive(Debug, Clone, Default)]
pub struct NewAppointment {
    pub lead_id: Uuid,
    pub starts_at: String,
    pub ends_at: String,
    pub title: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub rep_id: Option<Uuid>,
    pub call_id: Option<Uuid>,
    pub external_id: Option<String>,
    /// Without a rep: the company is one calendar, so no scheduled appointment may overlap
    /// (the receptionist's bookings in a company without reps).
    pub company_wide: bool,
}

/// A booking's answer: a new appointment, or the one an `external_id` already names.
#[derive(Debug)]
pub enum Booking {
    Created(appointment::Model),
    Existing(appointment::Model),
}

/// A rep locked for this unit of work.
struct LockedRep {
    id: Uuid,
    user_id: String,
}

/// Takes the rep's row lock (a write, see the module doc); `None` when it is not an active rep
/// of the tenant.
async fn lock_rep(utx: &TenantTxn, rep_id: Uuid) -> Result<Option<LockedRep>, AppointmentError> {
    let locked = utx
        .scope()
        .update_many::<sales_rep::Entity>()
        .filter(sales_rep::Column::Id.eq(rep_id))
        .filter(sales_rep::Column::Active.eq(true))
        .col_expr(sales_rep::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    if locked.rows_affected == 0 {
        return Ok(None);
    }
    let row = utx
        .scope()
        .find_by_id::<sales_rep::Entity, _>(rep_id)
        .await?;
    Ok(row.map(|rep| LockedRep {
        id: rep.id,
        user_id: rep.user_id,
    }))
}

/// Whether the rep has a scheduled appointment overlapping `[starts, ends)` (other than `except`).
async fn overlaps(
    utx: &TenantTxn,
    rep_id: Option<Uuid>,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<bool, AppointmentError> {
    let mut query = utx
        .scope()
        .select::<appointment::Entity>()
        .select_only()
        .column(appointment::Column::Id);
    if let Some(rep_id) = rep_id {
        query = query.filter(appointment::Column::RepId.eq(rep_id));
    }
    let mut query = query
        .filter(appointment::Column::ScheduledStart.gt(starts - Duration::hours(MAX_LENGTH_HOURS)))
        .filter(appointment::Column::ScheduledStart.lt(ends))
        .filter(appointment::Column::ScheduledEnd.gt(starts))
        .filter(appointment::Column::Status.eq(SCHEDULED))
        .limit(1);
    if let Some(id) = except {
        query = query.filter(appointment::Column::Id.ne(id));
    }
    Ok(query.into_tuple::<Uuid>().one(utx.conn()).await?.is_some())
}

fn checked_times(
    zone: &Zone,
    starts_at: &str,
    ends_at: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), AppointmentError> {
    let starts = zone
        .parse_instant(starts_at)
        .map_err(|e| invalid("starts_at", e))?;
    let ends = zone
        .parse_instant(ends_at)
        .map_err(|e| invalid("ends_at", e))?;
    check_span(starts, ends)?;
    Ok((starts, ends))
}

/// An appointment ends after it starts, at most [`MAX_LENGTH_HOURS`] later.
pub(crate) fn check_span(starts: DateTime<Utc>, ends: DateTime<Utc>) -> Result<(), ServiceError> {
    if ends <= starts {
        return Err(ServiceError::invalid("ends_at", "must be after starts_at"));
    }
    if ends - starts > Duration::hours(MAX_LENGTH_HOURS) {
        return Err(ServiceError::invalid(
            "ends_at",
            format!("an appointment lasts at most {MAX_LENGTH_HOURS} hours"),
        ));
    }
    Ok(())
}

/// Books `new` (see the module doc). Sets the lead `booked` and, with `call_id`, the call's
/// `booked`; emits `appointment.created`, `lead.updated` and, with a rep, `appointment.assigned`
/// on the rep's tasks channel; commits.
///
/// # Errors
/// `NotFound` (lead), `ServiceError::Invalid` (times, rep, call, texts), `Conflict`, database failures.
pub async fn book(
    ctx: &AppContext,
    utx: TenantTxn,
    new: NewAppointment,
) -> Result<Booking, AppointmentError> {
    let now = Utc::now();
    // Writes first: the lead, then the rep (lock order), then reads. Nothing here takes a second
    // pool connection while the unit of work holds one (a pool of N would deadlock at N
    // concurrent bookings).
    let booked_lead = utx
        .scope()
        .update_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(new.lead_id))
        .col_expr(lead::Column::Status, Expr::value("booked"))
        .col_expr(
            lead::Column::Version,
            Expr::col(lead::Column::Version).add(1),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(now))
        .exec(utx.conn())
        .await?;
    if booked_lead.rows_affected == 0 {
        return Err(AppointmentError::NotFound);
    }
    let zone = Zone::of_company(utx.conn(), utx.tenant()).await?;
    let (starts, ends) = checked_times(&zone, &new.starts_at, &new.ends_at)?;
    let rep = match new.rep_id {
        Some(rep_id) => Some(
            lock_rep(&utx, rep_id)
                .await?
                .ok_or_else(|| invalid("rep_id", "is not an active rep of the company"))?,
        ),
        None => None,
    };
    if let Some(existing) = existing_by_external_id(&utx, new.external_id.as_deref()).await? {
        utx.rollback().await?;
        return Ok(Booking::Existing(existing));
    }
    if let Some(rep) = &rep
        && overlaps(&utx, Some(rep.id), starts, ends, None).await?
    {
        return Err(AppointmentError::Conflict);
    }
    if rep.is_none() && new.company_wide {
        // The company's row lock orders company-wide bookings as the rep's lock orders a rep's.
        utx.scope()
            .update_many::<company::Entity>()
            .col_expr(company::Column::UpdatedAt, Expr::value(now))
            .exec(utx.conn())
            .await?;
        if overlaps(&utx, None, starts, ends, None).await? {
            return Err(AppointmentError::Conflict);
        }
    }
    if let Some(call_id) = new.call_id {
        let marked = utx
            .scope()
            .update_many::<call::Entity>()
            .filter(call::Column::Id.eq(call_id))
            .col_expr(call::Column::Booked, Expr::value(true))
            .col_expr(call::Column::UpdatedAt, Expr::value(now))
            .exec(utx.conn())
            .await?;
        if marked.rows_affected == 0 {
            return Err(invalid("call_id", "is not a call of the company"));
        }
    }
    let id = Uuid::now_v7();
    let row = appointment::ActiveModel {
        id: Set(id),
        company_id: Set(utx.tenant().to_string()),
        lead_id: Set(new.lead_id),
        rep_user_id: Set(rep.as_ref().map(|r| r.user_id.clone())),
        rep_id: Set(rep.as_ref().map(|r| r.id)),
        external_id: Set(new.external_id.clone()),
        scheduled_start: Set(starts),
        scheduled_end: Set(ends),
        status: Set(SCHEDULED.to_owned()),
        google_event_id: Set(None),
        title: Set(new.title),
        address: Set(new.address),
        notes: Set(new.notes),
        call_id: Set(new.call_id),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = appointment::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                appointment::Column::CompanyId,
                appointment::Column::ExternalId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(utx.conn())
        .await?;
    if inserted == 0 {
        // The same external id committed meanwhile by a booking that shared no lock with this one.
        let tenant = utx.tenant().clone();
        utx.rollback().await?;
        return existing_after_race(ctx, &tenant, new.external_id.as_deref()).await;
    }
    let created = utx
        .scope()
        .find_by_id::<appointment::Entity, _>(id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    let lead_version = utx
        .scope()
        .find_by_id::<lead::Entity, _>(new.lead_id)
        .await?
        .map(|l| l.version);
    emit_booking(&utx, &created, lead_version);
    crate::calendar::outbound::enqueue_if_connected(&utx, created.id).await?;
    utx.commit(ctx).await?;
    Ok(Booking::Created(created))
}

async fn existing_by_external_id(
    utx: &TenantTxn,
    external_id: Option<&str>,
) -> Result<Option<appointment::Model>, AppointmentError> {
    let Some(external_id) = external_id else {
        return Ok(None);
    };
    Ok(utx
        .scope()
        .select::<appointment::Entity>()
        .filter(appointment::Column::ExternalId.eq(external_id))
        .one(utx.conn())
        .await?)
}

async fn existing_after_race(
    ctx: &AppContext,
    tenant: &TenantId,
    external_id: Option<&str>,
) -> Result<Booking, AppointmentError> {
    let utx = TenantTxn::begin(&ctx.db, tenant, otto_domain::TraceId::generate()).await?;
    let existing = existing_by_external_id(&utx, external_id).await?;
    utx.finish_read().await?;
    existing
        .map(Booking::Existing)
        .ok_or(AppointmentError::NotFound)
}

fn emit_booking(utx: &TenantTxn, created: &appointment::Model, lead_version: Option<i32>) {
    emit_appointment(utx, APPOINTMENT_CREATED, created);
    utx.emit(
        utx.event(
            LEAD_UPDATED,
            json!({ "lead_id": created.lead_id, "change": "booked", "status": "booked",
                    "version": lead_version }),
        )
        .with_lead(created.lead_id),
    );
    if created.rep_user_id.is_some() {
        emit_appointment(utx, APPOINTMENT_ASSIGNED, created);
    }
}

/// `appointment.updated` for `row` (also emitted by changes coming from Google).
pub(crate) fn emit_updated(utx: &TenantTxn, row: &appointment::Model) {
    emit_appointment(utx, APPOINTMENT_UPDATED, row);
}

fn emit_appointment(utx: &TenantTxn, name: &'static str, row: &appointment::Model) {
    let mut event = utx
        .event(
            name,
            json!({
                "appointment_id": row.id, "lead_id": row.lead_id, "rep_user_id": row.rep_user_id,
                "starts_at": row.scheduled_start, "status": row.status, "version": row.version,
            }),
        )
        .with_lead(row.lead_id);
    if let Some(user) = row
        .rep_user_id
        .as_deref()
        .and_then(|u| UserId::try_from(u).ok())
    {
        event = event.with_user(user);
    }
    utx.emit(event);
}

/// `PATCH /v1/appointments/{id}`: absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct AppointmentChanges {
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub title: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub status: Option<String>,
}

/// Applies `changes` to appointment `id` at `expected_version` (optimistic locking: a write
/// first, so a stale version is refused before anything is read); a scheduled appointment with
/// a rep moved onto another of the rep's is a conflict. Emits `appointment.updated`; commits.
///
/// # Errors
/// `NotFound`, `Stale`, `ServiceError::Invalid`, `Conflict`, database failures.
pub async fn update(
    ctx: &AppContext,
    utx: TenantTxn,
    id: Uuid,
    expected_version: i32,
    changes: AppointmentChanges,
) -> Result<appointment::Model, AppointmentError> {
    if let Some(status) = &changes.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(invalid(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let bumped = utx
        .scope()
        .update_many::<appointment::Entity>()
        .filter(appointment::Column::Id.eq(id))
        .filter(appointment::Column::Version.eq(expected_version))
        .col_expr(
            appointment::Column::Version,
            Expr::col(appointment::Column::Version).add(1),
        )
        .col_expr(appointment::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    let current = utx
        .scope()
        .find_by_id::<appointment::Entity, _>(id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    if bumped.rows_affected == 0 {
        return Err(AppointmentError::Stale);
    }
    let zone = Zone::of_company(utx.conn(), utx.tenant()).await?;
    let parse = |raw: &Option<String>, field, current| match raw {
        Some(raw) => zone.parse_instant(raw).map_err(|e| invalid(field, e)),
        None => Ok(current),
    };
    let starts = parse(&changes.starts_at, "starts_at", current.scheduled_start)?;
    let ends = parse(&changes.ends_at, "ends_at", current.scheduled_end)?;
    check_span(starts, ends)?;
    let status = changes
        .status
        .clone()
        .unwrap_or_else(|| current.status.clone());
    if let Some(rep_id) = current.rep_id
        && status == SCHEDULED
    {
        lock_rep(&utx, rep_id).await?;
        if overlaps(&utx, Some(rep_id), starts, ends, Some(id)).await? {
            return Err(AppointmentError::Conflict);
        }
    }
    let mut row: appointment::ActiveModel = current.into();
    row.scheduled_start = Set(starts);
    row.scheduled_end = Set(ends);
    row.status = Set(status);
    if let Some(title) = changes.title {
        row.title = Set(Some(title));
    }
    if let Some(address) = changes.address {
        row.address = Set(Some(address));
    }
    if let Some(notes) = changes.notes {
        row.notes = Set(Some(notes));
    }
    let updated = appointment::Entity::update(row).exec(utx.conn()).await?;
    emit_updated(&utx, &updated);
    crate::calendar::outbound::enqueue_if_connected(&utx, updated.id).await?;
    utx.commit(ctx).await?;
    Ok(updated)
}

/// Gives appointment `id` to rep `rep_id` (a conflict when it is scheduled over another of the
/// rep's); emits `appointment.assigned` on the rep's `user:{user_id}:tasks` channel; commits.
///
/// # Errors
/// `NotFound`, `ServiceError::Invalid` (not an active rep), `Conflict`, database failures.
pub async fn assign(
    ctx: &AppContext,
    utx: TenantTxn,
    id: Uuid,
    rep_id: Uuid,
) -> Result<appointment::Model, AppointmentError> {
    let now = Utc::now();
    let touched = utx
        .scope()
        .update_many::<appointment::Entity>()
        .filter(appointment::Column::Id.eq(id))
        .col_expr(appointment::Column::UpdatedAt, Expr::value(now))
        .exec(utx.conn())
        .await?;
    if touched.rows_affected == 0 {
        return Err(AppointmentError::NotFound);
    }
    let rep = lock_rep(&utx, rep_id)
        .await?
        .ok_or_else(|| invalid("rep_id", "is not an active rep of the company"))?;
    let current = utx
        .scope()
        .find_by_id::<appointment::Entity, _>(id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    if current.status == SCHEDULED
        && overlaps(
            &utx,
            Some(rep.id),
            current.scheduled_start,
            current.scheduled_end,
            Some(id),
        )
        .await?
    {
        return Err(AppointmentError::Conflict);
    }
    let version = current.version + 1;
    let mut row: appointment::ActiveModel = current.into();
    row.rep_id = Set(Some(rep.id));
    row.rep_user_id = Set(Some(rep.user_id));
    row.version = Set(version);
    let updated = appointment::Entity::update(row).exec(utx.conn()).await?;
    emit_appointment(&utx, APPOINTMENT_ASSIGNED, &updated);
    utx.commit(ctx).await?;
    Ok(updated)
}

/// `GET /v1/appointments` filters; `from`/`to` bound `starts_at` (RFC 3339 or naive local).
#[derive(Debug, Clone, Default)]
pub struct AppointmentFilters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub rep_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub status: Option<String>,
}

/// Where a page of the list (ordered by `starts_at`, then id) ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ListCursor {
    starts: DateTime<Utc>,
    id: Uuid,
}

impl ListCursor {
    pub fn after(row: &appointment::Model) -> Self {
        Self {
            starts: row.scheduled_start,
            id: row.id,
        }
    }

    /// `{starts_at in ns}.{id}`: opaque to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.starts.timestamp_nanos_opt().unwrap_or(i64::MAX),
            self.id.simple()
        )
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (at, id) = raw.split_once('.')?;
        Some(Self {
            starts: DateTime::from_timestamp_nanos(at.parse().ok()?),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

fn visible(utx: &TenantTxn, viewer: &Viewer) -> sea_orm::Select<appointment::Entity> {
    let query = utx.scope().select::<appointment::Entity>();
    match viewer {
        Viewer::Company => query,
        Viewer::Rep(user) => query.filter(appointment::Column::RepUserId.eq(user.as_str())),
    }
}

/// Up to `limit` appointments the viewer may see (a rep: its own), by `starts_at` ascending.
///
/// # Errors
/// `ServiceError::Invalid` for an unreadable bound or status; database failures.
pub async fn list(
    utx: &TenantTxn,
    viewer: &Viewer,
    filters: &AppointmentFilters,
    cursor: Option<&ListCursor>,
    limit: u64,
) -> Result<Vec<appointment::Model>, AppointmentError> {
    let zone = Zone::of_company(utx.conn(), utx.tenant()).await?;
    let mut query = visible(utx, viewer)
        .order_by_asc(appointment::Column::ScheduledStart)
        .order_by_asc(appointment::Column::Id)
        .limit(limit);
    if let Some(from) = &filters.from {
        let from = zone.parse_instant(from).map_err(|e| invalid("from", e))?;
        query = query.filter(appointment::Column::ScheduledStart.gte(from));
    }
    if let Some(to) = &filters.to {
        let to = zone.parse_instant(to).map_err(|e| invalid("to", e))?;
        query = query.filter(appointment::Column::ScheduledStart.lt(to));
    }
    if let Some(status) = &filters.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
        query = query.filter(appointment::Column::Status.eq(status.as_str()));
    }
    if let Some(rep) = filters.rep_id {
        query = query.filter(appointment::Column::RepId.eq(rep));
    }
    if let Some(lead) = filters.lead_id {
        query = query.filter(appointment::Column::LeadId.eq(lead));
    }
    if let Some(cursor) = cursor {
        query = query.filter(
            sea_orm::Condition::any()
                .add(appointment::Column::ScheduledStart.gt(cursor.starts))
                .add(
                    sea_orm::Condition::all()
                        .add(appointment::Column::ScheduledStart.eq(cursor.starts))
                        .add(appointment::Column::Id.gt(cursor.id)),
                ),
        );
    }
    Ok(query.all(utx.conn()).await?)
}

/// One appointment, if the viewer may see it.
///
/// # Errors
/// On database failure.
pub async fn get(
    utx: &TenantTxn,
    viewer: &Viewer,
    id: Uuid,
) -> Result<Option<appointment::Model>, AppointmentError> {
    Ok(visible(utx, viewer)
        .filter(appointment::Column::Id.eq(id))
        .one(utx.conn())
        .await?)
}
