//! `sms.send`: one outbound text through Twilio, exactly once (`otto_service::sms::send`).

use async_trait::async_trait;
use otto_domain::jobs::SendSms;
use otto_integrations::twilio::{TwilioClient, TwilioSettings};
use otto_runtime::AppContext;
use otto_service::sms::{SendError, SmsSender};

use crate::JobError;
use crate::typed::Perform;

/// The sender of `config`: `None` without Twilio settings (a send then fails permanently).
pub fn sender(config: &otto_runtime::Config) -> Option<SmsSender> {
    let twilio = TwilioClient::new(TwilioSettings::from_config(config)?).ok()?;
    let status_callback = config
        .http
        .public_base_url
        .as_ref()
        .map(|base| format!("{}/webhooks/twilio/status", base.trim_end_matches('/')));
    Some(SmsSender {
        twilio,
        status_callback,
    })
}

#[async_trait]
impl Perform for SendSms {
    type State = Option<SmsSender>;

    async fn perform(self, sender: &Option<SmsSender>, ctx: &AppContext) -> Result<(), JobError> {
        let Some(sender) = sender else {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)"
            )));
        };
        otto_service::sms::send(ctx, &ctx.db, sender, &self)
            .await
            .map_err(|err| match err {
                SendError::Twilio(twilio) if twilio.is_permanent() => {
                    JobError::Permanent(twilio.into())
                }
                other => JobError::Retryable(other.into()),
            })
    }
}
