//! Object storage settings (SPEC section 14): S3 when `S3_BUCKET` is set, else a local
//! directory; the secret that signs Otto's own file URLs; the upload limits.

use std::path::PathBuf;

use crate::ConfigError;
use crate::config::Secret;

/// What signs file URLs in development when `FILE_URL_SECRET` is unset (never when deployed).
const DEVELOPMENT_URL_SECRET: &str = "otto-development-file-url-secret";

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// `FILE_URL_SECRET`: the HMAC key of `GET /files/{token}` URLs (local backend); deployed
    /// without it, a random key of this process.
    pub url_secret: Secret,
    /// Where Otto's file URLs point: `PUBLIC_BASE_URL`, else `http://127.0.0.1:{PORT}`.
    pub public_base_url: String,
    /// `MAX_DOCUMENT_MB` (20).
    pub max_document_bytes: u64,
    /// `MAX_RECORDING_MB` (200).
    pub max_recording_bytes: u64,
}

#[derive(Debug, Clone)]
pub enum StorageBackend {
    /// `STORAGE_DIR` (`./otto-data`).
    Local {
        dir: PathBuf,
    },
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_REGION` (`us-east-1`).
    pub region: String,
    /// `S3_ENDPOINT`: an S3-compatible server (path-style requests); unset means AWS.
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; unset: the instance's own credentials.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
}

impl StorageConfig {
    pub(crate) fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        deployed: bool,
        port: u16,
    ) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let megabytes = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            let mb = match non_empty(name) {
                None => default,
                Some(raw) => raw.parse::<u64>().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: format!("'{raw}': {e}"),
                })?,
            };
            Ok(mb * 1024 * 1024)
        };
        let backend = match non_empty("S3_BUCKET") {
            Some(bucket) => StorageBackend::S3(S3Config {
                bucket,
                region: non_empty("S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
                endpoint: non_empty("S3_ENDPOINT").map(|e| e.trim_end_matches('/').to_owned()),
                access_key_id: non_empty("AWS_ACCESS_KEY_ID"),
                secret_access_key: non_empty("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            }),
            None => StorageBackend::Local {
                dir: PathBuf::from(
                    non_empty("STORAGE_DIR").unwrap_or_else(|| "./otto-data".to_owned()),
                ),
            },
        };
        let url_secret = match non_empty("FILE_URL_SECRET") {
            Some(secret) => Secret::new(secret),
            // Deployed without one: a secret of this process only, so no URL can be forged;
            // URLs made by another process (a worker) then do not open here (docs/documents.md).
            None if deployed => Secret::new(uuid::Uuid::new_v4().simple().to_string()),
            None => Secret::new(DEVELOPMENT_URL_SECRET),
        };
        let public_base_url = non_empty("PUBLIC_BASE_URL")
            .map(|b| b.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        Ok(Self {
            backend,
            url_secret,
            public_base_url,
            max_document_bytes: megabytes("MAX_DOCUMENT_MB", 20)?,
            max_recording_bytes: megabytes("MAX_RECORDING_MB", 200)?,
        })
    }
}
