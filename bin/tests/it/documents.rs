//! Documents and Ask Otto end to end (SPEC section 14) with the mock UWC as a real process: an
//! upload is stored, indexed through its signed URL, and cited by Ask Otto; limits and sniffing
//! refuse without storing anything; Ask never makes up an answer; another tenant's documents
//! and file URLs stay out of reach.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use otto_db::entities::document;
use otto_domain::{Role, TenantId};
use otto_runtime::storage::ObjectKey;
use reqwest::Method;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult, eventually};
use crate::pipeline::{MockUwc, UWC_KEY, UWC_SECRET};

const TENANT: &str = "org_docs";
const OTHER: &str = "org_docs_other";

on_both_databases!(
    an_uploaded_document_is_indexed_and_cited_by_ask_otto,
    oversized_and_disguised_uploads_are_refused_and_store_nothing,
);

pub(crate) fn storage_dir() -> PathBuf {
    std::env::temp_dir().join(format!("otto-storage-{}", uuid::Uuid::new_v4().simple()))
}

/// Files under `dir`, recursively.
pub(crate) fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let path = e.path();
                if path.is_dir() { files_in(&path) } else { 1 }
            })
            .sum()
    })
}

/// A `multipart/form-data` body with one file (and a title): its content type and bytes.
pub(crate) fn multipart(file_name: &str, content: &[u8], title: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "otto-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    if let Some(title) = title {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The embedded app with its storage in `dir`, UWC at `uwc` (or none), Ask limited to `ask`.
pub(crate) async fn docs_app(
    db: TestDatabase,
    dir: &Path,
    uwc: Option<&str>,
    ask: &str,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let dir = dir.display().to_string();
    let uwc = uwc.map(str::to_owned);
    let ask = ask.to_owned();
    TestApp::spawn_on_chosen_port(db, move |port| {
        let mut vars = vec![
            ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
            ("STORAGE_DIR", dir.clone()),
            ("RATE_LIMIT_ASK", ask.clone()),
            ("UWC_HMAC_SECRET", UWC_SECRET.to_owned()),
            ("UWC_MAX_RETRIES", "0".to_owned()),
            ("UWC_TIMEOUT_SECONDS", "5".to_owned()),
        ];
        if let Some(uwc) = &uwc {
            vars.push(("UWC_BASE_URL", uwc.clone()));
            vars.push(("UWC_API_KEY", UWC_KEY.to_owned()));
        }
        vars
    })
    .await
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    file_name: &str,
    content: &[u8],
    title: Option<&str>,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let (content_type, body) = multipart(file_name, content, title);
    let response = app
        .authed(Method::POST, "/v1/documents", token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn an_uploaded_document_is_indexed_and_cited_by_ask_otto(db: TestDatabase) -> TestResult {
    let mock = MockUwc::start(true).await?;
    let dir = storage_dir();
    let app = docs_app(db, &dir, Some(&mock.url), "20/minute").await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let text =
        b"# Financing\nCustomers object to financing rates above nine percent; offer the 0% plan.";
    let (status, created) = upload(
        &app,
        &owner,
        "financing.md",
        text,
        Some("Financing playbook"),
    )
    .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "uploaded");
    assert_eq!(created["content_type"], "text/markdown");
    assert_eq!(created["size_bytes"], text.len());
    let id = created["id"].as_str().ok_or("no id")?.to_owned();
    let key = ObjectKey::new(&TenantId::try_from(TENANT)?, "documents", id.parse()?);
    assert_eq!(app.ctx.storage.size(&key).await?, Some(text.len() as u64));

    // The worker hands it to UWC, which reads it through its signed URL and calls back.
    let indexed = eventually(Duration::from_secs(30), || async {
        app.json(Method::GET, "/v1/documents", &rep, None)
            .await
            .is_ok_and(|(_, page)| page["items"][0]["status"] == "indexed")
    })
    .await;
    assert!(indexed, "the document never became indexed");

    let (status, answer) = app
        .json(
            Method::POST,
            "/v1/ask",
            &rep,
            Some(json!({"question": "What do customers object to about financing?"})),
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["answer"]
            .as_str()
            .is_some_and(|a| a.contains("nine percent")),
        "{answer}"
    );
    assert_eq!(answer["citations"][0]["kind"], "document");
    assert_eq!(answer["citations"][0]["id"], id.as_str());

    // Another tenant sees none of it.
    let stranger = app.token(OTHER, "user_x", Role::Leadership);
    let (_, theirs) = app
        .json(Method::GET, "/v1/documents", &stranger, None)
        .await?;
    assert_eq!(theirs["items"], json!([]));
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            &stranger,
            None,
        )
        .await?;
    assert_eq!(status, 404);
    let (status, _) = app
        .json(Method::DELETE, &format!("/v1/documents/{id}"), &rep, None)
        .await?;
    assert_eq!(status, 403, "deleting is leadership's");

    let (status, _) = app
        .json(Method::DELETE, &format!("/v1/documents/{id}"), &owner, None)
        .await?;
    assert_eq!(status, 204);
    assert_eq!(
        app.ctx.storage.size(&key).await?,
        None,
        "the object goes with the row"
    );
    assert_eq!(files_in(&dir), 0);
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn oversized_and_disguised_uploads_are_refused_and_store_nothing(
    db: TestDatabase,
) -> TestResult {
    let dir = storage_dir();
    let app = docs_app(db, &dir, None, "20/minute").await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let big = vec![b'a'; 21 * 1024 * 1024];
    let (status, problem) = upload(&app, &owner, "huge.txt", &big, None).await?;
    assert_eq!(status, 413, "{problem}");
    let exe =
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 This program cannot be run";
    let (status, problem) = upload(&app, &owner, "invoice.pdf", exe, None).await?;
    assert_eq!(status, 415, "{problem}");
    assert_eq!(problem["status"], 415);
    let (status, _) = upload(&app, &owner, "setup.exe", b"plain", None).await?;
    assert_eq!(status, 415);
    let (status, problem) = app
        .json(Method::POST, "/v1/documents", &owner, Some(json!({})))
        .await?;
    assert!(
        status == 400 || status == 415 || status == 422,
        "{status} {problem}"
    );
    assert_eq!(files_in(&dir), 0, "nothing stored");
    assert_eq!(
        document::Entity::find().count(&app.ctx.db).await?,
        0,
        "no row"
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Without RAG, and with UWC down, there is no answer: 503, never a made-up one. The per-user
/// Ask limit answers 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_without_rag_or_with_uwc_down_is_503_and_limited_per_user() -> TestResult {
    let dir = storage_dir();
    let question = json!({"question": "Why do customers hesitate?"});
    let app = docs_app(TestDatabase::sqlite(), &dir, None, "20/minute").await?;
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let (status, problem) = app
        .json(Method::POST, "/v1/ask", &rep, Some(question.clone()))
        .await?;
    assert_eq!(status, 503, "{problem}");
    assert!(problem.get("answer").is_none());
    app.stop().await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let down = format!("http://127.0.0.1:{closed}");
    let app = docs_app(TestDatabase::sqlite(), &dir, Some(&down), "2/minute").await?;
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    for _ in 0..2 {
        let (status, problem) = app
            .json(Method::POST, "/v1/ask", &rep, Some(question.clone()))
            .await?;
        assert_eq!(status, 503, "{problem}");
    }
    let (status, problem) = app
        .json(Method::POST, "/v1/ask", &rep, Some(question))
        .await?;
    assert_eq!(status, 429, "{problem}");
    let (status, _) = app
        .json(
            Method::POST,
            "/v1/ask",
            &app.token(TENANT, "user_other", Role::Rep),
            Some(json!({"question": ""})),
        )
        .await?;
    assert_eq!(
        status, 422,
        "another user has its own budget; an empty question is invalid"
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A signed file URL serves its file until it expires; a tampered one, an expired one, or one
/// signed with another secret is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_file_urls_cannot_be_forged_tampered_or_reused_late() -> TestResult {
    let dir = storage_dir();
    let app = docs_app(TestDatabase::sqlite(), &dir, None, "20/minute").await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let (status, created) = upload(&app, &owner, "notes.txt", b"gate code 4417", None).await?;
    assert_eq!(status, 201);
    let key = ObjectKey::new(
        &TenantId::try_from(TENANT)?,
        "documents",
        created["id"].as_str().ok_or("id")?.parse()?,
    );
    let url = app
        .ctx
        .storage
        .read_url(&key, "text/plain", Duration::from_secs(60))
        .await?;
    let fetched = app.client.get(&url).send().await?;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "text/plain");
    assert_eq!(fetched.text().await?, "gate code 4417");

    let token = url.rsplit('/').next().ok_or("token")?;
    let (payload, signature) = token.split_once('.').ok_or("form")?;
    // Another tenant's key under the same signature.
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(
            "{OTHER}/documents/{}\ntext/plain\n{}",
            created["id"].as_str().ok_or("id")?,
            Utc::now().timestamp() + 60
        ),
    );
    let expired = app.ctx.storage.file_token(
        &key,
        "text/plain",
        Utc::now() - chrono::Duration::seconds(1),
    );
    let foreign = otto_runtime::storage::Storage::from_config(
        &otto_runtime::storage_config::StorageConfig {
            url_secret: otto_runtime::config::Secret::new("someone else's secret"),
            ..app.ctx.config.storage.clone()
        },
    )?
    .file_token(
        &key,
        "text/plain",
        Utc::now() + chrono::Duration::seconds(60),
    );
    for bad in [
        format!("{forged_payload}.{signature}"),
        format!(
            "{payload}.{}{}",
            if signature.starts_with('A') { "B" } else { "A" },
            &signature[1..]
        ),
        format!("{payload}x.{signature}"),
        expired,
        foreign,
        "not-a-token".to_owned(),
    ] {
        let response = app.get(&format!("/files/{bad}")).await?;
        assert_eq!(response.status(), 403, "{bad}");
    }
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
