//! Stored daily reports (SPEC section 13): `GET /v1/reports/daily?from=&to=` (leadership, csr),
//! newest day first. Reports cover UTC days (the daily job's), so `from` and `to` are UTC dates.

use actix_web::web;
use chrono::{Duration, NaiveDate, Utc};
use otto_db::entities::daily_report;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{begin, timestamp};
use crate::auth::{Authorized, Staff};
use crate::error::ApiError;
use crate::pagination::Page;
use crate::state::ApiState;

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 366;
const DEFAULT_DAYS: i64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/reports/daily").get(list_daily_reports));
}

#[derive(Serialize, ToSchema)]
pub struct DailyReport {
    id: Uuid,
    /// `YYYY-MM-DD` (UTC).
    report_date: String,
    /// Calls, answered, booked, booking rate, new leads, appointments, top objections.
    metrics: Value,
    created_at: String,
}

#[derive(Deserialize, IntoParams)]
pub struct ReportRange {
    /// First day (`YYYY-MM-DD`, inclusive); default: 30 days before `to`.
    from: Option<String>,
    /// Last day (`YYYY-MM-DD`, inclusive); default: today (UTC).
    to: Option<String>,
}

fn day(field: &'static str, raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::validation(field, "must be a date (YYYY-MM-DD)"))
}

impl ReportRange {
    fn days(&self) -> Result<(NaiveDate, NaiveDate), ApiError> {
        let to = match &self.to {
            Some(raw) => day("to", raw)?,
            None => Utc::now().date_naive(),
        };
        let from = match &self.from {
            Some(raw) => day("from", raw)?,
            None => to - Duration::days(DEFAULT_DAYS),
        };
        if from > to {
            return Err(ApiError::validation("from", "must not be after to"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ApiError::validation(
                "from",
                format!("the range may cover at most {MAX_DAYS} days"),
            ));
        }
        Ok((from, to))
    }
}

#[utoipa::path(get, path = "/v1/reports/daily", tag = "reports", security(("bearer" = [])), params(ReportRange),
    responses((status = 200, description = "`{items: [DailyReport], next_cursor: null}`, newest day first"),
        (status = 403, body = crate::problem::Problem, description = "Role not allowed"),
        (status = 422, body = crate::problem::Problem, description = "Invalid range")))]
pub async fn list_daily_reports(
    state: web::Data<ApiState>,
    caller: Authorized<Staff>,
    range: web::Query<ReportRange>,
) -> Result<web::Json<Page<DailyReport>>, ApiError> {
    let (from, to) = range.days()?;
    let utx = begin(&state, &caller).await?;
    let rows = utx
        .scope()
        .select::<daily_report::Entity>()
        .filter(daily_report::Column::ReportDate.gte(from.format("%Y-%m-%d").to_string()))
        .filter(daily_report::Column::ReportDate.lte(to.format("%Y-%m-%d").to_string()))
        .order_by_desc(daily_report::Column::ReportDate)
        .all(utx.conn())
        .await?;
    utx.finish_read().await?;
    Ok(web::Json(Page {
        items: rows
            .into_iter()
            .map(|row| DailyReport {
                id: row.id,
                report_date: row.report_date,
                metrics: row.metrics,
                created_at: timestamp(row.created_at),
            })
            .collect(),
        next_cursor: None,
    }))
}
