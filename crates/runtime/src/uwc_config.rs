//! UWC/Shunya settings (SPEC section 10): where the service is, how Otto authenticates, and which
//! of its features are on. Every feature is off until `UWC_BASE_URL` and `UWC_API_KEY` are set.

use std::time::Duration;

use crate::ConfigError;
use crate::config::{Secret, flag_or};

#[derive(Debug, Clone)]
pub struct UwcConfig {
    /// `UWC_BASE_URL`, e.g. `https://uwc.example.com` (or the mock: `http://127.0.0.1:8090`).
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// `UWC_TIMEOUT_SECONDS` (30): one request, retries not included.
    pub timeout: Duration,
    /// `UWC_MAX_RETRIES` (3): retries of a 429, 5xx or transport error.
    pub max_retries: u32,
    /// `UWC_RETRY_BASE_MS` (500): the first retry delay, doubled each time, with jitter.
    pub retry_base: Duration,
    /// `UWC_POLL_DELAY_SECONDS` (30): how long after submitting a job `poll-shunya-jobs` first
    /// asks about it (the webhook usually comes first); doubled per unfinished poll, up to 30 min.
    pub poll_delay: Duration,
    /// `PIPELINE_SWEEP_GRACE_SECONDS` (120): how long `process-pending-transcriptions` leaves a
    /// call alone after its last change before it enqueues the missing step itself.
    pub sweep_grace: Duration,
    pub features: UwcFeatures,
}

/// `ENABLE_UWC_ASR|RAG|TRAINING|FOLLOWUPS` (default on once UWC is configured).
/// ASR covers transcription and the call analysis that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UwcFeatures {
    pub asr: bool,
    pub rag: bool,
    pub training: bool,
    pub followups: bool,
}

impl UwcConfig {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let flag = |name: &'static str| flag_or(get, name, true);
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(raw) => raw.parse().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: format!("'{raw}': {e}"),
                }),
            }
        };
        let base_url = get("UWC_BASE_URL")
            .map(|v| v.trim().trim_end_matches('/').to_owned())
            .filter(|v| !v.is_empty());
        if let Some(url) = &base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                name: "UWC_BASE_URL",
                reason: format!("'{url}' is not an http(s) URL"),
            });
        }
        Ok(Self {
            base_url,
            api_key: get("UWC_API_KEY")
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            timeout: Duration::from_secs(number("UWC_TIMEOUT_SECONDS", 30)?),
            max_retries: u32::try_from(number("UWC_MAX_RETRIES", 3)?).unwrap_or(u32::MAX),
            retry_base: Duration::from_millis(number("UWC_RETRY_BASE_MS", 500)?),
            poll_delay: Duration::from_secs(number("UWC_POLL_DELAY_SECONDS", 30)?),
            sweep_grace: Duration::from_secs(number("PIPELINE_SWEEP_GRACE_SECONDS", 120)?),
            features: UwcFeatures {
                asr: flag("ENABLE_UWC_ASR")?,
                rag: flag("ENABLE_UWC_RAG")?,
                training: flag("ENABLE_UWC_TRAINING")?,
                followups: flag("ENABLE_UWC_FOLLOWUPS")?,
            },
        })
    }

    /// Whether the client can be built at all.
    pub fn is_configured(&self) -> bool {
        self.base_url.is_some() && self.api_key.is_some()
    }

    /// The features that are both configured and switched on.
    pub fn enabled(&self) -> UwcFeatures {
        let on = self.is_configured();
        UwcFeatures {
            asr: on && self.features.asr,
            rag: on && self.features.rag,
            training: on && self.features.training,
            followups: on && self.features.followups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<UwcConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        UwcConfig::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn features_need_a_url_and_a_key_and_follow_their_flags() -> Result<(), ConfigError> {
        assert!(!config(&[])?.enabled().asr);
        let on = config(&[
            ("UWC_BASE_URL", "http://127.0.0.1:8090/"),
            ("UWC_API_KEY", "k"),
            ("ENABLE_UWC_FOLLOWUPS", "false"),
        ])?;
        assert_eq!(on.base_url.as_deref(), Some("http://127.0.0.1:8090"));
        assert_eq!(
            on.enabled(),
            UwcFeatures {
                asr: true,
                rag: true,
                training: true,
                followups: false
            }
        );
        assert!(config(&[("ENABLE_UWC_ASR", "maybe")]).is_err());
        assert!(config(&[("UWC_BASE_URL", "ftp://x")]).is_err());
        Ok(())
    }
}
