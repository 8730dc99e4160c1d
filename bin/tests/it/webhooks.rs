//! Provider webhooks end to end: signatures, exactly-once effects, tenants, lockdown, aliases,
//! concurrency and failure atomicity, on SQLite and PostgreSQL.

use otto_api::webhooks::signature::sign;
use otto_db::entities::{
    call, company, idempotency_key, lead, message, outbox_event, queued_job, shunya_job, user,
};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult};

pub(crate) const TWILIO_TOKEN: &str = "a1b2c3d4e5f6";
pub(crate) const PUBLIC_BASE: &str = "https://otto.example.com";
pub(crate) const CLERK_SECRET: &str = "whsec_b3R0by10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm";
const UWC_SECRET: &str = "uwc-test-secret";
pub(crate) const CALLRAIL_SECRET: &str = "callrail-secret";
pub(crate) const BLAND_SECRET: &str = "bland-secret";
pub(crate) const TENANT: &str = "org_wh";
pub(crate) const OUR_NUMBER: &str = "+15557654321";

on_both_databases!(
    callrail_deliveries_take_effect_once,
    forged_stale_malformed_unknown_and_locked_deliveries_change_nothing,
    twilio_clerk_bland_and_uwc_deliveries_take_effect,
    fifty_identical_concurrent_deliveries_process_once,
    a_failed_delivery_leaves_nothing_and_its_retry_succeeds,
);

pub(crate) async fn webhook_app(db: TestDatabase) -> Result<TestApp, Box<dyn std::error::Error>> {
    webhook_app_with(db, &[]).await
}

