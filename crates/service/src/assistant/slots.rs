//! Free slots (SPEC section 16): business hours in the company's time zone, on a grid of
//! `slot_minutes` from each day's opening, from the preferred time on but never sooner than
//! `min_notice_minutes` from now, minus scheduled appointments. With active reps a slot is free
//! when one of them has nothing scheduled over it (the booking takes that rep, and the booking's
//! own rep lock and overlap check decide races); without reps the company is one calendar.

use chrono::{DateTime, Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, sales_rep};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::settings::Settings;
use crate::ServiceError;
use crate::appointments::MAX_LENGTH_HOURS;
use crate::zone::Zone;

/// How far ahead the finder looks.
pub const HORIZON_DAYS: i64 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// The rep free then (none when the company has no reps).
    pub rep_id: Option<Uuid>,
}

struct Busy {
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    rep_id: Option<Uuid>,
}

/// Up to `limit` free slots at or after `preferred`.
///
/// # Errors
/// On database failure.
pub async fn free_slots(
    utx: &TenantTxn,
    settings: &Settings,
    zone: &Zone,
    now: DateTime<Utc>,
    preferred: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Slot>, ServiceError> {
    let earliest = preferred.max(now + Duration::minutes(i64::from(settings.min_notice_minutes)));
    let horizon = earliest + Duration::days(HORIZON_DAYS);
    let reps: Vec<Uuid> = utx
        .scope()
        .select::<sales_rep::Entity>()
        .filter(sales_rep::Column::Active.eq(true))
        .order_by_asc(sales_rep::Column::Id)
        .all(utx.conn())
        .await?
        .into_iter()
        .map(|rep| rep.id)
        .collect();
    let busy: Vec<Busy> = utx
        .scope()
        .select::<appointment::Entity>()
        .filter(appointment::Column::Status.eq("scheduled"))
        .filter(
            appointment::Column::ScheduledStart.gt(earliest - Duration::hours(MAX_LENGTH_HOURS)),
        )
        .filter(appointment::Column::ScheduledStart.lt(horizon))
        .all(utx.conn())
        .await?
        .into_iter()
        .map(|a| Busy {
            starts: a.scheduled_start,
            ends: a.scheduled_end,
            rep_id: a.rep_id,
        })
        .collect();
    let length = Duration::minutes(i64::from(settings.slot_minutes.max(15)));
    let mut found = Vec::new();
    let first_day = zone.date_at(earliest);
    for offset in 0..=HORIZON_DAYS {
        let day = first_day + Duration::days(offset);
        let Some((open, close)) = settings
            .business_hours
            .hours(chrono::Datelike::weekday(&day))
        else {
            continue;
        };
        let mut local = day.and_time(open);
        while local + length <= day.and_time(close) {
            let starts = zone.at_local(local);
            let ends = starts + length;
            local += length;
            if starts < earliest {
                continue;
            }
            let overlapping = |b: &&Busy| b.starts < ends && b.ends > starts;
            let slot = if reps.is_empty() {
                (!busy.iter().any(|b| overlapping(&b))).then_some(Slot {
                    starts,
                    ends,
                    rep_id: None,
                })
            } else {
                reps.iter()
                    .find(|rep| {
                        !busy
                            .iter()
                            .filter(overlapping)
                            .any(|b| b.rep_id == Some(**rep))
                    })
                    .map(|rep| Slot {
                        starts,
                        ends,
                        rep_id: Some(*rep),
                    })
            };
            if let Some(slot) = slot {
                found.push(slot);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}
