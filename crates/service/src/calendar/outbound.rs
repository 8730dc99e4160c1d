//! Otto to Google: an appointment booked or changed in Otto becomes (or changes, or deletes)
//! its event in the company's calendar.

use std::collections::HashMap;

use otto_db::TenantTxn;
use otto_db::entities::{appointment, calendar_connection};
use otto_domain::jobs::PushAppointment;
use otto_integrations::google::{Event, EventTime, ExtendedProperties, GoogleError, OTTO_ID};
use otto_runtime::AppContext;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{CalendarError, CalendarSync, read_connection};
use crate::ServiceError;
use crate::zone::Zone;

/// Queues the write of appointment `id` to Google in `utx`, when the company is connected.
///
/// # Errors
/// On database failure.
pub(crate) async fn enqueue_if_connected(utx: &TenantTxn, id: Uuid) -> Result<(), ServiceError> {
    let connected = utx
        .scope()
        .select::<calendar_connection::Entity>()
        .select_only()
        .column(calendar_connection::Column::CompanyId)
        .into_tuple::<String>()
        .one(utx.conn())
        .await?
        .is_some();
    if connected {
        utx.enqueue(&PushAppointment {
            tenant_id: utx.tenant().clone(),
            appointment_id: id,
            trace_id: utx.trace().clone(),
        })?;
    }
    Ok(())
}

/// What a push did in Google.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Not connected (any more), or the appointment is gone.
    Skipped,
    Written {
        event_id: String,
    },
    Deleted,
}

/// The `calendar.push_appointment` job: a cancelled appointment's event is deleted; any other
/// is patched, or ensured by `otto_id` (insert unless it exists); the event id is recorded.
///
/// # Errors
/// Google's refusals and database failures (the job retries the transient ones).
pub async fn push_appointment(
    sync: &CalendarSync,
    ctx: &AppContext,
    job: &PushAppointment,
) -> Result<Pushed, CalendarError> {
    let tenant = &job.tenant_id;
    let Some(connection) = read_connection(&ctx.db, tenant).await? else {
        return Ok(Pushed::Skipped);
    };
    let utx = TenantTxn::begin(&ctx.db, tenant, job.trace_id.clone()).await?;
    let row = utx
        .scope()
        .find_by_id::<appointment::Entity, _>(job.appointment_id)
        .await?;
    let zone = Zone::of_company(utx.conn(), tenant).await?;
    utx.finish_read().await?;
    let Some(row) = row else {
        return Ok(Pushed::Skipped);
    };
    let access = sync.access_token(&connection).await?;
    let calendar = connection.calendar_id.as_str();
    let otto_id = row.id.to_string();
    let google = &sync.google;
    if row.status == "cancelled" {
        let event_id = match &row.google_event_id {
            Some(id) => Some(id.clone()),
            None => google
                .find_by_otto_id(&access, calendar, &otto_id)
                .await?
                .and_then(|e| e.id),
        };
        if let Some(id) = event_id {
            google.delete_event(&access, calendar, &id).await?;
        }
        metrics::counter!("calendar_events_written_total", "action" => "delete").increment(1);
        return Ok(Pushed::Deleted);
    }
    let event = event_of(&row, &zone);
    let written = match &row.google_event_id {
        Some(id) => match google.patch_event(&access, calendar, id, &event).await {
            Err(GoogleError::Status {
                status: 404 | 410, ..
            }) => {
                google
                    .ensure_event(&access, calendar, &otto_id, &event)
                    .await?
            }
            other => other?,
        },
        None => {
            google
                .ensure_event(&access, calendar, &otto_id, &event)
                .await?
        }
    };
    metrics::counter!("calendar_events_written_total", "action" => "write").increment(1);
    let event_id = written.id.unwrap_or_default();
    if row.google_event_id.as_deref() != Some(event_id.as_str())
        && !record_event_id(ctx, job, row.google_event_id.as_deref(), &event_id).await?
    {
        // Another push of the same appointment recorded its event first: ours is a duplicate.
        google.delete_event(&access, calendar, &event_id).await?;
        return Ok(Pushed::Skipped);
    }
    Ok(Pushed::Written { event_id })
}

/// Records `event_id` on the appointment unless another one was recorded since `read`.
async fn record_event_id(
    ctx: &AppContext,
    job: &PushAppointment,
    read: Option<&str>,
    event_id: &str,
) -> Result<bool, CalendarError> {
    let utx = TenantTxn::begin(&ctx.db, &job.tenant_id, job.trace_id.clone()).await?;
    let unchanged = match read {
        Some(id) => Condition::any()
            .add(appointment::Column::GoogleEventId.eq(id))
            .add(appointment::Column::GoogleEventId.eq(event_id)),
        None => Condition::any()
            .add(appointment::Column::GoogleEventId.is_null())
            .add(appointment::Column::GoogleEventId.eq(event_id)),
    };
    let recorded = utx
        .scope()
        .update_many::<appointment::Entity>()
        .filter(appointment::Column::Id.eq(job.appointment_id))
        .filter(unchanged)
        .col_expr(appointment::Column::GoogleEventId, Expr::value(event_id))
        .exec(utx.conn())
        .await?
        .rows_affected;
    utx.commit(ctx).await?;
    Ok(recorded == 1)
}

/// The event mirroring an appointment.
pub fn event_of(row: &appointment::Model, zone: &Zone) -> Event {
    let time = |at: chrono::DateTime<chrono::Utc>| EventTime {
        date_time: Some(at.fixed_offset()),
        date: None,
        time_zone: zone.iana_name().map(str::to_owned),
    };
    let mut private = HashMap::new();
    private.insert(OTTO_ID.to_owned(), row.id.to_string());
    Event {
        summary: Some(
            row.title
                .clone()
                .unwrap_or_else(|| "Appointment".to_owned()),
        ),
        description: row.notes.clone(),
        location: row.address.clone(),
        start: Some(time(row.scheduled_start)),
        end: Some(time(row.scheduled_end)),
        extended_properties: Some(ExtendedProperties { private }),
        ..Event::default()
    }
}