/// [`webhook_app`] with more settings (`extra` wins).
pub(crate) async fn webhook_app_with(
    db: TestDatabase,
    extra: &[(&str, &str)],
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let mut vars = vec![
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("PUBLIC_BASE_URL", PUBLIC_BASE),
        ("CLERK_WEBHOOK_SECRET", CLERK_SECRET),
        ("UWC_HMAC_SECRET", UWC_SECRET),
        ("CALLRAIL_WEBHOOK_SECRET", CALLRAIL_SECRET),
        ("BLAND_WEBHOOK_SECRET", BLAND_SECRET),
        ("RATE_LIMIT_BURST", "100000"),
        // The in-process worker leaves the asr queue alone, so tests can count its jobs.
        ("WORKER_QUEUES", "default"),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn(db, &vars).await?;
    // The tenant maps its CallRail account and Twilio number through the API.
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let mapped = app
        .authed(Method::PATCH, &format!("/v1/companies/{TENANT}"), &owner)
        .json(&json!({"callrail_company_id": "CR1", "twilio_numbers": [OUR_NUMBER]}))
        .send()
        .await?;
    assert_eq!(mapped.status(), 200);
    Ok(app)
}

pub(crate) fn callrail_body(call_id: &str, company: &str, recording: Option<&str>) -> String {
    json!({"company_id": company, "call": {"id": call_id}, "customer_phone_number": "(555) 123-4567",
        "customer_name": "Pat Caller", "direction": "inbound", "answered": true, "duration": "95",
        "recording": recording, "start_time": "2026-11-22T10:00:00Z"})
    .to_string()
}

pub(crate) async fn post_callrail(
    app: &TestApp,
    path: &str,
    body: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header(
            "Signature",
            sign::callrail(CALLRAIL_SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
}

pub(crate) async fn status_of(response: reqwest::Response) -> Result<(u16, Value), reqwest::Error> {
    let code = response.status().as_u16();
    Ok((code, response.json().await.unwrap_or(Value::Null)))
}

pub(crate) async fn count<E: EntityTrait>(app: &TestApp) -> Result<u64, sea_orm::DbErr>
where
    E::Model: Sync,
{
    PaginatorTrait::count(E::find(), &app.ctx.db).await
}

pub(crate) async fn events(app: &TestApp, name: &str) -> Result<u64, sea_orm::DbErr> {
    outbox_event::Entity::find()
        .filter(outbox_event::Column::Event.eq(name))
        .count(&app.ctx.db)
        .await
}

async fn callrail_deliveries_take_effect_once(db: TestDatabase) -> TestResult {
    let app = webhook_app(db).await?;
    let pre_call = callrail_body("CAL100", "CR1", None);
    let (code, body) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &pre_call).await?).await?;
    assert_eq!(
        (code, body),
        (200, json!({"status": "processed", "provider": "callrail"}))
    );
    let (code, body) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &pre_call).await?).await?;
    assert_eq!(
        (code, body),
        (
            200,
            json!({"status": "duplicate_ignored", "provider": "callrail"})
        )
    );
    let key = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::ExternalId.eq("pre-call:CAL100"))
        .one(&app.ctx.db)
        .await?
        .ok_or("no key")?;
    assert_eq!((key.attempts, key.tenant_id.as_deref()), (2, Some(TENANT)));
    assert!(key.last_seen_at >= key.first_processed_at);

    // The completion of the same call is another event: processed, same call row.
    let complete = callrail_body(
        "CAL100",
        "CR1",
        Some("https://recordings.example.com/CAL100.mp3"),
    );
    let (code, body) =
        status_of(post_callrail(&app, "/webhooks/callrail/call-complete", &complete).await?)
            .await?;
    assert_eq!((code, body["status"].as_str()), (200, Some("processed")));
    assert_eq!(count::<call::Entity>(&app).await?, 1);
    assert_eq!(count::<lead::Entity>(&app).await?, 1);
    let row = call::Entity::find()
        .one(&app.ctx.db)
        .await?
        .ok_or("no call")?;
    assert_eq!(row.status, "completed");
    assert_eq!(
        row.recording_url.as_deref(),
        Some("https://recordings.example.com/CAL100.mp3")
    );
    assert_eq!(row.duration_seconds, Some(95));
    let lead_row = lead::Entity::find()
        .one(&app.ctx.db)
        .await?
        .ok_or("no lead")?;
    assert_eq!(
        (lead_row.phone.as_deref(), lead_row.company_id.as_str()),
        (Some("+15551234567"), TENANT)
    );
    assert_eq!(row.lead_id, Some(lead_row.id));
    assert_eq!(events(&app, "telephony.call.received").await?, 1);
    assert_eq!(events(&app, "telephony.call.completed").await?, 1);
    assert_eq!(events(&app, "system.webhook.processed").await?, 2);
    let asr_jobs = queued_job::Entity::find()
        .filter(queued_job::Column::Name.eq("asr.transcribe"))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(
        asr_jobs, 1,
        "the recording was queued for transcription once"
    );

    // call-modified: a retry repeats the body (duplicate); a new modification is processed.
    let modified = callrail_body(
        "CAL100",
        "CR1",
        Some("https://recordings.example.com/CAL100.mp3"),
    );
    assert_eq!(
        status_of(post_callrail(&app, "/call-modified", &modified).await?)
            .await?
            .1["status"],
        "processed"
    );
    assert_eq!(
        status_of(post_callrail(&app, "/webhooks/callrail/call-modified", &modified).await?)
            .await?
            .1["status"],
        "duplicate_ignored"
    );
    let changed = modified.replace("\"95\"", "\"120\"");
    assert_eq!(
        status_of(post_callrail(&app, "/callrail/call-modified", &changed).await?)
            .await?
            .1["status"],
        "processed"
    );
    assert_eq!(count::<call::Entity>(&app).await?, 1);

    // Legacy aliases reach the same handler.
    for (path, id) in [
        ("/webhook/callrail/pre-call", "A1"),
        ("/call-rail/pre-call", "A2"),
        ("/callrail/pre-call", "A3"),
        ("/call-complete", "A4"),
        ("/callrail/call.incoming", "A5"),
        ("/callrail/call.completed", "A6"),
        ("/callrail/call.modified", "A7"),
    ] {
        let body = callrail_body(id, "CR1", None);
        assert_eq!(
            status_of(post_callrail(&app, path, &body).await?).await?.1["status"],
            "processed",
            "{path}"
        );
    }
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(r#"webhook_processed_total{provider="callrail",tenant_id="org_wh"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"webhook_duplicates_total{provider="callrail",tenant_id="org_wh"}"#)
    );
    app.stop().await;
    Ok(())
}

