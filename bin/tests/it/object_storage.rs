//! One contract for Otto's object storage, held by both backends: the local directory and a
//! real S3 API (moto's server, from PyPI, started here unless `TEST_S3_ENDPOINT` names one). A
//! large object streams in parts and reads back whole; the read URL (presigned by S3, signed by
//! Otto for the directory) serves it over HTTP; an upload over its limit leaves nothing; a
//! delete removes it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use otto_domain::TenantId;
use otto_runtime::storage::{ObjectKey, StorageError};
use uuid::Uuid;

use crate::documents::storage_dir;
use crate::helpers::{TestApp, TestDatabase, TestResult, eventually};

/// An S3-compatible server for the test: `TEST_S3_ENDPOINT`, or `moto_server` started here.
struct S3Server {
    child: Option<Child>,
    endpoint: String,
}

impl S3Server {
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        if let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") {
            return Ok(Self {
                child: None,
                endpoint,
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("moto_server cannot start ({e}): pip install 'moto[server]' (scripts/test.sh does)"))?;
        let server = Self {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let up = eventually(Duration::from_secs(30), || async {
            reqwest::get(&server.endpoint).await.is_ok()
        })
        .await;
        if !up {
            return Err("moto_server did not come up".into());
        }
        Ok(server)
    }

    /// A fresh bucket (moto takes an unsigned CreateBucket).
    async fn bucket(&self) -> Result<String, Box<dyn std::error::Error>> {
        let name = format!("otto-test-{}", Uuid::new_v4().simple());
        let created = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await?;
        if !created.status().is_success() {
            return Err(format!("CreateBucket: {}", created.status()).into());
        }
        Ok(name)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// 12 MB of varied bytes: more than two 5 MB parts.
fn payload() -> Vec<u8> {
    (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

async fn holds_the_contract(app: &TestApp) -> TestResult {
    let storage = &app.ctx.storage;
    let tenant = TenantId::try_from("org_store")?;
    let key = ObjectKey::new(&tenant, "documents", Uuid::now_v7());
    let data = payload();
    let mut writer = storage.writer(&key, data.len() as u64);
    for chunk in data.chunks(64 * 1024) {
        writer.write(Bytes::copy_from_slice(chunk)).await?;
    }
    assert_eq!(writer.finish().await?, data.len() as u64);
    assert_eq!(storage.size(&key).await?, Some(data.len() as u64));

    let (size, mut stream) = storage.read(&key).await?;
    assert_eq!(size, data.len() as u64);
    let mut read = Vec::with_capacity(data.len());
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk?);
    }
    assert!(read == data, "read back what was written");

    let url = storage
        .read_url(&key, "application/pdf", Duration::from_secs(300))
        .await?;
    let fetched = app.client.get(&url).send().await?;
    assert_eq!(fetched.status(), 200, "{url}");
    assert!(
        fetched.bytes().await?.as_ref() == data.as_slice(),
        "the URL serves the object"
    );

    let over = ObjectKey::new(&tenant, "documents", Uuid::now_v7());
    let mut writer = storage.writer(&over, 6 * 1024 * 1024);
    let mut refused = false;
    for chunk in data.chunks(1024 * 1024) {
        if let Err(err) = writer.write(Bytes::copy_from_slice(chunk)).await {
            assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
            refused = true;
            break;
        }
    }
    assert!(refused, "the limit holds");
    writer.abort().await;
    assert_eq!(
        storage.size(&over).await?,
        None,
        "an aborted upload leaves nothing"
    );

    storage.delete(&key).await?;
    assert_eq!(storage.size(&key).await?, None);
    storage.delete(&key).await?;
    assert!(matches!(
        storage.read(&key).await,
        Err(StorageError::NotFound)
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_directory_holds_the_storage_contract() -> TestResult {
    let dir = storage_dir();
    let shown = dir.display().to_string();
    let app = TestApp::spawn_on_chosen_port(TestDatabase::sqlite(), move |port| {
        vec![
            ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
            ("STORAGE_DIR", shown.clone()),
        ]
    })
    .await?;
    holds_the_contract(&app).await?;
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_server_holds_the_storage_contract() -> TestResult {
    let s3 = S3Server::start().await?;
    let bucket = s3.bucket().await?;
    let endpoint = s3.endpoint.clone();
    let app = TestApp::spawn_on_chosen_port(TestDatabase::sqlite(), move |port| {
        vec![
            ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
            ("S3_BUCKET", bucket.clone()),
            ("S3_ENDPOINT", endpoint.clone()),
            ("S3_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
    })
    .await?;
    holds_the_contract(&app).await?;
    app.stop().await;
    Ok(())
}
