use chrono::{DateTime, Duration, DurationRound, Utc};
use otto_runtime::jobs::{NewJob, Queue};
use otto_worker::maintenance;
use otto_worker::pipeline::{PollShunyaJobs, ProcessPendingTranscriptions};
use otto_worker::reports::GenerateDailyReports;
use otto_worker::typed::JobKind;
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

/// The schedule of SPEC section 8 in one table.
pub fn standard_schedule() -> Vec<Schedule> {
    vec![
        Schedule {
            name: "process-pending-transcriptions",
            period: Duration::seconds(60),
            offset: Duration::zero(),
            job_name: ProcessPendingTranscriptions::NAME,
            queue: ProcessPendingTranscriptions::QUEUE,
        },
        Schedule {
            name: "poll-shunya-jobs",
            period: Duration::seconds(60),
            offset: Duration::zero(),
            job_name: PollShunyaJobs::NAME,
            queue: PollShunyaJobs::QUEUE,
        },
        Schedule {
            name: "cleanup-old-tasks",
            period: Duration::hours(1),
            offset: Duration::minutes(10),
            job_name: maintenance::CLEANUP_OLD_TASKS,
            queue: Queue::Default,
        },
        Schedule {
            name: "cleanup-ephemeral-sessions",
            period: Duration::hours(1),
            offset: Duration::minutes(20),
            job_name: maintenance::CLEANUP_EPHEMERAL_SESSIONS,
            queue: Queue::Default,
        },
        Schedule {
            name: "generate-daily-reports",
            period: Duration::days(1),
            offset: Duration::minutes(30),
            job_name: GenerateDailyReports::NAME,
            queue: GenerateDailyReports::QUEUE,
        },
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

/// The standard schedule with `SCHEDULE_OVERRIDES` applied.
///
/// # Errors
/// See [`with_overrides`].
pub fn configured_schedule(config: &otto_runtime::Config) -> Result<Vec<Schedule>, String> {
    with_overrides(standard_schedule(), &config.schedule_overrides)
}

/// `schedules` with the periods of `overrides` (`name`, `5s` | `2m` | `1h` | `1d` | `off`).
///
/// # Errors
/// An unknown schedule name or an unreadable period, as one line for the operator.
pub fn with_overrides(
    mut schedules: Vec<Schedule>,
    overrides: &[(String, String)],
) -> Result<Vec<Schedule>, String> {
    for (name, period) in overrides {
        let Some(index) = schedules.iter().position(|s| s.name == name) else {
            return Err(format!("SCHEDULE_OVERRIDES: no schedule named '{name}'"));
        };
        if period == "off" {
            schedules.remove(index);
            continue;
        }
        let parsed = parse_period(period).ok_or_else(|| {
            format!("SCHEDULE_OVERRIDES: '{period}' is not like 5s, 2m, 1h or 1d")
        })?;
        schedules[index].period = parsed;
        schedules[index].offset = Duration::zero();
    }
    Ok(schedules)
}

fn parse_period(raw: &str) -> Option<Duration> {
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let (count, unit) = raw.split_at(split);
    let count: i64 = count.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "s" => Some(Duration::seconds(count)),
        "m" => Some(Duration::minutes(count)),
        "h" => Some(Duration::hours(count)),
        "d" => Some(Duration::days(count)),
        _ => None,
    }
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
        let hourly = standard_schedule()
            .into_iter()
            .find(|s| s.name == "purge-sent-outbox-events")
            .ok_or("schedule")?;
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

    #[test]
    fn overrides_change_or_remove_a_schedule_and_refuse_unknown_names() -> Result<(), String> {
        let overrides = [
            ("poll-shunya-jobs".to_owned(), "1s".to_owned()),
            ("generate-daily-reports".to_owned(), "off".to_owned()),
        ];
        let schedules = with_overrides(standard_schedule(), &overrides)?;
        let poll = schedules
            .iter()
            .find(|s| s.name == "poll-shunya-jobs")
            .ok_or("poll")?;
        assert_eq!(poll.period, Duration::seconds(1));
        assert!(!schedules.iter().any(|s| s.name == "generate-daily-reports"));
        assert!(with_overrides(standard_schedule(), &[("nope".into(), "1s".into())]).is_err());
        assert!(
            with_overrides(
                standard_schedule(),
                &[("poll-shunya-jobs".into(), "soon".into())]
            )
            .is_err()
        );
        Ok(())
    }
}
