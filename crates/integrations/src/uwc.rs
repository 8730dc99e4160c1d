//! The UWC/Shunya client (SPEC section 10): ASR batches, RAG queries, document indexing,
//! training jobs and job status. Every request carries `Authorization: Bearer UWC_API_KEY` and is
//! signed like UWC's callbacks: `X-UWC-Timestamp` and `X-UWC-Signature` = hex
//! HMAC-SHA256(`UWC_HMAC_SECRET`, `"{timestamp}.{body}"`). 429 and 5xx answers and transport
//! errors are retried with exponential backoff and jitter; other errors are returned at once.
//! Shapes: docs/integrations/uwc.md.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use otto_runtime::config::Secret;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::retry::{Endpoint, RetryPolicy, send_with_retries};

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"`: the signature of UWC requests and callbacks.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone)]
pub struct UwcSettings {
    pub base_url: String,
    /// Redacted in `Debug` (the type's), like every secret.
    pub api_key: Secret,
    pub hmac_secret: Secret,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UwcError {
    #[error("UWC answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("UWC could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("UWC answered something that is not the documented shape: {0}")]
    Decode(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AsrBatchRequest {
    pub company_id: String,
    pub call_id: String,
    pub audio_url: String,
    pub language: Option<String>,
    /// Where UWC posts `asr/complete`.
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobAccepted {
    pub job_id: String,
    pub status: String,
}

/// A finished transcription, as UWC's `asr/complete` callback and `job_status` output carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AsrOutput {
    pub transcript: String,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub language: Option<String>,
}

impl AsrOutput {
    /// Hex SHA-256 of the canonical JSON of this output: the same transcript gives the same hash
    /// whether it came by webhook or by polling, so the second arrival is recognised.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnalysisRequest {
    pub company_id: String,
    pub call_id: String,
    pub transcript: String,
}

/// What Otto keeps of a call's analysis (stored as `calls.analysis`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallAnalysis {
    #[serde(default)]
    pub objections: Vec<String>,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: String,
    /// `high`, `medium`, `low` or `none`.
    pub booking_intent: String,
    #[serde(default)]
    pub key_signals: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FollowupRequest {
    pub company_id: String,
    pub call_id: String,
    pub transcript: String,
    pub analysis: CallAnalysis,
    /// `sms` or `email`.
    pub channel: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FollowupDraft {
    pub channel: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RagQuery {
    pub company_id: String,
    pub question: String,
    pub top_k: Option<u32>,
    /// Narrows the context to one lead's calls and documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RagAnswer {
    pub answer: String,
    #[serde(default)]
    pub sources: Vec<RagSource>,
    /// The tokens UWC's model used (counted in `llm_tokens_total`).
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RagSource {
    pub document_id: String,
    pub snippet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexRequest {
    pub company_id: String,
    pub document_id: String,
    pub title: String,
    pub content_url: String,
    /// Where UWC posts `rag/indexed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingRequest {
    pub company_id: String,
    pub kind: String,
    /// Whose model (a rep's user id), and the analysed calls it learns from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_ids: Vec<String>,
    /// Where UWC posts `training/status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    pub job_id: String,
    pub status: String,
    /// The job's output once `status` is `completed` (transcript, analysis...).
    pub output: Option<serde_json::Value>,
}

pub struct UwcClient {
    http: reqwest::Client,
    settings: UwcSettings,
}

impl UwcSettings {
    /// The settings of `config`, or `None` while UWC is not configured.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let uwc = &config.integrations.uwc;
        Some(Self {
            base_url: uwc.base_url.clone()?,
            api_key: uwc.api_key.clone()?,
            hmac_secret: config
                .webhooks
                .uwc_hmac
                .clone()
                .unwrap_or_else(|| Secret::new("")),
            timeout: uwc.timeout,
            max_retries: uwc.max_retries,
            retry_base: uwc.retry_base,
        })
    }
}

impl UwcClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: UwcSettings) -> Result<Self, UwcError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn submit_asr_batch(
        &self,
        request: &AsrBatchRequest,
    ) -> Result<JobAccepted, UwcError> {
        let key = format!("asr:{}:{}", request.company_id, request.call_id);
        self.call(
            Method::POST,
            "/v1/asr/batch",
            "asr_batch",
            Some(request),
            Some(&key),
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn analyze_call(&self, request: &AnalysisRequest) -> Result<CallAnalysis, UwcError> {
        self.call(
            Method::POST,
            "/v1/analysis/call",
            "analysis",
            Some(request),
            None,
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn draft_followup(
        &self,
        request: &FollowupRequest,
    ) -> Result<FollowupDraft, UwcError> {
        self.call(
            Method::POST,
            "/v1/followups/draft",
            "followup_draft",
            Some(request),
            None,
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn query_rag(&self, query: &RagQuery) -> Result<RagAnswer, UwcError> {
        self.call(
            Method::POST,
            "/v1/rag/query",
            "rag_query",
            Some(query),
            None,
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn index_document(&self, request: &IndexRequest) -> Result<JobAccepted, UwcError> {
        self.call(
            Method::POST,
            "/v1/rag/documents",
            "rag_index",
            Some(request),
            None,
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn submit_training_job(
        &self,
        request: &TrainingRequest,
    ) -> Result<JobAccepted, UwcError> {
        self.call(
            Method::POST,
            "/v1/training/jobs",
            "training",
            Some(request),
            None,
        )
        .await
    }

    /// # Errors
    /// See [`UwcError`].
    pub async fn job_status(&self, job_id: &str) -> Result<JobStatus, UwcError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/v1/jobs/{job_id}"),
            "job_status",
            None,
            None,
        )
        .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        endpoint: &'static str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, UwcError> {
        let body = match body {
            Some(body) => serde_json::to_vec(body)?,
            None => Vec::new(),
        };
        let endpoint = Endpoint {
            provider: "uwc",
            name: endpoint,
            method: &method,
        };
        let policy = RetryPolicy {
            max_retries: self.settings.max_retries,
            base: self.settings.retry_base,
        };
        let (status, text) = send_with_retries(endpoint, policy, || {
            self.send_once(method.clone(), path, &body, idempotency_key)
        })
        .await?;
        if !status.is_success() {
            return Err(UwcError::Status {
                status: status.as_u16(),
                body: text.chars().take(500).collect(),
            });
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, String), reqwest::Error> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let url = format!("{}{path}", self.settings.base_url.trim_end_matches('/'));
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.settings.api_key.expose())
            .header("X-UWC-Timestamp", &timestamp)
            .header(
                "X-UWC-Signature",
                signature(self.settings.hmac_secret.expose(), &timestamp, body),
            );
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.text().await?))
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{header, header_exists, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;

    fn client(server: &MockServer, retries: u32) -> Result<UwcClient, UwcError> {
        UwcClient::new(UwcSettings {
            base_url: server.uri(),
            api_key: Secret::new("uwc-key"),
            hmac_secret: Secret::new("uwc-secret"),
            timeout: Duration::from_secs(2),
            max_retries: retries,
            retry_base: Duration::from_millis(10),
        })
    }

    #[test]
    fn settings_never_print_their_secrets() -> Result<(), UwcError> {
        let settings = UwcSettings {
            base_url: "http://127.0.0.1:9".to_owned(),
            api_key: Secret::new("the-api-key"),
            hmac_secret: Secret::new("the-hmac-secret"),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            retry_base: Duration::from_millis(1),
        };
        let printed = format!("{settings:?}");
        assert!(
            !printed.contains("the-api-key") && !printed.contains("the-hmac-secret"),
            "{printed}"
        );
        Ok(())
    }

    /// The UWC test vector (`test-vectors/uwc.json` of the shared fixtures; the callback scheme
    /// the client reuses).
    #[test]
    fn signature_matches_the_published_vector() {
        let body = br#"{"job_id":"job_1","company_id":"org_2xyz","status":"completed"}"#;
        assert_eq!(
            signature("uwc-test-secret", "1763800000", body),
            "c5fbbf116fbc4b53403cd7b9cc714ed2f7224b6413ba44563ff97a08337886ca"
        );
    }

    #[tokio::test]
    async fn requests_are_authenticated_signed_and_shaped() -> Result<(), Box<dyn std::error::Error>>
    {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/asr/batch"))
            .and(header("authorization", "Bearer uwc-key"))
            .and(header("content-type", "application/json"))
            .and(header("idempotency-key", "asr:org_1:call_1"))
            .and(header_exists("x-uwc-timestamp"))
            .and(|request: &Request| {
                let timestamp = request
                    .headers
                    .get("x-uwc-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let given = request
                    .headers
                    .get("x-uwc-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                given == signature("uwc-secret", timestamp, &request.body)
            })
            .respond_with(
                ResponseTemplate::new(202)
                    .set_body_json(serde_json::json!({"job_id": "job_9", "status": "queued"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let request = AsrBatchRequest {
            company_id: "org_1".into(),
            call_id: "call_1".into(),
            audio_url: "https://audio.example.com/1.mp3".into(),
            language: Some("en".into()),
            callback_url: Some("https://otto.example.com/webhooks/uwc/asr/complete".into()),
        };
        let accepted = client(&server, 0)?.submit_asr_batch(&request).await?;
        assert_eq!(
            accepted,
            JobAccepted {
                job_id: "job_9".into(),
                status: "queued".into()
            }
        );
        let sent: AsrBatchRequest =
            serde_json::from_slice(&server.received_requests().await.unwrap_or_default()[0].body)?;
        assert_eq!(sent, request);
        Ok(())
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_then_succeed()
    -> Result<(), Box<dyn std::error::Error>> {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/jobs/job_9"))
            .respond_with(ResponseTemplate::new(429))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/jobs/job_9"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/jobs/job_9"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"job_id": "job_9", "status": "completed", "output": {"transcript": "hi"}})))
            .mount(&server)
            .await;
        let status = client(&server, 3)?.job_status("job_9").await?;
        assert_eq!(status.status, "completed");
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));
        Ok(())
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_retries_are_bounded()
    -> Result<(), Box<dyn std::error::Error>> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/rag/query"))
            .respond_with(ResponseTemplate::new(400).set_body_string("bad question"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/training/jobs"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let uwc = client(&server, 2)?;
        let refused = uwc
            .query_rag(&RagQuery {
                company_id: "org_1".into(),
                question: "?".into(),
                top_k: None,
                lead_id: None,
            })
            .await;
        assert!(matches!(refused, Err(UwcError::Status { status: 400, .. })));
        let failing = uwc
            .submit_training_job(&TrainingRequest {
                company_id: "org_1".into(),
                kind: "objections".into(),
                rep_id: None,
                call_ids: Vec::new(),
                callback_url: None,
            })
            .await;
        assert!(matches!(failing, Err(UwcError::Status { status: 500, .. })));
        let paths: Vec<String> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(
            paths.iter().filter(|p| *p == "/v1/rag/query").count(),
            1,
            "4xx: no retry"
        );
        assert_eq!(
            paths.iter().filter(|p| *p == "/v1/training/jobs").count(),
            3,
            "5xx: the first try and 2 retries"
        );
        Ok(())
    }
}