async fn forged_stale_malformed_unknown_and_locked_deliveries_change_nothing(
    db: TestDatabase,
) -> TestResult {
    let app = webhook_app(db).await?;
    let body = callrail_body("CAL200", "CR1", None);
    let forged = app
        .client
        .post(app.url("/webhooks/callrail/pre-call"))
        .header("Signature", sign::callrail("wrong", body.as_bytes()))
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(forged.status(), 401);
    let malformed = "{not json";
    assert_eq!(
        post_callrail(&app, "/webhooks/callrail/pre-call", malformed)
            .await?
            .status(),
        422
    );
    let no_call = json!({"company_id": "CR1"}).to_string();
    assert_eq!(
        post_callrail(&app, "/webhooks/callrail/pre-call", &no_call)
            .await?
            .status(),
        422
    );
    assert_eq!(
        count::<idempotency_key::Entity>(&app).await?,
        0,
        "refused deliveries store no key"
    );
    assert_eq!(count::<call::Entity>(&app).await?, 0);

    let unknown = callrail_body("CAL201", "CR_UNKNOWN", None);
    assert_eq!(
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &unknown).await?)
            .await?
            .1,
        json!({"status": "ignored_unknown_tenant", "provider": "callrail"})
    );

    // Twilio: wrong signature.
    let params = [
        ("CallSid", "CA1"),
        ("From", "+15551230000"),
        ("To", OUR_NUMBER),
    ];
    let forged = app
        .client
        .post(app.url("/webhooks/twilio/voice"))
        .header("X-Twilio-Signature", "AAAA")
        .form(&params)
        .send()
        .await?;
    assert_eq!(forged.status(), 401);

    // Svix and UWC: a correct signature over a stale timestamp.
    let stale = (chrono::Utc::now().timestamp() - 600).to_string();
    let clerk =
        json!({"type": "organization.created", "data": {"id": "org_stale", "name": "Stale"}})
            .to_string();
    let response = app
        .client
        .post(app.url("/webhooks/clerk"))
        .header("svix-id", "msg_stale")
        .header("svix-timestamp", &stale)
        .header(
            "svix-signature",
            sign::svix(CLERK_SECRET, "msg_stale", &stale, clerk.as_bytes()),
        )
        .body(clerk)
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    let uwc = json!({"job_id": "j_stale", "company_id": TENANT, "status": "completed"}).to_string();
    let response = app
        .client
        .post(app.url("/webhooks/uwc/asr/complete"))
        .header("X-UWC-Timestamp", &stale)
        .header(
            "X-UWC-Signature",
            sign::uwc(UWC_SECRET, &stale, uwc.as_bytes()),
        )
        .body(uwc)
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    assert_eq!(count::<idempotency_key::Entity>(&app).await?, 0);

    // Lockdown: 423, nothing stored, and processed again once lifted.
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    app.authed(Method::POST, "/v1/owner/lockdown", &owner)
        .json(&json!({"enabled": true}))
        .send()
        .await?;
    let (code, problem) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body).await?).await?;
    assert_eq!(
        (code, problem["type"].as_str()),
        (423, Some("/problems/tenant-locked"))
    );
    assert_eq!(count::<idempotency_key::Entity>(&app).await?, 0);
    app.authed(Method::POST, "/v1/owner/lockdown", &owner)
        .json(&json!({"enabled": false}))
        .send()
        .await?;
    assert_eq!(
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body).await?)
            .await?
            .1["status"],
        "processed"
    );
    app.stop().await;
    Ok(())
}

fn twilio_form(path: &str, params: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    (
        sign::twilio(TWILIO_TOKEN, &format!("{PUBLIC_BASE}{path}"), &owned),
        owned,
    )
}

