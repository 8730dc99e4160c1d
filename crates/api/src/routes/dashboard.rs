//! The dashboard (SPEC section 13): figures of a range of local days, the company's or a rep's
//! own, cached per company, range and rep (`cached` tells).

use actix_web::web;
use chrono::NaiveDate;
use otto_service::dashboard::{self, DayCount, Figures, ObjectionCount};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{begin, timestamp, viewer};
use crate::auth::{AnyRole, Authorized};
use crate::error::ApiError;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::route_list::resource("/v1/dashboard/metrics").get(dashboard_metrics));
}

#[derive(Deserialize, IntoParams)]
pub struct RangeQuery {
    /// First local day (`YYYY-MM-DD`, the company's time zone); default: 29 days before `to`.
    from: Option<NaiveDate>,
    /// Last local day, included; default: today.
    to: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct DayFigures {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    calls: u64,
    booked: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ObjectionFigure {
    objection: String,
    count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct DashboardMetrics {
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    calls_total: u64,
    calls_answered: u64,
    answer_rate: f64,
    appointments_booked: u64,
    booking_rate: f64,
    calls_per_day: Vec<DayFigures>,
    top_objections: Vec<ObjectionFigure>,
    /// When the figures were computed (earlier than now when `cached`).
    generated_at: String,
    cached: bool,
}

impl DashboardMetrics {
    fn new(figures: Figures, cached: bool) -> Self {
        let day = |d: DayCount| DayFigures {
            date: d.date,
            calls: d.calls,
            booked: d.booked,
        };
        let objection = |o: ObjectionCount| ObjectionFigure {
            objection: o.objection,
            count: o.count,
        };
        Self {
            from: figures.from,
            to: figures.to,
            calls_total: figures.calls_total,
            calls_answered: figures.calls_answered,
            answer_rate: figures.answer_rate,
            appointments_booked: figures.appointments_booked,
            booking_rate: figures.booking_rate,
            calls_per_day: figures.calls_per_day.into_iter().map(day).collect(),
            top_objections: figures.top_objections.into_iter().map(objection).collect(),
            generated_at: timestamp(figures.generated_at),
            cached,
        }
    }
}

#[utoipa::path(get, path = "/v1/dashboard/metrics", tag = "dashboard", security(("bearer" = [])), params(RangeQuery),
    responses((status = 200, body = DashboardMetrics, description = "Figures of the range (a rep's own for a rep)"),
        (status = 422, body = crate::problem::Problem, description = "A reversed range, one over 366 days, or a bad date")))]
pub async fn dashboard_metrics(
    state: web::Data<ApiState>,
    caller: Authorized<AnyRole>,
    range: web::Query<RangeQuery>,
) -> Result<web::Json<DashboardMetrics>, ApiError> {
    let ctx = &state.ctx;
    let utx = begin(&state, &caller).await?;
    let answer = dashboard::figures(
        &utx,
        &viewer(&caller),
        &ctx.cache,
        ctx.config.crm.dashboard_cache_ttl,
        range.from,
        range.to,
    )
    .await?;
    utx.finish_read().await?;
    Ok(web::Json(DashboardMetrics::new(
        answer.figures,
        answer.cached,
    )))
}
