//! Object storage behind one interface (`object_store`): S3 in production, a local directory in
//! embedded mode. Objects are keyed `{company_id}/{kind}/{id}` and written as streams (at most a
//! few parts in memory, whatever the object's size). A provider reads an object through a URL:
//! presigned by S3, or with the local backend an expiring, HMAC-signed Otto URL
//! (`GET /files/{token}`) that only this deployment's secret can make.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{ObjectStore, ObjectStoreExt};
use otto_domain::TenantId;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::config::Secret;
use crate::storage_config::{StorageBackend, StorageConfig};

/// Bytes gathered before a part is sent: S3's smallest part, and with two parts in flight the
/// most an upload holds in memory.
const PART_BYTES: usize = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("object storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("the object is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("invalid object storage configuration: {0}")]
    Config(String),
}

/// Why a file URL was refused (all answered 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileTokenError {
    #[error("malformed file token")]
    Malformed,
    #[error("file token signature mismatch")]
    BadSignature,
    #[error("file token expired")]
    Expired,
}

/// `{company_id}/{kind}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(tenant: &TenantId, kind: &str, id: Uuid) -> Self {
        Self(format!("{tenant}/{kind}/{id}"))
    }

    /// A key read back from the database.
    pub fn stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The company the object belongs to.
    pub fn company(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    fn path(&self) -> Path {
        Path::from(self.0.as_str())
    }
}

/// What a verified file URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileGrant {
    pub key: ObjectKey,
    pub content_type: String,
}

pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// S3 presigns its own URLs; the local backend has Otto sign them.
    s3: Option<Arc<AmazonS3>>,
    url_secret: Secret,
    public_base_url: String,
}

impl Storage {
    /// # Errors
    /// When the local directory cannot be created or the S3 settings are invalid.
    pub fn from_config(config: &StorageConfig) -> Result<Self, StorageError> {
        let (store, s3): (Arc<dyn ObjectStore>, _) = match &config.backend {
            StorageBackend::Local { dir } => {
                std::fs::create_dir_all(dir)?;
                (Arc::new(LocalFileSystem::new_with_prefix(dir)?), None)
            }
            StorageBackend::S3(s3) => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(id) = &s3.access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                let s3 = Arc::new(builder.build()?);
                (s3.clone() as Arc<dyn ObjectStore>, Some(s3))
            }
        };
        Ok(Self {
            store,
            s3,
            url_secret: config.url_secret.clone(),
            public_base_url: config.public_base_url.clone(),
        })
    }

    /// A streaming writer of `key` refusing more than `limit` bytes.
    pub fn writer(&self, key: &ObjectKey, limit: u64) -> ObjectWriter {
        ObjectWriter {
            inner: BufWriter::with_capacity(self.store.clone(), key.path(), PART_BYTES)
                .with_max_concurrency(PARTS_IN_FLIGHT),
            written: 0,
            limit,
        }
    }

    /// The object's bytes as a stream, and its size.
    ///
    /// # Errors
    /// `NotFound` when there is no such object.
    pub async fn read(
        &self,
        key: &ObjectKey,
    ) -> Result<(u64, BoxStream<'static, object_store::Result<Bytes>>), StorageError> {
        let result = match self.store.get(&key.path()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NotFound),
            Err(err) => return Err(err.into()),
        };
        Ok((result.meta.size, result.into_stream()))
    }

    /// The object's size, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the store cannot be reached.
    pub async fn size(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError> {
        match self.store.head(&key.path()).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes the object; removing one that is already gone is not an error.
    ///
    /// # Errors
    /// When the store cannot be reached.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// A URL a provider can GET the object from for `ttl`.
    ///
    /// # Errors
    /// When S3 cannot sign.
    pub async fn read_url(
        &self,
        key: &ObjectKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, StorageError> {
        if let Some(s3) = &self.s3 {
            let url = s3.signed_url(Method::GET, &key.path(), ttl).await?;
            return Ok(url.to_string());
        }
        let expires = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let token = self.file_token(key, content_type, expires);
        Ok(format!("{}/files/{token}", self.public_base_url))
    }

    /// `{payload}.{signature}`, both base64url: the payload names the key, its content type and
    /// the expiry; the signature is HMAC-SHA256 under `FILE_URL_SECRET`.
    pub fn file_token(
        &self,
        key: &ObjectKey,
        content_type: &str,
        expires: DateTime<Utc>,
    ) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!(
            "{}\n{}\n{}",
            key.as_str(),
            content_type,
            expires.timestamp()
        ));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    /// The object a file token grants, if its signature holds and it has not expired.
    ///
    /// # Errors
    /// See [`FileTokenError`].
    pub fn open_file_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<FileGrant, FileTokenError> {
        let (payload, signature) = token.split_once('.').ok_or(FileTokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| FileTokenError::Malformed)?;
        if !crate::crypto::verify_hmac_sha256(
            self.url_secret.expose().as_bytes(),
            payload.as_bytes(),
            &signature,
        ) {
            return Err(FileTokenError::BadSignature);
        }
        let decoded = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(FileTokenError::Malformed)?;
        let mut parts = decoded.split('\n');
        let (Some(key), Some(content_type), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(FileTokenError::Malformed);
        };
        let expires: i64 = expires.parse().map_err(|_| FileTokenError::Malformed)?;
        if now.timestamp() > expires {
            return Err(FileTokenError::Expired);
        }
        Ok(FileGrant {
            key: ObjectKey::stored(key),
            content_type: content_type.to_owned(),
        })
    }

    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        crate::crypto::hmac_sha256(self.url_secret.expose().as_bytes(), payload)
    }
}

/// A streaming upload: parts go out as they fill; `finish` completes it, `abort` leaves nothing.
pub struct ObjectWriter {
    inner: BufWriter,
    written: u64,
    limit: u64,
}

impl ObjectWriter {
    /// # Errors
    /// `TooLarge` once the object would pass its limit (the caller aborts), or a store failure.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(StorageError::TooLarge { limit: self.limit });
        }
        self.inner.put(chunk).await?;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the upload; returns the object's size.
    ///
    /// # Errors
    /// When the store refuses the last part or the completion.
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        self.inner.shutdown().await?;
        Ok(self.written)
    }

    /// Drops whatever was uploaded.
    pub async fn abort(mut self) {
        if let Err(err) = self.inner.abort().await {
            tracing::warn!(error = %err, "could not abort an upload; its parts expire with the bucket's lifecycle rule");
        }
    }
}
