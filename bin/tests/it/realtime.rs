//! WebSockets: authentication, channel ACL, fan-out (also from a second API process), slow
//! clients, heartbeat, pointer messages, and surviving a Redis restart.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use otto_domain::{EventEnvelope, Role, TenantId, TraceId};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{
    DisposableRedis, TestApp, TestDatabase, TestResult, eventually, redis_prefix, redis_url,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(app: &TestApp, token: Option<&str>) -> Result<Ws, WsError> {
    let url = app.url("/ws").replace("http://", "ws://");
    let mut request = url.into_client_request()?;
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.headers_mut().insert("Authorization", value);
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

/// The events of leads a test creates through the API.
const CREATED_LEADS: &[&str] = &["lead.updated"];

/// The next JSON text frame, skipping server pings.
async fn next_json(ws: &mut Ws) -> Result<Value, Box<dyn std::error::Error>> {
    next_json_ignoring(ws, &[]).await
}

/// The next JSON text frame, skipping server pings and events named in `ignored` (events the
/// test's own requests cause, relayed whenever the outbox relay gets to them).
async fn next_json_ignoring(
    ws: &mut Ws,
    ignored: &[&str],
) -> Result<Value, Box<dyn std::error::Error>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await?
            .ok_or("socket closed")??;
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text)?;
            let skipped = value["event"]
                .as_str()
                .is_some_and(|event| ignored.contains(&event));
            if value["type"] != "ping" && !skipped {
                return Ok(value);
            }
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) -> Result<(), WsError> {
    ws.send(Message::Text(frame.to_string().into())).await
}