pub(crate) async fn post_twilio(
    app: &TestApp,
    path: &str,
    params: &[(&str, &str)],
) -> Result<reqwest::Response, reqwest::Error> {
    let (signature, form) = twilio_form(path, params);
    app.client
        .post(app.url(path))
        .header("X-Twilio-Signature", signature)
        .form(&form)
        .send()
        .await
}

async fn post_uwc(
    app: &TestApp,
    path: &str,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    let body = body.to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    app.client
        .post(app.url(path))
        .header("X-UWC-Timestamp", &now)
        .header(
            "X-UWC-Signature",
            sign::uwc(UWC_SECRET, &now, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
}

pub(crate) async fn post_clerk(
    app: &TestApp,
    id: &str,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    let body = body.to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    app.client
        .post(app.url("/webhooks/clerk"))
        .header("svix-id", id)
        .header("svix-timestamp", &now)
        .header(
            "svix-signature",
            sign::svix(CLERK_SECRET, id, &now, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
}

async fn twilio_clerk_bland_and_uwc_deliveries_take_effect(db: TestDatabase) -> TestResult {
    let app = webhook_app(db).await?;
    // Twilio's vector (../shared/test-vectors/twilio.json, case 2, twilio-python RequestValidator)
    // delivered as Twilio would: accepted as signed.
    let vectors: Value =
        serde_json::from_str(include_str!("../../../../shared/test-vectors/twilio.json"))?;
    let case = &vectors["cases"][1];
    let form: Vec<(String, String)> = case["params"]
        .as_object()
        .ok_or("params")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let response = app
        .client
        .post(app.url("/webhooks/twilio/sms"))
        .header(
            "X-Twilio-Signature",
            case["signature"].as_str().unwrap_or_default(),
        )
        .form(&form)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/xml")
    );
    assert!(response.text().await?.contains("<Response/>"));
    let sms = message::Entity::find()
        .one(&app.ctx.db)
        .await?
        .ok_or("no message")?;
    assert_eq!(
        (sms.body.as_str(), sms.company_id.as_str()),
        ("Can you come Tuesday? éè & <ok>", TENANT)
    );
    assert_eq!(events(&app, "telephony.sms.received").await?, 1);
    // The legacy SMS path signs its own URL.
    let response = post_twilio(
        &app,
        "/sms/twilio-webhook",
        &[
            ("MessageSid", "SM2"),
            ("From", "+15551234567"),
            ("To", OUR_NUMBER),
            ("Body", "hi"),
        ],
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(count::<message::Entity>(&app).await?, 2);

    let voice = post_twilio(
        &app,
        "/webhooks/twilio/voice",
        &[
            ("CallSid", "CA9"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
        ],
    )
    .await?;
    assert_eq!(voice.status(), 200);
    assert!(voice.text().await?.contains("<Response/>"));
    let recording = post_twilio(
        &app,
        "/webhooks/twilio/recording",
        &[
            ("CallSid", "CA9"),
            ("RecordingSid", "RE9"),
            ("RecordingUrl", "https://api.twilio.com/RE9"),
            ("RecordingDuration", "42"),
        ],
    )
    .await?;
    assert_eq!(
        status_of(recording).await?.1,
        json!({"status": "processed", "provider": "twilio"})
    );
    let status = post_twilio(
        &app,
        "/webhooks/twilio/status",
        &[
            ("CallSid", "CA9"),
            ("CallStatus", "completed"),
            ("To", OUR_NUMBER),
            ("CallDuration", "42"),
        ],
    )
    .await?;
    assert_eq!(status_of(status).await?.1["status"], "processed");
    let twilio_call = call::Entity::find()
        .filter(call::Column::ProviderCallId.eq("CA9"))
        .one(&app.ctx.db)
        .await?
        .ok_or("no call")?;
    assert_eq!(
        (
            twilio_call.status.as_str(),
            twilio_call.recording_url.as_deref()
        ),
        ("completed", Some("https://api.twilio.com/RE9"))
    );
    // A recording for a call Otto has not seen yet names the company by the number called, and
    // seed 003's mobile paths are aliases signed as received.
    let early_recording = post_twilio(
        &app,
        "/mobile/twilio-recording",
        &[
            ("CallSid", "CA10"),
            ("To", OUR_NUMBER),
            ("RecordingSid", "RE10"),
            ("RecordingUrl", "https://api.twilio.com/RE10"),
            ("RecordingDuration", "7"),
        ],
    )
    .await?;
    assert_eq!(
        status_of(early_recording).await?.1,
        json!({"status": "processed", "provider": "twilio"})
    );
    let early = call::Entity::find()
        .filter(call::Column::ProviderCallId.eq("CA10"))
        .one(&app.ctx.db)
        .await?
        .ok_or("the early recording made no call")?;
    assert_eq!(
        (early.company_id.as_str(), early.recording_url.as_deref()),
        (TENANT, Some("https://api.twilio.com/RE10"))
    );
    let mobile_voice = post_twilio(
        &app,
        "/mobile/twilio-voice",
        &[
            ("CallSid", "CA11"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
        ],
    )
    .await?;
    assert_eq!(mobile_voice.status(), 200);

    // Clerk: an organization and a membership arrive before anyone logs in.
    let org = json!({"type": "organization.created", "data": {"id": "org_clerk", "name": "Clerk Roofing"}});
    assert_eq!(
        status_of(post_clerk(&app, "msg_org", &org).await?).await?.1["status"],
        "processed"
    );
    assert_eq!(
        status_of(post_clerk(&app, "msg_org", &org).await?).await?.1["status"],
        "duplicate_ignored"
    );
    let membership = json!({"type": "organizationMembership.created", "data": {"organization": {"id": "org_clerk"},
        "public_user_data": {"user_id": "user_clerk", "identifier": "jane@example.com"}, "role": "org:admin"}});
    assert_eq!(
        status_of(post_clerk(&app, "msg_member", &membership).await?)
            .await?
            .1["status"],
        "processed"
    );
    let named = company::Entity::find_by_id("org_clerk".to_owned())
        .one(&app.ctx.db)
        .await?
        .ok_or("no company")?;
    assert_eq!(named.name, "Clerk Roofing");
    let member = user::Entity::find_by_id("user_clerk".to_owned())
        .one(&app.ctx.db)
        .await?
        .ok_or("no user")?;
    assert_eq!(
        (member.company_id.as_str(), member.role.as_str()),
        ("org_clerk", "leadership")
    );
    let stranger = json!({"type": "user.created", "data": {"id": "user_nobody"}});
    assert_eq!(
        status_of(post_clerk(&app, "msg_stranger", &stranger).await?)
            .await?
            .1["status"],
        "ignored_unknown_tenant"
    );

    // Bland.
    let bland = json!({"call_id": "bl_1", "status": "completed", "call_length": 1.5, "metadata": {"company_id": TENANT}}).to_string();
    let response = app
        .client
        .post(app.url("/webhooks/bland"))
        .header(
            "X-Webhook-Signature",
            sign::bland(BLAND_SECRET, bland.as_bytes()),
        )
        .body(bland)
        .send()
        .await?;
    assert_eq!(
        status_of(response).await?.1,
        json!({"status": "processed", "provider": "bland"})
    );

    // UWC: a job Otto submitted completes once, whichever of webhook or poll comes first.
    let now = chrono::Utc::now();
    let job = shunya_job::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        company_id: Set(TENANT.to_owned()),
        shunya_job_id: Set("job_1".to_owned()),
        job_type: Set("asr".to_owned()),
        status: Set("submitted".to_owned()),
        call_id: Set(Some(twilio_call.id)),
        attempts: Set(1),
        next_retry_at: Set(None),
        processed_output_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    shunya_job::Entity::insert(job)
        .exec_without_returning(&app.ctx.db)
        .await?;
    let done = json!({"job_id": "job_1", "company_id": TENANT, "status": "completed", "transcript": "Hello, I need a new roof."});
    assert_eq!(
        status_of(post_uwc(&app, "/webhooks/uwc/asr/complete", &done).await?)
            .await?
            .1,
        json!({"status": "processed", "provider": "uwc"})
    );
    assert_eq!(
        status_of(post_uwc(&app, "/webhooks/uwc/asr/complete", &done).await?)
            .await?
            .1["status"],
        "duplicate_ignored"
    );
    let transcribed = call::Entity::find_by_id(twilio_call.id)
        .one(&app.ctx.db)
        .await?
        .ok_or("call gone")?;
    assert_eq!(
        transcribed.transcript.as_deref(),
        Some("Hello, I need a new roof.")
    );
    let completed = shunya_job::Entity::find()
        .filter(shunya_job::Column::ShunyaJobId.eq("job_1"))
        .one(&app.ctx.db)
        .await?
        .ok_or("job")?;
    assert_eq!(completed.status, "completed");
    assert!(completed.processed_output_hash.is_some());
    // The legacy route, for a job Otto never submitted: stored and processed.
    let stray = json!({"job_id": "job_stray", "company_id": TENANT, "event": "analysis/complete", "status": "completed"});
    assert_eq!(
        status_of(post_uwc(&app, "/api/v1/shunya/webhook", &stray).await?)
            .await?
            .1["status"],
        "processed"
    );
    let unknown = json!({"job_id": "job_x", "company_id": "org_nobody", "status": "completed"});
    assert_eq!(
        status_of(post_uwc(&app, "/webhooks/uwc/asr/complete", &unknown).await?)
            .await?
            .1["status"],
        "ignored_unknown_tenant"
    );
    app.stop().await;
    Ok(())
}

async fn fifty_identical_concurrent_deliveries_process_once(db: TestDatabase) -> TestResult {
    let app = webhook_app(db).await?;
    let body = callrail_body("CAL_STORM", "CR1", None);
    let storm = (0..50).map(|_| post_callrail(&app, "/webhooks/callrail/pre-call", &body));
    let mut outcomes = Vec::new();
    for response in futures_util::future::join_all(storm).await {
        let (code, body) = status_of(response?).await?;
        assert_eq!(code, 200, "{body}");
        outcomes.push(body["status"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(outcomes.iter().filter(|s| *s == "processed").count(), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|s| *s == "duplicate_ignored")
            .count(),
        49
    );
    assert_eq!(count::<lead::Entity>(&app).await?, 1);
    assert_eq!(count::<call::Entity>(&app).await?, 1);
    assert_eq!(events(&app, "telephony.call.received").await?, 1);
    let key = idempotency_key::Entity::find()
        .one(&app.ctx.db)
        .await?
        .ok_or("no key")?;
    assert_eq!(key.attempts, 50);
    app.stop().await;
    Ok(())
}

async fn a_failed_delivery_leaves_nothing_and_its_retry_succeeds(db: TestDatabase) -> TestResult {
    let app = webhook_app(db).await?;
    let backend = app.ctx.db.get_database_backend();
    // Inject a failure in the domain write: the database refuses this one call.
    let (install, remove) = match backend {
        sea_orm::DatabaseBackend::Postgres => (
            "CREATE FUNCTION refuse_call() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_call BEFORE INSERT ON calls FOR EACH ROW WHEN (NEW.provider_call_id = 'CAL_FAIL') EXECUTE FUNCTION refuse_call();",
            "DROP TRIGGER refuse_call ON calls; DROP FUNCTION refuse_call();",
        ),
        _ => (
            "CREATE TRIGGER refuse_call BEFORE INSERT ON calls WHEN NEW.provider_call_id = 'CAL_FAIL' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            "DROP TRIGGER refuse_call;",
        ),
    };
    app.ctx.db.execute_unprepared(install).await?;
    let body = callrail_body("CAL_FAIL", "CR1", None);
    let (code, problem) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body).await?).await?;
    assert_eq!(code, 500, "{problem}");
    assert!(
        !problem.to_string().contains("injected"),
        "no SQL or cause reaches the provider"
    );
    assert_eq!(
        count::<idempotency_key::Entity>(&app).await?,
        0,
        "the key was released"
    );
    assert_eq!(
        count::<lead::Entity>(&app).await?,
        0,
        "the lead written before the failure was rolled back"
    );
    assert_eq!(count::<outbox_event::Entity>(&app).await?, 0);

    app.ctx.db.execute_unprepared(remove).await?;
    let (code, body) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body).await?).await?;
    assert_eq!((code, body["status"].as_str()), (200, Some("processed")));
    assert_eq!(
        (
            count::<lead::Entity>(&app).await?,
            count::<call::Entity>(&app).await?
        ),
        (1, 1)
    );
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(metrics.contains(r#"webhook_failures_total{provider="callrail",tenant_id="org_wh"}"#));
    app.stop().await;
    Ok(())
}

/// The delivery variants every provider is checked with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Valid,
    Forged,
    Malformed,
    UnknownTenant,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    CallRail,
    TwilioStatus,
    Clerk,
    Bland,
    Uwc,
}

/// A signed (or, for `Forged`, mis-signed) delivery of `kind`, identified by `id`.
fn delivery(app: &TestApp, kind: Kind, variant: Variant, id: &str) -> reqwest::RequestBuilder {
    let now = chrono::Utc::now().timestamp().to_string();
    let unknown = variant == Variant::UnknownTenant;
    let json_body = |value: Value| {
        if variant == Variant::Malformed {
            "{\"broken\": ".to_owned()
        } else {
            value.to_string()
        }
    };
    match kind {
        Kind::CallRail => {
            let body = json_body(
                json!({"company_id": if unknown { "CR_NONE" } else { "CR1" }, "call": {"id": id}}),
            );
            let signature = sign::callrail(
                if variant == Variant::Forged {
                    "forged"
                } else {
                    CALLRAIL_SECRET
                },
                body.as_bytes(),
            );
            app.client
                .post(app.url("/webhooks/callrail/pre-call"))
                .header("Signature", signature)
                .body(body)
        }
        Kind::TwilioStatus => {
            let mut form = vec![
                ("CallStatus".to_owned(), "in-progress".to_owned()),
                (
                    "To".to_owned(),
                    if unknown { "+15550000000" } else { OUR_NUMBER }.to_owned(),
                ),
            ];
            if variant != Variant::Malformed {
                form.push(("CallSid".to_owned(), id.to_owned()));
            }
            let token = if variant == Variant::Forged {
                "forged"
            } else {
                TWILIO_TOKEN
            };
            let signature = sign::twilio(
                token,
                &format!("{PUBLIC_BASE}/webhooks/twilio/status"),
                &form,
            );
            app.client
                .post(app.url("/webhooks/twilio/status"))
                .header("X-Twilio-Signature", signature)
                .form(&form)
        }
        Kind::Clerk => {
            let body = if unknown {
                json_body(json!({"type": "user.updated", "data": {"id": "user_unknown"}}))
            } else {
                json_body(
                    json!({"type": "organization.updated", "data": {"id": TENANT, "name": "Webhook Co"}}),
                )
            };
            let secret = if variant == Variant::Forged {
                "whsec_Zm9yZ2Vk"
            } else {
                CLERK_SECRET
            };
            app.client
                .post(app.url("/webhooks/clerk"))
                .header("svix-id", id)
                .header("svix-timestamp", &now)
                .header(
                    "svix-signature",
                    sign::svix(secret, id, &now, body.as_bytes()),
                )
                .body(body)
        }
        Kind::Bland => {
            let body = json_body(
                json!({"call_id": id, "status": "completed", "metadata": {"company_id": if unknown { "org_none" } else { TENANT }}}),
            );
            let signature = sign::bland(
                if variant == Variant::Forged {
                    "forged"
                } else {
                    BLAND_SECRET
                },
                body.as_bytes(),
            );
            app.client
                .post(app.url("/webhooks/bland"))
                .header("X-Webhook-Signature", signature)
                .body(body)
        }
        Kind::Uwc => {
            let body = json_body(
                json!({"job_id": id, "company_id": if unknown { "org_none" } else { TENANT }, "status": "completed"}),
            );
            let secret = if variant == Variant::Forged {
                "forged"
            } else {
                UWC_SECRET
            };
            app.client
                .post(app.url("/webhooks/uwc/rag/indexed"))
                .header("X-UWC-Timestamp", &now)
                .header("X-UWC-Signature", sign::uwc(secret, &now, body.as_bytes()))
                .body(body)
        }
    }
}

/// Every provider x {processed, duplicate, forged, malformed, unknown tenant, locked}.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_answers_every_kind_of_delivery() -> TestResult {
    let app = webhook_app(TestDatabase::postgres().await?).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    for kind in [
        Kind::CallRail,
        Kind::TwilioStatus,
        Kind::Clerk,
        Kind::Bland,
        Kind::Uwc,
    ] {
        let id = format!("matrix-{kind:?}");
        let keys_before = count::<idempotency_key::Entity>(&app).await?;
        for (variant, expected) in [(Variant::Forged, 401), (Variant::Malformed, 422)] {
            let (code, body) = status_of(delivery(&app, kind, variant, &id).send().await?).await?;
            assert_eq!(code, expected, "{kind:?} {variant:?}: {body}");
        }
        assert_eq!(
            count::<idempotency_key::Entity>(&app).await?,
            keys_before,
            "{kind:?}: refusals store nothing"
        );
        let (code, body) = status_of(
            delivery(&app, kind, Variant::UnknownTenant, &format!("{id}-u"))
                .send()
                .await?,
        )
        .await?;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("ignored_unknown_tenant")),
            "{kind:?}"
        );

        app.authed(Method::POST, "/v1/owner/lockdown", &owner)
            .json(&json!({"enabled": true}))
            .send()
            .await?;
        let (code, _) = status_of(delivery(&app, kind, Variant::Valid, &id).send().await?).await?;
        assert_eq!(code, 423, "{kind:?} while locked");
        app.authed(Method::POST, "/v1/owner/lockdown", &owner)
            .json(&json!({"enabled": false}))
            .send()
            .await?;

        let (code, body) =
            status_of(delivery(&app, kind, Variant::Valid, &id).send().await?).await?;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("processed")),
            "{kind:?}: {body}"
        );
        let (code, body) =
            status_of(delivery(&app, kind, Variant::Valid, &id).send().await?).await?;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("duplicate_ignored")),
            "{kind:?}: {body}"
        );
        assert_eq!(
            count::<idempotency_key::Entity>(&app).await?,
            keys_before + 1,
            "{kind:?}: one key"
        );
    }
    app.stop().await;
    Ok(())
}

