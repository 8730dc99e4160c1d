//! `generate-daily-reports`: one `daily_reports` row per tenant for the UTC day that just ended
//! (calls, answered, booked, booking rate and top objections computed as the dashboard computes
//! them, `otto_service::dashboard`; analysed calls, new leads, appointments) and one
//! `analytics.daily_recap.ready` event. The row is unique per (tenant, date): a second run of the
//! same slot inserts nothing and emits nothing. `check-missing-reports` (every 6 hours) writes
//! the reports of the last seven days that a tenant lacks (a day no scheduler ran).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use otto_db::TenantTxn;
use otto_db::entities::{appointment, call, company, daily_report, lead};
use otto_domain::catalog::ANALYTICS_DAILY_RECAP_READY;
use otto_domain::jobs::{CheckMissingReports, GenerateDailyReports};
use otto_domain::{TenantId, TraceId};
use otto_runtime::AppContext;
use otto_service::dashboard::{self, DayRange};
use otto_service::visibility::Viewer;
use otto_service::zone::Zone;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::JobError;
use crate::typed::Perform;

#[async_trait]
impl Perform for GenerateDailyReports {
    type State = ();

    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let job = self;
        let day = (job.slot - Duration::days(1)).date_naive();
        let tenants: Vec<String> = company::Entity::find()
            .select_only()
            .column(company::Column::Id)
            .into_tuple()
            .all(&ctx.db)
            .await?;
        let mut created = 0;
        for tenant in tenants {
            let Ok(tenant) = TenantId::try_from(tenant.as_str()) else {
                continue;
            };
            if report_for(ctx, &tenant, day).await? {
                created += 1;
            }
        }
        tracing::info!(%day, created, "daily reports generated");
        Ok(())
    }
}

/// The report of a day may be missing when no scheduler ran at 00:30 UTC that day.
const MISSING_REPORT_LOOKBACK_DAYS: i64 = 7;

#[async_trait]
impl Perform for CheckMissingReports {
    type State = ();

    /// For each of the seven UTC days before the slot, writes the report of every tenant that
    /// existed that day and has none.
    async fn perform(self, _: &(), ctx: &AppContext) -> Result<(), JobError> {
        let today = self.slot.date_naive();
        let days: Vec<NaiveDate> = (1..=MISSING_REPORT_LOOKBACK_DAYS)
            .map(|back| today - Duration::days(back))
            .collect();
        let tenants: Vec<(String, chrono::DateTime<Utc>)> = company::Entity::find()
            .select_only()
            .column(company::Column::Id)
            .column(company::Column::CreatedAt)
            .into_tuple()
            .all(&ctx.db)
            .await?;
        let existing: HashSet<(String, String)> = daily_report::Entity::find()
            .select_only()
            .column(daily_report::Column::CompanyId)
            .column(daily_report::Column::ReportDate)
            .filter(daily_report::Column::ReportDate.is_in(days.iter().map(report_date)))
            .into_tuple()
            .all(&ctx.db)
            .await?
            .into_iter()
            .collect();
        let mut created = 0;
        for (tenant, since) in tenants {
            let Ok(tenant_id) = TenantId::try_from(tenant.as_str()) else {
                continue;
            };
            for day in days.iter().filter(|day| **day >= since.date_naive()) {
                if !existing.contains(&(tenant.clone(), report_date(day)))
                    && report_for(ctx, &tenant_id, *day).await?
                {
                    created += 1;
                }
            }
        }
        tracing::info!(created, "missing daily reports written");
        Ok(())
    }
}

fn report_date(day: &NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Writes `tenant`'s report for `day` and its event; false when it already existed.
async fn report_for(ctx: &AppContext, tenant: &TenantId, day: NaiveDate) -> Result<bool, JobError> {
    // Read first, outside the unit of work: one that reads before it writes cannot take SQLite's
    // write lock if another writer committed in between.
    let metrics = day_metrics(ctx, tenant, day).await?;
    let utx = TenantTxn::begin(&ctx.db, tenant, TraceId::generate()).await?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let report_date = report_date(&day);
    let inserted = daily_report::Entity::insert(daily_report::ActiveModel {
        id: Set(id),
        company_id: Set(tenant.to_string()),
        report_date: Set(report_date.clone()),
        metrics: Set(metrics),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            daily_report::Column::CompanyId,
            daily_report::Column::ReportDate,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(utx.conn())
    .await?;
    if inserted == 0 {
        utx.rollback().await?;
        return Ok(false);
    }
    utx.emit(utx.event(
        ANALYTICS_DAILY_RECAP_READY,
        json!({ "report_id": id, "report_date": report_date }),
    ));
    utx.commit(ctx).await?;
    Ok(true)
}

/// The report's figures: the dashboard's (one UTC day, the whole company) plus the day's
/// analysed calls, new leads and appointments.
async fn day_metrics(
    ctx: &AppContext,
    tenant: &TenantId,
    day: NaiveDate,
) -> Result<Value, JobError> {
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + Duration::days(1);
    let utx = TenantTxn::begin(&ctx.db, tenant, TraceId::generate()).await?;
    let range = DayRange { from: day, to: day };
    let figures = dashboard::compute(&utx, &Viewer::Company, &Zone::Named(Tz::UTC), &range).await?;
    let scope = utx.scope();
    let analysed = scope
        .select::<call::Entity>()
        .filter(call::Column::CreatedAt.gte(start))
        .filter(call::Column::CreatedAt.lt(end))
        .filter(call::Column::Analysis.is_not_null())
        .count(utx.conn())
        .await?;
    let leads = scope
        .select::<lead::Entity>()
        .filter(lead::Column::CreatedAt.gte(start))
        .filter(lead::Column::CreatedAt.lt(end))
        .count(utx.conn())
        .await?;
    let appointments = scope
        .select::<appointment::Entity>()
        .filter(appointment::Column::CreatedAt.gte(start))
        .filter(appointment::Column::CreatedAt.lt(end))
        .count(utx.conn())
        .await?;
    utx.finish_read().await?;
    Ok(json!({
        "calls": figures.calls_total,
        "answered": figures.calls_answered,
        "booked": figures.appointments_booked,
        "booking_rate": figures.booking_rate,
        "analysed_calls": analysed,
        "new_leads": leads,
        "appointments_created": appointments,
        "top_objections": figures.top_objections,
    }))
}
