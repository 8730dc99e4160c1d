//! The one retry loop of every provider client: a request answered 429 or 5xx, or not answered
//! (timeout, connection), is sent again after exponential backoff with jitter, up to
//! `max_retries` times; any other answer returns at once. Each attempt is measured as
//! `{provider}_request_duration_ms`, `{provider}_requests_total{status}`,
//! `{provider}_request_errors_total{error_type}` and `{provider}_retries_total`.

use std::time::{Duration, Instant};

use otto_runtime::jobs::backoff;
use reqwest::{Method, StatusCode};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
}

/// Where a request goes, for logs and metrics.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub provider: &'static str,
    pub name: &'static str,
    pub method: &'a Method,
}

/// Runs `send` (one attempt) until an answer is final; returns the status and body of that
/// answer, or the transport error of the last attempt.
///
/// # Errors
/// The last attempt's transport error.
pub async fn send_with_retries<F, Fut>(
    endpoint: Endpoint<'_>,
    policy: RetryPolicy,
    send: F,
) -> Result<(StatusCode, String), reqwest::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(StatusCode, String), reqwest::Error>>,
{
    send_with_retries_when(endpoint, policy, |_, _| false, send).await
}

/// [`send_with_retries`] that also retries the answers `also_retry(status, body)` picks (a
/// provider that signals rate limits with another status, like Google's 403
/// `rateLimitExceeded`).
///
/// # Errors
/// The last attempt's transport error.
pub async fn send_with_retries_when<F, Fut>(
    endpoint: Endpoint<'_>,
    policy: RetryPolicy,
    also_retry: impl Fn(StatusCode, &str) -> bool,
    mut send: F,
) -> Result<(StatusCode, String), reqwest::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(StatusCode, String), reqwest::Error>>,
{
    let Endpoint {
        provider,
        name,
        method,
    } = endpoint;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let result = send().await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        metrics::histogram!(format!("{provider}_request_duration_ms"), "endpoint" => name, "method" => method.as_str().to_owned()).record(ms);
        let retryable = match &result {
            Ok((status, body)) => {
                metrics::counter!(format!("{provider}_requests_total"), "endpoint" => name, "method" => method.as_str().to_owned(), "status" => status.as_u16().to_string()).increment(1);
                status.as_u16() == 429 || status.is_server_error() || also_retry(*status, body)
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else {
                    "connect"
                };
                metrics::counter!(format!("{provider}_request_errors_total"), "endpoint" => name, "error_type" => kind).increment(1);
                true
            }
        };
        if !retryable || attempt > policy.max_retries {
            if let Ok((status, _)) = &result
                && !status.is_success()
            {
                metrics::counter!(format!("{provider}_request_errors_total"), "endpoint" => name, "error_type" => "status").increment(1);
            }
            return result;
        }
        metrics::counter!(format!("{provider}_retries_total"), "endpoint" => name).increment(1);
        let delay = backoff(attempt, policy.base);
        tracing::warn!(
            provider,
            endpoint = name,
            attempt,
            delay_ms = delay.as_millis() as u64,
            "provider request failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// A final answer that is not a success (its status and the start of its body), or no answer.
#[derive(Debug)]
pub enum Failure {
    Transport(reqwest::Error),
    Status { status: u16, body: String },
}

/// Sends `request()`, built afresh for each attempt, through [`send_with_retries`]; the body
/// of a 2xx answer.
///
/// # Errors
/// See [`Failure`].
pub async fn send_for_text(
    endpoint: Endpoint<'_>,
    policy: RetryPolicy,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<String, Failure> {
    let (status, text) = send_with_retries(endpoint, policy, || async {
        let response = request().send().await?;
        let status = response.status();
        Ok((status, response.text().await?))
    })
    .await
    .map_err(Failure::Transport)?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(Failure::Status {
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        })
    }
}

/// `From<Failure>` for a client error with `Status { status, body }` and
/// `Transport(reqwest::Error)` variants.
macro_rules! from_failure {
    ($error:ty) => {
        impl From<$crate::retry::Failure> for $error {
            fn from(failure: $crate::retry::Failure) -> Self {
                match failure {
                    $crate::retry::Failure::Transport(err) => Self::Transport(err),
                    $crate::retry::Failure::Status { status, body } => {
                        Self::Status { status, body }
                    }
                }
            }
        }
    };
}
pub(crate) use from_failure;
