//! Outbound SMS through HTTP against a fake Twilio (wiremock checking the exact form): one send,
//! one Twilio message; status callbacks forward only; `Idempotency-Key` replays, reuse and
//! concurrency; opt-out, lockdown, a rep's reach, no Twilio settings; a retried send adopting
//! the message its first attempt created.

use std::time::Duration;

use otto_db::entities::{company, follow_up, lead, message};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{body_string, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, TestDatabase, TestResult, eventually};
use crate::webhooks::{OUR_NUMBER, TENANT, post_twilio, webhook_app_with};

on_both_databases!(
    a_text_is_sent_once_and_follows_twilio_forward,
    a_follow_up_is_sent_once_and_names_its_message,
);

const CUSTOMER: &str = "+15559990000";
const MESSAGES: &str = "/2010-04-01/Accounts/AC123/Messages.json";
/// Base64 of `AC123:a1b2c3d4e5f6` (the account SID and the tests' TWILIO_AUTH_TOKEN).
const BASIC: &str = "Basic QUMxMjM6YTFiMmMzZDRlNWY2";
const SENT_FORM: &str = "To=%2B15559990000&From=%2B15557654321&Body=Tuesday+at+9+works\
    &StatusCallback=https%3A%2F%2Fotto.example.com%2Fwebhooks%2Ftwilio%2Fstatus";

async fn sms_app(
    db: TestDatabase,
    twilio: &MockServer,
    extra: &[(&str, &str)],
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let uri = twilio.uri();
    let mut vars = vec![
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_API_URL", uri.as_str()),
    ];
    vars.extend_from_slice(extra);
    webhook_app_with(db, &vars).await
}

/// The customer's lead, made by its first inbound text.
async fn customer_lead(app: &TestApp) -> Result<String, Box<dyn std::error::Error>> {
    let hello = [
        ("MessageSid", "SMhello"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "Hello"),
    ];
    assert_eq!(
        post_twilio(app, "/webhooks/twilio/sms", &hello)
            .await?
            .status(),
        200
    );
    let row = lead::Entity::find()
        .filter(lead::Column::Phone.eq(CUSTOMER))
        .one(&app.ctx.db)
        .await?
        .ok_or("lead")?;
    Ok(row.id.to_string())
}

async fn post_sms(
    app: &TestApp,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<(u16, Option<String>, String), reqwest::Error> {
    let mut request = app.authed(Method::POST, "/v1/sms", token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, replayed, response.text().await?))
}

async fn outbound(app: &TestApp) -> Result<Vec<message::Model>, sea_orm::DbErr> {
    message::Entity::find()
        .filter(message::Column::Direction.eq("outbound"))
        .all(&app.ctx.db)
        .await
}

