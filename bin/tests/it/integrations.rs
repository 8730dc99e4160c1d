//! SPEC section 17's integrations through the real app: Deepgram transcribing when UWC is down
//! (and a returning UWC changing nothing), and a CallRail call completed from CallRail's API.

use std::time::Duration;

use otto_db::entities::call;
use otto_domain::jobs::{JobKind, TranscribeCall};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, TestDatabase, TestResult, eventually};
use crate::webhooks::{callrail_body, post_callrail, webhook_app_with};

const RECORDING: &str = "https://recordings.example.com/CAL9.mp3";

async fn fake_deepgram() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/listen"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "metadata": {"request_id": "dg-1", "duration": 95.0},
            "results": {"channels": [{"alternatives": [{"transcript": "my furnace is broken"}]}],
                "utterances": [{"speaker": 0, "transcript": "Thanks for calling."},
                               {"speaker": 1, "transcript": "My furnace is broken."}]}
        })))
        .mount(&server)
        .await;
    server
}

async fn call_row(app: &TestApp, provider_id: &str) -> Option<call::Model> {
    call::Entity::find()
        .filter(call::Column::ProviderCallId.eq(provider_id))
        .one(&app.ctx.db)
        .await
        .ok()
        .flatten()
}

async fn transcribed(app: &TestApp, provider_id: &str) -> bool {
    eventually(Duration::from_secs(15), || async {
        call_row(app, provider_id)
            .await
            .is_some_and(|c| c.transcript.is_some())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uwc_down_deepgram_transcribes_and_a_returning_uwc_changes_nothing() -> TestResult {
    let uwc = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&uwc)
        .await;
    let deepgram = fake_deepgram().await;
    let (uwc_url, deepgram_url) = (uwc.uri(), deepgram.uri());
    let app = webhook_app_with(
        TestDatabase::sqlite(),
        &[
            ("UWC_BASE_URL", &uwc_url),
            ("UWC_API_KEY", "uwc-key"),
            ("UWC_MAX_RETRIES", "2"),
            ("UWC_RETRY_BASE_MS", "1"),
            ("DEEPGRAM_API_URL", &deepgram_url),
            ("DEEPGRAM_API_KEY", "dg-key"),
            ("WORKER_QUEUES", "asr"),
        ],
    )
    .await?;
    let body = callrail_body("CAL9", "CR1", Some(RECORDING));
    assert_eq!(
        post_callrail(&app, "/webhooks/callrail/call-complete", &body)
            .await?
            .status(),
        200
    );
    assert!(
        transcribed(&app, "CAL9").await,
        "Deepgram never transcribed the call"
    );
    let row = call_row(&app, "CAL9").await.ok_or("call")?;
    assert_eq!(row.asr_provider.as_deref(), Some("deepgram"));
    assert_eq!(
        row.transcript.as_deref(),
        Some("Speaker 0: Thanks for calling.\nSpeaker 1: My furnace is broken.")
    );
    let submissions = uwc.received_requests().await.unwrap_or_default();
    assert_eq!(
        submissions.len(),
        3,
        "one submission and its two retries reached UWC"
    );
    // The analysis follows the transcript.
    let analysis_jobs = otto_db::entities::queued_job::Entity::find()
        .filter(otto_db::entities::queued_job::Column::Name.eq("analysis.run"))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(analysis_jobs.len(), 1, "the analysis was queued");

    // UWC is back and the call is swept into transcription again: nothing is submitted, the
    // transcript stays Deepgram's.
    uwc.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"job_id": "uwc-late", "status": "queued"})),
        )
        .mount(&uwc)
        .await;
    let job = TranscribeCall {
        tenant_id: otto_domain::TenantId::try_from(crate::webhooks::TENANT)?,
        call_id: row.id.into(),
        trace_id: otto_domain::TraceId::generate(),
    };
    let registry = otto_worker::jobs::registry(&app.ctx.config);
    registry
        .get(TranscribeCall::NAME)
        .ok_or("no handler")?
        .run(&serde_json::to_value(&job)?, &app.ctx)
        .await
        .map_err(|e| e.to_string())?;
    assert!(uwc.received_requests().await.unwrap_or_default().is_empty());
    let after = call_row(&app, "CAL9").await.ok_or("call")?;
    assert_eq!(
        (after.transcript, after.asr_provider),
        (row.transcript, row.asr_provider)
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callrail_call_without_its_recording_is_completed_from_the_api() -> TestResult {
    let callrail = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/a/ACC1/calls/CAL7.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "CAL7", "answered": true, "duration": 130, "recording": RECORDING
        })))
        .expect(1)
        .mount(&callrail)
        .await;
    let deepgram = fake_deepgram().await;
    let (callrail_url, deepgram_url) = (callrail.uri(), deepgram.uri());
    let app = webhook_app_with(
        TestDatabase::sqlite(),
        &[
            ("CALLRAIL_API_URL", &callrail_url),
            ("CALLRAIL_API_KEY", "cr-key"),
            ("CALLRAIL_ACCOUNT_ID", "ACC1"),
            ("DEEPGRAM_API_URL", &deepgram_url),
            ("DEEPGRAM_API_KEY", "dg-key"),
            ("WORKER_QUEUES", "default,asr"),
        ],
    )
    .await?;
    let body = callrail_body("CAL7", "CR1", None);
    assert_eq!(
        post_callrail(&app, "/webhooks/callrail/call-complete", &body)
            .await?
            .status(),
        200
    );
    // Filled from the API, then transcribed (UWC is not configured: Deepgram).
    assert!(
        transcribed(&app, "CAL7").await,
        "the enriched call was never transcribed"
    );
    let row = call_row(&app, "CAL7").await.ok_or("call")?;
    assert_eq!(row.recording_url.as_deref(), Some(RECORDING));
    assert_eq!(row.duration_seconds, Some(130), "the API's duration");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bland_closes_the_missed_call_task_with_its_outcome() -> TestResult {
    use otto_db::entities::task;
    use otto_service::tasks::{NewTask, create};
    let app = webhook_app_with(TestDatabase::sqlite(), &[]).await?;
    let tenant = otto_domain::TenantId::try_from(crate::webhooks::TENANT)?;
    let missed = uuid::Uuid::now_v7();
    let utx =
        otto_db::TenantTxn::begin(&app.ctx.db, &tenant, otto_domain::TraceId::generate()).await?;
    create(
        &utx,
        NewTask {
            title: "Call back +15551234567".to_owned(),
            lead_id: None,
            assignee_id: None,
            due_at: None,
            unique_key: Some(format!("missed:{missed}")),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    utx.commit(&app.ctx).await?;
    let body = json!({"call_id": "bl-9", "status": "completed", "call_length": 2.0,
        "summary": "Booked Tuesday 9am", "metadata": {"company_id": crate::webhooks::TENANT, "call_id": missed}})
    .to_string();
    let response = app
        .client
        .post(app.url("/webhooks/bland"))
        .header(
            "X-Webhook-Signature",
            otto_api::webhooks::signature::sign::bland(
                crate::webhooks::BLAND_SECRET,
                body.as_bytes(),
            ),
        )
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let row = task::Entity::find()
        .filter(task::Column::UniqueKey.eq(format!("missed:{missed}")))
        .one(&app.ctx.db)
        .await?
        .ok_or("task")?;
    assert_eq!(row.status, "done");
    assert_eq!(
        row.title,
        "Call back +15551234567 (callback completed: Booked Tuesday 9am)"
    );
    app.stop().await;
    Ok(())
}

fn model_answer(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": "c1", "object": "chat.completion", "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_facts_are_validated_retried_and_stored() -> TestResult {
    use otto_domain::Role;
    use wiremock::matchers::body_string_contains;
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("1 Bad Answer Way"))
        .respond_with(model_answer(r#"{"property_type":"castle","year_built":"old","roof_type":null,"square_feet":null,"estimated_value":null,"confidence":7}"#))
        .expect(3)
        .mount(&model)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"json_schema\""))
        .and(body_string_contains("12 Elm Street"))
        .respond_with(model_answer(r#"{"property_type":"single_family","year_built":1987,"roof_type":"asphalt shingle","square_feet":2100,"estimated_value":385000,"confidence":0.6}"#))
        .expect(1)
        .mount(&model)
        .await;
    let base = format!("{}/v1", model.uri());
    let app = webhook_app_with(TestDatabase::sqlite(), &[("LLM_BASE_URL", base.as_str())]).await?;
    let csr = app.token(crate::webhooks::TENANT, "user_csr", Role::Csr);
    let mut ids = Vec::new();
    for address in ["12 Elm Street, Springfield", "1 Bad Answer Way, Nowhere"] {
        let (code, created) = app
            .json(
                reqwest::Method::POST,
                "/v1/leads",
                &csr,
                Some(json!({"name": "Pat", "address": address})),
            )
            .await?;
        assert_eq!(
            (code, &created["property_status"]),
            (201, &json!("pending")),
            "{created}"
        );
        ids.push(created["id"].as_str().ok_or("id")?.to_owned());
    }
    let good = settled_lead(&app, &csr, &ids[0]).await?;
    assert_eq!(good["property_status"], json!("ready"));
    assert_eq!(good["property"]["year_built"], json!(1987));
    assert_eq!(good["property"]["property_type"], json!("single_family"));
    let bad = settled_lead(&app, &csr, &ids[1]).await?;
    assert_eq!(
        (&bad["property_status"], &bad["property"]),
        (&json!("failed"), &json!(null))
    );
    let emitted = otto_db::entities::outbox_event::Entity::find()
        .all(&app.ctx.db)
        .await?
        .into_iter()
        .filter(|e| e.event == "lead.updated" && e.envelope.contains("\"change\":\"property\""))
        .count();
    assert_eq!(
        emitted, 2,
        "lead.updated for the stored and the failed facts"
    );
    app.stop().await;
    Ok(())
}

/// The lead once its property facts are no longer pending.
async fn settled_lead(
    app: &TestApp,
    token: &str,
    id: &str,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let path = format!("/v1/leads/{id}");
    let settled = eventually(Duration::from_secs(15), || async {
        app.json(reqwest::Method::GET, &path, token, None)
            .await
            .is_ok_and(|(_, lead)| lead["property_status"] != json!("pending"))
    })
    .await;
    assert!(settled, "the property look-up of {id} never finished");
    Ok(app.json(reqwest::Method::GET, &path, token, None).await?.1)
}
