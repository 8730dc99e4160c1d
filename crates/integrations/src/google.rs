//! Google OAuth 2.0 and Calendar API v3 (SPEC section 15): the consent URL, code exchange and
//! refresh at the token endpoint, `events.list` (full from `timeMin`, incremental from a
//! `syncToken`, paged by `pageToken`; 410 Gone is [`GoogleError::Gone`]), `events.insert`,
//! `patch`, `delete`, `events.watch` and `channels.stop`. 429, 5xx, 403 `rateLimitExceeded` and
//! transport errors are retried (`crate::retry`), except an insert: its retry first looks the event
//! up by `extendedProperties.private.otto_id` ([`GoogleClient::ensure_event`]), so an insert whose
//! answer was lost never makes a second event.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_runtime::config::Secret;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::{Endpoint, RetryPolicy, send_with_retries_when};

/// The scope Otto asks for: read and write events, nothing else of the account.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.events";
/// The private extended property naming the appointment an event mirrors.
pub const OTTO_ID: &str = "otto_id";

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub oauth_url: String,
    pub token_url: String,
    pub calendar_api_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_url: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl GoogleSettings {
    /// `None` unless `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET` and a redirect URL (explicit or
    /// from `PUBLIC_BASE_URL`) are set.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let google = &config.integrations.google;
        Some(Self {
            oauth_url: google.oauth_url.clone(),
            token_url: google.token_url.clone(),
            calendar_api_url: google.calendar_api_url.clone(),
            client_id: google.client_id.clone()?,
            client_secret: google.client_secret.clone()?,
            redirect_url: google.redirect_url.clone()?,
            timeout: Duration::from_secs(15),
            retry: RetryPolicy {
                max_retries: 3,
                base: Duration::from_millis(500),
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Google answered {status} ({reason}): {body}")]
    Status {
        status: u16,
        reason: String,
        body: String,
    },
    #[error("the sync token is no longer valid: a full sync is required")]
    Gone,
    #[error("Google refused the grant (revoked or expired): {0}")]
    InvalidGrant(String),
    #[error("Google could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("Google answered something that is not the documented shape: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("a Google URL is not a URL: {0}")]
    BadUrl(String),
}

impl GoogleError {
    /// An answer a later attempt may not get (rate limits, server errors, no answer).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, reason, .. } => {
                *status == 429 || *status >= 500 || is_rate_limit_reason(reason)
            }
            Self::Transport(_) => true,
            _ => false,
        }
    }
}

fn is_rate_limit_reason(reason: &str) -> bool {
    matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded")
}

/// The first `error.errors[].reason` (or `error` for the token endpoint) of an error body.
fn error_reason(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return String::new();
    };
    value["error"]["errors"][0]["reason"]
        .as_str()
        .or_else(|| value["error"].as_str())
        .or_else(|| value["error"]["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Sent on the first consent (with `access_type=offline`), rarely on refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// An event's start or end: `dateTime` (RFC 3339 with offset) or, for all-day events, `date`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<chrono::NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendedProperties {
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub private: HashMap<String, String>,
}

/// An event as far as Otto reads and writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `confirmed`, `tentative` or `cancelled` (a deleted event, in incremental syncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_properties: Option<ExtendedProperties>,
}

impl Event {
    /// The appointment this event mirrors, when Otto wrote it.
    pub fn otto_id(&self) -> Option<&str> {
        self.extended_properties
            .as_ref()?
            .private
            .get(OTTO_ID)
            .map(String::as_str)
    }
}

/// Which changes an `events.list` asks for.
#[derive(Debug, Clone)]
pub enum ListFrom<'a> {
    /// Everything from `timeMin` on (a full sync; deleted events left out).
    Full { time_min: DateTime<Utc> },
    /// What changed since the sync token (deleted events included, as `cancelled`).
    Changes { sync_token: &'a str },
}

/// One page of `events.list`: the last page carries `next_sync_token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    #[serde(default)]
    pub items: Vec<Event>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub next_sync_token: Option<String>,
}

/// A push channel (`events.watch`'s answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: String,
    pub resource_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelAnswer {
    id: String,
    resource_id: String,
    /// Milliseconds since the epoch, as a string.
    #[serde(default)]
    expiration: Option<String>,
}

#[derive(Clone)]
pub struct GoogleClient {
    http: reqwest::Client,
    settings: GoogleSettings,
}

