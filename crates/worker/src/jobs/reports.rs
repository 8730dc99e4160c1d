//! `generate-daily-reports`: one `daily_reports` row per tenant for the UTC day that just ended
//! (calls, answered, booked, booking rate, new leads, appointments, top objections) and one
//! `analytics.daily_recap.ready` event. The row is unique per (tenant, date): a second run of the
//! same slot inserts nothing and emits nothing. `check-missing-reports` (every 6 hours) writes
//! the reports of the last seven days that a tenant lacks (a day no scheduler ran).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, call, company, daily_report, lead};
use otto_domain::catalog::ANALYTICS_DAILY_RECAP_READY;
use otto_domain::jobs::{CheckMissingReports, GenerateDailyReports};
use otto_domain::{TenantId, TraceId};
use otto_runtime::AppContext;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::JobError;
use crate::typed::Perform;

const TOP_OBJECTIONS: usize = 5;

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
    let metrics = day_metrics(&ctx.db, tenant, day).await?;
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

async fn day_metrics<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    day: NaiveDate,
) -> Result<Value, DbErr> {
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + Duration::days(1);
    let calls: Vec<(Option<bool>, bool, Option<Value>)> = call::Entity::find()
        .select_only()
        .column(call::Column::Answered)
        .column(call::Column::Booked)
        .column(call::Column::Analysis)
        .filter(call::Column::CompanyId.eq(tenant.as_str()))
        .filter(call::Column::CreatedAt.gte(start))
        .filter(call::Column::CreatedAt.lt(end))
        .into_tuple()
        .all(conn)
        .await?;
    let total = calls.len();
    let answered = calls.iter().filter(|(a, _, _)| *a == Some(true)).count();
    let booked = calls.iter().filter(|(_, b, _)| *b).count();
    let analysed = calls.iter().filter(|(_, _, a)| a.is_some()).count();
    let leads = lead::Entity::find()
        .filter(lead::Column::CompanyId.eq(tenant.as_str()))
        .filter(lead::Column::CreatedAt.gte(start))
        .filter(lead::Column::CreatedAt.lt(end))
        .count(conn)
        .await?;
    let appointments = appointment::Entity::find()
        .filter(appointment::Column::CompanyId.eq(tenant.as_str()))
        .filter(appointment::Column::CreatedAt.gte(start))
        .filter(appointment::Column::CreatedAt.lt(end))
        .count(conn)
        .await?;
    let booking_rate = if total == 0 {
        0.0
    } else {
        booked as f64 / total as f64
    };
    Ok(json!({
        "calls": total,
        "answered": answered,
        "booked": booked,
        "booking_rate": (booking_rate * 1000.0).round() / 1000.0,
        "analysed_calls": analysed,
        "new_leads": leads,
        "appointments_created": appointments,
        "top_objections": top_objections(calls.iter().filter_map(|(_, _, a)| a.as_ref())),
    }))
}

/// The most frequent objections across analyses, most frequent first (ties by name).
fn top_objections<'a>(analyses: impl Iterator<Item = &'a Value>) -> Value {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for analysis in analyses {
        let objections = analysis.get("objections").and_then(Value::as_array);
        for objection in objections.into_iter().flatten().filter_map(Value::as_str) {
            *counts.entry(objection.to_lowercase()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(TOP_OBJECTIONS);
    Value::Array(
        ranked
            .into_iter()
            .map(|(objection, count)| json!({ "objection": objection, "count": count }))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objections_are_ranked_by_frequency_then_name() {
        let analyses = [
            json!({"objections": ["Price", "timing"]}),
            json!({"objections": ["price"]}),
            json!({"objections": []}),
        ];
        assert_eq!(
            top_objections(analyses.iter()),
            json!([{"objection": "price", "count": 2}, {"objection": "timing", "count": 1}])
        );
    }
}