/// A webhook's effects run under the tenant's row-level-security context: a trigger records who
/// wrote each lead and call, and with which `app.tenant_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_effects_run_under_the_tenants_row_level_security() -> TestResult {
    let app = webhook_app(TestDatabase::postgres().await?).await?;
    app.ctx
        .db
        .execute_unprepared(
            "CREATE TABLE rls_witness (tbl text, who text, tenant text); \
             CREATE FUNCTION witness() RETURNS trigger AS $$ BEGIN \
               INSERT INTO rls_witness VALUES (TG_TABLE_NAME, current_user, current_setting('app.tenant_id', true)); \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER witness_calls AFTER INSERT OR UPDATE ON calls FOR EACH ROW EXECUTE FUNCTION witness(); \
             CREATE TRIGGER witness_leads AFTER INSERT OR UPDATE ON leads FOR EACH ROW EXECUTE FUNCTION witness();",
        )
        .await?;
    let body = callrail_body("CAL_RLS", "CR1", None);
    let (code, _) =
        status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body).await?).await?;
    assert_eq!(code, 200);
    let rows = app
        .ctx
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT tbl, who, tenant FROM rls_witness ORDER BY tbl",
        ))
        .await?;
    let seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "tbl")?,
                row.try_get("", "who")?,
                row.try_get("", "tenant")?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()?;
    let expected = |table: &str| (table.to_owned(), "otto_app".to_owned(), TENANT.to_owned());
    assert_eq!(seen, [expected("calls"), expected("leads")]);
    app.stop().await;
    Ok(())
}
