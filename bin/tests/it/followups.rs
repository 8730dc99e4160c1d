//! Follow-ups and messages through HTTP (SPEC section 13): lists with rep visibility, draft edits
//! (body, dismiss) and the 409 for anything but a draft, tenant isolation.

use otto_db::entities::{follow_up, message};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestDatabase, TestResult, seed_lead};

on_both_databases!(drafts_are_reviewed_and_messages_listed_per_viewer);

const TENANT: &str = "org_fu";

async fn seed_draft(
    app: &TestApp,
    lead: Option<Uuid>,
    status: &str,
    body: &str,
) -> Result<Uuid, sea_orm::DbErr> {
    let (id, now) = (Uuid::now_v7(), chrono::Utc::now());
    follow_up::Entity::insert(follow_up::ActiveModel {
        id: Set(id),
        company_id: Set(TENANT.to_owned()),
        call_id: Set(None),
        lead_id: Set(lead),
        channel: Set("sms".to_owned()),
        draft: Set(body.to_owned()),
        status: Set(status.to_owned()),
        sent_at: Set(None),
        message_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.ctx.db)
    .await?;
    Ok(id)
}

async fn seed_message(
    app: &TestApp,
    lead: Option<Uuid>,
    sid: &str,
) -> Result<Uuid, sea_orm::DbErr> {
    let (id, now) = (Uuid::now_v7(), chrono::Utc::now());
    message::Entity::insert(message::ActiveModel {
        id: Set(id),
        company_id: Set(TENANT.to_owned()),
        lead_id: Set(lead),
        direction: Set("inbound".into()),
        from_number: Set("+15551112222".into()),
        to_number: Set("+15550001111".into()),
        body: Set("Tuesday works".into()),
        provider: Set("twilio".into()),
        provider_sid: Set(Some(sid.to_owned())),
        status: Set("received".into()),
        send_attempted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.ctx.db)
    .await?;
    Ok(id)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn drafts_are_reviewed_and_messages_listed_per_viewer(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let stranger = app.token("org_other", "user_other", Role::Leadership);
    let lead_id = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;
    let mine = seed_draft(&app, Some(lead_id), "draft", "Hi Pat").await?;
    let company = seed_draft(&app, None, "draft", "Hello").await?;
    let sent = seed_draft(&app, Some(lead_id), "sent", "Sent already").await?;

    // Lists: the company for staff, its own leads' for a rep; filters.
    let (code, all) = app.json(Method::GET, "/v1/followups", &csr, None).await?;
    assert_eq!(code, 200);
    assert_eq!(ids(&all), [sent, company, mine].map(|id| id.to_string()));
    let (_, drafts) = app
        .json(Method::GET, "/v1/followups?status=draft", &csr, None)
        .await?;
    assert_eq!(ids(&drafts), [company, mine].map(|id| id.to_string()));
    let (_, reps) = app.json(Method::GET, "/v1/followups", &rep, None).await?;
    assert_eq!(ids(&reps), [sent, mine].map(|id| id.to_string()));
    assert_eq!(
        app.json(Method::GET, "/v1/followups?status=later", &csr, None)
            .await?
            .0,
        422
    );

    // A rep edits its own draft; the body changes and the edit is an event.
    let (code, edited) = app
        .json(
            Method::PATCH,
            &format!("/v1/followups/{mine}"),
            &rep,
            Some(json!({"body": "Hi Pat, Tuesday at 9?"})),
        )
        .await?;
    assert_eq!(code, 200);
    assert_eq!(
        edited,
        json!({"id": mine, "call_id": null, "lead_id": lead_id, "channel": "sms",
        "body": "Hi Pat, Tuesday at 9?", "status": "draft", "created_at": edited["created_at"],
        "sent_at": null, "message_id": null})
    );
    assert_eq!(crate::webhooks::events(&app, "followup.updated").await?, 1);
    // Not its lead: 404; sent: 409; dismissed, then nothing more.
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/v1/followups/{company}"),
            &rep,
            Some(json!({"body": "x"}))
        )
        .await?
        .0,
        404
    );
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/v1/followups/{sent}"),
            &csr,
            Some(json!({"body": "x"}))
        )
        .await?
        .0,
        409
    );
    let (code, dismissed) = app
        .json(
            Method::PATCH,
            &format!("/v1/followups/{mine}"),
            &csr,
            Some(json!({"status": "dismissed"})),
        )
        .await?;
    assert_eq!(
        (code, dismissed["status"].as_str()),
        (200, Some("dismissed"))
    );
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/v1/followups/{mine}"),
            &csr,
            Some(json!({"body": "again"}))
        )
        .await?
        .0,
        409
    );
    for bad in [json!({"status": "sent"}), json!({}), json!({"body": ""})] {
        assert_eq!(
            app.json(
                Method::PATCH,
                &format!("/v1/followups/{company}"),
                &csr,
                Some(bad.clone())
            )
            .await?
            .0,
            422,
            "{bad}"
        );
    }

    // Messages: the company's for staff, the rep's leads' for a rep.
    let theirs = seed_message(&app, Some(lead_id), "SM1").await?;
    let other = seed_message(&app, None, "SM2").await?;
    let (_, listed) = app.json(Method::GET, "/v1/messages", &csr, None).await?;
    assert_eq!(ids(&listed), [other, theirs].map(|id| id.to_string()));
    let (_, of_lead) = app
        .json(
            Method::GET,
            &format!("/v1/messages?lead_id={lead_id}"),
            &csr,
            None,
        )
        .await?;
    assert_eq!(ids(&of_lead), [theirs.to_string()]);
    let (_, reps) = app.json(Method::GET, "/v1/messages", &rep, None).await?;
    assert_eq!(
        reps["items"],
        json!([{"id": theirs, "lead_id": lead_id, "direction": "inbound",
        "from": "+15551112222", "to": "+15550001111", "body": "Tuesday works", "status": "received",
        "provider_sid": "SM1", "created_at": reps["items"][0]["created_at"]}])
    );

    // Another tenant sees and changes nothing.
    assert_eq!(
        app.json(Method::GET, "/v1/followups", &stranger, None)
            .await?
            .1["items"],
        json!([])
    );
    assert_eq!(
        app.json(Method::GET, "/v1/messages", &stranger, None)
            .await?
            .1["items"],
        json!([])
    );
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/v1/followups/{company}"),
            &stranger,
            Some(json!({"body": "x"}))
        )
        .await?
        .0,
        404
    );
    app.stop().await;
    Ok(())
}
