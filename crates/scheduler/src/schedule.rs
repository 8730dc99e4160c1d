//! The schedule of SPEC section 8: one table of cron expressions (six fields, seconds first, UTC).

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use otto_domain::jobs::{
    CheckMissingReports, CleanupEphemeralSessions, CleanupOldTasks, GenerateDailyReports, JobKind,
    NewJob, PollUwcJobs, ProcessMissedCalls, ProcessPendingTranscriptions, PurgeHeartbeats,
    PurgeIdempotencyKeys, PurgeOutbox, PurgeScheduleRuns, Queue, RenewCalendarChannels,
    SlotPayload,
};
use otto_runtime::config::ScheduleOverride;

/// A job fired at every time its cron expression matches; each such time is a slot.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: &'static str,
    /// The expression as written (shown in logs and docs).
    pub expression: String,
    pub job_name: &'static str,
    pub queue: Queue,
    cron: cron::Schedule,
}

impl Schedule {
    /// # Errors
    /// When `expression` is not a valid cron expression.
    pub fn new(
        name: &'static str,
        expression: &str,
        job_name: &'static str,
        queue: Queue,
    ) -> Result<Self, String> {
        let cron = cron::Schedule::from_str(expression).map_err(|e| {
            format!("schedule '{name}': '{expression}' is not a cron expression: {e}")
        })?;
        Ok(Self {
            name,
            expression: expression.to_owned(),
            job_name,
            queue,
            cron,
        })
    }

    /// The latest slot at or before `now`.
    pub fn slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&(now + Duration::milliseconds(1)))
            .next_back()
    }

    /// The job of `slot`: every scheduled job's payload is a [`SlotPayload`].
    ///
    /// # Errors
    /// When the payload cannot be serialised (nothing is enqueued then).
    pub fn job(&self, slot: DateTime<Utc>) -> Result<NewJob, serde_json::Error> {
        let payload = serde_json::to_value(SlotPayload {
            schedule: self.name.to_owned(),
            slot,
        })?;
        Ok(NewJob::now(self.queue, self.job_name, payload))
    }
}

/// The schedule in one table.
///
/// # Errors
/// Never for the expressions below (a unit test parses them all).
pub fn standard_schedule() -> Result<Vec<Schedule>, String> {
    [
        // every minute, at :00
        (
            "process-pending-transcriptions",
            "0 * * * * *",
            ProcessPendingTranscriptions::NAME,
            ProcessPendingTranscriptions::QUEUE,
        ),
        // every minute, at :30 (away from the sweep)
        (
            "poll-shunya-jobs",
            "30 * * * * *",
            PollUwcJobs::NAME,
            PollUwcJobs::QUEUE,
        ),
        (
            "cleanup-old-tasks",
            "0 10 * * * *",
            CleanupOldTasks::NAME,
            CleanupOldTasks::QUEUE,
        ),
        (
            "cleanup-ephemeral-sessions",
            "0 20 * * * *",
            CleanupEphemeralSessions::NAME,
            CleanupEphemeralSessions::QUEUE,
        ),
        (
            "generate-daily-reports",
            "0 30 0 * * *",
            GenerateDailyReports::NAME,
            GenerateDailyReports::QUEUE,
        ),
        // every 6 hours, at :45 (after the daily report's 00:30)
        (
            "check-missing-reports",
            "0 45 */6 * * *",
            CheckMissingReports::NAME,
            CheckMissingReports::QUEUE,
        ),
        // every minute, at :15
        (
            "process-missed-calls",
            "15 * * * * *",
            ProcessMissedCalls::NAME,
            ProcessMissedCalls::QUEUE,
        ),
        // hourly, at :25: a channel expiring within a day is renewed well before it lapses
        (
            "renew-calendar-channels",
            "0 25 * * * *",
            RenewCalendarChannels::NAME,
            RenewCalendarChannels::QUEUE,
        ),
        (
            "purge-idempotency-keys",
            "0 0 2 * * *",
            PurgeIdempotencyKeys::NAME,
            PurgeIdempotencyKeys::QUEUE,
        ),
        (
            "purge-sent-outbox-events",
            "0 0 * * * *",
            PurgeOutbox::NAME,
            PurgeOutbox::QUEUE,
        ),
        (
            "purge-silent-worker-heartbeats",
            "0 5 * * * *",
            PurgeHeartbeats::NAME,
            PurgeHeartbeats::QUEUE,
        ),
        (
            "purge-old-schedule-slots",
            "0 0 3 * * *",
            PurgeScheduleRuns::NAME,
            PurgeScheduleRuns::QUEUE,
        ),
    ]
    .into_iter()
    .map(|(name, expression, job, queue)| Schedule::new(name, expression, job, queue))
    .collect()
}

