//! Google to Otto: push notifications, the coalesced sync job, and the relay shape.

use chrono::{DateTime, Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, calendar_connection};
use otto_domain::jobs::SyncCalendar;
use otto_domain::{TenantId, TraceId};
use otto_integrations::google::{Event, EventTime, GoogleError, ListFrom};
use otto_runtime::AppContext;
use otto_runtime::crypto::sha256_hex;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter};
use uuid::Uuid;

use super::{CalendarError, CalendarSync, read_connection};
use crate::ServiceError;
use crate::zone::Zone;

/// A full sync reads events from this long ago on.
pub const FULL_SYNC_LOOKBACK_DAYS: i64 = 30;
/// A sync holds its company's connection this long at most (a crashed one is taken over after).
pub const SYNC_LEASE_SECONDS: i64 = 300;
const CANCELLED: &str = "cancelled";

/// Google's push headers (`X-Goog-Channel-ID`, `-Token`, `X-Goog-Resource-State`,
/// `X-Goog-Message-Number`).
#[derive(Debug, Clone)]
pub struct Push {
    pub channel_id: String,
    pub token: String,
    pub resource_state: String,
    pub message_number: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// A sync is queued (or the running one will run again).
    Queued,
    /// The channel's first message (`sync`): nothing changed yet.
    Opened,
    /// This message number was already accepted: nothing done.
    Replayed,
}

/// Checks a push and queues the company's sync.
///
/// # Errors
/// `UnknownChannel`, `WrongChannelToken`, database failures.
pub async fn receive_push(
    ctx: &AppContext,
    push: &Push,
    trace: TraceId,
) -> Result<PushOutcome, CalendarError> {
    // Which company owns the channel is what this lookup finds out: a system read.
    let row = calendar_connection::Entity::find()
        .filter(calendar_connection::Column::ChannelId.eq(push.channel_id.as_str()))
        .one(&ctx.db)
        .await?
        .ok_or(CalendarError::UnknownChannel)?;
    // Hashes of a random token: comparing them leaks nothing an attacker can use.
    if row.channel_token_hash.as_deref() != Some(sha256_hex(&push.token).as_str()) {
        return Err(CalendarError::WrongChannelToken);
    }
    let tenant =
        TenantId::try_from(row.company_id.as_str()).map_err(|_| CalendarError::UnknownChannel)?;
    let opening = push.resource_state == "sync";
    let utx = TenantTxn::begin(&ctx.db, &tenant, trace.clone()).await?;
    let accepted = utx
        .scope()
        .update_many::<calendar_connection::Entity>()
        .filter(calendar_connection::Column::ChannelId.eq(push.channel_id.as_str()))
        .filter(
            Condition::any()
                .add(calendar_connection::Column::LastMessageNumber.is_null())
                .add(calendar_connection::Column::LastMessageNumber.lt(push.message_number)),
        )
        .col_expr(
            calendar_connection::Column::LastMessageNumber,
            Expr::value(push.message_number),
        )
        .col_expr(
            calendar_connection::Column::SyncPending,
            Expr::col(calendar_connection::Column::SyncPending).or(Expr::value(!opening)),
        )
        .col_expr(
            calendar_connection::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .exec(utx.conn())
        .await?;
    if accepted.rows_affected == 0 {
        utx.rollback().await?;
        return Ok(PushOutcome::Replayed);
    }
    if opening {
        utx.commit(ctx).await?;
        return Ok(PushOutcome::Opened);
    }
    utx.enqueue(&SyncCalendar {
        tenant_id: tenant,
        trace_id: trace,
    })?;
    utx.commit(ctx).await?;
    Ok(PushOutcome::Queued)
}

/// What a sync job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRun {
    /// Another sync of the company holds the lease; it runs again for this push.
    Coalesced,
    /// Passes run (more than one when pushes arrived meanwhile).
    Ran { passes: u32 },
}

