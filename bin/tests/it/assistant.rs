//! The AI receptionist (SPEC section 16) through HTTP: settings, full conversations on the
//! widget, the staff chat, Twilio voice and Twilio SMS ending in one appointment with the lead
//! upserted by phone, a retried final turn booking once, silence leaving a message, two replicas
//! alternating turns over Redis, the model path against a scripted fake (a refused booking, a
//! timeout falling back to the script), lockdown, keys, origins and per-IP limits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otto_db::entities::{appointment, lead, task};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{
    TestApp, TestDatabase, TestResult, config, redis_prefix, redis_url, seed_company,
};
use crate::webhooks::{
    OUR_NUMBER, PUBLIC_BASE, TENANT as WH_TENANT, TWILIO_TOKEN, post_twilio, webhook_app_with,
};

on_both_databases!(a_widget_conversation_books_one_appointment_with_a_rep);

const TENANT: &str = "org_assist";
const ORIGIN: &str = "https://shop.example.com";

fn open_all_week() -> Value {
    let day = json!({"open": "08:00", "close": "18:00"});
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day,
        "saturday": day, "sunday": day})
}

/// Enables the receptionist (every day 08:00-18:00, hour slots, no notice); returns the widget key.
async fn enable(
    app: &TestApp,
    tenant: &str,
    extra: Value,
) -> Result<String, Box<dyn std::error::Error>> {
    let owner = app.token(tenant, "user_owner", Role::Leadership);
    let mut patch = json!({"enabled": true, "business_hours": open_all_week(), "slot_minutes": 60,
        "min_notice_minutes": 0, "widget_allowed_origins": [ORIGIN], "transfer_number": "+15550009999"});
    if let (Value::Object(patch), Value::Object(extra)) = (&mut patch, extra) {
        patch.extend(extra);
    }
    let (code, settings) = app
        .json(Method::PATCH, "/v1/assistant", &owner, Some(patch))
        .await?;
    assert_eq!(code, 200, "{settings}");
    Ok(settings["widget_key"]
        .as_str()
        .ok_or("widget_key")?
        .to_owned())
}

