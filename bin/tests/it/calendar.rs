//! Google Calendar two-way sync (SPEC section 15) against a stateful fake Google: connecting
//! (single-use state, sealed refresh token), bookings written to Google once even when an
//! insert's answer is lost, the push channel and its checks (token, replay, headers), owner
//! moves and cancellations reaching appointments, 410 Gone resyncs, coalesced concurrent pushes,
//! renewal, disconnecting, key rotation, and the relay's naive times across a DST change.

use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_db::entities::{appointment, calendar_connection, company};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fake_google::{FakeGoogle, REFRESH_TOKEN};
use crate::helpers::{
    TestApp, TestDatabase, TestResult, config, eventually, seed_company, seed_lead,
};

on_both_databases!(connect_book_watch_and_owner_edits_flow_both_ways);

const TENANT: &str = "org_cal";
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const WAIT: Duration = Duration::from_secs(15);

fn settings(fake: &FakeGoogle, keys: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut vars = fake.config();
    vars.extend(keys.iter().map(|(k, v)| (*k, (*v).to_owned())));
    vars
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn calendar_app(
    db: TestDatabase,
    fake: &FakeGoogle,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let vars = settings(fake, &[("ENCRYPTION_KEY", KEY_A)]);
    let app = TestApp::spawn(db, &as_refs(&vars)).await?;
    seed_company(&app.ctx, TENANT).await?;
    Ok(app)
}

/// Consent and callback; returns the `state` used.
async fn connect(app: &TestApp, owner: &str) -> Result<String, Box<dyn std::error::Error>> {
    let response = app
        .authed(Method::GET, "/v1/calendar/google/authorize", owner)
        .header("accept", "application/json")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    let url = reqwest::Url::parse(body["authorization_url"].as_str().ok_or("url")?)?;
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or("state")?;
    let callback = app
        .get(&format!(
            "/v1/calendar/google/callback?code=4%2Fabc&state={state}"
        ))
        .await?;
    assert_eq!(callback.status(), 200, "{:?}", callback.text().await);
    Ok(state)
}

async fn connection(
    app: &TestApp,
) -> Result<calendar_connection::Model, Box<dyn std::error::Error>> {
    Ok(calendar_connection::Entity::find_by_id(TENANT)
        .one(&app.ctx.db)
        .await?
        .ok_or("not connected")?)
}

async fn appointment_row(app: &TestApp, id: &str) -> Option<appointment::Model> {
    let id = Uuid::parse_str(id).ok()?;
    appointment::Entity::find_by_id(id)
        .one(&app.ctx.db)
        .await
        .ok()?
}

async fn book(
    app: &TestApp,
    token: &str,
    starts: &str,
    ends: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let lead = seed_lead(&app.ctx, TENANT, None).await?;
    let (code, body) = app
        .json(
            Method::POST,
            "/v1/appointments",
            token,
            Some(json!({"lead_id": lead, "starts_at": starts, "ends_at": ends, "title": "AC repair"})),
        )
        .await?;
    assert_eq!(code, 201, "{body}");
    Ok(body["id"].as_str().ok_or("id")?.to_owned())
}

/// The Google event id recorded on the appointment, once its push job ran.
async fn event_of(app: &TestApp, id: &str) -> Result<String, Box<dyn std::error::Error>> {
    let recorded = eventually(WAIT, || async {
        appointment_row(app, id)
            .await
            .is_some_and(|a| a.google_event_id.is_some())
    })
    .await;
    assert!(recorded, "appointment {id} never got its Google event");
    let row = appointment_row(app, id).await.ok_or("row")?;
    Ok(row.google_event_id.ok_or("event")?)
}

async fn push(
    app: &TestApp,
    channel: &str,
    token: &str,
    number: i64,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let response = app
        .client
        .post(app.url("/v1/calendar/google/push"))
        .header("X-Goog-Channel-ID", channel)
        .header("X-Goog-Channel-Token", token)
        .header("X-Goog-Resource-State", "exists")
        .header("X-Goog-Message-Number", number.to_string())
        .header("X-Goog-Resource-ID", "res-1")
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Waits until the stored sync token covers every change the fake has.
async fn synced(app: &TestApp, fake: &FakeGoogle) -> bool {
    eventually(WAIT, || async {
        let current = format!("st-{}", fake.state().changes);
        connection(app).await.is_ok_and(|c| {
            c.sync_token.as_deref() == Some(current.as_str()) && c.sync_lease_until.is_none()
        })
    })
    .await
}

fn at(raw: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    Ok(DateTime::parse_from_rfc3339(raw)?.to_utc())
}

async fn connect_book_watch_and_owner_edits_flow_both_ways(db: TestDatabase) -> TestResult {
    let fake = FakeGoogle::start().await;
    let app = calendar_app(db, &fake).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let csr = app.token(TENANT, "user_csr", Role::Csr);

    let (code, status) = app
        .json(Method::GET, "/v1/calendar/google", &owner, None)
        .await?;
    assert_eq!((code, &status["connected"]), (200, &json!(false)));
    let (code, _) = app
        .json(Method::GET, "/v1/calendar/google/authorize", &csr, None)
        .await?;
    assert_eq!(code, 403, "leadership only");

    // Connect: the state is single use; the refresh token is stored sealed.
    let state = connect(&app, &owner).await?;
    let replayed = app
        .get(&format!(
            "/v1/calendar/google/callback?code=4%2Fabc&state={state}"
        ))
        .await?;
    assert_eq!(replayed.status(), 400, "a state is single use");
    let row = connection(&app).await?;
    assert!(
        row.refresh_token.starts_with("v1."),
        "{}",
        row.refresh_token
    );
    assert!(
        !row.refresh_token.contains(REFRESH_TOKEN),
        "ciphertext only"
    );
    assert_eq!(row.connected_by, "user_owner");

    // A booking in Otto becomes one Google event carrying the appointment id.
    let booked = book(&app, &csr, "2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z").await?;
    let event_id = event_of(&app, &booked).await?;
    let events = fake.events_of(&booked);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["id"], json!(event_id));
    assert_eq!(events[0]["summary"], json!("AC repair"));
    assert_eq!(
        at(events[0]["start"]["dateTime"].as_str().ok_or("start")?)?,
        at("2026-12-01T15:00:00Z")?
    );

    // Watch: a channel to Otto's push URL, then a full sync.
    let (code, watch) = app
        .json(Method::POST, "/v1/calendar/google/watch", &owner, None)
        .await?;
    assert_eq!(code, 200, "{watch}");
    let channel = fake.state().channels.last().cloned().ok_or("no channel")?;
    assert_eq!(
        channel.address,
        "https://otto.example.com/v1/calendar/google/push"
    );
    assert_eq!(watch["channel_id"], json!(channel.id));
    assert!(synced(&app, &fake).await, "the full sync never finished");
    assert_eq!(fake.state().full_lists, 1);

    // The owner moves the visit in Google: a push, a sync, the appointment moves.
    let (moved_start, moved_end) = (at("2026-12-02T17:00:00Z")?, at("2026-12-02T18:30:00Z")?);
    fake.owner_moves(&event_id, moved_start, moved_end);
    let (code, answer) = push(&app, &channel.id, &channel.token, 2).await?;
    assert_eq!((code, answer), (200, json!({"status": "queued"})));
    let moved = eventually(WAIT, || async {
        appointment_row(&app, &booked)
            .await
            .is_some_and(|a| a.scheduled_start == moved_start && a.scheduled_end == moved_end)
    })
    .await;
    assert!(moved, "the owner's move never reached the appointment");
    assert!(synced(&app, &fake).await);
    assert_eq!(
        appointment_row(&app, &booked).await.ok_or("row")?.version,
        2
    );
    assert_eq!(
        fake.state().patches,
        0,
        "a change from Google is not written back"
    );

    // Checks on pushes: replay, wrong token, unknown channel, missing headers; nothing changes.
    let before = connection(&app).await?;
    assert_eq!(
        push(&app, &channel.id, &channel.token, 2).await?,
        (200, json!({"status": "duplicate_ignored"}))
    );
    assert_eq!(push(&app, &channel.id, "forged", 3).await?.0, 401);
    assert_eq!(
        push(&app, "no-such-channel", &channel.token, 3).await?.0,
        404
    );
    let bare = app
        .client
        .post(app.url("/v1/calendar/google/push"))
        .send()
        .await?;
    assert_eq!(bare.status(), 422);
    let after = connection(&app).await?;
    assert_eq!(
        (after.last_message_number, after.sync_pending),
        (before.last_message_number, before.sync_pending)
    );

    // An event the owner made in Google is ignored; a cancelled one cancels its appointment.
    fake.owner_creates(at("2026-12-03T15:00:00Z")?, at("2026-12-03T16:00:00Z")?);
    fake.owner_cancels(&event_id);
    assert_eq!(push(&app, &channel.id, &channel.token, 3).await?.0, 200);
    let cancelled = eventually(WAIT, || async {
        appointment_row(&app, &booked)
            .await
            .is_some_and(|a| a.status == "cancelled")
    })
    .await;
    assert!(
        cancelled,
        "the owner's cancellation never reached the appointment"
    );
    assert!(synced(&app, &fake).await);
    let appointments = appointment::Entity::find()
        .filter(appointment::Column::CompanyId.eq(TENANT))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(
        appointments, 1,
        "no appointment from an event Otto did not write"
    );

    // Cancelled in Otto: the event is deleted in Google.
    let second = book(&app, &csr, "2026-12-04T15:00:00Z", "2026-12-04T16:00:00Z").await?;
    event_of(&app, &second).await?;
    let response = app
        .authed(Method::PATCH, &format!("/v1/appointments/{second}"), &csr)
        .header("if-match", "\"1\"")
        .json(&json!({"status": "cancelled"}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let deleted = eventually(WAIT, || async { fake.events_of(&second).is_empty() }).await;
    assert!(
        deleted,
        "the cancelled appointment's event is still in Google"
    );

    // Renewal: a channel expiring within a day is replaced and the old one stopped.
    calendar_connection::Entity::update_many()
        .col_expr(
            calendar_connection::Column::ChannelExpiresAt,
            Expr::value(Utc::now() + chrono::Duration::hours(2)),
        )
        .filter(calendar_connection::Column::CompanyId.eq(TENANT))
        .exec(&app.ctx.db)
        .await?;
    let sync = otto_service::calendar::CalendarSync::from_config(&app.ctx.config).ok_or("sync")?;
    let renewed =
        otto_service::calendar::connection::renew_expiring(&sync, &app.ctx, Utc::now()).await?;
    assert_eq!(renewed, 1);
    let renewed_row = connection(&app).await?;
    assert_ne!(renewed_row.channel_id.as_deref(), Some(channel.id.as_str()));
    assert!(fake.state().stopped.contains(&channel.id));
    assert!(synced(&app, &fake).await);

    // Disconnect: the channel stops and the tokens are forgotten.
    let response = app
        .authed(Method::DELETE, "/v1/calendar/google", &owner)
        .send()
        .await?;
    assert_eq!(response.status(), 204);
    assert!(
        calendar_connection::Entity::find_by_id(TENANT)
            .one(&app.ctx.db)
            .await?
            .is_none()
    );
    let (_, status) = app
        .json(Method::GET, "/v1/calendar/google", &owner, None)
        .await?;
    assert_eq!(status["connected"], json!(false));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_insert_answer_and_an_expired_sync_token_end_consistent() -> TestResult {
    let fake = FakeGoogle::start().await;
    let app = calendar_app(TestDatabase::postgres().await?, &fake).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    connect(&app, &owner).await?;

    // Google stores the first insert but its answer is lost: still exactly one event.
    fake.state().lose_next_insert_answer = true;
    let booked = book(&app, &owner, "2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z").await?;
    let event_id = event_of(&app, &booked).await?;
    assert_eq!(
        fake.state().inserts,
        1,
        "the retry found the event instead of inserting"
    );
    assert_eq!(fake.events_of(&booked).len(), 1);

    let (code, _) = app
        .json(Method::POST, "/v1/calendar/google/watch", &owner, None)
        .await?;
    assert_eq!(code, 200);
    let channel = fake.state().channels.last().cloned().ok_or("no channel")?;
    assert!(synced(&app, &fake).await);

    // Every sync token expires: the next push answers 410, and a full resync picks up the move.
    let (start, end) = (at("2026-12-05T14:00:00Z")?, at("2026-12-05T15:00:00Z")?);
    {
        let mut state = fake.state();
        state.tokens_valid_from = state.changes + 1;
    }
    fake.owner_moves(&event_id, start, end);
    assert_eq!(push(&app, &channel.id, &channel.token, 2).await?.0, 200);
    assert!(
        synced(&app, &fake).await,
        "no consistent token after the 410"
    );
    let row = appointment_row(&app, &booked).await.ok_or("row")?;
    assert_eq!((row.scheduled_start, row.scheduled_end), (start, end));
    assert_eq!(
        fake.state().full_lists,
        2,
        "one full sync for watch, one after the 410"
    );

    // Concurrent pushes coalesce: syncs of one company never overlap.
    fake.state().list_delay = Duration::from_millis(200);
    let first_new = fake.state().list_arrivals.len();
    let pushes = (10..18).map(|n| push(&app, &channel.id, &channel.token, n));
    for result in futures_util::future::join_all(pushes).await {
        assert_eq!(result?.0, 200);
    }
    fake.owner_moves(&event_id, start, end);
    assert_eq!(push(&app, &channel.id, &channel.token, 30).await?.0, 200);
    assert!(synced(&app, &fake).await);
    let arrivals: Vec<_> = fake.state().list_arrivals[first_new..].to_vec();
    assert!(!arrivals.is_empty());
    for pair in arrivals.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(190),
            "two syncs overlapped: lists {gap:?} apart"
        );
    }
    assert!(
        arrivals.len() < 9,
        "pushes coalesced: {} lists for 9 pushes",
        arrivals.len()
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_encryption_key_keeps_the_connection() -> TestResult {
    let fake = FakeGoogle::start().await;
    let db = TestDatabase::sqlite();
    let before = settings(&fake, &[("ENCRYPTION_KEY", KEY_A)]);
    let ctx =
        otto_runtime::AppContext::build(config(&db, &as_refs(&before)), CancellationToken::new())
            .await?;
    let app = TestApp::start(ctx)?;
    seed_company(&app.ctx, TENANT).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    connect(&app, &owner).await?;
    let sealed_before = connection(&app).await?.refresh_token;
    app.stop().await;

    let rotated = settings(
        &fake,
        &[
            ("ENCRYPTION_KEY", KEY_B),
            ("ENCRYPTION_KEYS_PREVIOUS", KEY_A),
        ],
    );
    let ctx =
        otto_runtime::AppContext::build(config(&db, &as_refs(&rotated)), CancellationToken::new())
            .await?;
    let app = TestApp::start(ctx)?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    fake.state().refresh_tokens_seen.clear();
    let (code, body) = app
        .json(Method::POST, "/v1/calendar/google/watch", &owner, None)
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        fake.state().refresh_tokens_seen.first().map(String::as_str),
        Some(REFRESH_TOKEN)
    );
    assert_eq!(
        connection(&app).await?.refresh_token,
        sealed_before,
        "old rows still open"
    );

    // Reconnecting seals under the new key.
    connect(&app, &owner).await?;
    let sealed_after = connection(&app).await?.refresh_token;
    assert_ne!(
        sealed_after.split('.').nth(1),
        sealed_before.split('.').nth(1)
    );
    app.stop().await;
    drop(db);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_times_are_read_in_the_company_zone_across_dst() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    seed_company(&app.ctx, TENANT).await?;
    company::Entity::update_many()
        .col_expr(company::Column::TimeZone, Expr::value("America/Chicago"))
        .filter(company::Column::Id.eq(TENANT))
        .exec(&app.ctx.db)
        .await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let booked = book(&app, &csr, "2026-10-20T15:00:00Z", "2026-10-20T16:00:00Z").await?;
    appointment::Entity::update_many()
        .col_expr(appointment::Column::GoogleEventId, Expr::value("gev-1"))
        .filter(appointment::Column::Id.eq(Uuid::parse_str(&booked)?))
        .exec(&app.ctx.db)
        .await?;
    let relay = |body: Value| {
        app.json(
            Method::POST,
            "/v1/calendar/google/webhook",
            &csr,
            Some(body),
        )
    };

    // CDT (UTC-5) before 2026-11-01, CST (UTC-6) after.
    let (code, moved) =
        relay(json!({"event_id": "gev-1", "start": "2026-10-30T09:00", "end": "2026-10-30T10:00"}))
            .await?;
    assert_eq!(code, 200, "{moved}");
    assert_eq!(
        (&moved["starts_at"], &moved["ends_at"]),
        (
            &json!("2026-10-30T14:00:00.000Z"),
            &json!("2026-10-30T15:00:00.000Z")
        )
    );
    let (code, moved) = relay(
        json!({"event_id": "gev-1", "start": "2026-11-02T09:00:00", "end": "2026-11-02T10:30:00"}),
    )
    .await?;
    assert_eq!(code, 200, "{moved}");
    assert_eq!(
        (&moved["starts_at"], &moved["ends_at"]),
        (
            &json!("2026-11-02T15:00:00.000Z"),
            &json!("2026-11-02T16:30:00.000Z")
        )
    );
    assert_eq!(moved["version"], json!(3));

    let (code, _) = relay(json!({"event_id": "gev-1", "start": "tomorrow"})).await?;
    assert_eq!(code, 422);
    let (code, _) = relay(json!({"event_id": "gev-unknown", "status": "cancelled"})).await?;
    assert_eq!(code, 404);
    let (code, cancelled) = relay(json!({"event_id": "gev-1", "status": "cancelled"})).await?;
    assert_eq!((code, &cancelled["status"]), (200, &json!("cancelled")));
    let stranger = app.token("org_cal_other", "user_x", Role::Leadership);
    let (code, _) = app
        .json(
            Method::POST,
            "/v1/calendar/google/webhook",
            &stranger,
            Some(json!({"event_id": "gev-1", "status": "cancelled"})),
        )
        .await?;
    assert_eq!(code, 404, "another tenant's event is not found");

    // Without Google settings the connection routes say so.
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let (code, problem) = app
        .json(Method::POST, "/v1/calendar/google/watch", &owner, None)
        .await?;
    assert_eq!(
        (code, &problem["type"]),
        (503, &json!("/problems/calendar-not-configured"))
    );
    app.stop().await;
    Ok(())
}