fn envelope(
    tenant: &str,
    event: &str,
    data: Value,
) -> Result<EventEnvelope, Box<dyn std::error::Error>> {
    Ok(EventEnvelope::new(
        event,
        TenantId::try_from(tenant)?,
        TraceId::parse("trace-ws").ok_or("trace")?,
        data,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_need_a_valid_token_and_channels_are_guarded() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    for token in [None, Some("not-a-token")] {
        match connect(&app, token).await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 401),
            other => return Err(format!("expected 401, got {:?}", other.map(|_| ())).into()),
        }
    }
    let owner = app.token("org_rt", "user_owner", Role::Leadership);
    let lead: Value = app
        .authed(Method::POST, "/v1/leads", &owner)
        .json(&json!({"name": "Timeline"}))
        .send()
        .await?
        .json()
        .await?;
    let foreign_owner = app.token("org_other", "user_x", Role::Leadership);
    let foreign_lead: Value = app
        .authed(Method::POST, "/v1/leads", &foreign_owner)
        .json(&json!({"name": "Theirs"}))
        .send()
        .await?
        .json()
        .await?;

    let rep = app.token("org_rt", "user_rep", Role::Rep);
    let mut ws = connect(&app, Some(&rep)).await?;
    for (channel, expected) in [
        ("tenant:org_other:events".to_owned(), "forbidden"),
        ("user:user_owner:tasks".to_owned(), "forbidden"),
        (
            format!(
                "lead:{}:timeline",
                foreign_lead["id"].as_str().unwrap_or_default()
            ),
            "forbidden",
        ),
        ("tenant:*:events".to_owned(), "invalid_channel"),
    ] {
        send(&mut ws, json!({"type": "subscribe", "channel": channel})).await?;
        let answer = next_json_ignoring(&mut ws, CREATED_LEADS).await?;
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some(expected)),
            "{channel}"
        );
    }
    // Still open: the own channels work.
    for channel in [
        "tenant:org_rt:events".to_owned(),
        "user:user_rep:tasks".to_owned(),
        format!("lead:{}:timeline", lead["id"].as_str().unwrap_or_default()),
    ] {
        send(&mut ws, json!({"type": "subscribe", "channel": channel})).await?;
        assert_eq!(
            next_json_ignoring(&mut ws, CREATED_LEADS).await?,
            json!({"type": "subscribed", "channel": channel})
        );
    }
    app.ctx
        .bus
        .publish(&envelope(
            "org_rt",
            "task.updated",
            json!({"task_id": "t1", "status": "open"}),
        )?)
        .await?;
    let received = next_json_ignoring(&mut ws, CREATED_LEADS).await?;
    for field in [
        "version",
        "event",
        "ts",
        "severity",
        "trace_id",
        "tenant_id",
        "user_id",
        "lead_id",
        "data",
    ] {
        assert!(
            received.get(field).is_some(),
            "envelope lacks {field}: {received}"
        );
    }
    assert_eq!(
        (received["event"].as_str(), received["tenant_id"].as_str()),
        (Some("task.updated"), Some("org_rt"))
    );
    app.ctx
        .bus
        .publish(&envelope("org_other", "task.updated", json!({}))?)
        .await?;
    send(
        &mut ws,
        json!({"type": "unsubscribe", "channel": "tenant:org_rt:events"}),
    )
    .await?;
    assert_eq!(
        next_json_ignoring(&mut ws, CREATED_LEADS).await?["type"],
        "unsubscribed",
        "nothing of another tenant arrived in between"
    );

    // Malformed frames get error frames; repeated violations close with 1008.
    for _ in 0..3 {
        ws.send(Message::Text("{oops".into())).await?;
    }
    let mut closed_with = None;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let Message::Close(Some(close)) = frame {
            closed_with = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(closed_with, Some(1008));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_and_big_events_become_pointers() -> TestResult {
    let app = TestApp::spawn(
        TestDatabase::sqlite(),
        &[
            ("WS_PING_INTERVAL_SECONDS", "1"),
            ("WS_PONG_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await?;
    let token = app.token("org_hb", "user_hb", Role::Csr);
    let mut ws = connect(&app, Some(&token)).await?;
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": "tenant:org_hb:events"}),
    )
    .await?;
    assert_eq!(next_json(&mut ws).await?["type"], "subscribed");
    let big = "x".repeat(40 * 1024);
    app.ctx
        .bus
        .publish(&envelope(
            "org_hb",
            "telephony.call.completed",
            json!({"call_id": "c-big", "transcript": big}),
        )?)
        .await?;
    let pointer = next_json(&mut ws).await?;
    assert_eq!(
        pointer["data"],
        json!({"pointer": {"resource": "calls", "id": "c-big"}})
    );

    // This client reads but never answers the server's pings.
    let started = std::time::Instant::now();
    let mut reason = None;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        if let Message::Close(close) = frame {
            reason = close.map(|c| c.reason.to_string());
            break;
        }
    }
    assert_eq!(reason.as_deref(), Some("heartbeat_timeout"));
    assert!(started.elapsed() < Duration::from_secs(8));

    // One that answers stays.
    let mut ws = connect(&app, Some(&token)).await?;
    let alive = tokio::time::timeout(Duration::from_secs(4), async {
        while let Some(Ok(frame)) = ws.next().await {
            let answered = match frame {
                Message::Text(text) if text.contains("\"ping\"") => {
                    send(&mut ws, json!({"type": "pong"})).await.is_ok()
                }
                Message::Close(_) => false,
                _ => true,
            };
            if !answered {
                return false;
            }
        }
        false
    })
    .await;
    assert!(
        alive.is_err(),
        "a client that pongs is still connected after 4 s"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_slow_the_others() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[("WS_BUFFER_SIZE", "8")]).await?;
    let token = app.token("org_slow", "user_slow", Role::Csr);
    let (mut healthy, mut stalled) = (
        connect(&app, Some(&token)).await?,
        connect(&app, Some(&token)).await?,
    );
    for ws in [&mut healthy, &mut stalled] {
        send(
            ws,
            json!({"type": "subscribe", "channel": "tenant:org_slow:events"}),
        )
        .await?;
        assert_eq!(next_json(ws).await?["type"], "subscribed");
    }
    // 300 events of ~20 KB: far more than socket buffers hold for the client that never reads.
    let payload = "y".repeat(20 * 1024);
    let total = 300;
    let publisher = {
        let bus = app.ctx.bus.clone();
        let payload = payload.clone();
        tokio::spawn(async move {
            for n in 0..total {
                let env =
                    envelope("org_slow", "lead.updated", json!({"n": n, "pad": payload})).ok();
                if let Some(env) = env {
                    let _ = bus.publish(&env).await;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut seen = 0;
    while seen < total {
        let event = next_json(&mut healthy).await?;
        if event["event"] == "lead.updated" {
            assert_eq!(
                event["data"]["n"], seen,
                "the healthy client gets every event, in order"
            );
            seen += 1;
        }
    }
    publisher.await?;
    let metrics = app.get("/metrics").await?.text().await?;
    let count: f64 = metrics
        .lines()
        .find(|l| l.starts_with("ws_messages_dropped_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        count > 0.0,
        "the stalled client's oldest messages were dropped:\n{metrics}"
    );
    // The stalled client, once it reads, first learns that it lost messages.
    let mut notice = None;
    while let Ok(Ok(event)) =
        tokio::time::timeout(Duration::from_secs(5), next_json(&mut stalled)).await
    {
        if event["event"] == "system.buffer_dropped" {
            notice = Some(event);
            break;
        }
    }
    let notice = notice.ok_or("no system.buffer_dropped notice")?;
    assert!(notice["data"]["dropped"].as_u64().is_some_and(|n| n > 0));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_again_after_redis_restarts_without_clients_reconnecting() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut redis = DisposableRedis::start_on(port)?;
    let url = redis.url();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = TestApp::spawn(TestDatabase::postgres().await?, &[("REDIS_URL", &url)]).await?;
    let token = app.token("org_redis", "user_r", Role::Csr);
    let mut ws = connect(&app, Some(&token)).await?;
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": "tenant:org_redis:events"}),
    )
    .await?;
    assert_eq!(next_json(&mut ws).await?["type"], "subscribed");
    let probe = envelope("org_redis", "task.updated", json!({"round": 1}))?;
    assert!(
        deliver_eventually(&app, &mut ws, &probe).await,
        "events flow before the restart"
    );

    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _redis_again = DisposableRedis::start_on(port)?;
    let probe = envelope("org_redis", "task.updated", json!({"round": 2}))?;
    assert!(
        deliver_eventually(&app, &mut ws, &probe).await,
        "events flow after Redis came back, same socket"
    );
    app.stop().await;
    Ok(())
}

/// Publishes `probe` every 200 ms until the client receives it (or 10 s pass).
async fn deliver_eventually(app: &TestApp, ws: &mut Ws, probe: &EventEnvelope) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let _ = app.ctx.bus.publish(probe).await;
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(200), ws.next()).await
            && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["data"] == probe.data)
        {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_second_api_process_reaches_clients_of_the_first() -> TestResult {
    let prefix = redis_prefix();
    let db = TestDatabase::postgres().await?;
    let db_url = db.url();
    let app = TestApp::spawn(
        db,
        &[("REDIS_URL", &redis_url()), ("REDIS_PREFIX", &prefix)],
    )
    .await?;
    let token = app.token("org_two", "user_two", Role::Csr);
    let mut ws = connect(&app, Some(&token)).await?;
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": "tenant:org_two:events"}),
    )
    .await?;
    assert_eq!(next_json(&mut ws).await?["type"], "subscribed");

    // A real second otto-api on another port, same Redis and database.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir();
    let mut second = Command::new(env!("CARGO_BIN_EXE_otto-api"))
        .env_clear()
        .current_dir(&dir)
        .envs([
            ("DATABASE_URL", db_url.as_str()),
            ("REDIS_URL", &redis_url()),
            ("REDIS_PREFIX", &prefix),
            ("PORT", &port.to_string()),
            ("DEV_EMIT_KEY", "dev-key"),
            ("LOG_LEVEL", "warn"),
        ])
        .stdout(Stdio::null())
        .spawn()?;
    let emit = format!("http://127.0.0.1:{port}/ws/test-emit?event=task.updated&tenant_id=org_two");
    let client = reqwest::Client::new();
    let up = eventually(Duration::from_secs(20), || async {
        client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "second otto-api did not start");
    assert_eq!(
        client
            .get(&emit)
            .header("X-Dev-Key", "wrong")
            .send()
            .await?
            .status(),
        403
    );
    let started = std::time::Instant::now();
    let mut received = None;
    while started.elapsed() < Duration::from_secs(5) && received.is_none() {
        let response = client
            .get(&emit)
            .header("X-Dev-Key", "dev-key")
            .send()
            .await?;
        assert_eq!(response.status(), 202);
        if let Ok(Ok(event)) =
            tokio::time::timeout(Duration::from_secs(1), next_json(&mut ws)).await
        {
            received = Some((event, started.elapsed()));
        }
    }
    let _ = second.kill();
    let _ = second.wait();
    let (event, latency) = received.ok_or("the event never crossed processes")?;
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    assert_eq!(
        (event["event"].as_str(), event["tenant_id"].as_str()),
        (Some("task.updated"), Some("org_two"))
    );
    for field in [
        "version", "ts", "severity", "trace_id", "user_id", "lead_id", "data",
    ] {
        assert!(event.get(field).is_some(), "{field}");
    }
    // Without DEV_EMIT_KEY the endpoint does not exist.
    assert_eq!(
        app.get("/ws/test-emit?event=x&tenant_id=org_two")
            .await?
            .status(),
        404
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_authenticate_by_query_and_control_frames_are_rate_limited() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    let token = app.token("org_q", "user_q", Role::Rep);
    let url = format!(
        "{}?access_token={token}",
        app.url("/ws").replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    for n in 0..10 {
        let kind = if n % 2 == 0 {
            "subscribe"
        } else {
            "unsubscribe"
        };
        send(
            &mut ws,
            json!({"type": kind, "channel": "tenant:org_q:events"}),
        )
        .await?;
        assert_ne!(
            next_json(&mut ws).await?["type"],
            "error",
            "frame {n} is within the budget"
        );
    }
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": "tenant:org_q:events"}),
    )
    .await?;
    let refused = next_json(&mut ws).await?;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_frames_and_client_pings_are_understood() -> TestResult {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    let token = app.token("org_frag", "user_frag", Role::Rep);
    let mut ws = connect(&app, Some(&token)).await?;
    // A subscribe frame in three fragments, with a ping between two of them.
    let subscribe = json!({"type": "subscribe", "channel": "tenant:org_frag:events"}).to_string();
    let (first, rest) = subscribe.split_at(10);
    let (middle, last) = rest.split_at(20);
    ws.send(Message::Frame(Frame::message(
        first.to_owned(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await?;
    ws.send(Message::Frame(Frame::message(
        middle.to_owned(),
        OpCode::Data(Data::Continue),
        false,
    )))
    .await?;
    ws.send(Message::Ping("are you there".into())).await?;
    ws.send(Message::Frame(Frame::message(
        last.to_owned(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await?;
    let mut ponged = false;
    let subscribed = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await?
            .ok_or("socket closed")??;
        match frame {
            Message::Pong(payload) => ponged = payload == "are you there",
            Message::Text(text) => break serde_json::from_str::<Value>(&text)?,
            _ => {}
        }
    };
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert!(ponged, "the ping between fragments is answered first");
    app.ctx
        .bus
        .publish(&envelope("org_frag", "lead.updated", json!({"n": 1}))?)
        .await?;
    assert_eq!(next_json(&mut ws).await?["event"], "lead.updated");
    app.stop().await;
    Ok(())
}