async fn widget(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let response = app
        .client
        .post(app.url(path))
        .header("x-widget-key", key)
        .header("origin", ORIGIN)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn say(
    app: &TestApp,
    key: &str,
    session: &str,
    text: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let (code, answer) = widget(
        app,
        key,
        &format!("/v1/widget/sessions/{session}/messages"),
        json!({"text": text}),
    )
    .await?;
    assert_eq!(code, 200, "{text}: {answer}");
    Ok(answer)
}

async fn open_session(app: &TestApp, key: &str) -> Result<String, Box<dyn std::error::Error>> {
    let (code, opened) = widget(app, key, "/v1/widget/sessions", json!({})).await?;
    assert_eq!(code, 201, "{opened}");
    assert!(
        opened["greeting"]
            .as_str()
            .is_some_and(|g| g.ends_with("May I have your name?")),
        "{opened}"
    );
    Ok(opened["session_id"]
        .as_str()
        .ok_or("session_id")?
        .to_owned())
}

/// The script of a caller who gives everything and takes the first offer.
async fn book_through_widget(
    app: &TestApp,
    key: &str,
    session: &str,
    phone: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let answer = say(app, key, session, "Hi, my name is Dana Scully").await?;
    assert_eq!(
        answer["reply"],
        json!("Thanks, Dana Scully. What can we help you with?")
    );
    let answer = say(app, key, session, "My furnace is making a loud noise").await?;
    assert_eq!(
        answer["reply"],
        json!("What's the best phone number to reach you?")
    );
    let answer = say(app, key, session, phone).await?;
    assert_eq!(
        answer["reply"],
        json!("When would you like us to come out?")
    );
    let answer = say(app, key, session, "tomorrow at 10am").await?;
    assert_eq!(answer["state"], json!("offering"), "{answer}");
    let booked = say(app, key, session, "the first one").await?;
    assert_eq!(booked["state"], json!("booked"), "{booked}");
    Ok(booked)
}

async fn a_widget_conversation_books_one_appointment_with_a_rep(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[("RATE_LIMIT_BURST", "1000")]).await?;
    seed_company(&app.ctx, TENANT).await?;
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let (_, me) = app.json(Method::GET, "/v1/me", &rep, None).await?;
    let rep_id = me["rep_id"].clone();

    // Closed by default: the widget says so.
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let (_, settings) = app.json(Method::GET, "/v1/assistant", &owner, None).await?;
    assert_eq!(settings["enabled"], json!(false));
    let first_key = settings["widget_key"].as_str().ok_or("key")?.to_owned();
    let (code, _) = app
        .json(
            Method::PATCH,
            "/v1/assistant",
            &owner,
            Some(json!({"widget_allowed_origins": [ORIGIN]})),
        )
        .await?;
    assert_eq!(code, 200);
    let (code, problem) = widget(&app, &first_key, "/v1/widget/sessions", json!({})).await?;
    assert_eq!(
        (code, &problem["type"]),
        (403, &json!("/problems/assistant-disabled"))
    );
    let (code, _) = app
        .json(
            Method::PATCH,
            "/v1/assistant",
            &owner,
            Some(json!({"business_hours": {"monday": {"open": "18:00", "close": "08:00"}}})),
        )
        .await?;
    assert_eq!(code, 422, "close before open");
    let (code, _) = app
        .json(
            Method::PATCH,
            "/v1/assistant",
            &owner,
            Some(json!({"transfer_number": "call me"})),
        )
        .await?;
    assert_eq!(code, 422);
    let key = enable(&app, TENANT, json!({})).await?;
    assert_eq!(key, first_key, "enabling keeps the key");

    let session = open_session(&app, &key).await?;
    let booked = book_through_widget(&app, &key, &session, "555 201 3344").await?;
    let appointment = &booked["appointment"];
    assert_eq!(appointment["external_id"], json!(session));
    assert_eq!(
        appointment["rep_id"], rep_id,
        "booked in the rep's calendar"
    );
    assert_eq!(
        appointment["title"],
        json!("My furnace is making a loud noise")
    );
    let (_, listed) = app
        .json(Method::GET, "/v1/appointments", &owner, None)
        .await?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let lead = lead::Entity::find()
        .filter(lead::Column::Phone.eq("+15552013344"))
        .one(&app.ctx.db)
        .await?
        .ok_or("no lead")?;
    assert_eq!(
        (lead.source.as_deref(), lead.status.as_str()),
        (Some("assistant"), "booked")
    );

    // A second caller wanting the same time is offered the next free one (the rep is taken).
    let other = open_session(&app, &key).await?;
    for text in ["I'm Walter Skinner", "a leaking pipe", "555 201 9999"] {
        say(&app, &key, &other, text).await?;
    }
    let offer = say(&app, &key, &other, "tomorrow at 10am").await?;
    let first_start = appointment["starts_at"].as_str().ok_or("starts_at")?;
    let finished = say(&app, &key, &other, "yes").await?;
    assert_ne!(
        finished["appointment"]["starts_at"].as_str(),
        Some(first_start),
        "{offer}"
    );

    // A finished conversation answers its last reply again and books nothing more.
    let again = say(&app, &key, &session, "the first one").await?;
    assert_eq!(again["reply"], booked["reply"]);
    assert_eq!(
        appointment::Entity::find()
            .filter(appointment::Column::CompanyId.eq(TENANT))
            .count(&app.ctx.db)
            .await?,
        2
    );

    // Feedback; keys, origins, unknown sessions.
    let (code, _) = widget(
        &app,
        &key,
        "/v1/feedback",
        json!({"session_id": session, "rating": 5, "comment": "quick"}),
    )
    .await?;
    assert_eq!(code, 201);
    let (code, _) = widget(
        &app,
        &key,
        "/v1/feedback",
        json!({"session_id": session, "rating": 9}),
    )
    .await?;
    assert_eq!(code, 422);
    let (code, _) = widget(
        &app,
        &key,
        "/v1/feedback",
        json!({"session_id": "ws_nope", "rating": 3}),
    )
    .await?;
    assert_eq!(code, 404);
    let evil = app
        .client
        .post(app.url("/v1/widget/sessions"))
        .header("x-widget-key", &key)
        .header("origin", "https://evil.example.com")
        .send()
        .await?;
    assert_eq!(evil.status(), 403, "an origin outside the company's list");
    let no_key = app
        .client
        .post(app.url("/v1/widget/sessions"))
        .send()
        .await?;
    assert_eq!(no_key.status(), 401);
    let (code, rotated) = app
        .json(Method::POST, "/v1/assistant/widget-key", &owner, None)
        .await?;
    assert_eq!(code, 200);
    assert_ne!(rotated["widget_key"], json!(key));
    let (code, _) = widget(&app, &key, "/v1/widget/sessions", json!({})).await?;
    assert_eq!(code, 401, "the old key stops working");
    let new_key = rotated["widget_key"].as_str().ok_or("key")?;
    let (code, _) = widget(
        &app,
        new_key,
        &format!("/v1/widget/sessions/{session}/messages"),
        json!({"text": "hi"}),
    )
    .await?;
    assert_eq!(code, 200, "sessions outlive a key rotation");

    // The staff chat is the same engine; lockdown closes every channel.
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let (code, chat) = app
        .json(Method::POST, "/v1/chat/sessions", &csr, None)
        .await?;
    assert_eq!(code, 201);
    let chat_id = chat["session_id"].as_str().ok_or("chat id")?;
    let (code, reply) = app
        .json(
            Method::POST,
            &format!("/v1/chat/sessions/{chat_id}/messages"),
            &csr,
            Some(json!({"text": "I want to talk to a real person"})),
        )
        .await?;
    assert_eq!(
        (code, &reply["state"]),
        (200, &json!("transferred")),
        "{reply}"
    );
    let (code, _) = app
        .json(
            Method::POST,
            "/v1/owner/lockdown",
            &owner,
            Some(json!({"enabled": true})),
        )
        .await?;
    assert_eq!(code, 200);
    let (code, _) = widget(&app, new_key, "/v1/widget/sessions", json!({})).await?;
    assert_eq!(code, 423);
    let (code, _) = app
        .json(Method::POST, "/v1/chat/sessions", &csr, None)
        .await?;
    assert_eq!(code, 423);
    app.stop().await;
    Ok(())
}

