//! Deepgram pre-recorded transcription (SPEC section 17): `POST {DEEPGRAM_API_URL}/v1/listen`
//! with the recording's URL, `Authorization: Token {DEEPGRAM_API_KEY}`, speaker diarization and
//! utterances on. The answer is synchronous: the transcript, speaker by speaker. 429, 5xx and
//! transport errors are retried (`crate::retry`).

use std::time::Duration;

use otto_runtime::config::Secret;
use reqwest::Method;
use serde::Deserialize;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

/// The model and options Otto asks for (query parameters of `/v1/listen`).
pub const LISTEN_QUERY: [(&str, &str); 5] = [
    ("model", "nova-2"),
    ("diarize", "true"),
    ("utterances", "true"),
    ("punctuate", "true"),
    ("smart_format", "true"),
];

#[derive(Debug, Clone)]
pub struct DeepgramSettings {
    pub api_url: String,
    pub api_key: Secret,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl DeepgramSettings {
    /// `None` without `DEEPGRAM_API_KEY`.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let deepgram = &config.integrations.deepgram;
        Some(Self {
            api_url: deepgram.api_url.clone(),
            api_key: deepgram.api_key.clone()?,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(500),
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeepgramError {
    #[error("Deepgram answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Deepgram could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("Deepgram answered something that is not a transcription: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("DEEPGRAM_API_URL does not make a URL: {0}")]
    BadUrl(String),
}

from_failure!(DeepgramError);

impl DeepgramError {
    /// A refusal that will not change on retry (a bad URL, a bad key).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status < 500 && *status != 429)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Utterance {
    #[serde(default)]
    pub speaker: Option<u32>,
    pub transcript: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Alternative {
    transcript: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ChannelResult {
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Clone, Deserialize)]
struct Results {
    #[serde(default)]
    channels: Vec<ChannelResult>,
    #[serde(default)]
    utterances: Vec<Utterance>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ListenAnswer {
    #[serde(default)]
    metadata: Metadata,
    results: Results,
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// `Speaker 0: ...` lines from the utterances (the plain transcript without them).
    pub transcript: String,
    pub duration_seconds: Option<f64>,
    pub request_id: Option<String>,
}

#[derive(Clone)]
pub struct DeepgramClient {
    http: reqwest::Client,
    settings: DeepgramSettings,
}

impl DeepgramClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: DeepgramSettings) -> Result<Self, DeepgramError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    /// Transcribes the audio at `audio_url`.
    ///
    /// # Errors
    /// See [`DeepgramError`].
    pub async fn transcribe_url(&self, audio_url: &str) -> Result<Transcription, DeepgramError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/listen", self.settings.api_url),
            LISTEN_QUERY,
        )
        .map_err(|e| DeepgramError::BadUrl(e.to_string()))?;
        let body = serde_json::json!({ "url": audio_url });
        let endpoint = Endpoint {
            provider: "deepgram",
            name: "listen",
            method: &Method::POST,
        };
        let text = send_for_text(endpoint, self.settings.retry, || {
            self.http
                .post(url.clone())
                .header(
                    "authorization",
                    format!("Token {}", self.settings.api_key.expose()),
                )
                .json(&body)
        })
        .await?;
        let answer: ListenAnswer = serde_json::from_str(&text)?;
        let transcript = if answer.results.utterances.is_empty() {
            answer
                .results
                .channels
                .first()
                .and_then(|c| c.alternatives.first())
                .map(|a| a.transcript.clone())
                .unwrap_or_default()
        } else {
            answer
                .results
                .utterances
                .iter()
                .map(|u| {
                    format!(
                        "Speaker {}: {}",
                        u.speaker.unwrap_or(0),
                        u.transcript.trim()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        Ok(Transcription {
            transcript,
            duration_seconds: answer.metadata.duration,
            request_id: answer.metadata.request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn client(server: &MockServer) -> Result<DeepgramClient, DeepgramError> {
        DeepgramClient::new(DeepgramSettings {
            api_url: server.uri(),
            api_key: Secret::new("dg-key"),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(1),
            },
        })
    }

    #[tokio::test]
    async fn a_listen_request_is_the_documented_one_and_utterances_become_lines() -> TestResult {
        let server = MockServer::start().await;
        let mut mock = Mock::given(method("POST"))
            .and(path("/v1/listen"))
            .and(header("authorization", "Token dg-key"))
            .and(body_json(json!({"url": "https://rec.example.com/1.mp3"})));
        for (name, value) in LISTEN_QUERY {
            mock = mock.and(query_param(name, value));
        }
        mock.respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/listen"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "metadata": {"request_id": "req-1", "duration": 42.5, "channels": 1},
                "results": {
                    "channels": [{"alternatives": [{"transcript": "hello my furnace is broken", "confidence": 0.98}]}],
                    "utterances": [
                        {"start": 0.0, "end": 1.2, "speaker": 0, "transcript": "Hello, Otto HVAC.", "confidence": 0.99},
                        {"start": 1.3, "end": 3.0, "speaker": 1, "transcript": "My furnace is broken.", "confidence": 0.97}
                    ]
                }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let done = client(&server)?
            .transcribe_url("https://rec.example.com/1.mp3")
            .await?;
        assert_eq!(
            done.transcript,
            "Speaker 0: Hello, Otto HVAC.\nSpeaker 1: My furnace is broken."
        );
        assert_eq!(done.duration_seconds, Some(42.5));
        Ok(())
    }

    #[tokio::test]
    async fn a_refusal_is_permanent() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(json!({"err_code": "Bad Request"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let refused = client(&server)?.transcribe_url("nope").await;
        assert!(refused.is_err_and(|e| e.is_permanent()));
        Ok(())
    }
}