async fn a_text_is_sent_once_and_follows_twilio_forward(db: TestDatabase) -> TestResult {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", BASIC))
        .and(body_string(SENT_FORM))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMout1", "status": "queued"})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let app = sms_app(db, &twilio, &[]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let lead_id = customer_lead(&app).await?;
    let text = json!({"lead_id": lead_id, "body": "Tuesday at 9 works"});

    let (code, replayed, first) = post_sms(&app, &csr, Some("key-1"), &text).await?;
    assert_eq!((code, replayed), (202, None), "{first}");
    let queued: Value = serde_json::from_str(&first)?;
    assert_eq!(
        (
            queued["status"].as_str(),
            queued["direction"].as_str(),
            queued["from"].as_str(),
            queued["to"].as_str()
        ),
        (
            Some("queued"),
            Some("outbound"),
            Some(OUR_NUMBER),
            Some(CUSTOMER)
        )
    );
    let sent = eventually(Duration::from_secs(10), || async {
        outbound(&app)
            .await
            .map(|rows| {
                rows.first()
                    .is_some_and(|m| m.provider_sid.as_deref() == Some("SMout1"))
            })
            .unwrap_or(false)
    })
    .await;
    assert!(sent, "the job should send the text through Twilio");
    assert_eq!(
        crate::webhooks::events(&app, "telephony.sms.sent").await?,
        1
    );

    // The same key and body: the first answer, byte for byte; another body: 422.
    let (code, replayed, again) = post_sms(&app, &csr, Some("key-1"), &text).await?;
    assert_eq!(
        (code, replayed.as_deref(), again.as_str()),
        (202, Some("true"), first.as_str())
    );
    let other = json!({"lead_id": lead_id, "body": "Wednesday?"});
    let (code, _, problem) = post_sms(&app, &csr, Some("key-1"), &other).await?;
    assert_eq!(code, 422);
    assert!(problem.contains("idempotency-key-reused"), "{problem}");

    // Status callbacks move the message forward only.
    let status = |s: &'static str| {
        [
            ("MessageSid", "SMout1"),
            ("MessageStatus", s),
            ("From", OUR_NUMBER),
            ("To", CUSTOMER),
        ]
    };
    for (reported, stored) in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
    ] {
        let answer = post_twilio(&app, "/webhooks/twilio/status", &status(reported)).await?;
        assert_eq!(answer.status(), 200);
        let row = outbound(&app).await?;
        assert_eq!(row[0].status, stored, "after {reported}");
    }

    // A rep cannot text a lead not assigned to it; an opted-out lead is refused; lockdown.
    let (code, _, _) = post_sms(&app, &rep, None, &text).await?;
    assert_eq!(code, 404);
    let stop = [
        ("MessageSid", "SMstop"),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "STOP"),
    ];
    post_twilio(&app, "/webhooks/twilio/sms", &stop).await?;
    let (code, _, problem) = post_sms(&app, &csr, None, &text).await?;
    assert_eq!(code, 422);
    assert!(problem.contains("sms-opted-out"), "{problem}");
    company::Entity::update_many()
        .col_expr(company::Column::LockdownMode, Expr::value(true))
        .filter(company::Column::Id.eq(TENANT))
        .exec(&app.ctx.db)
        .await?;
    let (code, _, _) = post_sms(&app, &csr, None, &json!({"to": CUSTOMER, "body": "hi"})).await?;
    assert_eq!(code, 423);
    assert_eq!(
        outbound(&app).await?.len(),
        1,
        "one text, whatever happened since"
    );
    Ok(())
}

/// 50 concurrent requests with one key: one message, one Twilio create, the others replays or
/// 409s; never a second send.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_with_one_key_send_once() -> TestResult {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_string_contains("Body=Tuesday+at+9+works"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMrace", "status": "queued"})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_string_contains("Body=A+day+later"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMlater", "status": "queued"})),
        )
        .mount(&twilio)
        .await;
    let app = sms_app(TestDatabase::postgres().await?, &twilio, &[]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let text = json!({"to": CUSTOMER, "body": "Tuesday at 9 works"});
    let attempts = (0..50).map(|_| post_sms(&app, &csr, Some("race-key"), &text));
    let answers = futures_util::future::join_all(attempts).await;
    let mut firsts = 0;
    for answer in answers {
        let (code, replayed, body) = answer?;
        match (code, replayed.as_deref()) {
            (202, None) => firsts += 1,
            (202, Some("true")) | (409, _) => {}
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!(firsts, 1, "one request ran");
    let sent = eventually(Duration::from_secs(10), || async {
        outbound(&app)
            .await
            .map(|rows| rows.len() == 1 && rows[0].provider_sid.is_some())
            .unwrap_or(false)
    })
    .await;
    assert!(sent, "one message, sent");
    let twice = post_sms(&app, &csr, Some("race-key"), &text).await?;
    assert_eq!(
        (twice.0, twice.1.as_deref()),
        (202, Some("true")),
        "a replay, never a send"
    );

    // A key answers for 24 hours; after that it is free for a new request.
    otto_db::entities::api_idempotency_key::Entity::update_many()
        .col_expr(
            otto_db::entities::api_idempotency_key::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::hours(25)),
        )
        .exec(&app.ctx.db)
        .await?;
    let later = json!({"to": CUSTOMER, "body": "A day later"});
    let (code, replayed, body) = post_sms(&app, &csr, Some("race-key"), &later).await?;
    assert_eq!((code, replayed), (202, None), "{body}");
    Ok(())
}

/// A send retried after a crash that followed Twilio's acceptance finds the message by listing
/// and does not send again; without Twilio settings `POST /v1/sms` is 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_adopts_the_message_twilio_already_has() -> TestResult {
    let twilio = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .and(query_param("To", CUSTOMER))
        .and(query_param("From", OUR_NUMBER))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"messages": [
                {"sid": "SMother", "status": "delivered", "body": "Another text"},
                {"sid": "SMfirst", "status": "sent", "body": "Tuesday at 9 works"},
            ]})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMtwice", "status": "queued"})),
        )
        .expect(0)
        .mount(&twilio)
        .await;
    // No worker on the default queue: the test runs the send itself, as a retry would.
    let app = sms_app(TestDatabase::sqlite(), &twilio, &[("WORKER_QUEUES", "asr")]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let text = json!({"to": CUSTOMER, "body": "Tuesday at 9 works"});
    let (code, _, body) = post_sms(&app, &csr, None, &text).await?;
    assert_eq!(code, 202, "{body}");
    let queued: Value = serde_json::from_str(&body)?;
    // The first attempt marked itself and reached Twilio, then the worker died.
    message::Entity::update_many()
        .col_expr(
            message::Column::SendAttemptedAt,
            Expr::value(chrono::Utc::now()),
        )
        .exec(&app.ctx.db)
        .await?;
    let payload = json!({"tenant_id": TENANT, "message_id": queued["id"], "trace_id": "0af7651916cd43dd8448eb211c80319c"});
    otto::registry(&app.ctx.config)
        .get("sms.send")
        .ok_or("sms.send is registered")?
        .run(&payload, &app.ctx)
        .await?;
    let rows = outbound(&app).await?;
    assert_eq!(
        (rows[0].provider_sid.as_deref(), rows[0].status.as_str()),
        (Some("SMfirst"), "sent")
    );

    let bare = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    let token = bare.token(TENANT, "user_csr", Role::Csr);
    let (code, _, problem) = post_sms(&bare, &token, None, &text).await?;
    assert_eq!(code, 503);
    assert!(problem.contains("sms-not-configured"), "{problem}");
    assert_eq!(
        message::Entity::find().count(&bare.ctx.db).await?,
        0,
        "nothing recorded"
    );
    Ok(())
}