/// The `calendar.sync` job: takes the company's sync lease (or leaves the work to its holder),
/// runs passes until no push arrived during the last one, and releases the lease.
///
/// # Errors
/// A pass's failure (the lease is released and the sync marked pending for the retry).
pub async fn run_sync(
    sync: &CalendarSync,
    ctx: &AppContext,
    tenant: &TenantId,
    trace: &TraceId,
) -> Result<SyncRun, CalendarError> {
    if !take_lease(ctx, tenant, trace, true).await? {
        metrics::counter!("calendar_sync_total", "result" => "coalesced").increment(1);
        return Ok(SyncRun::Coalesced);
    }
    let mut passes = 0;
    loop {
        passes += 1;
        if let Err(err) = sync_pass(sync, ctx, tenant, trace).await {
            metrics::counter!("calendar_sync_total", "result" => "error").increment(1);
            release_after_failure(ctx, tenant, trace).await;
            return Err(err);
        }
        if release_lease(ctx, tenant, trace).await? {
            return Ok(SyncRun::Ran { passes });
        }
        // A push arrived during the pass: run again under the same lease.
        take_lease(ctx, tenant, trace, false).await?;
    }
}

/// Takes the lease (`fresh`: only when free or expired) and clears the pending flag.
async fn take_lease(
    ctx: &AppContext,
    tenant: &TenantId,
    trace: &TraceId,
    fresh: bool,
) -> Result<bool, CalendarError> {
    let now = Utc::now();
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let mut update = utx
        .scope()
        .update_many::<calendar_connection::Entity>()
        .col_expr(
            calendar_connection::Column::SyncLeaseUntil,
            Expr::value(now + Duration::seconds(SYNC_LEASE_SECONDS)),
        )
        .col_expr(calendar_connection::Column::SyncPending, Expr::value(false));
    if fresh {
        update = update.filter(
            Condition::any()
                .add(calendar_connection::Column::SyncLeaseUntil.is_null())
                .add(calendar_connection::Column::SyncLeaseUntil.lt(now)),
        );
    }
    let taken = update.exec(utx.conn()).await?.rows_affected == 1;
    utx.commit(ctx).await?;
    Ok(taken)
}

