use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestDatabase, TestResult, eventually};

const API: &str = env!("CARGO_BIN_EXE_otto-api");
const WORKER: &str = env!("CARGO_BIN_EXE_otto-worker");
const SCHEDULER: &str = env!("CARGO_BIN_EXE_otto-scheduler");

/// A command with a clean environment, run from an empty directory (no stray `.env`).
fn clean(binary: &str, dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .current_dir(dir)
        .env("LOG_LEVEL", "warn");
    command
}

/// A clean command configured as a complete production deployment would be.
fn production(binary: &str, dir: &std::path::Path) -> Command {
    let mut command = clean(binary, dir);
    command
        .env("ENVIRONMENT", "production")
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .env("REDIS_URL", "redis://127.0.0.1:6379");
    command
}

/// Sends SIGTERM and waits up to 15 s; `None` if the process is still running.
async fn sigterm_and_wait(
    child: &mut std::process::Child,
) -> Result<Option<std::process::ExitStatus>, Box<dyn std::error::Error>> {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    let stopped = eventually(Duration::from_secs(15), || {
        let exited = child.try_wait().ok().flatten();
        async move { exited.is_some() }
    })
    .await;
    Ok(if stopped { Some(child.wait()?) } else { None })
}

fn scratch_dir() -> Result<std::path::PathBuf, std::io::Error> {
    let dir = std::env::temp_dir().join(format!("otto-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[test]
fn every_binary_has_help() -> TestResult {
    let dir = scratch_dir()?;
    for binary in [API, WORKER, SCHEDULER] {
        let output = clean(binary, &dir).arg("--help").output()?;
        assert!(output.status.success(), "{binary} --help failed");
        assert!(String::from_utf8(output.stdout)?.contains("Usage:"));
    }
    Ok(())
}

#[test]
fn production_without_database_url_stops_with_one_clear_line() -> TestResult {
    let dir = scratch_dir()?;
    for binary in [API, WORKER, SCHEDULER] {
        let output = clean(binary, &dir)
            .env("ENVIRONMENT", "production")
            .output()?;
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr)?;
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("DATABASE_URL is required when ENVIRONMENT=production"),
            "{stderr}"
        );
    }
    Ok(())
}

#[test]
fn production_with_a_placeholder_secret_refuses_to_start() -> TestResult {
    let dir = scratch_dir()?;
    let output = production(API, &dir)
        .env("TWILIO_AUTH_TOKEN", "your_twilio_auth_token")
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(
        stderr.trim(),
        "configuration error: TWILIO_AUTH_TOKEN still holds a placeholder value; set the real one"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otto_api_migrates_serves_and_stops_gracefully_on_sigterm() -> TestResult {
    let dir = scratch_dir()?;
    let db = TestDatabase::sqlite();
    for _ in 0..2 {
        let status = clean(API, &dir)
            .env("DATABASE_URL", db.url())
            .arg("migrate")
            .status()?;
        assert!(status.success(), "otto-api migrate must be repeatable");
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = clean(API, &dir)
        .env("DATABASE_URL", db.url())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()?;
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    let up = eventually(Duration::from_secs(20), || async {
        client
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "otto-api did not come up");

    let status = sigterm_and_wait(&mut child)
        .await?
        .ok_or("otto-api ignored SIGTERM")?;
    assert!(status.success(), "graceful stop must exit 0, got {status}");
    Ok(())
}

#[test]
fn development_tokens_are_refused_in_production() -> TestResult {
    let dir = scratch_dir()?;
    let output = production(API, &dir)
        .args([
            "token",
            "--tenant",
            "org_x",
            "--user",
            "user_x",
            "--role",
            "leadership",
        ])
        .output()?;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no token may be printed");
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(
        stderr.trim(),
        "otto-api token: development tokens are refused when ENVIRONMENT=production"
    );

    let output = clean(API, &dir)
        .args([
            "token", "--tenant", "org_x", "--user", "user_x", "--role", "rep",
        ])
        .output()?;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout)?.trim().split('.').count(),
        3,
        "a JWT"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_scheduler_stop_gracefully_on_sigterm() -> TestResult {
    let dir = scratch_dir()?;
    let db = TestDatabase::sqlite();
    for binary in [WORKER, SCHEDULER] {
        let mut child = clean(binary, &dir)
            .env("DATABASE_URL", db.url())
            .stdout(Stdio::null())
            .spawn()?;
        // Give it time to migrate, beat or tick once.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(child.try_wait()?.is_none(), "{binary} exited on its own");
        let status = sigterm_and_wait(&mut child)
            .await?
            .ok_or(format!("{binary} ignored SIGTERM"))?;
        assert!(
            status.success(),
            "{binary} must exit 0 after SIGTERM, got {status}"
        );
    }
    Ok(())
}

/// `SCHEDULE_OVERRIDES` is one setting read the same way by embedded `otto-api` and by
/// `otto-scheduler`: a bad expression and an unknown name stop both with the same line.
#[test]
fn embedded_api_and_scheduler_refuse_bad_schedule_overrides_alike() -> TestResult {
    let dir = scratch_dir()?;
    let sqlite = format!("sqlite://{}/otto.db?mode=rwc", dir.display());
    for (value, expected) in [
        (
            "poll-shunya-jobs=soon",
            "SCHEDULE_OVERRIDES is invalid: schedule 'poll-shunya-jobs': 'soon' is not a cron expression",
        ),
        ("nope=5s", "SCHEDULE_OVERRIDES: no schedule named 'nope'"),
    ] {
        for binary in [API, SCHEDULER] {
            let output = clean(binary, &dir)
                .env("DATABASE_URL", &sqlite)
                .env("PORT", "0")
                .env("SCHEDULE_OVERRIDES", value)
                .stdin(Stdio::null())
                .output()?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{binary} accepted {value}");
            assert!(stderr.contains(expected), "{binary} with {value}: {stderr}");
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A `CLERK_JWT_KEY` that is not a PEM public key is a configuration error, named as one (it
/// was reported as "cannot listen").
#[test]
fn a_bad_clerk_key_is_reported_as_configuration() -> TestResult {
    let dir = scratch_dir()?;
    let output = clean(API, &dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/otto.db?mode=rwc", dir.display()),
        )
        .env("PORT", "0")
        .env("CLERK_JWT_KEY", "not a pem key")
        .stdin(Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("otto-api: invalid configuration:"),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot listen"), "{stderr}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `SENTRY_DSN`: a failing request of the real binary reaches the DSN's ingest URL as one event
/// tagged with its trace, request, tenant and user, with the phone number it mentioned scrubbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_reaches_sentry_tagged_and_scrubbed() -> TestResult {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let ingest = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "ok"})))
        .mount(&ingest)
        .await;
    let dsn = format!("http://publickey@{}/42", ingest.address());
    let dir = scratch_dir()?;
    let db = TestDatabase::sqlite();
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = clean(API, &dir)
        .env("DATABASE_URL", db.url())
        .env("PORT", port.to_string())
        .env("SENTRY_DSN", &dsn)
        // The default level: request spans (which carry the tags) are recorded.
        .env("LOG_LEVEL", "info")
        .env("DEV_EMIT_KEY", "dev-key")
        .stdout(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = eventually(Duration::from_secs(20), || async {
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "otto-api did not come up");
    let token = String::from_utf8(
        clean(API, &dir)
            .env("DATABASE_URL", db.url())
            .args([
                "token",
                "--tenant",
                "org_sentry",
                "--user",
                "user_sentry",
                "--role",
                "leadership",
            ])
            .output()?
            .stdout,
    )?;
    let response = client
        .post(format!("{base}/internal/dev/error"))
        .header("x-dev-key", "dev-key")
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"message": "sentry-marker from +1 555 123 4567"}))
        .send()
        .await?;
    assert_eq!(response.status(), 500);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Request-Id")?
        .to_owned();
    let events = || async {
        ingest
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .filter(|body| body.contains("sentry-marker"))
            .collect::<Vec<_>>()
    };
    let sent = eventually(Duration::from_secs(15), || async {
        !events().await.is_empty()
    })
    .await;
    let status = sigterm_and_wait(&mut child).await?;
    assert!(sent, "no event reached the ingest URL");
    assert!(status.is_some_and(|s| s.success()));
    let bodies = events().await;
    assert_eq!(bodies.len(), 1, "one event: {bodies:?}");
    let event: serde_json::Value = bodies[0]
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|item| item.get("tags").is_some())
        .ok_or("no event item in the envelope")?;
    let tags = &event["tags"];
    assert_eq!(tags["trace_id"], serde_json::json!(request_id));
    assert_eq!(tags["request_id"], serde_json::json!(request_id));
    assert_eq!(tags["tenant_id"], serde_json::json!("org_sentry"));
    assert_eq!(tags["user_id"], serde_json::json!("user_sentry"));
    assert!(
        !bodies[0].contains("555 123") && bodies[0].contains("+1******4567"),
        "the phone number is masked as in the logs: {}",
        bodies[0]
    );
    Ok(())
}

/// `METRICS_PORT`: the worker answers Prometheus scrapes with its own metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_its_metrics_on_metrics_port() -> TestResult {
    let dir = scratch_dir()?;
    let db = TestDatabase::sqlite();
    let status = clean(API, &dir)
        .env("DATABASE_URL", db.url())
        .arg("migrate")
        .status()?;
    assert!(status.success());
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = clean(WORKER, &dir)
        .env("DATABASE_URL", db.url())
        .env("METRICS_PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()?;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let served = eventually(Duration::from_secs(20), || async {
        match client.get(&url).send().await {
            Ok(response) => response
                .text()
                .await
                .is_ok_and(|t| t.contains("worker_task_total")),
            Err(_) => false,
        }
    })
    .await;
    let status = sigterm_and_wait(&mut child).await?;
    assert!(served, "no worker metrics on METRICS_PORT");
    assert!(status.is_some_and(|s| s.success()));
    Ok(())
}

/// Runs `otto-api demo` on `db` until it prints its token; returns the child and the token.
fn start_demo(
    dir: &std::path::Path,
    db: &TestDatabase,
    port: u16,
) -> Result<(std::process::Child, String), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let mut child = clean(API, dir)
        .env("DATABASE_URL", db.url())
        .env("PORT", port.to_string())
        // The test polls the calls every 50 ms until the pipeline is done: above the default
        // 60 per minute, the count that follows would be refused with 429.
        .env("RATE_LIMIT_USER", "100000/minute")
        .env("RATE_LIMIT_TENANT", "100000/minute")
        .arg("demo")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(token) = line.strip_prefix("export TOKEN=") {
                let _ = sender.send(token.to_owned());
            }
        }
    });
    let token = receiver.recv_timeout(Duration::from_secs(60))?;
    Ok((child, token))
}

async fn count(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    what: &str,
) -> Result<usize, Box<dyn std::error::Error>> {
    let page: serde_json::Value = client
        .get(format!("{base}/v1/{what}?limit=100"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    page["items"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| format!("no items in {what}: {page}").into())
}

/// `otto-api demo`: a company with a day of calls (transcribed by the in-process mock UWC),
/// appointments, tasks and texts; a second run adds nothing; refused outside development.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_seeds_a_living_day_once() -> TestResult {
    let dir = scratch_dir()?;
    let db = TestDatabase::sqlite();
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    // Every request bounded: a stuck instance fails the test instead of hanging it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let (mut first, token) = start_demo(&dir, &db, port)?;
    assert_eq!(count(&client, &base, &token, "calls").await?, 12);
    assert_eq!(count(&client, &base, &token, "appointments").await?, 4);
    assert_eq!(count(&client, &base, &token, "messages").await?, 2);
    let transcribed = eventually(Duration::from_secs(30), || async {
        let page: Option<serde_json::Value> = match client
            .get(format!("{base}/v1/calls?limit=100"))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        page.and_then(|p| p["items"].as_array().cloned())
            .is_some_and(|items| items.iter().filter(|c| c["status"] == "analyzed").count() == 9)
    })
    .await;
    assert!(
        transcribed,
        "the pipeline never transcribed the answered calls"
    );
    let tasks = count(&client, &base, &token, "tasks").await?;
    assert!(sigterm_and_wait(&mut first).await?.is_some());

    let (mut second, token) = start_demo(&dir, &db, port)?;
    assert_eq!(
        count(&client, &base, &token, "calls").await?,
        12,
        "a second run adds nothing"
    );
    assert_eq!(count(&client, &base, &token, "appointments").await?, 4);
    assert_eq!(count(&client, &base, &token, "messages").await?, 2);
    assert_eq!(count(&client, &base, &token, "tasks").await?, tasks);
    assert!(sigterm_and_wait(&mut second).await?.is_some());

    let refused = production(API, &dir).arg("demo").output()?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("development only"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    Ok(())
}