/// `POST /v1/followups/{id}/send`: the draft goes out by the SMS path once, the follow-up is
/// `sent` and names its message; a second send is 409 `followup-already-sent`.
async fn a_follow_up_is_sent_once_and_names_its_message(db: TestDatabase) -> TestResult {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_string(SENT_FORM))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMfu", "status": "queued"})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let app = sms_app(db, &twilio, &[]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let lead_id = uuid::Uuid::parse_str(&customer_lead(&app).await?)?;
    let (id, now) = (uuid::Uuid::now_v7(), chrono::Utc::now());
    follow_up::Entity::insert(follow_up::ActiveModel {
        id: Set(id),
        company_id: Set(TENANT.to_owned()),
        call_id: Set(None),
        lead_id: Set(Some(lead_id)),
        channel: Set("sms".to_owned()),
        draft: Set("Tuesday at 9 works".to_owned()),
        status: Set("draft".to_owned()),
        sent_at: Set(None),
        message_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.ctx.db)
    .await?;

    let path = format!("/v1/followups/{id}/send");
    let (code, sent) = app.json(Method::POST, &path, &csr, None).await?;
    assert_eq!(code, 202, "{sent}");
    assert_eq!(sent["body"], "Tuesday at 9 works");
    let row = follow_up::Entity::find_by_id(id)
        .one(&app.ctx.db)
        .await?
        .ok_or("follow-up")?;
    assert_eq!(row.status, "sent");
    assert_eq!(
        row.message_id.map(|m| m.to_string()),
        sent["id"].as_str().map(str::to_owned)
    );
    assert!(row.sent_at.is_some());
    let (code, problem) = app.json(Method::POST, &path, &csr, None).await?;
    assert_eq!(code, 409);
    assert_eq!(problem["type"], "/problems/followup-already-sent");
    let delivered = eventually(Duration::from_secs(10), || async {
        outbound(&app)
            .await
            .map(|rows| rows.len() == 1 && rows[0].provider_sid.as_deref() == Some("SMfu"))
            .unwrap_or(false)
    })
    .await;
    assert!(delivered, "the follow-up's text goes through Twilio once");
    Ok(())
}