fn twiml(body: &str) -> &str {
    body.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
}

async fn voice_turn(
    app: &TestApp,
    call: &str,
    said: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut params = vec![
        ("CallSid", call),
        ("To", OUR_NUMBER),
        ("From", "+15551112222"),
    ];
    if let Some(said) = said {
        params.push(("SpeechResult", said));
        params.push(("Confidence", "0.92"));
    }
    let response = post_twilio(app, "/webhooks/twilio/voice/turn", &params).await?;
    assert_eq!(response.status(), 200);
    Ok(response.text().await?)
}

async fn text(
    app: &TestApp,
    sid: &str,
    from: &str,
    body: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let response = post_twilio(
        app,
        "/webhooks/twilio/sms",
        &[
            ("MessageSid", sid),
            ("From", from),
            ("To", OUR_NUMBER),
            ("Body", body),
        ],
    )
    .await?;
    assert_eq!(response.status(), 200);
    Ok(response.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_texts_are_answered_by_the_receptionist() -> TestResult {
    let app = webhook_app_with(TestDatabase::sqlite(), &[]).await?;
    enable(&app, WH_TENANT, json!({})).await?;

    // A call: greeting and a Gather to the turn URL; the caller's number is already known.
    let answer = post_twilio(
        &app,
        "/webhooks/twilio/voice",
        &[
            ("CallSid", "CA1"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
        ],
    )
    .await?;
    let answer = answer.text().await?;
    assert!(twiml(&answer).starts_with(r#"<Response><Gather input="speech" action="/webhooks/twilio/voice/turn" method="POST" speechTimeout="auto"><Say>"#), "{answer}");
    assert!(answer.ends_with(r#"May I have your name?</Say></Gather><Redirect method="POST">/webhooks/twilio/voice/turn</Redirect></Response>"#), "{answer}");
    let reply = voice_turn(&app, "CA1", Some("This is Fox Mulder")).await?;
    assert!(
        reply.contains("<Say>Thanks, Fox Mulder. What can we help you with?</Say>"),
        "{reply}"
    );
    let reply = voice_turn(&app, "CA1", Some("I have a leak under the sink")).await?;
    assert!(
        reply.contains("When would you like us to come out?"),
        "{reply}"
    );
    let reply = voice_turn(&app, "CA1", Some("tomorrow at 2 p.m.")).await?;
    assert!(reply.contains("<Say>I can do "), "{reply}");
    let booked = voice_turn(&app, "CA1", Some("the second one")).await?;
    assert!(
        booked.contains("You&apos;re all set for") && booked.ends_with("<Hangup/></Response>"),
        "{booked}"
    );
    // Twilio retries the last turn: the same answer, still one appointment.
    assert_eq!(
        voice_turn(&app, "CA1", Some("the second one")).await?,
        booked
    );
    let booked_rows = appointment::Entity::find()
        .filter(appointment::Column::ExternalId.eq("voice_CA1"))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(booked_rows.len(), 1);
    let caller = lead::Entity::find_by_id(booked_rows[0].lead_id)
        .one(&app.ctx.db)
        .await?
        .ok_or("lead")?;
    assert_eq!(caller.phone.as_deref(), Some("+15551112222"));

    // Nothing heard twice: a polite retry, then a message for the team and goodbye.
    post_twilio(
        &app,
        "/webhooks/twilio/voice",
        &[
            ("CallSid", "CA2"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
        ],
    )
    .await?;
    let retry = voice_turn(&app, "CA2", None).await?;
    assert!(
        retry.contains("Sorry, I didn&apos;t catch that. May I have your name?"),
        "{retry}"
    );
    let gave_up = voice_turn(&app, "CA2", None).await?;
    assert!(gave_up.ends_with("<Hangup/></Response>"), "{gave_up}");
    let message = task::Entity::find()
        .filter(task::Column::UniqueKey.eq("assistant:voice_CA2"))
        .one(&app.ctx.db)
        .await?;
    assert!(message.is_some(), "a callback task for the team");
    // Asking for a person dials the transfer number.
    post_twilio(
        &app,
        "/webhooks/twilio/voice",
        &[
            ("CallSid", "CA3"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
        ],
    )
    .await?;
    let dial = voice_turn(&app, "CA3", Some("can I speak to a representative")).await?;
    assert!(
        dial.ends_with("<Dial>+15550009999</Dial></Response>"),
        "{dial}"
    );

    // Texts: the same engine answers with <Message>; STOP still wins.
    let customer = "+15553334444";
    let first = text(&app, "SMa1", customer, "Hi, I need my AC fixed").await?;
    assert!(
        first.contains("<Message>")
            && first.ends_with("May I have your name?</Message></Response>"),
        "{first}"
    );
    let second = text(&app, "SMa2", customer, "Tony Stark").await?;
    assert!(
        second.contains("Thanks, Tony Stark. When would you like us to come out?"),
        "{second}"
    );
    let offer = text(&app, "SMa3", customer, "tomorrow at 9am").await?;
    assert!(offer.contains("I can do"), "{offer}");
    let done = text(&app, "SMa4", customer, "yes").await?;
    assert!(done.contains("all set"), "{done}");
    let duplicate = text(&app, "SMa4", customer, "yes").await?;
    assert_eq!(
        twiml(&duplicate),
        "<Response/>",
        "a retried delivery is not a second turn"
    );
    let stop = text(&app, "SMa5", customer, "STOP").await?;
    assert_eq!(twiml(&stop), "<Response/>");
    let texted = appointment::Entity::find()
        .filter(appointment::Column::CompanyId.eq(WH_TENANT))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(texted, 2, "one from the call, one from the texts");

    // Lockdown: 423 on the voice and text channels too.
    let owner = app.token(WH_TENANT, "user_owner", Role::Leadership);
    let (code, _) = app
        .json(
            Method::POST,
            "/v1/owner/lockdown",
            &owner,
            Some(json!({"enabled": true})),
        )
        .await?;
    assert_eq!(code, 200);
    let locked = post_twilio(
        &app,
        "/webhooks/twilio/voice/turn",
        &[
            ("CallSid", "CA1"),
            ("To", OUR_NUMBER),
            ("SpeechResult", "hello"),
        ],
    )
    .await?;
    assert_eq!(locked.status(), 423);
    let locked_text = post_twilio(
        &app,
        "/webhooks/twilio/sms",
        &[
            ("MessageSid", "SMlock"),
            ("From", customer),
            ("To", OUR_NUMBER),
            ("Body", "hello"),
        ],
    )
    .await?;
    assert_eq!(locked_text.status(), 423);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_alternate_turns_of_one_voice_call() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let prefix = redis_prefix();
    let vars = [
        ("REDIS_URL", redis_url()),
        ("REDIS_PREFIX", prefix),
        ("RATE_LIMIT_BURST", "1000".to_owned()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
        ("PUBLIC_BASE_URL", PUBLIC_BASE.to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = TestApp::start(
        otto_runtime::AppContext::build(config(&db, &vars), CancellationToken::new()).await?,
    )?;
    let second = TestApp::start(
        otto_runtime::AppContext::build(config(&db, &vars), CancellationToken::new()).await?,
    )?;
    let owner = first.token(TENANT, "user_owner", Role::Leadership);
    let mapped = first
        .authed(Method::PATCH, &format!("/v1/companies/{TENANT}"), &owner)
        .json(&json!({"twilio_numbers": [OUR_NUMBER]}))
        .send()
        .await?;
    assert_eq!(mapped.status(), 200);
    enable(&first, TENANT, json!({})).await?;
    let greeting = post_twilio(
        &second,
        "/webhooks/twilio/voice",
        &[
            ("CallSid", "CAx"),
            ("From", "+15551112222"),
            ("To", OUR_NUMBER),
            ("CallStatus", "ringing"),
        ],
    )
    .await?;
    assert!(greeting.text().await?.contains("<Gather"));
    let replicas = [&first, &second];
    let script = [
        "This is Dana Scully",
        "My furnace is making a loud noise",
        "tomorrow at 10am",
        "the first one",
    ];
    let mut last = String::new();
    for (turn, said) in script.iter().enumerate() {
        last = voice_turn(replicas[turn % 2], "CAx", Some(said)).await?;
    }
    assert!(
        last.contains("all set") && last.ends_with("<Hangup/></Response>"),
        "{last}"
    );
    // Twilio retries the last turn on both replicas at once: one waits for the other, neither books again.
    let (a, b) = tokio::join!(
        voice_turn(&first, "CAx", Some("the first one")),
        voice_turn(&second, "CAx", Some("the first one"))
    );
    assert_eq!(a?, b?);
    let booked = appointment::Entity::find()
        .filter(appointment::Column::CompanyId.eq(TENANT))
        .count(&first.ctx.db)
        .await?;
    assert_eq!(booked, 1);
    first.stop().await;
    second.stop().await;
    drop(db);
    Ok(())
}

/// A fake Chat Completions server answering the scripted responses in order and keeping the
/// requests it got.
async fn scripted_model(script: Vec<ResponseTemplate>) -> (MockServer, Arc<Mutex<Vec<Value>>>) {
    let server = MockServer::start().await;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorder = seen.clone();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(move |request: &Request| {
            let mut seen = recorder.lock().unwrap_or_else(|p| p.into_inner());
            seen.push(serde_json::from_slice(&request.body).unwrap_or(Value::Null));
            script
                .get(seen.len() - 1)
                .cloned()
                .unwrap_or_else(|| ResponseTemplate::new(500))
        })
        .mount(&server)
        .await;
    (server, seen)
}

fn completion(message: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"id": "c1", "object": "chat.completion", "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_is_checked_by_the_state_machine_and_a_timeout_falls_back() -> TestResult {
    let occupied = "2030-01-07T15:00:00+00:00";
    let (model, seen) = scripted_model(vec![
        completion(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "book_appointment", "arguments": json!({"slot_start": occupied, "phone": "+15552013344"}).to_string()}}]})),
        completion(json!({"role": "assistant", "content": "That time is not available. When else suits you?"})),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    ])
    .await;
    let base = format!("{}/v1", model.uri());
    let app = TestApp::spawn(
        TestDatabase::sqlite(),
        &[
            ("LLM_BASE_URL", base.as_str()),
            ("LLM_TIMEOUT_SECONDS", "1"),
            ("RATE_LIMIT_BURST", "1000"),
        ],
    )
    .await?;
    seed_company(&app.ctx, TENANT).await?;
    let key = enable(&app, TENANT, json!({})).await?;
    let session = open_session(&app, &key).await?;

    // The model asks to book a time never offered: refused, and told why.
    let answer = say(&app, &key, &session, "book me for January 7th 2030 at 3pm").await?;
    assert_eq!(
        answer["reply"],
        json!("That time is not available. When else suits you?")
    );
    assert_eq!(answer["state"], json!("collecting"));
    let requests = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let told = &requests[1]["messages"];
    let tool_answer = told
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "tool"))
        .ok_or("no tool answer sent to the model")?;
    assert_eq!(tool_answer["tool_call_id"], json!("call_1"));
    assert!(
        tool_answer["content"]
            .as_str()
            .is_some_and(|c| c.contains("refused")),
        "{tool_answer}"
    );
    assert!(
        requests[0]["tools"]
            .as_array()
            .is_some_and(|t| t.len() == 4)
    );
    assert_eq!(appointment::Entity::find().count(&app.ctx.db).await?, 0);

    // The model times out (twice: one retry): the intake script answers this turn.
    let answer = say(&app, &key, &session, "Hi, my name is Dana Scully").await?;
    assert_eq!(
        answer["reply"],
        json!("Thanks, Dana Scully. What can we help you with?")
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_routes_are_limited_per_ip() -> TestResult {
    let app = TestApp::spawn(
        TestDatabase::sqlite(),
        &[("RATE_LIMIT_PER_MINUTE", "5"), ("RATE_LIMIT_BURST", "5")],
    )
    .await?;
    seed_company(&app.ctx, TENANT).await?;
    let key = enable(&app, TENANT, json!({})).await?;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            widget(&app, &key, "/v1/widget/sessions", json!({}))
                .await?
                .0,
        );
    }
    assert_eq!(codes, [201, 201, 201, 201, 201, 429]);
    app.stop().await;
    Ok(())
}