/// Releases the lease unless a push set the pending flag meanwhile (then `false`: run again).
async fn release_lease(
    ctx: &AppContext,
    tenant: &TenantId,
    trace: &TraceId,
) -> Result<bool, CalendarError> {
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let released = utx
        .scope()
        .update_many::<calendar_connection::Entity>()
        .filter(calendar_connection::Column::SyncPending.eq(false))
        .col_expr(
            calendar_connection::Column::SyncLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .exec(utx.conn())
        .await?
        .rows_affected;
    utx.commit(ctx).await?;
    // No row at all: disconnected meanwhile, nothing to run.
    Ok(released == 1 || read_connection(&ctx.db, tenant).await?.is_none())
}

async fn release_after_failure(ctx: &AppContext, tenant: &TenantId, trace: &TraceId) {
    let released = async {
        let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
        utx.scope()
            .update_many::<calendar_connection::Entity>()
            .col_expr(
                calendar_connection::Column::SyncLeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(calendar_connection::Column::SyncPending, Expr::value(true))
            .exec(utx.conn())
            .await?;
        utx.commit(ctx).await?;
        Ok::<_, CalendarError>(())
    };
    if let Err(err) = released.await {
        tracing::warn!(error = %err, "could not release the calendar sync lease; it expires");
    }
}

/// One pass: every page of changes since the sync token (all events from the lookback when
/// there is none, or Google answers 410), each page applied and committed with, on the last,
/// the next sync token.
async fn sync_pass(
    sync: &CalendarSync,
    ctx: &AppContext,
    tenant: &TenantId,
    trace: &TraceId,
) -> Result<(), CalendarError> {
    let Some(row) = read_connection(&ctx.db, tenant).await? else {
        return Ok(());
    };
    let access = sync.access_token(&row).await?;
    let zone = Zone::of_company(&ctx.db, tenant).await?;
    let stored_token = row.sync_token.clone();
    let mut sync_token = stored_token.clone();
    let mut page_token: Option<String> = None;
    let mut resynced = false;
    loop {
        let from = match &sync_token {
            Some(token) => ListFrom::Changes { sync_token: token },
            None => ListFrom::Full {
                time_min: Utc::now() - Duration::days(FULL_SYNC_LOOKBACK_DAYS),
            },
        };
        let page = match sync
            .google
            .list_events(&access, &row.calendar_id, &from, page_token.as_deref())
            .await
        {
            Err(GoogleError::Gone) if !resynced => {
                tracing::info!(tenant_id = %tenant, "sync token expired: full resync");
                metrics::counter!("calendar_sync_total", "result" => "gone").increment(1);
                resynced = true;
                sync_token = None;
                page_token = None;
                continue;
            }
            other => other?,
        };
        let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
        // A write first: on SQLite the transaction then holds the write lock before it reads,
        // so a concurrent writer makes it wait instead of failing its upgrade.
        utx.scope()
            .update_many::<calendar_connection::Entity>()
            .col_expr(
                calendar_connection::Column::UpdatedAt,
                Expr::value(Utc::now()),
            )
            .exec(utx.conn())
            .await?;
        for event in &page.items {
            apply_event(&utx, &zone, event).await?;
        }
        if let Some(next) = &page.next_sync_token {
            store_sync_token(&utx, stored_token.as_deref(), next).await?;
        }
        utx.commit(ctx).await?;
        match page.next_page_token {
            Some(next) => page_token = Some(next),
            None => break,
        }
    }
    let kind = if stored_token.is_some() && !resynced {
        "incremental"
    } else {
        "full"
    };
    metrics::counter!("calendar_sync_total", "result" => kind).increment(1);
    Ok(())
}

/// Stores `next` unless the token changed since the pass read it (a watch asked for a full
/// resync meanwhile: that one wins, and its pending flag runs it).
async fn store_sync_token(
    utx: &TenantTxn,
    read: Option<&str>,
    next: &str,
) -> Result<(), CalendarError> {
    let unchanged = match read {
        Some(token) => calendar_connection::Column::SyncToken.eq(token),
        None => calendar_connection::Column::SyncToken.is_null(),
    };
    utx.scope()
        .update_many::<calendar_connection::Entity>()
        .filter(unchanged)
        .col_expr(calendar_connection::Column::SyncToken, Expr::value(next))
        .col_expr(
            calendar_connection::Column::LastSyncedAt,
            Expr::value(Utc::now()),
        )
        .exec(utx.conn())
        .await?;
    Ok(())
}

/// What a Google change asks of an appointment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Move {
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
    },
    Cancel,
}

/// Applies one event of a sync page; an event that mirrors no appointment is ignored.
async fn apply_event(utx: &TenantTxn, zone: &Zone, event: &Event) -> Result<(), CalendarError> {
    let Some(current) = appointment_of(utx, event.otto_id(), event.id.as_deref()).await? else {
        metrics::counter!("calendar_events_applied_total", "change" => "ignored").increment(1);
        return Ok(());
    };
    let change = if event.status.as_deref() == Some(CANCELLED) {
        Change::Cancel
    } else {
        match (
            instant(zone, event.start.as_ref()),
            instant(zone, event.end.as_ref()),
        ) {
            (Some(starts), Some(ends)) if ends > starts => Change::Move { starts, ends },
            _ => return Ok(()),
        }
    };
    apply_change(utx, current, change, event.id.as_deref()).await?;
    Ok(())
}

/// An event time in UTC: `dateTime` as given, an all-day `date` from the company's midnight.
fn instant(zone: &Zone, time: Option<&EventTime>) -> Option<DateTime<Utc>> {
    let time = time?;
    time.date_time
        .map(|at| at.to_utc())
        .or_else(|| time.date.map(|date| zone.start_of(date)))
}

async fn appointment_of(
    utx: &TenantTxn,
    otto_id: Option<&str>,
    event_id: Option<&str>,
) -> Result<Option<appointment::Model>, CalendarError> {
    if let Some(id) = otto_id.and_then(|id| Uuid::parse_str(id).ok())
        && let Some(row) = utx.scope().find_by_id::<appointment::Entity, _>(id).await?
    {
        return Ok(Some(row));
    }
    let Some(event_id) = event_id else {
        return Ok(None);
    };
    Ok(utx
        .scope()
        .select::<appointment::Entity>()
        .filter(appointment::Column::GoogleEventId.eq(event_id))
        .one(utx.conn())
        .await?)
}

