//! A stand-in for UWC/Shunya on a developer's machine: it accepts the client's requests (checking
//! the bearer key and the HMAC signature like the real service), transcribes every recording
//! to the same sample conversation after a delay, answers job-status polls, and posts a signed
//! `asr/complete` callback to the `callback_url` Otto gave, so a call goes through the whole
//! pipeline locally. `GET /__mock/stats` tells what it saw.

mod rag;
mod training;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use otto_integrations::uwc::{
    AnalysisRequest, AsrBatchRequest, AsrOutput, CallAnalysis, FollowupDraft, FollowupRequest,
    signature,
};
use serde_json::{Value, json};

/// The conversation every recording "contains".
pub const SAMPLE_TRANSCRIPT: &str = "Customer: Hi, our air conditioner stopped working and the house is hot. \
Rep: Sorry to hear that, we can come out Tuesday morning. \
Customer: What's the price? That sounds expensive, I need to talk to my wife. \
Rep: I can book you for Tuesday at 9 and the diagnostic fee goes toward the repair. \
Customer: Okay, let's book it.";
pub const SAMPLE_DURATION_SECONDS: f64 = 94.0;

#[derive(Debug, Clone)]
pub struct MockSettings {
    pub api_key: String,
    pub hmac_secret: String,
    pub complete_after: Duration,
    /// How long an ASR submission or an analysis request takes to answer (0 by default), so a
    /// watcher can see a call in each pipeline state.
    pub respond_after: Duration,
    pub callbacks: bool,
}

#[derive(Default)]
struct Stats {
    asr_submissions: u64,
    rejected: u64,
    callbacks_delivered: u64,
    callbacks_failed: u64,
    status_polls: u64,
    analyses: u64,
    drafts: u64,
}

struct Job {
    completed: bool,
}

#[derive(Clone)]
struct Mock {
    settings: Arc<MockSettings>,
    /// Idempotency key -> job id, and job id -> job.
    keys: Arc<Mutex<HashMap<String, String>>>,
    jobs: Arc<Mutex<HashMap<String, Job>>>,
    stats: Arc<Mutex<Stats>>,
    /// Indexed documents per company (`rag/documents`), what `rag/query` answers from.
    library: Arc<Mutex<rag::Library>>,
    http: reqwest::Client,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves until the process stops.
///
/// # Errors
/// When `port` cannot be bound.
pub async fn serve(port: u16, settings: MockSettings) -> std::io::Result<()> {
    let mock = Mock {
        settings: Arc::new(settings),
        keys: Arc::default(),
        jobs: Arc::default(),
        stats: Arc::default(),
        library: Arc::default(),
        http: reqwest::Client::new(),
    };
    println!("mock UWC listening on http://127.0.0.1:{port}");
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(mock.clone()))
            .route("/v1/asr/batch", web::post().to(submit_asr))
            .route("/v1/jobs/{id}", web::get().to(job_status))
            .route("/v1/analysis/call", web::post().to(analyse))
            .route("/v1/followups/draft", web::post().to(draft))
            .route("/v1/rag/query", web::post().to(rag::query))
            .route("/v1/rag/documents", web::post().to(rag::index))
            .route("/v1/training/jobs", web::post().to(training::submit))
            .route("/__mock/stats", web::get().to(stats))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

impl Mock {
    /// The real service's checks: bearer key, fresh timestamp, HMAC over `"{ts}.{body}"`.
    fn authenticate(&self, req: &HttpRequest, body: &[u8]) -> Result<(), Box<HttpResponse>> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let bearer_ok = header("authorization") == format!("Bearer {}", self.settings.api_key);
        let timestamp = header("x-uwc-timestamp");
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
        let signed =
            header("x-uwc-signature") == signature(&self.settings.hmac_secret, timestamp, body);
        if bearer_ok && fresh && signed {
            return Ok(());
        }
        lock(&self.stats).rejected += 1;
        Err(Box::new(HttpResponse::Unauthorized().json(json!({
            "error": "unauthorized", "bearer_ok": bearer_ok, "fresh": fresh, "signed": signed
        }))))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        req: &HttpRequest,
        body: &[u8],
    ) -> Result<T, Box<HttpResponse>> {
        self.authenticate(req, body)?;
        serde_json::from_slice(body).map_err(|e| {
            Box::new(HttpResponse::BadRequest().json(json!({ "error": e.to_string() })))
        })
    }

    fn output() -> AsrOutput {
        AsrOutput {
            transcript: SAMPLE_TRANSCRIPT.to_owned(),
            duration_seconds: Some(SAMPLE_DURATION_SECONDS),
            language: Some("en".to_owned()),
        }
    }

