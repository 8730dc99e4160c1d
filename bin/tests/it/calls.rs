//! Calls through HTTP (SPEC section 13): the pipeline status derived from what a call holds,
//! details with transcript, analysis and follow-ups, filters and pages, edits, rep visibility and
//! tenant isolation.

use otto_db::entities::{call, follow_up};
use otto_db::shunya_jobs;
use otto_domain::{Role, TenantId};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CallSeed, TestApp, TestDatabase, TestResult, seed_call, seed_company, seed_lead,
};

on_both_databases!(a_call_shows_where_it_is_in_the_pipeline_and_what_it_produced);

const TENANT: &str = "org_calls";

async fn asr_job(app: &TestApp, call: Uuid, failed: bool) -> TestResult {
    let tenant = TenantId::try_from(TENANT)?;
    let job_id = format!("job-{call}");
    shunya_jobs::record_submitted(
        &app.ctx.db,
        shunya_jobs::Submitted {
            tenant: &tenant,
            shunya_job_id: &job_id,
            job_type: shunya_jobs::ASR,
            call_id: Some(call),
            poll_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await?;
    if failed {
        let job = shunya_jobs::find(&app.ctx.db, &tenant, &job_id)
            .await?
            .ok_or("job")?;
        shunya_jobs::fail_once(&app.ctx.db, &job).await?;
    }
    Ok(())
}

async fn a_call_shows_where_it_is_in_the_pipeline_and_what_it_produced(
    db: TestDatabase,
) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    seed_company(&app.ctx, TENANT).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let stranger = app.token("org_other", "user_other", Role::Leadership);

    // Given five calls, one at each step of the pipeline (oldest first).
    let received = seed_call(&app.ctx, TENANT, CallSeed::default()).await?;
    let transcribing = seed_call(
        &app.ctx,
        TENANT,
        CallSeed {
            recording: true,
            ..CallSeed::default()
        },
    )
    .await?;
    asr_job(&app, transcribing, false).await?;
    let failed = seed_call(
        &app.ctx,
        TENANT,
        CallSeed {
            recording: true,
            ..CallSeed::default()
        },
    )
    .await?;
    asr_job(&app, failed, true).await?;
    let transcribed = seed_call(
        &app.ctx,
        TENANT,
        CallSeed {
            transcript: Some("Hello".into()),
            ..CallSeed::default()
        },
    )
    .await?;
    let analysis = json!({"summary": "Wants a quote", "sentiment": "positive", "booking_intent": "high",
        "objections": ["price"], "key_signals": ["ready this week"]});
    let analyzed = seed_call(
        &app.ctx,
        TENANT,
        CallSeed {
            recording: true,
            transcript: Some("Can you come Tuesday?".into()),
            analysis: Some(analysis),
            booked: true,
            ..CallSeed::default()
        },
    )
    .await?;
    let now = chrono::Utc::now();
    follow_up::Entity::insert(follow_up::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(TENANT.to_owned()),
        call_id: Set(Some(analyzed)),
        lead_id: Set(None),
        channel: Set("sms".to_owned()),
        draft: Set("See you Tuesday!".to_owned()),
        status: Set("draft".to_owned()),
        sent_at: Set(None),
        message_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.ctx.db)
    .await?;

    // The list: newest first, each with its derived status.
    let (code, page) = app.json(Method::GET, "/v1/calls", &csr, None).await?;
    assert_eq!(code, 200, "{page}");
    let statuses: Vec<(&str, &str)> = page["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let ids = [analyzed, transcribed, failed, transcribing, received].map(|id| id.to_string());
    assert_eq!(
        statuses,
        [
            (ids[0].as_str(), "analyzed"),
            (ids[1].as_str(), "transcribed"),
            (ids[2].as_str(), "failed"),
            (ids[3].as_str(), "transcribing"),
            (ids[4].as_str(), "received"),
        ]
    );
    let first = &page["items"][0];
    let started_at = first["started_at"].clone();
    assert_eq!(
        first,
        &json!({"id": ids[0], "lead_id": null, "provider": "callrail",
        "provider_call_id": format!("CAL{}", analyzed.simple()), "direction": "inbound", "answered": true,
        "duration_seconds": 60, "started_at": started_at, "booked": true, "status": "analyzed",
        "has_recording": true, "has_transcript": true, "booking_intent": "high", "sentiment": "positive"})
    );

    // Filters and pages.
    let (_, booked) = app
        .json(Method::GET, "/v1/calls?booked=true", &csr, None)
        .await?;
    assert_eq!(booked["items"].as_array().map(Vec::len), Some(1));
    let mut seen = Vec::new();
    let mut path = "/v1/calls?limit=2".to_owned();
    loop {
        let (_, page) = app.json(Method::GET, &path, &owner, None).await?;
        for item in page["items"].as_array().ok_or("items")? {
            seen.push(item["id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/calls?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (code, problem) = app
        .json(Method::GET, "/v1/calls?direction=sideways", &csr, None)
        .await?;
    assert_eq!(
        (code, problem["errors"][0]["field"].as_str()),
        (422, Some("direction"))
    );

    // One call: transcript, analysis and follow-ups.
    let (code, detail) = app
        .json(Method::GET, &format!("/v1/calls/{analyzed}"), &csr, None)
        .await?;
    assert_eq!(code, 200);
    assert_eq!(
        detail["transcript"],
        json!({"text": "Can you come Tuesday?", "segments": []})
    );
    assert_eq!(
        detail["analysis"],
        json!({"summary": "Wants a quote", "sentiment": "positive",
        "booking_intent": "high", "objections": ["price"], "key_signals": ["ready this week"]})
    );
    assert_eq!(detail["followups"][0]["body"], "See you Tuesday!");
    assert_eq!(detail["followups"][0]["status"], "draft");
    assert_eq!(
        detail["recording_url"],
        format!("https://rec.example.com/{analyzed}.mp3")
    );

    // Edits by staff, emitted once; a rep may not edit.
    let patched = app
        .authed(Method::PATCH, &format!("/v1/calls/{analyzed}"), &csr)
        .json(&json!({"booked": false, "notes": "Call back Tuesday"}))
        .send()
        .await?;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await?;
    assert_eq!(
        (patched["booked"].clone(), patched["notes"].clone()),
        (json!(false), json!("Call back Tuesday"))
    );
    assert_eq!(
        crate::webhooks::events(&app, "telephony.call.status").await?,
        1
    );
    let refused = app
        .authed(Method::PATCH, &format!("/v1/calls/{analyzed}"), &rep)
        .json(&json!({"booked": true}))
        .send()
        .await?;
    assert_eq!(refused.status(), 403);

    // A rep sees the calls of its own leads only.
    let lead_id = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;
    call::Entity::update_many()
        .col_expr(call::Column::LeadId, Expr::value(lead_id))
        .filter(call::Column::Id.eq(received))
        .exec(&app.ctx.db)
        .await?;
    let (_, mine) = app.json(Method::GET, "/v1/calls", &rep, None).await?;
    let mine: Vec<&str> = mine["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(mine, [ids[4].as_str()]);
    assert_eq!(
        app.json(Method::GET, &format!("/v1/calls/{analyzed}"), &rep, None)
            .await?
            .0,
        404
    );

    // Another tenant sees nothing of it.
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/v1/calls/{analyzed}"),
            &stranger,
            None
        )
        .await?
        .0,
        404
    );
    assert_eq!(
        app.json(Method::GET, "/v1/calls", &stranger, None).await?.1["items"],
        json!([])
    );
    let foreign = app
        .authed(Method::PATCH, &format!("/v1/calls/{analyzed}"), &stranger)
        .json(&json!({"notes": "mine now"}))
        .send()
        .await?;
    assert_eq!(foreign.status(), 404);
    app.stop().await;
    Ok(())
}
