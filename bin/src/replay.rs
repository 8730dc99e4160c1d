//! `otto-api replay-webhook`: signs a sample delivery of a provider with this deployment's
//! secrets and sends it to a running instance (local development and smoke tests).

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use otto_api::webhooks::signature::sign;
use otto_runtime::Config;
use serde_json::json;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SampleProvider {
    /// A CallRail pre-call (a new lead and call).
    Callrail,
    /// A completed CallRail call with a recording (starts the transcription pipeline).
    CallrailComplete,
    TwilioVoice,
    /// A receptionist turn of the `twilio-voice` sample's call (`--say`).
    TwilioVoiceTurn,
    TwilioSms,
    Clerk,
    Bland,
    Uwc,
}

#[derive(Args, Debug)]
pub struct Replay {
    #[arg(long, value_enum)]
    provider: SampleProvider,
    /// Base URL of the running instance.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Unique part of the sample's ids; repeat it to see `duplicate_ignored`.
    #[arg(long, default_value = "sample-1")]
    id: String,
    /// The tenant's CallRail company id (companies.callrail_company_id).
    #[arg(long, default_value = "CR1")]
    callrail_company: String,
    /// The tenant's Twilio number (companies' twilio_numbers).
    #[arg(long, default_value = "+15557654321")]
    twilio_number: String,
    /// What the caller says: the SMS body (`twilio-sms`), or the speech of a receptionist turn
    /// (`twilio-voice-turn`; omitted, the turn is silence).
    #[arg(long)]
    say: Option<String>,
    /// The tenant (organization) id, for Clerk, Bland and UWC samples.
    #[arg(long, default_value = "org_demo")]
    company: String,
}

/// Sends the sample; prints the status and body.
///
/// # Errors
/// When a needed secret is not configured or the request fails.
pub async fn run(config: &Config, replay: Replay) -> Result<(), Box<dyn std::error::Error>> {
    let secrets = &config.webhooks;
    let base = replay.url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let id = &replay.id;
    let request = match replay.provider {
        SampleProvider::Callrail | SampleProvider::CallrailComplete => {
            let (path, recording) = match replay.provider {
                SampleProvider::Callrail => ("pre-call", None),
                _ => (
                    "call-complete",
                    Some(format!("https://recordings.example.com/{id}.mp3")),
                ),
            };
            let body = json!({"company_id": replay.callrail_company, "call": {"id": id}, "customer_phone_number": "+15551234567",
                "customer_name": "Sample Caller", "direction": "inbound", "answered": true, "duration": 60, "recording": recording}).to_string();
            let mut request = client
                .post(format!("{base}/webhooks/callrail/{path}"))
                .header("content-type", "application/json");
            if let Some(secret) = &secrets.callrail {
                request = request.header(
                    "Signature",
                    sign::callrail(secret.expose(), body.as_bytes()),
                );
            }
            request.body(body)
        }
        SampleProvider::TwilioVoice
        | SampleProvider::TwilioVoiceTurn
        | SampleProvider::TwilioSms => {
            let token = secrets
                .twilio_auth_token
                .as_ref()
                .ok_or("TWILIO_AUTH_TOKEN is not set")?;
            let (path, params) = match replay.provider {
                SampleProvider::TwilioVoice => (
                    "/webhooks/twilio/voice",
                    vec![
                        ("CallSid", format!("CA{id}")),
                        ("CallStatus", "ringing".to_owned()),
                    ],
                ),
                SampleProvider::TwilioVoiceTurn => {
                    let mut params = vec![("CallSid", format!("CA{id}"))];
                    if let Some(said) = &replay.say {
                        params.push(("SpeechResult", said.clone()));
                    }
                    ("/webhooks/twilio/voice/turn", params)
                }
                _ => (
                    "/webhooks/twilio/sms",
                    vec![
                        ("MessageSid", format!("SM{id}")),
                        (
                            "Body",
                            replay
                                .say
                                .clone()
                                .unwrap_or_else(|| "Can you come Tuesday?".to_owned()),
                        ),
                    ],
                ),
            };
            let mut form: Vec<(String, String)> =
                params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            form.push(("From".to_owned(), "+15551234567".to_owned()));
            form.push(("To".to_owned(), replay.twilio_number.clone()));
            let public = config
                .http
                .public_base_url
                .clone()
                .unwrap_or_else(|| base.to_owned());
            let signature = sign::twilio(
                token.expose(),
                &format!("{}{path}", public.trim_end_matches('/')),
                &form,
            );
            client
                .post(format!("{base}{path}"))
                .header("X-Twilio-Signature", signature)
                .form(&form)
        }
        SampleProvider::Clerk => {
            let secret = secrets
                .clerk
                .first()
                .ok_or("CLERK_WEBHOOK_SECRET is not set")?;
            let body = json!({"type": "organization.created", "data": {"id": replay.company, "name": "Sample Roofing"}}).to_string();
            let svix_id = format!("msg_{id}");
            client
                .post(format!("{base}/webhooks/clerk"))
                .header("svix-id", &svix_id)
                .header("svix-timestamp", &now)
                .header(
                    "svix-signature",
                    sign::svix(secret.expose(), &svix_id, &now, body.as_bytes()),
                )
                .body(body)
        }
        SampleProvider::Bland => {
            let body = json!({"call_id": id, "status": "completed", "call_length": 2.5, "metadata": {"company_id": replay.company}}).to_string();
            let mut request = client.post(format!("{base}/webhooks/bland"));
            if let Some(secret) = &secrets.bland {
                request = request.header(
                    "X-Webhook-Signature",
                    sign::bland(secret.expose(), body.as_bytes()),
                );
            }
            request.body(body)
        }
        SampleProvider::Uwc => {
            let secret = secrets
                .uwc_hmac
                .as_ref()
                .ok_or("UWC_HMAC_SECRET is not set")?;
            let body = json!({"job_id": id, "company_id": replay.company, "status": "completed", "transcript": "Sample transcript."}).to_string();
            client
                .post(format!("{base}/webhooks/uwc/asr/complete"))
                .header("X-UWC-Timestamp", &now)
                .header(
                    "X-UWC-Signature",
                    sign::uwc(secret.expose(), &now, body.as_bytes()),
                )
                .body(body)
        }
    };
    let response = request.send().await?;
    println!("{} {}", response.status().as_u16(), response.text().await?);
    Ok(())
}