    /// Completes `job_id` after the delay, then calls Otto back (three tries).
    async fn finish_later(self, job_id: String, request: AsrBatchRequest) {
        tokio::time::sleep(self.settings.complete_after).await;
        if let Some(job) = lock(&self.jobs).get_mut(&job_id) {
            job.completed = true;
        }
        let Some(url) = request.callback_url.filter(|_| self.settings.callbacks) else {
            return;
        };
        let mut body = json!({
            "event": "asr/complete", "job_id": job_id, "company_id": request.company_id,
            "status": "completed",
        });
        if let (Some(map), Ok(Value::Object(output))) =
            (body.as_object_mut(), serde_json::to_value(Self::output()))
        {
            map.extend(output);
        }
        self.post_callback(&url, &body).await;
    }

    /// Posts a signed callback to Otto (three tries).
    async fn post_callback(&self, url: &str, body: &Value) {
        let raw = body.to_string();
        for attempt in 1..=3 {
            let timestamp = chrono::Utc::now().timestamp().to_string();
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("X-UWC-Timestamp", &timestamp)
                .header(
                    "X-UWC-Signature",
                    signature(&self.settings.hmac_secret, &timestamp, raw.as_bytes()),
                )
                .body(raw.clone())
                .send()
                .await;
            if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
                lock(&self.stats).callbacks_delivered += 1;
                return;
            }
            eprintln!("mock UWC: callback attempt {attempt} to {url} failed: {sent:?}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        lock(&self.stats).callbacks_failed += 1;
    }
}

async fn submit_asr(mock: web::Data<Mock>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    tokio::time::sleep(mock.settings.respond_after).await;
    let request: AsrBatchRequest = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    lock(&mock.stats).asr_submissions += 1;
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || format!("asr:{}:{}", request.company_id, request.call_id),
            str::to_owned,
        );
    let (job_id, new) = {
        let mut keys = lock(&mock.keys);
        match keys.get(&key) {
            Some(id) => (id.clone(), false),
            None => {
                let id = format!("uwc_job_{}", uuid::Uuid::new_v4().simple());
                keys.insert(key, id.clone());
                lock(&mock.jobs).insert(id.clone(), Job { completed: false });
                (id, true)
            }
        }
    };
    if new {
        tokio::spawn(mock.get_ref().clone().finish_later(job_id.clone(), request));
    }
    HttpResponse::Accepted().json(json!({ "job_id": job_id, "status": "queued" }))
}

async fn job_status(
    mock: web::Data<Mock>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(refusal) = mock.authenticate(&req, b"") {
        return *refusal;
    }
    lock(&mock.stats).status_polls += 1;
    let completed = lock(&mock.jobs).get(id.as_str()).map(|job| job.completed);
    match completed {
        None => HttpResponse::NotFound().json(json!({ "error": "unknown job" })),
        Some(false) => HttpResponse::Ok().json(json!({ "job_id": *id, "status": "processing" })),
        Some(true) => HttpResponse::Ok()
            .json(json!({ "job_id": *id, "status": "completed", "output": Mock::output() })),
    }
}

/// A keyword reading of the transcript: enough to exercise every field.
async fn analyse(mock: web::Data<Mock>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    tokio::time::sleep(mock.settings.respond_after).await;
    let request: AnalysisRequest = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    lock(&mock.stats).analyses += 1;
    let text = request.transcript.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let mut objections = Vec::new();
    if has(&["price", "expensive", "cost"]) {
        objections.push("price".to_owned());
    }
    if has(&["wife", "husband", "spouse"]) {
        objections.push("needs spouse approval".to_owned());
    }
    let booking = has(&["book it", "let's book", "see you tuesday"]);
    let analysis = CallAnalysis {
        objections,
        sentiment: if booking { "positive" } else { "neutral" }.to_owned(),
        booking_intent: if booking { "high" } else { "low" }.to_owned(),
        key_signals: ["urgent", "tuesday", "stopped working"]
            .iter()
            .filter(|s| text.contains(*s))
            .map(|s| (*s).to_owned())
            .collect(),
        summary: Some("Customer with a broken AC; appointment discussed.".to_owned()),
    };
    HttpResponse::Ok().json(analysis)
}

async fn draft(mock: web::Data<Mock>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let request: FollowupRequest = match mock.parse(&req, &body) {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    lock(&mock.stats).drafts += 1;
    let concern = request
        .analysis
        .objections
        .first()
        .map_or_else(String::new, |o| format!(" We understand {o} matters;"));
    HttpResponse::Ok().json(FollowupDraft {
        channel: request.channel,
        body: format!("Thanks for calling today!{concern} reply YES to confirm your visit."),
    })
}

async fn stats(mock: web::Data<Mock>) -> HttpResponse {
    let stats = lock(&mock.stats);
    HttpResponse::Ok().json(json!({
        "asr_submissions": stats.asr_submissions,
        "asr_jobs": lock(&mock.jobs).len(),
        "rejected": stats.rejected,
        "callbacks_delivered": stats.callbacks_delivered,
        "callbacks_failed": stats.callbacks_failed,
        "status_polls": stats.status_polls,
        "analyses": stats.analyses,
        "drafts": stats.drafts,
    }))
}