impl GoogleClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: GoogleSettings) -> Result<Self, GoogleError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// The consent page to send the user to, carrying `state`.
    ///
    /// # Errors
    /// When `GOOGLE_OAUTH_URL` is not a URL.
    pub fn authorization_url(&self, state: &str) -> Result<String, GoogleError> {
        let params = [
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("access_type", "offline"),
            ("include_granted_scopes", "true"),
            ("prompt", "consent"),
            ("state", state),
        ];
        reqwest::Url::parse_with_params(&self.settings.oauth_url, params)
            .map(String::from)
            .map_err(|e| GoogleError::BadUrl(e.to_string()))
    }

    /// Exchanges an authorization code for tokens.
    ///
    /// # Errors
    /// `InvalidGrant` for a used or expired code; see [`GoogleError`].
    pub async fn exchange_code(&self, code: &str) -> Result<Tokens, GoogleError> {
        self.token_request(
            "token_exchange",
            &[
                ("code", code),
                ("redirect_uri", &self.settings.redirect_url),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }

    /// A fresh access token from a refresh token.
    ///
    /// # Errors
    /// `InvalidGrant` when the user revoked access; see [`GoogleError`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, GoogleError> {
        self.token_request(
            "token_refresh",
            &[
                ("refresh_token", refresh_token),
                ("grant_type", "refresh_token"),
            ],
        )
        .await
    }

    async fn token_request(
        &self,
        name: &'static str,
        fields: &[(&str, &str)],
    ) -> Result<Tokens, GoogleError> {
        let mut form = vec![
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.expose()),
        ];
        form.extend_from_slice(fields);
        let url = self.settings.token_url.clone();
        let result = self
            .call(name, &Method::POST, || self.http.post(&url).form(&form))
            .await;
        match result {
            Err(GoogleError::Status { reason, body, .. }) if reason == "invalid_grant" => {
                Err(GoogleError::InvalidGrant(body))
            }
            other => Ok(serde_json::from_str(&other?)?),
        }
    }

    fn events_url(&self, calendar: &str) -> Result<reqwest::Url, GoogleError> {
        let mut url = reqwest::Url::parse(&self.settings.calendar_api_url)
            .map_err(|e| GoogleError::BadUrl(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| GoogleError::BadUrl(self.settings.calendar_api_url.clone()))?
            .pop_if_empty()
            .extend(["calendars", calendar, "events"]);
        Ok(url)
    }

    fn event_url(&self, calendar: &str, event_id: &str) -> Result<reqwest::Url, GoogleError> {
        let mut url = self.events_url(calendar)?;
        url.path_segments_mut()
            .map_err(|()| GoogleError::BadUrl(self.settings.calendar_api_url.clone()))?
            .push(event_id);
        Ok(url)
    }

    /// One page of events.
    ///
    /// # Errors
    /// `Gone` when the sync token expired (start a full sync); see [`GoogleError`].
    pub async fn list_events(
        &self,
        access_token: &str,
        calendar: &str,
        from: &ListFrom<'_>,
        page_token: Option<&str>,
    ) -> Result<EventsPage, GoogleError> {
        let mut url = self.events_url(calendar)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("maxResults", "250");
            match from {
                ListFrom::Full { time_min } => {
                    query.append_pair(
                        "timeMin",
                        &time_min.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
                }
                ListFrom::Changes { sync_token } => {
                    query.append_pair("syncToken", sync_token);
                }
            }
            if let Some(page) = page_token {
                query.append_pair("pageToken", page);
            }
        }
        let text = self
            .call("events_list", &Method::GET, || {
                self.http.get(url.clone()).bearer_auth(access_token)
            })
            .await
            .map_err(|err| match err {
                GoogleError::Status { status: 410, .. } => GoogleError::Gone,
                other => other,
            })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The live event carrying `otto_id`, if any.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn find_by_otto_id(
        &self,
        access_token: &str,
        calendar: &str,
        otto_id: &str,
    ) -> Result<Option<Event>, GoogleError> {
        let mut url = self.events_url(calendar)?;
        url.query_pairs_mut()
            .append_pair("privateExtendedProperty", &format!("{OTTO_ID}={otto_id}"))
            .append_pair("showDeleted", "false");
        let text = self
            .call("events_find", &Method::GET, || {
                self.http.get(url.clone()).bearer_auth(access_token)
            })
            .await?;
        let page: EventsPage = serde_json::from_str(&text)?;
        Ok(page
            .items
            .into_iter()
            .find(|e| e.status.as_deref() != Some("cancelled")))
    }

    /// Creates the event of `otto_id` or, when one exists (an earlier insert whose answer was
    /// lost), changes that one: never two events for one appointment.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn ensure_event(
        &self,
        access_token: &str,
        calendar: &str,
        otto_id: &str,
        event: &Event,
    ) -> Result<Event, GoogleError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(existing) = self
                .find_by_otto_id(access_token, calendar, otto_id)
                .await?
                && let Some(id) = existing.id.as_deref()
            {
                return self.patch_event(access_token, calendar, id, event).await;
            }
            match self.insert_once(access_token, calendar, event).await {
                Err(err) if err.is_transient() && attempt <= self.settings.retry.max_retries => {
                    tracing::warn!(attempt, error = %err, "event insert failed; looking it up before trying again");
                    tokio::time::sleep(otto_runtime::jobs::backoff(
                        attempt,
                        self.settings.retry.base,
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    async fn insert_once(
        &self,
        access_token: &str,
        calendar: &str,
        event: &Event,
    ) -> Result<Event, GoogleError> {
        let url = self.events_url(calendar)?;
        let policy = RetryPolicy {
            max_retries: 0,
            ..self.settings.retry
        };
        let text = self
            .call_with(policy, "events_insert", &Method::POST, || {
                self.http
                    .post(url.clone())
                    .bearer_auth(access_token)
                    .json(event)
            })
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Changes the fields `event` carries.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn patch_event(
        &self,
        access_token: &str,
        calendar: &str,
        event_id: &str,
        event: &Event,
    ) -> Result<Event, GoogleError> {
        let url = self.event_url(calendar, event_id)?;
        let text = self
            .call("events_patch", &Method::PATCH, || {
                self.http
                    .patch(url.clone())
                    .bearer_auth(access_token)
                    .json(event)
            })
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Deletes an event; one already gone (404, 410) counts as deleted.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn delete_event(
        &self,
        access_token: &str,
        calendar: &str,
        event_id: &str,
    ) -> Result<(), GoogleError> {
        let url = self.event_url(calendar, event_id)?;
        match self
            .call("events_delete", &Method::DELETE, || {
                self.http.delete(url.clone()).bearer_auth(access_token)
            })
            .await
        {
            Ok(_)
            | Err(
                GoogleError::Status { status: 404, .. } | GoogleError::Status { status: 410, .. },
            ) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Opens a push channel on the calendar's events, delivering to `address` with `token`.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn watch(
        &self,
        access_token: &str,
        calendar: &str,
        channel_id: &str,
        token: &str,
        address: &str,
    ) -> Result<Channel, GoogleError> {
        let mut url = self.events_url(calendar)?;
        url.path_segments_mut()
            .map_err(|()| GoogleError::BadUrl(self.settings.calendar_api_url.clone()))?
            .push("watch");
        let body = serde_json::json!({
            "id": channel_id, "type": "web_hook", "address": address, "token": token,
        });
        let text = self
            .call("events_watch", &Method::POST, || {
                self.http
                    .post(url.clone())
                    .bearer_auth(access_token)
                    .json(&body)
            })
            .await?;
        let answer: ChannelAnswer = serde_json::from_str(&text)?;
        Ok(Channel {
            id: answer.id,
            resource_id: answer.resource_id,
            expires_at: answer
                .expiration
                .and_then(|ms| ms.parse().ok())
                .and_then(DateTime::from_timestamp_millis),
        })
    }

    /// Stops a channel; one Google no longer knows (404) counts as stopped.
    ///
    /// # Errors
    /// See [`GoogleError`].
    pub async fn stop_channel(
        &self,
        access_token: &str,
        channel_id: &str,
        resource_id: &str,
    ) -> Result<(), GoogleError> {
        let url = format!(
            "{}/channels/stop",
            self.settings.calendar_api_url.trim_end_matches('/')
        );
        let body = serde_json::json!({ "id": channel_id, "resourceId": resource_id });
        match self
            .call("channels_stop", &Method::POST, || {
                self.http.post(&url).bearer_auth(access_token).json(&body)
            })
            .await
        {
            Ok(_) | Err(GoogleError::Status { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn call(
        &self,
        name: &'static str,
        method: &Method,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String, GoogleError> {
        self.call_with(self.settings.retry, name, method, request)
            .await
    }

    async fn call_with(
        &self,
        policy: RetryPolicy,
        name: &'static str,
        method: &Method,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String, GoogleError> {
        let endpoint = Endpoint {
            provider: "google",
            name,
            method,
        };
        let rate_limited = |status: StatusCode, body: &str| {
            status == 403 && is_rate_limit_reason(&error_reason(body))
        };
        let (status, text) = send_with_retries_when(endpoint, policy, rate_limited, || async {
            let response = request().send().await?;
            let status = response.status();
            Ok((status, response.text().await?))
        })
        .await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(GoogleError::Status {
                status: status.as_u16(),
                reason: error_reason(&text),
                body: text.chars().take(500).collect(),
            })
        }
    }
}

#[cfg(test)]
#[path = "google_tests.rs"]
mod tests;
