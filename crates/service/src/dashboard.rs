//! Dashboard figures (SPEC section 13): calls, answers and bookings per local day of the
//! company's time zone, and the most frequent objections, computed in SQL with `GROUP BY` (the
//! day of a call is a `CASE` over the range's local midnights, so any zone, daylight saving
//! included, is exact on both databases). A rep gets the figures of its own leads. Figures are
//! cached per company, range and viewer for `DASHBOARD_CACHE_SECONDS`.
//!
//! Definitions (shared with the daily report): a call counts on the day Otto recorded it
//! (`created_at`); `appointments_booked` counts booked calls; `answer_rate` is answered / total
//! and `booking_rate` booked / total, both rounded to three decimals (0 without calls).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use otto_db::TenantTxn;
use otto_runtime::cache::Cache;
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

use crate::ServiceError;
use crate::visibility::Viewer;
use crate::zone::Zone;

/// The longest range one request may ask for.
pub const MAX_DAYS: i64 = 366;
/// The default range: the last 30 local days, today included.
const DEFAULT_DAYS: i64 = 30;
const TOP_OBJECTIONS: i64 = 5;

/// Local days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RangeError {
    #[error("from must not be after to")]
    Reversed,
    #[error("a range may span at most {MAX_DAYS} days")]
    TooLong,
}

impl DayRange {
    /// The asked range, the missing ends defaulting to the last 30 days up to `today`.
    ///
    /// # Errors
    /// A reversed range, or one over [`MAX_DAYS`].
    pub fn resolve(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Self, RangeError> {
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - TimeDelta::days(DEFAULT_DAYS - 1));
        if from > to {
            return Err(RangeError::Reversed);
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(RangeError::TooLong);
        }
        Ok(Self { from, to })
    }

    fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let (from, to) = (self.from, self.to);
        from.iter_days().take_while(move |day| *day <= to)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayCount {
    pub date: NaiveDate,
    pub calls: u64,
    pub booked: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectionCount {
    pub objection: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub calls_total: u64,
    pub calls_answered: u64,
    pub answer_rate: f64,
    pub appointments_booked: u64,
    pub booking_rate: f64,
    pub calls_per_day: Vec<DayCount>,
    pub top_objections: Vec<ObjectionCount>,
    pub generated_at: DateTime<Utc>,
}

/// Figures and whether they came from the cache.
pub struct Answer {
    pub figures: Figures,
    pub cached: bool,
}

/// The dashboard of the viewer over `from..=to` (local dates; defaults above), from the cache
/// when an entry younger than `ttl` exists.
///
/// # Errors
/// `ServiceError::Invalid` for a bad range; database failures.
pub async fn figures(
    utx: &TenantTxn,
    viewer: &Viewer,
    cache: &Cache,
    ttl: Duration,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Answer, ServiceError> {
    let zone = Zone::of_company(utx.conn(), utx.tenant()).await?;
    let range = DayRange::resolve(from, to, zone.date_at(Utc::now())).map_err(|err| {
        ServiceError::Invalid {
            field: "from",
            message: err.to_string(),
        }
    })?;
    let key = cache_key(utx, viewer, &range);
    if let Some(figures) = cache
        .get(&key)
        .await
        .and_then(|raw| serde_json::from_str(&raw).ok())
    {
        metrics::counter!("dashboard_cache_hits_total").increment(1);
        return Ok(Answer {
            figures,
            cached: true,
        });
    }
    metrics::counter!("dashboard_cache_misses_total").increment(1);
    let figures = compute(utx, viewer, &zone, &range).await?;
    if let Ok(raw) = serde_json::to_string(&figures) {
        cache.put(&key, &raw, ttl).await;
    }
    Ok(Answer {
        figures,
        cached: false,
    })
}

fn cache_key(utx: &TenantTxn, viewer: &Viewer, range: &DayRange) -> String {
    let who = match viewer {
        Viewer::Company => "company".to_owned(),
        Viewer::Rep(user) => format!("rep:{}", user.as_str()),
    };
    format!(
        "dashboard:{}:{}:{}:{who}",
        utx.tenant().as_str(),
        range.from,
        range.to
    )
}

/// Computes the figures (no cache).
///
/// # Errors
/// On database failure.
pub async fn compute(
    utx: &TenantTxn,
    viewer: &Viewer,
    zone: &Zone,
    range: &DayRange,
) -> Result<Figures, ServiceError> {
    let starts: Vec<DateTime<Utc>> = range
        .days()
        .chain(std::iter::once(range.to + TimeDelta::days(1)))
        .map(|day| zone.start_of(day))
        .collect();
    let query = CallsQuery::new(utx, viewer, &starts);
    let per_day = query.per_day().await?;
    let mut calls_per_day: Vec<DayCount> = range
        .days()
        .map(|date| DayCount {
            date,
            calls: 0,
            booked: 0,
        })
        .collect();
    let (mut answered, mut total, mut booked) = (0, 0, 0);
    for row in per_day {
        total += row.calls as u64;
        answered += row.answered as u64;
        booked += row.booked as u64;
        if let Some(day) = calls_per_day.get_mut(row.day as usize) {
            day.calls = row.calls as u64;
            day.booked = row.booked as u64;
        }
    }
    Ok(Figures {
        from: range.from,
        to: range.to,
        calls_total: total,
        calls_answered: answered,
        answer_rate: rate(answered, total),
        appointments_booked: booked,
        booking_rate: rate(booked, total),
        calls_per_day,
        top_objections: query.top_objections().await?,
        generated_at: Utc::now(),
    })
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 1000.0).round() / 1000.0
}

#[derive(FromQueryResult)]
struct DayRow {
    day: i64,
    calls: i64,
    answered: i64,
    booked: i64,
}

#[derive(FromQueryResult)]
struct ObjectionRow {
    objection: String,
    count: i64,
}

/// Parameters in the order their placeholders appear in the text (SQLite's `?` are positional;
/// PostgreSQL's are numbered).
struct Binder {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl Binder {
    fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// Adds a parameter; returns its placeholder.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// The tenant's (or the rep's) calls recorded between the first and the last of `starts`.
struct CallsQuery<'a> {
    utx: &'a TenantTxn,
    rep: Option<&'a str>,
    starts: &'a [DateTime<Utc>],
}

impl<'a> CallsQuery<'a> {
    fn new(utx: &'a TenantTxn, viewer: &'a Viewer, starts: &'a [DateTime<Utc>]) -> Self {
        let rep = match viewer {
            Viewer::Company => None,
            Viewer::Rep(user) => Some(user.as_str()),
        };
        Self { utx, rep, starts }
    }

    fn backend(&self) -> DatabaseBackend {
        self.utx.conn().get_database_backend()
    }

    fn filter(&self, binder: &mut Binder) -> String {
        let company = self.utx.tenant().as_str();
        let first = self.starts.first().copied().unwrap_or_default();
        let end = self.starts.last().copied().unwrap_or_default();
        let mut filter = format!(
            "c.company_id = {} AND c.created_at >= {} AND c.created_at < {}",
            binder.bind(company),
            binder.bind(first),
            binder.bind(end)
        );
        if let Some(rep) = self.rep {
            filter.push_str(&format!(
                " AND c.lead_id IN (SELECT l.id FROM leads l WHERE l.company_id = {} AND l.assigned_user_id = {})",
                binder.bind(company),
                binder.bind(rep)
            ));
        }
        filter
    }

    /// Calls, answers and bookings per day index (0 = the range's first day).
    async fn per_day(&self) -> Result<Vec<DayRow>, ServiceError> {
        let mut binder = Binder::new(self.backend());
        let mut case = String::from("CASE");
        for (index, start) in self.starts.iter().enumerate().skip(1) {
            let placeholder = binder.bind(*start);
            case.push_str(&format!(
                " WHEN c.created_at < {placeholder} THEN {}",
                index - 1
            ));
        }
        case.push_str(" END");
        let filter = self.filter(&mut binder);
        let sql = format!(
            "SELECT CAST({case} AS BIGINT) AS day, CAST(COUNT(*) AS BIGINT) AS calls, \
             CAST(SUM(CASE WHEN c.answered THEN 1 ELSE 0 END) AS BIGINT) AS answered, \
             CAST(SUM(CASE WHEN c.booked THEN 1 ELSE 0 END) AS BIGINT) AS booked \
             FROM calls c WHERE {filter} GROUP BY 1"
        );
        Ok(DayRow::find_by_statement(binder.statement(sql))
            .all(self.utx.conn())
            .await?)
    }

    /// The most frequent objections of the analysed calls, most frequent first (ties by name).
    async fn top_objections(&self) -> Result<Vec<ObjectionCount>, ServiceError> {
        let backend = self.backend();
        let (from, is_array) = match backend {
            DatabaseBackend::Postgres => (
                "calls c CROSS JOIN LATERAL jsonb_array_elements_text(c.objections) AS o(value)",
                "jsonb_typeof(c.objections) = 'array'",
            ),
            _ => (
                "calls c, json_each(c.objections) o",
                "json_type(c.objections) = 'array'",
            ),
        };
        let mut binder = Binder::new(backend);
        let filter = self.filter(&mut binder);
        let sql = format!(
            "SELECT lower(o.value) AS objection, CAST(COUNT(*) AS BIGINT) AS count FROM {from} \
             WHERE {filter} AND {is_array} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_OBJECTIONS}"
        );
        let rows = ObjectionRow::find_by_statement(binder.statement(sql))
            .all(self.utx.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| ObjectionCount {
                objection: row.objection,
                count: row.count as u64,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, String> {
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("{y}-{m}-{d}"))
    }

    #[test]
    fn ranges_default_to_the_last_thirty_days_and_refuse_nonsense() -> TestResult {
        let today = date(2026, 11, 29)?;
        assert_eq!(
            DayRange::resolve(None, None, today),
            Ok(DayRange {
                from: date(2026, 10, 31)?,
                to: today
            })
        );
        assert_eq!(
            DayRange::resolve(Some(today), Some(date(2026, 11, 1)?), today),
            Err(RangeError::Reversed)
        );
        assert_eq!(
            DayRange::resolve(Some(date(2025, 1, 1)?), None, today),
            Err(RangeError::TooLong)
        );
        let one = DayRange::resolve(Some(today), Some(today), today)?;
        assert_eq!(one.days().count(), 1);
        Ok(())
    }

    #[test]
    fn rates_round_to_three_decimals() {
        assert_eq!(rate(1, 3), 0.333);
        assert_eq!(rate(0, 0), 0.0);
    }
}
