//! Recording sessions end to end (SPEC section 14) with the mock UWC as a real process: a WAV
//! made here is streamed into storage (a second upload replaces the first), finishing creates
//! an `in_person` call on the lead, and the call goes through the same pipeline as a phone call.

use std::time::Duration;

use otto_domain::{Role, TenantId};
use reqwest::Method;
use serde_json::{Value, json};

use crate::documents::{docs_app, storage_dir};
use crate::helpers::{TestApp, TestDatabase, TestResult, eventually, seed_company, seed_lead};
use crate::pipeline::MockUwc;

const TENANT: &str = "org_visits";

on_both_databases!(a_recorded_visit_becomes_a_transcribed_in_person_call);

/// A mono 16-bit PCM WAV of `seconds` of silence at 8 kHz.
fn wav(seconds: u32) -> Vec<u8> {
    let data_len = seconds * 8000 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}

async fn put_audio(
    app: &TestApp,
    token: &str,
    session: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let response = app
        .authed(
            Method::PUT,
            &format!("/v1/recording-sessions/{session}/audio"),
            token,
        )
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn a_recorded_visit_becomes_a_transcribed_in_person_call(db: TestDatabase) -> TestResult {
    let mock = MockUwc::start(true).await?;
    let dir = storage_dir();
    let app = docs_app(db, &dir, Some(&mock.url), "20/minute").await?;
    seed_company(&app.ctx, TENANT).await?;
    let lead = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;
    let rep = app.token(TENANT, "user_rep", Role::Rep);

    let (status, session) = app
        .json(
            Method::POST,
            "/v1/recording-sessions",
            &rep,
            Some(json!({"lead_id": lead})),
        )
        .await?;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["status"], "open");
    assert!(session["expires_at"].is_string());
    let id = session["id"].as_str().ok_or("id")?.to_owned();

    // Not audio: refused, by header or by content.
    let (status, _) = put_audio(&app, &rep, &id, "text/plain", b"hello".to_vec()).await?;
    assert_eq!(status, 415);
    let (status, _) = put_audio(
        &app,
        &rep,
        &id,
        "audio/wav",
        b"MZ\x90\x00 not audio".to_vec(),
    )
    .await?;
    assert_eq!(status, 415);
    // Someone else's session is not found.
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let (status, _) = put_audio(&app, &csr, &id, "audio/wav", wav(1)).await?;
    assert_eq!(status, 404);

    let (status, stored) = put_audio(&app, &rep, &id, "audio/wav", wav(2)).await?;
    assert_eq!(status, 200, "{stored}");
    let (status, stored) = put_audio(&app, &rep, &id, "audio/wav", wav(1)).await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        stored["size_bytes"],
        44 + 16000,
        "the second upload replaced the first"
    );
    let key = otto_service::recordings::object_key(&TenantId::try_from(TENANT)?, id.parse()?);
    assert_eq!(app.ctx.storage.size(&key).await?, Some(44 + 16000));

    let (status, finished) = app
        .json(
            Method::POST,
            &format!("/v1/recording-sessions/{id}/finish"),
            &rep,
            None,
        )
        .await?;
    assert_eq!(status, 200, "{finished}");
    assert_eq!(finished["status"], "completed");
    let call_id = finished["call_id"].as_str().ok_or("call_id")?.to_owned();
    let (status, _) = app
        .json(
            Method::POST,
            &format!("/v1/recording-sessions/{id}/finish"),
            &rep,
            None,
        )
        .await?;
    assert_eq!(status, 409, "finished once");
    let (status, _) = put_audio(&app, &rep, &id, "audio/wav", wav(1)).await?;
    assert_eq!(status, 409, "a finished session takes no more audio");

    let (status, calls) = app.json(Method::GET, "/v1/calls", &rep, None).await?;
    assert_eq!(status, 200);
    let listed = calls["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["id"] == call_id.as_str()))
        .cloned()
        .ok_or("the visit is not in GET /v1/calls")?;
    assert_eq!(listed["direction"], "in_person");
    assert_eq!(listed["lead_id"], lead.to_string());
    assert_eq!(listed["has_recording"], true);

    let transcribed = eventually(Duration::from_secs(40), || async {
        app.json(Method::GET, "/v1/calls", &rep, None)
            .await
            .is_ok_and(|(_, page)| {
                page["items"].as_array().is_some_and(|items| {
                    items.iter().any(|c| {
                        c["id"] == call_id.as_str()
                            && (c["status"] == "transcribed" || c["status"] == "analyzed")
                    })
                })
            })
    })
    .await;
    assert!(transcribed, "the visit never reached transcribed");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A rep's voice/style model: leadership asks, the worker sends the rep's analysed calls to
/// UWC, UWC's `training/status` callback completes it, `GET /v1/reps/{id}` shows it. Without UWC
/// training there is nothing to ask: 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_is_trained_through_uwc_and_its_status_shown() -> TestResult {
    let mock = MockUwc::start(true).await?;
    let dir = storage_dir();
    let app = docs_app(TestDatabase::sqlite(), &dir, Some(&mock.url), "20/minute").await?;
    let rep = app.token(TENANT, "user_trainee", Role::Rep);
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    // The rep's first request provisions its rep row.
    let (status, reps) = app.json(Method::GET, "/v1/reps", &rep, None).await?;
    assert_eq!(status, 200);
    let rep_id = reps["items"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["user_id"] == "user_trainee"))
        .and_then(|r| r["id"].as_str())
        .ok_or("no rep row")?
        .to_owned();

    let (status, _) = app
        .json(
            Method::POST,
            &format!("/v1/reps/{rep_id}/training"),
            &rep,
            None,
        )
        .await?;
    assert_eq!(status, 403, "training is leadership's call");
    let (status, queued) = app
        .json(
            Method::POST,
            &format!("/v1/reps/{rep_id}/training"),
            &owner,
            None,
        )
        .await?;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["training_status"], "queued");
    let trained = eventually(Duration::from_secs(30), || async {
        app.json(Method::GET, &format!("/v1/reps/{rep_id}"), &rep, None)
            .await
            .is_ok_and(|(_, r)| r["training_status"] == "completed" && r["trained_at"].is_string())
    })
    .await;
    assert!(trained, "the rep's training never completed");
    let (status, _) = app
        .json(
            Method::GET,
            &format!("/v1/reps/{}", uuid::Uuid::now_v7()),
            &owner,
            None,
        )
        .await?;
    assert_eq!(status, 404);
    app.stop().await;

    let app = docs_app(TestDatabase::sqlite(), &dir, None, "20/minute").await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let (status, problem) = app
        .json(
            Method::POST,
            &format!("/v1/reps/{rep_id}/training"),
            &owner,
            None,
        )
        .await?;
    assert_eq!(status, 503, "{problem}");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
