use chrono::{DateTime, Duration, DurationRound, Utc};
use otto_runtime::jobs::{NewJob, Queue};
use otto_worker::maintenance;
use serde_json::json;

/// A job fired at the start of every `period` (aligned on the Unix epoch, so hourly means on
/// the hour and daily means at 00:00 UTC, plus `offset`).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: &'static str,
    pub period: Duration,
    pub offset: Duration,
    pub job_name: &'static str,
    pub queue: Queue,
}

impl Schedule {
    /// The start of the slot `now` falls in.
    pub fn slot(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let shifted = now - self.offset;
        shifted.duration_trunc(self.period).unwrap_or(shifted) + self.offset
    }

    pub fn job(&self, slot: DateTime<Utc>) -> NewJob {
        NewJob::now(
            self.queue,
            self.job_name,
            json!({ "schedule": self.name, "slot": slot }),
        )
    }
}

/// The schedule in one table. Issue-specific jobs (transcriptions, Shunya polling, reports)
/// join it as their features land.
pub fn standard_schedule() -> Vec<Schedule> {
    vec![
        Schedule {
            name: "purge-sent-outbox-events",
            period: Duration::hours(1),
            offset: Duration::zero(),
            job_name: maintenance::PURGE_OUTBOX,
            queue: Queue::Default,
        },
        Schedule {
            name: "purge-silent-worker-heartbeats",
            period: Duration::hours(1),
            offset: Duration::zero(),
            job_name: maintenance::PURGE_HEARTBEATS,
            queue: Queue::Default,
        },
        Schedule {
            name: "purge-idempotency-keys",
            period: Duration::days(1),
            offset: Duration::hours(2),
            job_name: maintenance::PURGE_IDEMPOTENCY_KEYS,
            queue: Queue::Default,
        },
        Schedule {
            name: "purge-old-schedule-slots",
            period: Duration::days(1),
            offset: Duration::hours(3),
            job_name: maintenance::PURGE_SCHEDULE_RUNS,
            queue: Queue::Default,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slots_align_on_period_and_offset() -> Result<(), &'static str> {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 2, 30, 15)
            .single()
            .ok_or("date")?;
        let hourly = &standard_schedule()[0];
        assert_eq!(
            hourly.slot(now),
            Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0)
                .single()
                .ok_or("date")?
        );
        let daily_at_3 = standard_schedule()
            .into_iter()
            .find(|s| s.name == "purge-old-schedule-slots")
            .ok_or("schedule")?;
        assert_eq!(
            daily_at_3.slot(now),
            Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0)
                .single()
                .ok_or("date")?
        );
        Ok(())
    }
}
