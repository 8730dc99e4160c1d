//! The call pipeline end to end against the mock UWC server (`otto-dev mock-uwc`, started here as
//! a real process): a CallRail call with a recording ends with one transcript, one analysis and
//! one follow-up draft, whether the transcript comes back by webhook or by polling, and a late
//! second arrival of the same transcript changes nothing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use otto_api::webhooks::signature::sign;
use otto_db::entities::{call, follow_up, shunya_job, task};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult, eventually};
use crate::webhooks::{CALLRAIL_SECRET, callrail_body, events, post_callrail, status_of};

const TENANT: &str = "org_pipe";
pub(crate) const UWC_KEY: &str = "uwc-pipeline-key";
pub(crate) const UWC_SECRET: &str = "uwc-pipeline-secret";

on_both_databases!(
    a_call_goes_through_the_pipeline_by_webhook,
    a_call_goes_through_the_pipeline_by_polling,
    the_crm_shows_a_call_move_through_every_pipeline_status,
);

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `otto-dev mock-uwc` on a free port; killed when dropped.
pub(crate) struct MockUwc {
    child: Child,
    pub url: String,
}

impl MockUwc {
    pub(crate) async fn start(callbacks: bool) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with(callbacks, 300, 0).await
    }

    /// A mock whose transcriptions take `complete_ms` and whose ASR submissions and analyses
    /// take `respond_ms` to answer.
    pub(crate) async fn start_with(
        callbacks: bool,
        complete_ms: u64,
        respond_ms: u64,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let port = free_port()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_otto-dev"));
        command
            .args(["mock-uwc", "--port", &port.to_string()])
            .args(["--api-key", UWC_KEY, "--hmac-secret", UWC_SECRET])
            .args(["--complete-after-ms", &complete_ms.to_string()])
            .args(["--respond-after-ms", &respond_ms.to_string()])
            .stdout(Stdio::null());
        if !callbacks {
            command.arg("--no-callbacks");
        }
        let mock = Self {
            child: command.spawn()?,
            url: format!("http://127.0.0.1:{port}"),
        };
        let stats_url = format!("{}/__mock/stats", mock.url);
        let up = eventually(Duration::from_secs(10), || async {
            reqwest::get(&stats_url).await.is_ok()
        })
        .await;
        assert!(up, "mock UWC did not start");
        Ok(mock)
    }

    pub(crate) async fn stats(&self) -> Result<Value, reqwest::Error> {
        reqwest::get(format!("{}/__mock/stats", self.url))
            .await?
            .json()
            .await
    }
}

impl Drop for MockUwc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded app (worker and scheduler in-process) wired to `mock`, with Shunya polling every
/// second and first polling `poll_delay` seconds after a submission.
async fn pipeline_app(
    db: TestDatabase,
    mock: &MockUwc,
    poll_delay: &str,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let mock_url = mock.url.clone();
    let poll_delay = poll_delay.to_owned();
    let app = TestApp::spawn_on_chosen_port(db, move |port| {
        vec![
            ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
            ("UWC_BASE_URL", mock_url.clone()),
            ("UWC_API_KEY", UWC_KEY.to_owned()),
            ("UWC_HMAC_SECRET", UWC_SECRET.to_owned()),
            ("UWC_POLL_DELAY_SECONDS", poll_delay.clone()),
            ("UWC_RETRY_BASE_MS", "50".to_owned()),
            ("CALLRAIL_WEBHOOK_SECRET", CALLRAIL_SECRET.to_owned()),
            ("SCHEDULE_OVERRIDES", "poll-shunya-jobs=1s".to_owned()),
            ("RATE_LIMIT_BURST", "100000".to_owned()),
        ]
    })
    .await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let mapped = app
        .authed(Method::PATCH, &format!("/v1/companies/{TENANT}"), &owner)
        .json(&json!({"callrail_company_id": "CRP"}))
        .send()
        .await?;
    assert_eq!(mapped.status(), 200);
    Ok(app)
}

/// Delivers a completed call with a recording and waits for its follow-up draft.
async fn run_call(
    app: &TestApp,
    provider_id: &str,
) -> Result<call::Model, Box<dyn std::error::Error>> {
    let body = callrail_body(provider_id, "CRP", Some("https://rec.example.com/a.mp3"));
    let (code, _) =
        status_of(post_callrail(app, "/webhooks/callrail/call-complete", &body).await?).await?;
    assert_eq!(code, 200);
    let drafted = eventually(Duration::from_secs(40), || async {
        follow_up::Entity::find()
            .count(&app.ctx.db)
            .await
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(drafted, "no follow-up draft within 40 s");
    let call = call::Entity::find()
        .filter(call::Column::ProviderCallId.eq(provider_id))
        .one(&app.ctx.db)
        .await?
        .ok_or("call missing")?;
    Ok(call)
}

/// Everything happened, and once.
async fn assert_exactly_once(app: &TestApp, call: &call::Model) -> TestResult {
    // Leave time for anything that would run twice (a second poll, a duplicate job).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let call = call::Entity::find_by_id(call.id)
        .one(&app.ctx.db)
        .await?
        .ok_or("call missing")?;
    let transcript = call.transcript.clone().unwrap_or_default();
    assert!(transcript.contains("air conditioner"), "{transcript}");
    let analysis = call.analysis.clone().unwrap_or_default();
    assert_eq!(analysis["booking_intent"], "high", "{analysis}");
    assert_eq!(analysis["objections"][0], "price", "{analysis}");
    let drafts = follow_up::Entity::find()
        .filter(follow_up::Column::CallId.eq(call.id))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].draft.contains("price"), "{}", drafts[0].draft);
    let jobs = shunya_job::Entity::find()
        .filter(shunya_job::Column::CallId.eq(call.id))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, "completed");
    // The sample's two key signals ("tuesday", "stopped working") are two tasks, once.
    let mut keys: Vec<Option<String>> = task::Entity::find()
        .filter(task::Column::UniqueKey.starts_with(format!("call:{}:signal:", call.id)))
        .all(&app.ctx.db)
        .await?
        .into_iter()
        .map(|t| t.unique_key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [1, 2].map(|n| Some(format!("call:{}:signal:{n}", call.id)))
    );
    // 94 s of audio always crosses at least one whole minute of the process-wide counter.
    let metrics = app.get("/metrics").await?.text().await?;
    let minutes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("asr_minutes_total{provider=\"uwc\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(minutes >= 1.0, "asr_minutes_total is {minutes}");
    for event in [
        "call.transcript.ready",
        "call.analysis.ready",
        "followup.draft.ready",
    ] {
        assert_eq!(events(app, event).await?, 1, "{event}");
    }
    Ok(())
}

