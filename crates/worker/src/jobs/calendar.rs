//! Google Calendar jobs (SPEC section 15): `calendar.sync` (Google to Otto, coalesced per
//! company), `calendar.push_appointment` (Otto to Google) and the hourly
//! `calendar.renew_channels`. The work is `otto_service::calendar`'s.

use async_trait::async_trait;
use chrono::Utc;
use otto_domain::jobs::{PushAppointment, RenewCalendarChannels, SyncCalendar};
use otto_runtime::AppContext;
use otto_service::calendar::{CalendarError, CalendarSync, connection, inbound, outbound};

use crate::JobError;
use crate::typed::Perform;

/// The sync of `config`: `None` without Google settings and `ENCRYPTION_KEY`.
pub fn sync(config: &otto_runtime::Config) -> Option<CalendarSync> {
    CalendarSync::from_config(config)
}

fn configured(sync: &Option<CalendarSync>) -> Result<&CalendarSync, JobError> {
    sync.as_ref().ok_or_else(|| {
        JobError::Permanent(anyhow::anyhow!(
            "Google Calendar is not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, ENCRYPTION_KEY)"
        ))
    })
}

fn job_error(err: CalendarError) -> JobError {
    if err.is_transient() {
        JobError::Retryable(err.into())
    } else {
        JobError::Permanent(err.into())
    }
}

#[async_trait]
impl Perform for SyncCalendar {
    type State = Option<CalendarSync>;

    async fn perform(self, sync: &Option<CalendarSync>, ctx: &AppContext) -> Result<(), JobError> {
        let run = inbound::run_sync(configured(sync)?, ctx, &self.tenant_id, &self.trace_id)
            .await
            .map_err(job_error)?;
        tracing::info!(tenant_id = %self.tenant_id, ?run, "calendar sync");
        Ok(())
    }
}

#[async_trait]
impl Perform for PushAppointment {
    type State = Option<CalendarSync>;

    async fn perform(self, sync: &Option<CalendarSync>, ctx: &AppContext) -> Result<(), JobError> {
        let pushed = outbound::push_appointment(configured(sync)?, ctx, &self)
            .await
            .map_err(job_error)?;
        tracing::info!(appointment_id = %self.appointment_id, ?pushed, "appointment written to Google");
        Ok(())
    }
}

#[async_trait]
impl Perform for RenewCalendarChannels {
    type State = Option<CalendarSync>;

    async fn perform(self, sync: &Option<CalendarSync>, ctx: &AppContext) -> Result<(), JobError> {
        // Without Google settings there is nothing to renew: not a failure of the schedule.
        let Some(sync) = sync else {
            return Ok(());
        };
        let renewed = connection::renew_expiring(sync, ctx, Utc::now())
            .await
            .map_err(job_error)?;
        tracing::info!(renewed, "calendar channels renewed");
        Ok(())
    }
}
