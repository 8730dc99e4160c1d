//! CallRail's API v3 (SPEC section 17): `GET {CALLRAIL_API_URL}/v3/a/{account_id}/calls/{id}.json`
//! with `fields=` for what a webhook may lack (recording, duration), under
//! `Authorization: Token token="{CALLRAIL_API_KEY}"`. 429, 5xx and transport errors are retried.

use std::time::Duration;

use otto_runtime::config::Secret;
use reqwest::Method;
use serde::Deserialize;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

/// The fields Otto asks for beyond CallRail's defaults.
pub const FIELDS: &str =
    "recording,recording_duration,duration,answered,direction,customer_phone_number,start_time";

#[derive(Debug, Clone)]
pub struct CallRailSettings {
    pub api_url: String,
    pub api_key: Secret,
    pub account_id: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl CallRailSettings {
    /// `None` without `CALLRAIL_API_KEY` and `CALLRAIL_ACCOUNT_ID`.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let callrail = &config.integrations.callrail;
        Some(Self {
            api_url: callrail.api_url.clone(),
            api_key: callrail.api_key.clone()?,
            account_id: callrail.account_id.clone()?,
            timeout: Duration::from_secs(15),
            retry: RetryPolicy {
                max_retries: 3,
                base: Duration::from_millis(500),
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallRailError {
    #[error("CallRail answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("CallRail could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("CallRail answered something that is not a call: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("CALLRAIL_API_URL does not make a URL: {0}")]
    BadUrl(String),
}

from_failure!(CallRailError);

impl CallRailError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status < 500 && *status != 429)
    }
}

/// A call as far as Otto reads it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CallRailCall {
    pub id: String,
    #[serde(default)]
    pub answered: Option<bool>,
    #[serde(default)]
    pub duration: Option<i32>,
    /// The recording's URL, once CallRail has it.
    #[serde(default)]
    pub recording: Option<String>,
}

#[derive(Clone)]
pub struct CallRailClient {
    http: reqwest::Client,
    settings: CallRailSettings,
}

impl CallRailClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: CallRailSettings) -> Result<Self, CallRailError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// One call of the account.
    ///
    /// # Errors
    /// See [`CallRailError`].
    pub async fn call(&self, call_id: &str) -> Result<CallRailCall, CallRailError> {
        let url = reqwest::Url::parse_with_params(
            &format!(
                "{}/v3/a/{}/calls/{call_id}.json",
                self.settings.api_url, self.settings.account_id
            ),
            [("fields", FIELDS)],
        )
        .map_err(|e| CallRailError::BadUrl(e.to_string()))?;
        let endpoint = Endpoint {
            provider: "callrail",
            name: "calls_show",
            method: &Method::GET,
        };
        let auth = format!("Token token=\"{}\"", self.settings.api_key.expose());
        let text = send_for_text(endpoint, self.settings.retry, || {
            self.http.get(url.clone()).header("authorization", &auth)
        })
        .await?;
        let mut call: CallRailCall = serde_json::from_str(&text)?;
        call.recording = call.recording.filter(|r| r.starts_with("http"));
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn a_call_is_fetched_with_the_fields_and_token() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v3/a/ACC1/calls/CAL123.json"))
            .and(query_param("fields", FIELDS))
            .and(header("authorization", "Token token=\"cr-key\""))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "CAL123", "answered": true, "duration": 95, "direction": "inbound",
                "recording": "https://app.callrail.com/calls/CAL123/recording",
                "recording_duration": "95", "customer_phone_number": "+15551234567"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let client = CallRailClient::new(CallRailSettings {
            api_url: server.uri(),
            api_key: Secret::new("cr-key"),
            account_id: "ACC1".to_owned(),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 1,
                base: Duration::from_millis(1),
            },
        })?;
        let call = client.call("CAL123").await?;
        assert_eq!(call.duration, Some(95));
        assert_eq!(
            call.recording.as_deref(),
            Some("https://app.callrail.com/calls/CAL123/recording")
        );
        Ok(())
    }
}