/// The standard schedule with `SCHEDULE_OVERRIDES` applied.
///
/// # Errors
/// See [`with_overrides`].
pub fn configured_schedule(config: &otto_runtime::Config) -> Result<Vec<Schedule>, String> {
    with_overrides(standard_schedule()?, &config.schedule.overrides)
}

/// `schedules` with `overrides` applied (parsed and checked when the configuration was loaded):
/// a new cron expression, or removal for `off`.
///
/// # Errors
/// An override naming no schedule, as one line for the operator.
pub fn with_overrides(
    mut schedules: Vec<Schedule>,
    overrides: &[ScheduleOverride],
) -> Result<Vec<Schedule>, String> {
    for ScheduleOverride { name, cron } in overrides {
        let Some(index) = schedules.iter().position(|s| s.name == name) else {
            return Err(format!("SCHEDULE_OVERRIDES: no schedule named '{name}'"));
        };
        let Some(expression) = cron else {
            schedules.remove(index);
            continue;
        };
        let current = &schedules[index];
        schedules[index] = Schedule::new(current.name, expression, current.job_name, current.queue)
            .map_err(|e| format!("SCHEDULE_OVERRIDES: {e}"))?;
    }
    Ok(schedules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> Result<DateTime<Utc>, &'static str> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, s)
            .single()
            .ok_or("date")
    }

    fn find(name: &str) -> Result<Schedule, String> {
        standard_schedule()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| name.to_owned())
    }

    #[test]
    fn slots_are_the_latest_match_at_or_before_now() -> Result<(), Box<dyn std::error::Error>> {
        let hourly = find("purge-sent-outbox-events")?;
        assert_eq!(hourly.slot(at(2, 30, 15)?), Some(at(2, 0, 0)?));
        assert_eq!(hourly.slot(at(2, 0, 0)?), Some(at(2, 0, 0)?), "inclusive");
        let daily_at_3 = find("purge-old-schedule-slots")?;
        assert_eq!(
            daily_at_3.slot(at(2, 30, 15)?),
            Some(
                Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0)
                    .single()
                    .ok_or("date")?
            )
        );
        let poll = find("poll-shunya-jobs")?;
        assert_eq!(poll.slot(at(2, 30, 15)?), Some(at(2, 29, 30)?));
        Ok(())
    }

    #[test]
    fn overrides_change_or_remove_a_schedule_and_refuse_unknown_names() -> Result<(), String> {
        let set = |name: &str, cron: Option<&str>| ScheduleOverride {
            name: name.to_owned(),
            cron: cron.map(str::to_owned),
        };
        let overrides = [
            set("poll-shunya-jobs", Some("*/2 * * * * *")),
            set("cleanup-old-tasks", Some("0 */5 * * * *")),
            set("generate-daily-reports", None),
        ];
        let schedules = with_overrides(standard_schedule()?, &overrides)?;
        let poll = schedules
            .iter()
            .find(|s| s.name == "poll-shunya-jobs")
            .ok_or("poll")?;
        assert_eq!(poll.expression, "*/2 * * * * *");
        let now = at(2, 30, 15).map_err(str::to_owned)?;
        assert_eq!(poll.slot(now), at(2, 30, 14).ok());
        assert!(!schedules.iter().any(|s| s.name == "generate-daily-reports"));
        assert!(with_overrides(standard_schedule()?, &[set("nope", Some("* * * * * *"))]).is_err());
        Ok(())
    }
}
