//! The missed-call queue (SPEC section 17): every unanswered inbound call of the last day gets
//! one callback task (`unique_key = "missed:{call_id}"`); when the company enables
//! `missed_call_callbacks` and it is not within its quiet hours (in its time zone), one Bland
//! call to the caller. The callback is claimed on the call (`callback_requested_at`) and
//! committed before Bland is asked, so two processors, a retried job or a crash never dial twice
//! (at most once: a crash between the claim and the request costs that callback, and the task
//! remains for the team).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{call, company, lead};
use otto_domain::{TenantId, TraceId};
use otto_integrations::bland::{BlandClient, OutboundCall};
use otto_runtime::AppContext;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::tasks::{self, NewTask, TaskError};
use crate::zone::Zone;

/// Calls older than this are not chased any more.
pub const LOOKBACK_HOURS: i64 = 24;
/// Statuses that mean nobody picked up.
const UNANSWERED: [&str; 5] = ["no-answer", "busy", "missed", "canceled", "voicemail"];
const TASK_PREFIX: &str = "missed:";

/// How Otto calls back: Bland and where its webhook reaches Otto.
#[derive(Clone)]
pub struct Callbacks {
    pub bland: BlandClient,
    pub webhook_url: Option<String>,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    pub tasks: u32,
    pub dialed: u32,
}

fn hhmm(raw: Option<&str>) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(raw?, "%H:%M").ok()
}

/// Whether `now` falls in the company's quiet hours (`start..end` local, wrapping midnight).
pub fn in_quiet_hours(company: &company::Model, now: DateTime<Utc>) -> bool {
    let (Some(start), Some(end)) = (
        hhmm(company.quiet_hours_start.as_deref()),
        hhmm(company.quiet_hours_end.as_deref()),
    ) else {
        return false;
    };
    let local = Zone::parse(&company.time_zone).local_at(now).time();
    if start <= end {
        start <= local && local < end
    } else {
        local >= start || local < end
    }
}

/// One run over every company.
///
/// # Errors
/// On database failure listing the companies; a company's own failure is logged.
pub async fn process(
    ctx: &AppContext,
    callbacks: Option<&Callbacks>,
    now: DateTime<Utc>,
) -> Result<Processed, ServiceError> {
    // Across companies: which ones exist is a system read; each one's work is its own.
    let companies = company::Entity::find().all(&ctx.db).await?;
    let mut total = Processed::default();
    for company in companies {
        let Ok(tenant) = TenantId::try_from(company.id.as_str()) else {
            continue;
        };
        match process_company(ctx, callbacks, &company, &tenant, now).await {
            Ok(done) => {
                total.tasks += done.tasks;
                total.dialed += done.dialed;
            }
            Err(err) => {
                tracing::warn!(tenant_id = %tenant, error = %err, "missed calls not processed")
            }
        }
    }
    Ok(total)
}

