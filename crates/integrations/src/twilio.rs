//! Twilio's REST API (SPEC section 17): create a Message (form fields `To`, `From`, `Body`,
//! `StatusCallback`) and list an account's Messages to a number since a day, both under HTTP
//! Basic auth with the account SID and auth token, at `TWILIO_API_URL` (tests point it at a
//! local server). The list lets a send retried after a crash find the message its first attempt
//! may have created instead of texting twice. 429 and 5xx answers and transport errors are
//! retried (`crate::retry`); other answers are returned at once.

use std::time::Duration;

use chrono::NaiveDate;
use otto_runtime::config::Secret;
use reqwest::Method;
use serde::Deserialize;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `TWILIO_API_URL` (`https://api.twilio.com`).
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl TwilioSettings {
    /// `None` unless `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN` are both set.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let twilio = &config.integrations.twilio;
        Some(Self {
            api_url: twilio.api_url.clone(),
            account_sid: twilio.account_sid.clone()?,
            auth_token: config.webhooks.twilio_auth_token.clone()?,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(300),
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error("Twilio answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Twilio could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("Twilio answered something that is not the documented shape: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("TWILIO_API_URL does not make a URL: {0}")]
    BadUrl(String),
}

from_failure!(TwilioError);

impl TwilioError {
    /// A refusal that will not change on retry (a bad number, an opted-out recipient...).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status < 500 && *status != 429)
    }
}

/// A Message resource, as far as Otto reads it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TwilioMessage {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Deserialize)]
struct MessagePage {
    messages: Vec<TwilioMessage>,
}

/// What one send asks Twilio for.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundSms<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    pub status_callback: Option<&'a str>,
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    settings: TwilioSettings,
}

impl TwilioClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: TwilioSettings) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.api_url.trim_end_matches('/'),
            self.settings.account_sid
        )
    }

    /// Creates (sends) a message.
    ///
    /// # Errors
    /// See [`TwilioError`].
    pub async fn send(&self, sms: &OutboundSms<'_>) -> Result<TwilioMessage, TwilioError> {
        let mut form = vec![("To", sms.to), ("From", sms.from), ("Body", sms.body)];
        if let Some(callback) = sms.status_callback {
            form.push(("StatusCallback", callback));
        }
        let url = self.messages_url();
        let text = self
            .call("messages_create", &Method::POST, || {
                self.http
                    .post(&url)
                    .basic_auth(
                        &self.settings.account_sid,
                        Some(self.settings.auth_token.expose()),
                    )
                    .form(&form)
            })
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The account's messages from `from` to `to` sent on or after `since` (Twilio filters by
    /// day), newest first, first page only (a retry looks back minutes, not months).
    ///
    /// # Errors
    /// See [`TwilioError`].
    pub async fn messages_to(
        &self,
        to: &str,
        from: &str,
        since: NaiveDate,
    ) -> Result<Vec<TwilioMessage>, TwilioError> {
        let since = since.format("%Y-%m-%d").to_string();
        let query = [("To", to), ("From", from), ("DateSent>", since.as_str())];
        let url = reqwest::Url::parse_with_params(&self.messages_url(), query)
            .map_err(|e| TwilioError::BadUrl(e.to_string()))?;
        let text = self
            .call("messages_list", &Method::GET, || {
                self.http.get(url.clone()).basic_auth(
                    &self.settings.account_sid,
                    Some(self.settings.auth_token.expose()),
                )
            })
            .await?;
        Ok(serde_json::from_str::<MessagePage>(&text)?.messages)
    }

    async fn call(
        &self,
        name: &'static str,
        method: &Method,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String, TwilioError> {
        let endpoint = Endpoint {
            provider: "twilio",
            name,
            method,
        };
        Ok(send_for_text(endpoint, self.settings.retry, request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_string, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const MESSAGES: &str = "/2010-04-01/Accounts/AC123/Messages.json";
    /// Base64 of `AC123:token-abc`.
    const BASIC: &str = "Basic QUMxMjM6dG9rZW4tYWJj";

    fn client(server: &MockServer) -> Result<TwilioClient, TwilioError> {
        TwilioClient::new(TwilioSettings {
            api_url: server.uri(),
            account_sid: "AC123".to_owned(),
            auth_token: Secret::new("token-abc"),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(1),
            },
        })
    }

    #[tokio::test]
    async fn a_send_is_the_documented_form_post() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .and(header("authorization", BASIC))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string(
                "To=%2B15551112222&From=%2B15550001111&Body=Tuesday+at+9%3F+%F0%9F%91%8D\
                 &StatusCallback=https%3A%2F%2Fotto.example.com%2Fwebhooks%2Ftwilio%2Fstatus",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "sid": "SM1", "status": "queued", "to": "+15551112222", "from": "+15550001111",
                "body": "Tuesday at 9? 👍", "account_sid": "AC123"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let sent = client(&server)?
            .send(&OutboundSms {
                to: "+15551112222",
                from: "+15550001111",
                body: "Tuesday at 9? 👍",
                status_callback: Some("https://otto.example.com/webhooks/twilio/status"),
            })
            .await?;
        assert_eq!((sent.sid.as_str(), sent.status.as_str()), ("SM1", "queued"));
        Ok(())
    }

    #[tokio::test]
    async fn a_list_filters_by_number_and_day() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MESSAGES))
            .and(header("authorization", BASIC))
            .and(query_param("To", "+15551112222"))
            .and(query_param("From", "+15550001111"))
            .and(query_param("DateSent>", "2026-11-29"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messages": [{"sid": "SM9", "status": "sent", "to": "+15551112222",
                              "from": "+15550001111", "body": "Hi"}],
                "next_page_uri": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let since = NaiveDate::from_ymd_opt(2026, 11, 29).ok_or("date")?;
        let found = client(&server)?
            .messages_to("+15551112222", "+15550001111", since)
            .await?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].body.as_deref(), Some("Hi"));
        Ok(())
    }

    #[tokio::test]
    async fn server_errors_are_retried_and_refusals_are_not() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string("To=%2B1&From=%2B2&Body=busy"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string("To=%2B1&From=%2B2&Body=busy"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"sid": "SM2", "status": "queued"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string("To=%2B1&From=%2B2&Body=invalid"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 21211})))
            .expect(1)
            .mount(&server)
            .await;
        let twilio = client(&server)?;
        let sms = |body| OutboundSms {
            to: "+1",
            from: "+2",
            body,
            status_callback: None,
        };
        assert_eq!(twilio.send(&sms("busy")).await?.sid, "SM2");
        let refused = twilio.send(&sms("invalid")).await;
        assert!(
            refused.is_err_and(|err| err.is_permanent()),
            "400: no retry, permanent"
        );
        Ok(())
    }
}
