//! `ws-bench smoke`: connect, subscribe, emit a test event, report the round trip.
//! `ws-bench load`: hold many authenticated connections across tenant channels, emit test events
//! at a fixed rate, and report set-up rate, delivered messages per second and latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(name = "ws-bench", about = "Otto real-time smoke test and load tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One client: subscribe to the token's tenant, emit one event, print the round trip.
    Smoke {
        #[arg(long)]
        base: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        dev_key: String,
    },
    /// Many clients across tenants (`tokens` file: `tenant<TAB>token` per line).
    Load {
        #[arg(long)]
        base: String,
        #[arg(long)]
        tokens: String,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Test events per second (each reaches every connection of its tenant).
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        dev_key: String,
    },
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(base: &str, token: &str, tenant: &str) -> Result<Socket, Error> {
    let mut request = format!("{}/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    // tungstenite zero-fills its read buffer up to its capacity (128 KB by default) before every
    // read: at tens of thousands of messages a second that memset alone filled the tool's core.
    // Frames here are small.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let subscribe = json!({"type": "subscribe", "channel": format!("tenant:{tenant}:events")});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    while let Some(frame) = socket.next().await {
        if let Message::Text(text) = frame? {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == "subscribed" {
                return Ok(socket);
            }
            if value["type"] == "error" {
                return Err(format!("subscribe refused: {value}").into());
            }
        }
    }
    Err("closed before subscribing".into())
}

async fn emit(
    client: &reqwest::Client,
    base: &str,
    dev_key: &str,
    tenant: &str,
) -> Result<(), Error> {
    let url = format!("{base}/ws/test-emit?event=task.updated&tenant_id={tenant}");
    let status = client
        .get(url)
        .header("X-Dev-Key", dev_key)
        .send()
        .await?
        .status();
    if status.as_u16() == 202 {
        Ok(())
    } else {
        Err(format!("test-emit answered {status}").into())
    }
}

/// Latency of a received test event: now minus the `sent_at` the server stamped.
fn latency_of(text: &str) -> Option<f64> {
    let value: Value = serde_json::from_str(text).ok()?;
    Some(now_ms() - value["data"]["sent_at"].as_f64()?)
}

async fn smoke(base: String, token: String, tenant: String, dev_key: String) -> Result<(), Error> {
    let mut socket = open(&base, &token, &tenant).await?;
    let started = Instant::now();
    emit(&reqwest::Client::new(), &base, &dev_key, &tenant).await?;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await? {
        if let Message::Text(text) = frame?
            && text.contains("\"task.updated\"")
        {
            println!(
                "round trip: {:.1} ms (publish to receive {:.1} ms)",
                started.elapsed().as_secs_f64() * 1000.0,
                latency_of(&text).unwrap_or(f64::NAN)
            );
            return Ok(());
        }
    }
    Err("no event received".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn load(
    base: String,
    tokens: String,
    connections: usize,
    rate: u64,
    seconds: u64,
    dev_key: String,
) -> Result<(), Error> {
    let pairs: Vec<(String, String)> = std::fs::read_to_string(&tokens)?
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(t, k)| (t.to_owned(), k.to_owned()))
        })
        .collect();
    if pairs.is_empty() {
        return Err("no tokens".into());
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let gate = Arc::new(Semaphore::new(256));
    let started = Instant::now();
    let mut readers = Vec::with_capacity(connections);
    for i in 0..connections {
        let (tenant, token) = pairs[i % pairs.len()].clone();
        let permit = gate.clone().acquire_owned().await?;
        let base = base.clone();
        let (delivered, measuring, samples) =
            (delivered.clone(), measuring.clone(), samples.clone());
        readers.push(tokio::spawn(async move {
            let socket = open(&base, &token, &tenant).await;
            drop(permit);
            let mut socket = socket?;
            while let Some(Ok(frame)) = socket.next().await {
                if let Message::Text(text) = frame {
                    if text.starts_with(r#"{"type":"ping""#) {
                        let _ = socket
                            .send(Message::Text(r#"{"type":"pong"}"#.into()))
                            .await;
                    } else if measuring.load(Ordering::Relaxed) {
                        // Sample one message in 16 to keep the tool's own cost low.
                        let n = delivered.fetch_add(1, Ordering::Relaxed);
                        if n % 16 == 0
                            && let Some(ms) = latency_of(&text)
                            && let Ok(mut all) = samples.lock()
                        {
                            all.push(ms);
                        }
                    }
                }
            }
            Ok::<(), Error>(())
        }));
    }
    // Wait until every connection is open and subscribed.
    let _ = gate.acquire_many(256).await?;
    let setup = started.elapsed();
    let failed = readers.iter().filter(|r| r.is_finished()).count();
    println!(
        "connections: {connections} ({failed} failed) in {:.2} s = {:.0} connections/s",
        setup.as_secs_f64(),
        connections as f64 / setup.as_secs_f64()
    );
    println!("HOLDING {connections}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    measuring.store(true, Ordering::Relaxed);
    let client = reqwest::Client::new();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let publish_started = Instant::now();
    let mut sent = 0u64;
    let mut publishers = Vec::new();
    // At most 64 test-emit requests in flight: a publisher, not a flood of HTTP clients.
    let in_flight = Arc::new(Semaphore::new(64));
    while publish_started.elapsed() < Duration::from_secs(seconds) {
        let (client, base, dev_key, tenant) = (
            client.clone(),
            base.clone(),
            dev_key.clone(),
            pairs[(sent as usize) % pairs.len()].0.clone(),
        );
        let permit = in_flight.clone().acquire_owned().await?;
        publishers.push(tokio::spawn(async move {
            let ok = emit(&client, &base, &dev_key, &tenant).await.is_ok();
            drop(permit);
            ok
        }));
        sent += 1;
        let due = interval.mul_f64(sent as f64);
        if let Some(wait) = due.checked_sub(publish_started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut accepted = 0;
    for publisher in publishers {
        accepted += u64::from(publisher.await.unwrap_or(false));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let elapsed = publish_started.elapsed().as_secs_f64();
    let total = delivered.load(Ordering::Relaxed);
    measuring.store(false, Ordering::Relaxed);
    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    let mut all = samples.lock().map(|s| s.clone()).unwrap_or_default();
    all.sort_by(|a, b| a.total_cmp(b));
    let expected = accepted * (connections / pairs.len()) as u64;
    println!(
        "events published: {accepted}/{sent} in {seconds} s; messages delivered: {total} of {expected} expected"
    );
    println!(
        "delivered: {:.0} messages/s over the {seconds} s of publishing ({elapsed:.1} s with the drain)",
        total as f64 / seconds as f64
    );
    println!(
        "publish-to-receive latency: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match Cli::parse().command {
        Command::Smoke {
            base,
            token,
            tenant,
            dev_key,
        } => smoke(base, token, tenant, dev_key).await,
        Command::Load {
            base,
            tokens,
            connections,
            rate,
            seconds,
            dev_key,
        } => load(base, tokens, connections, rate, seconds, dev_key).await,
    }
}
