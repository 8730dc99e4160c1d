//! Bland (SPEC section 17): an outbound AI call, `POST {BLAND_API_URL}/v1/calls` with the API key
//! in `authorization`, the number, the task (the agent's instructions), `metadata.company_id`
//! (Bland's webhook names its tenant with it) and the webhook URL. Not retried on an unanswered
//! request: the caller claims the callback first, so a lost answer costs a callback, never a
//! second dial.

use std::time::Duration;

use otto_runtime::config::Secret;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

#[derive(Debug, Clone)]
pub struct BlandSettings {
    pub api_url: String,
    pub api_key: Secret,
    pub timeout: Duration,
}

impl BlandSettings {
    /// `None` without `BLAND_API_KEY`.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let bland = &config.integrations.bland;
        Some(Self {
            api_url: bland.api_url.clone(),
            api_key: bland.api_key.clone()?,
            timeout: Duration::from_secs(15),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlandError {
    #[error("Bland answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Bland could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("Bland answered something that is not a queued call: {0}")]
    Decode(#[from] serde_json::Error),
}

from_failure!(BlandError);

/// One call to place.
#[derive(Debug, Clone)]
pub struct OutboundCall<'a> {
    pub phone_number: &'a str,
    pub task: &'a str,
    pub metadata: Value,
    pub webhook: Option<&'a str>,
}

#[derive(Deserialize)]
struct Queued {
    call_id: String,
}

#[derive(Clone)]
pub struct BlandClient {
    http: reqwest::Client,
    settings: BlandSettings,
}

impl BlandClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: BlandSettings) -> Result<Self, BlandError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// Places `call`; returns Bland's call id.
    ///
    /// # Errors
    /// See [`BlandError`].
    pub async fn place_call(&self, call: &OutboundCall<'_>) -> Result<String, BlandError> {
        let url = format!("{}/v1/calls", self.settings.api_url);
        let mut body = serde_json::json!({
            "phone_number": call.phone_number, "task": call.task, "metadata": call.metadata,
        });
        if let Some(webhook) = call.webhook {
            body["webhook"] = Value::String(webhook.to_owned());
        }
        let endpoint = Endpoint {
            provider: "bland",
            name: "calls_create",
            method: &Method::POST,
        };
        // Never retried here: a timeout may have placed the call (the caller claimed it first).
        let policy = RetryPolicy {
            max_retries: 0,
            base: Duration::from_millis(500),
        };
        let text = send_for_text(endpoint, policy, || {
            self.http
                .post(&url)
                .header("authorization", self.settings.api_key.expose())
                .json(&body)
        })
        .await?;
        Ok(serde_json::from_str::<Queued>(&text)?.call_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_call_is_the_documented_request() -> Result<(), Box<dyn std::error::Error>> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/calls"))
            .and(header("authorization", "bland-key"))
            .and(body_json(
                json!({"phone_number": "+15551234567", "task": "Call back about the missed call.",
                "metadata": {"company_id": "org_1", "call_id": "c-1"},
                "webhook": "https://otto.example.com/webhooks/bland"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "status": "success", "call_id": "bl-1", "message": "Call successfully queued."
            })))
            .expect(1)
            .mount(&server)
            .await;
        let client = BlandClient::new(BlandSettings {
            api_url: server.uri(),
            api_key: Secret::new("bland-key"),
            timeout: Duration::from_secs(2),
        })?;
        let id = client
            .place_call(&OutboundCall {
                phone_number: "+15551234567",
                task: "Call back about the missed call.",
                metadata: json!({"company_id": "org_1", "call_id": "c-1"}),
                webhook: Some("https://otto.example.com/webhooks/bland"),
            })
            .await?;
        assert_eq!(id, "bl-1");
        Ok(())
    }
}