async fn process_company(
    ctx: &AppContext,
    callbacks: Option<&Callbacks>,
    company: &company::Model,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Processed, ServiceError> {
    let trace = TraceId::generate();
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let missed = utx
        .scope()
        .select::<call::Entity>()
        .filter(call::Column::Direction.eq("inbound"))
        .filter(call::Column::CreatedAt.gt(now - Duration::hours(LOOKBACK_HOURS)))
        .filter(
            Condition::any()
                .add(call::Column::Answered.eq(false))
                .add(call::Column::Status.is_in(UNANSWERED)),
        )
        .all(utx.conn())
        .await?;
    let mut done = Processed::default();
    for call in &missed {
        let phone = caller_phone(&utx, call).await?;
        let title = format!(
            "Call back {}",
            phone.as_deref().unwrap_or("a missed caller")
        );
        let (_, created) = tasks::create(
            &utx,
            NewTask {
                title,
                lead_id: call.lead_id,
                assignee_id: None,
                due_at: Some(now + Duration::hours(1)),
                unique_key: Some(format!("{TASK_PREFIX}{}", call.id)),
            },
        )
        .await
        .map_err(|err| match err {
            TaskError::Service(err) => err,
            other => ServiceError::invalid("task", other.to_string()),
        })?;
        done.tasks += u32::from(created);
    }
    utx.commit(ctx).await?;
    let Some(callbacks) = callbacks.filter(|_| company.missed_call_callbacks) else {
        return Ok(done);
    };
    if in_quiet_hours(company, now) {
        return Ok(done);
    }
    for call in missed.iter().filter(|c| c.callback_requested_at.is_none()) {
        if dial_once(ctx, callbacks, tenant, &trace, call, now).await? {
            done.dialed += 1;
        }
    }
    Ok(done)
}

async fn caller_phone(utx: &TenantTxn, call: &call::Model) -> Result<Option<String>, ServiceError> {
    let Some(lead_id) = call.lead_id else {
        return Ok(None);
    };
    Ok(utx
        .scope()
        .select::<lead::Entity>()
        .select_only()
        .column(lead::Column::Phone)
        .filter(lead::Column::Id.eq(lead_id))
        .into_tuple::<Option<String>>()
        .one(utx.conn())
        .await?
        .flatten())
}

/// Claims the callback of `call` (committed), then asks Bland; true when dialed.
async fn dial_once(
    ctx: &AppContext,
    callbacks: &Callbacks,
    tenant: &TenantId,
    trace: &TraceId,
    call: &call::Model,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let claimed = utx
        .scope()
        .update_many::<call::Entity>()
        .filter(call::Column::Id.eq(call.id))
        .filter(call::Column::CallbackRequestedAt.is_null())
        .col_expr(call::Column::CallbackRequestedAt, Expr::value(now))
        .exec(utx.conn())
        .await?
        .rows_affected
        == 1;
    let phone = caller_phone(&utx, call).await?;
    utx.commit(ctx).await?;
    let (true, Some(phone)) = (claimed, phone) else {
        return Ok(false);
    };
    let request = OutboundCall {
        phone_number: &phone,
        task: "You are calling back on behalf of a home-services company: the customer called \
               and nobody could answer. Apologise, ask how you can help, and offer to book a visit.",
        metadata: json!({ "company_id": tenant.as_str(), "call_id": call.id }),
        webhook: callbacks.webhook_url.as_deref(),
    };
    match callbacks.bland.place_call(&request).await {
        Ok(bland_id) => {
            record_bland_id(ctx, tenant, trace, call.id, &bland_id).await?;
            metrics::counter!("missed_call_callbacks_total", "result" => "dialed").increment(1);
            Ok(true)
        }
        Err(err) => {
            // Claimed and not retried: a request that timed out may have dialed.
            tracing::warn!(call_id = %call.id, error = %err, "Bland callback failed; the task remains");
            metrics::counter!("missed_call_callbacks_total", "result" => "failed").increment(1);
            Ok(false)
        }
    }
}

async fn record_bland_id(
    ctx: &AppContext,
    tenant: &TenantId,
    trace: &TraceId,
    call_id: Uuid,
    bland_id: &str,
) -> Result<(), ServiceError> {
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    utx.scope()
        .update_many::<call::Entity>()
        .filter(call::Column::Id.eq(call_id))
        .col_expr(call::Column::BlandCallId, Expr::value(bland_id))
        .exec(utx.conn())
        .await?;
    utx.commit(ctx).await?;
    Ok(())
}

/// Bland's webhook for a callback of missed call `call_id`: its task is done, with the outcome.
///
/// # Errors
/// On database failure.
pub async fn close_callback(
    utx: &TenantTxn,
    call_id: Uuid,
    outcome: &str,
) -> Result<bool, ServiceError> {
    tasks::complete_by_key(utx, &format!("{TASK_PREFIX}{call_id}"), outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(zone: &str, start: &str, end: &str) -> company::Model {
        let now = Utc::now();
        company::Model {
            id: "org_q".to_owned(),
            name: "Q".to_owned(),
            time_zone: zone.to_owned(),
            callrail_company_id: None,
            lockdown_mode: false,
            missed_call_callbacks: true,
            quiet_hours_start: Some(start.to_owned()),
            quiet_hours_end: Some(end.to_owned()),
            created_at: now,
            updated_at: now,
        }
    }

    fn at(raw: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        Ok(DateTime::parse_from_rfc3339(raw)?.to_utc())
    }

    #[test]
    fn quiet_hours_are_local_and_may_wrap_midnight() -> Result<(), chrono::ParseError> {
        let night = company("America/Chicago", "21:00", "08:00");
        // 02:30 UTC on 2026-11-03 is 20:30 CST: not yet quiet; 03:30 UTC is 21:30: quiet.
        assert!(!in_quiet_hours(&night, at("2026-11-03T02:30:00Z")?));
        assert!(in_quiet_hours(&night, at("2026-11-03T03:30:00Z")?));
        // 13:59 UTC is 07:59 CST (quiet); 14:00 UTC is 08:00 (not).
        assert!(in_quiet_hours(&night, at("2026-11-03T13:59:00Z")?));
        assert!(!in_quiet_hours(&night, at("2026-11-03T14:00:00Z")?));
        // Summer time: 08:00 CDT is 13:00 UTC.
        assert!(!in_quiet_hours(&night, at("2026-07-01T13:00:00Z")?));
        let lunch = company("Europe/London", "12:00", "13:00");
        assert!(in_quiet_hours(&lunch, at("2026-11-03T12:30:00Z")?));
        assert!(!in_quiet_hours(&lunch, at("2026-11-03T13:30:00Z")?));
        Ok(())
    }
}