async fn a_call_goes_through_the_pipeline_by_webhook(db: TestDatabase) -> TestResult {
    let mock = MockUwc::start(true).await?;
    // Polling would first ask a minute later: the callback brings the transcript.
    let app = pipeline_app(db, &mock, "60").await?;
    let call = run_call(&app, "CALPIPE1").await?;
    assert_exactly_once(&app, &call).await?;
    let stats = mock.stats().await?;
    assert_eq!(stats["asr_submissions"], 1, "{stats}");
    assert_eq!(stats["callbacks_delivered"], 1, "{stats}");
    assert_eq!(stats["status_polls"], 0, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    app.stop().await;
    Ok(())
}

async fn a_call_goes_through_the_pipeline_by_polling(db: TestDatabase) -> TestResult {
    let mock = MockUwc::start(false).await?;
    let app = pipeline_app(db, &mock, "1").await?;
    let call = run_call(&app, "CALPIPE2").await?;
    let stats = mock.stats().await?;
    assert_eq!(stats["callbacks_delivered"], 0, "{stats}");
    assert!(stats["status_polls"].as_u64() >= Some(1), "{stats}");
    // The same transcript arriving late by webhook (UWC's delayed callback) is a no-op.
    let job = shunya_job::Entity::find()
        .filter(shunya_job::Column::CallId.eq(call.id))
        .one(&app.ctx.db)
        .await?
        .ok_or("job missing")?;
    let late = json!({
        "event": "asr/complete", "job_id": job.shunya_job_id, "company_id": TENANT,
        "status": "completed", "transcript": call.transcript.clone().unwrap_or_default(),
        "duration_seconds": 94.0, "language": "en",
    })
    .to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let delivered = app
        .client
        .post(app.url("/webhooks/uwc/asr/complete"))
        .header("content-type", "application/json")
        .header("X-UWC-Timestamp", &timestamp)
        .header(
            "X-UWC-Signature",
            sign::uwc(UWC_SECRET, &timestamp, late.as_bytes()),
        )
        .body(late)
        .send()
        .await?;
    assert_eq!(delivered.status(), 200);
    assert_exactly_once(&app, &call).await?;
    assert_eq!(mock.stats().await?["asr_submissions"], 1);
    app.stop().await;
    Ok(())
}

/// `GET /v1/calls/{id}` watched while a call goes through the pipeline: each step of the mock
/// takes 1.5 s (submission, transcription, analysis), so a watcher polling every 100 ms sees
/// `received`, `transcribing`, `transcribed` and `analyzed`, in that order and nothing else; the
/// end shows the transcript, the analysis and the follow-up draft.
async fn the_crm_shows_a_call_move_through_every_pipeline_status(db: TestDatabase) -> TestResult {
    let mock = MockUwc::start_with(true, 1_500, 1_500).await?;
    let app = pipeline_app(db, &mock, "60").await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let body = callrail_body("CALWATCH", "CRP", Some("https://rec.example.com/w.mp3"));
    let (code, _) =
        status_of(post_callrail(&app, "/webhooks/callrail/call-complete", &body).await?).await?;
    assert_eq!(code, 200);
    let id = call::Entity::find()
        .filter(call::Column::ProviderCallId.eq("CALWATCH"))
        .one(&app.ctx.db)
        .await?
        .ok_or("call missing")?
        .id;

    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let detail = loop {
        let (code, detail) = app
            .json(Method::GET, &format!("/v1/calls/{id}"), &csr, None)
            .await?;
        assert_eq!(code, 200, "{detail}");
        let status = detail["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "analyzed"
            && detail["followups"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        {
            break detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck after {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        seen,
        ["received", "transcribing", "transcribed", "analyzed"]
    );
    assert!(
        detail["transcript"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("air conditioner")),
        "{detail}"
    );
    assert_eq!(detail["analysis"]["booking_intent"], "high", "{detail}");
    assert_eq!(detail["followups"][0]["status"], "draft", "{detail}");
    assert_eq!(detail["has_transcript"], true);
    app.stop().await;
    Ok(())
}