/// Moves or cancels `current` (the owner's edit in Google wins: no overlap check), records the
/// event id, emits `appointment.updated`. Nothing is written back to Google. Returns the row.
async fn apply_change(
    utx: &TenantTxn,
    current: appointment::Model,
    change: Change,
    event_id: Option<&str>,
) -> Result<appointment::Model, CalendarError> {
    let unchanged = match change {
        Change::Cancel => current.status == CANCELLED,
        Change::Move { starts, ends } => {
            current.scheduled_start == starts && current.scheduled_end == ends
        }
    };
    let links = event_id.is_some() && current.google_event_id.as_deref() != event_id;
    if unchanged && !links {
        metrics::counter!("calendar_events_applied_total", "change" => "unchanged").increment(1);
        return Ok(current);
    }
    let mut update = utx
        .scope()
        .update_many::<appointment::Entity>()
        .filter(appointment::Column::Id.eq(current.id));
    if let Some(event_id) = event_id {
        update = update.col_expr(appointment::Column::GoogleEventId, Expr::value(event_id));
    }
    if !unchanged {
        update = match change {
            Change::Cancel => update.col_expr(appointment::Column::Status, Expr::value(CANCELLED)),
            Change::Move { starts, ends } => update
                .col_expr(appointment::Column::ScheduledStart, Expr::value(starts))
                .col_expr(appointment::Column::ScheduledEnd, Expr::value(ends)),
        }
        .col_expr(
            appointment::Column::Version,
            Expr::col(appointment::Column::Version).add(1),
        )
        .col_expr(appointment::Column::UpdatedAt, Expr::value(Utc::now()));
    }
    update.exec(utx.conn()).await?;
    let row = utx
        .scope()
        .find_by_id::<appointment::Entity, _>(current.id)
        .await?
        .ok_or(CalendarError::NoSuchEvent)?;
    if !unchanged {
        let name = if change == Change::Cancel {
            "cancelled"
        } else {
            "moved"
        };
        metrics::counter!("calendar_events_applied_total", "change" => name).increment(1);
        crate::appointments::emit_updated(utx, &row);
    }
    Ok(row)
}

/// `POST /v1/calendar/google/webhook`: a relay's change of one event, times naive in the
/// company's zone (or RFC 3339).
#[derive(Debug, Clone, Default)]
pub struct RelayChange {
    pub event_id: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub status: Option<String>,
}

/// Applies a relay's change to the appointment of `event_id`; commits.
///
/// # Errors
/// `NoSuchEvent`, `ServiceError::Invalid` (times), database failures.
pub async fn apply_relay(
    ctx: &AppContext,
    utx: TenantTxn,
    relay: RelayChange,
) -> Result<appointment::Model, CalendarError> {
    // A write first (see `sync_pass`): it also says whether the event names an appointment.
    let touched = utx
        .scope()
        .update_many::<appointment::Entity>()
        .filter(appointment::Column::GoogleEventId.eq(relay.event_id.as_str()))
        .col_expr(appointment::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    if touched.rows_affected == 0 {
        return Err(CalendarError::NoSuchEvent);
    }
    let change = if relay.status.as_deref() == Some(CANCELLED) {
        Change::Cancel
    } else {
        let zone = Zone::of_company(utx.conn(), utx.tenant()).await?;
        let parse = |raw: Option<&str>, field: &'static str| {
            let raw = raw.ok_or_else(|| {
                ServiceError::invalid(field, "is required unless status is cancelled")
            })?;
            zone.parse_instant(raw)
                .map_err(|e| ServiceError::invalid(field, e))
        };
        let starts = parse(relay.start.as_deref(), "start")?;
        let ends = parse(relay.end.as_deref(), "end")?;
        crate::appointments::check_span(starts, ends)?;
        Change::Move { starts, ends }
    };
    let current = appointment_of(&utx, None, Some(&relay.event_id))
        .await?
        .ok_or(CalendarError::NoSuchEvent)?;
    let row = apply_change(&utx, current, change, Some(&relay.event_id)).await?;
    utx.commit(ctx).await?;
    Ok(row)
}
