use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, TestDatabase, TestResult, eventually, redis_prefix, redis_url};

on_both_databases!(
    health_has_the_spec_shape,
    ready_reports_database_and_in_process_worker,
    errors_are_problem_json_with_trace_id,
    metrics_name_http_and_pool_series_after_traffic,
);

async fn health_has_the_spec_shape(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let response = app.get("/health").await?;
    assert_eq!(response.status(), 200);
    let request_id = header(&response, "x-request-id");
    let body: Value = response.json().await?;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "otto-api");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["trace_id"].as_str(), Some(request_id.as_str()));
    app.stop().await;
    Ok(())
}

async fn ready_reports_database_and_in_process_worker(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    // The in-process worker beats as it starts; wait for that first beat.
    let ready = eventually(Duration::from_secs(10), || async {
        app.get("/ready").await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "embedded app never became ready");
    let body: Value = app.get("/ready").await?.json().await?;
    assert_eq!(body["ready"], true);
    assert_eq!(
        body["components"],
        serde_json::json!({"database": true, "redis": null, "workers": true})
    );
    assert_eq!(body["service"], "otto-api");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(body["duration_ms"].is_u64());

    let beats: Value = app.get("/internal/worker/heartbeat").await?.json().await?;
    let worker = &beats["workers"][0];
    assert_eq!(worker["queues"].as_array().map(Vec::len), Some(7));
    assert!(worker["id"].is_string() && worker["last_beat"].is_string());
    assert!(worker["age_seconds"].as_f64().is_some_and(|age| age < 30.0));
    assert_eq!(worker["in_flight"], 0);
    app.stop().await;
    Ok(())
}

async fn errors_are_problem_json_with_trace_id(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;

    let response = app
        .client
        .get(app.url("/no/such/route"))
        .header("X-Request-Id", "req-abc-123")
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(header(&response, "x-request-id"), "req-abc-123");
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        serde_json::json!({
            "type": "/problems/not-found", "title": "Not Found", "status": 404,
            "detail": "The resource does not exist.", "instance": "/no/such/route",
            "trace_id": "req-abc-123"
        })
    );

    let response = app.client.delete(app.url("/health")).send().await?;
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), "GET");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let trace = header(&response, "x-request-id");
    let body: Value = response.json().await?;
    assert_eq!(body["type"], "/problems/method-not-allowed");
    assert_eq!(body["trace_id"].as_str(), Some(trace.as_str()));

    // W3C traceparent: its trace id becomes the request's id when no X-Request-Id is sent.
    let response = app
        .client
        .get(app.url("/health"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await?;
    assert_eq!(
        header(&response, "x-request-id"),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );

    // A query that does not parse is a 422 with `errors`.
    let response = app
        .get("/internal/worker/heartbeat?include_stale=maybe")
        .await?;
    assert_eq!(response.status(), 422);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let body: Value = response.json().await?;
    assert_eq!(body["type"], "/problems/validation-error");
    assert_eq!(body["errors"][0]["field"], "query");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("true"))
    );
    assert!(body["trace_id"].is_string());
    app.stop().await;
    Ok(())
}

async fn metrics_name_http_and_pool_series_after_traffic(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    app.get("/health").await?;
    app.get("/missing").await?;
    let text = app.get("/metrics").await?.text().await?;
    for series in [
        r#"http_requests_total{route="/health",method="GET",status="200"}"#,
        r#"http_requests_total{route="unmatched",method="GET",status="404"}"#,
        r#"http_request_duration_ms_bucket{route="/health",method="GET",le="#,
        r#"db_pool_connections{state="idle"}"#,
        r#"db_pool_connections{state="active"}"#,
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(
        !text.contains("/missing"),
        "raw paths must never become labels"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_with_redis_false_when_redis_is_down() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let app = TestApp::spawn(
        db,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("READY_CHECK_TIMEOUT_MS", "500"),
        ],
    )
    .await?;
    let response = app.get("/ready").await?;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "content-type"), "application/json");
    let body: Value = response.json().await?;
    assert_eq!(body["ready"], false);
    assert_eq!(body["components"]["redis"], false);
    assert_eq!(body["components"]["database"], true);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_with_real_redis_needs_a_live_worker() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let prefix = redis_prefix();
    let app = TestApp::spawn(
        db,
        &[("REDIS_URL", &redis_url()), ("REDIS_PREFIX", &prefix)],
    )
    .await?;
    let body: Value = app.get("/ready").await?.json().await?;
    assert_eq!(body["components"]["redis"], true);
    assert_eq!(
        body["components"]["workers"], false,
        "distributed mode runs no in-process worker"
    );

    let worker = otto_worker::Worker::new(
        app.ctx.clone(),
        otto::registry(&app.ctx.config),
        otto_worker::WorkerSettings::from_context(&app.ctx),
    );
    let worker = tokio::spawn(worker.run());
    let ready = eventually(Duration::from_secs(10), || async {
        app.get("/ready").await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "a running worker should make the API ready");
    app.ctx.shutdown.cancel();
    worker.await?;
    app.stop().await;
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One route list: every registered path is in `/openapi.json` and every documented path is
/// registered (webhooks, their aliases and `/ws` included), and every response is described.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_route_is_documented_and_every_documented_route_is_served() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    let document: Value = app.get("/openapi.json").await?.json().await?;
    assert_eq!(document["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let paths = document["paths"].as_object().ok_or("no paths")?;
    let documented: std::collections::BTreeSet<String> = paths.keys().cloned().collect();
    let registered: std::collections::BTreeSet<String> = otto_api::route_list::registered()
        .into_iter()
        .filter(|path| !otto_api::route_list::DOCUMENTATION.contains(&path.as_str()))
        .collect();
    assert_eq!(
        registered.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "registered but not documented"
    );
    assert_eq!(
        documented.difference(&registered).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not registered"
    );
    for (path, item) in paths {
        for (method, operation) in item.as_object().ok_or("path item")? {
            let responses = operation["responses"].as_object().ok_or("responses")?;
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                let described = response["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty());
                assert!(described, "{method} {path} {status} has no description");
            }
        }
    }
    app.stop().await;
    Ok(())
}

/// The metric names of a PromQL expression: identifiers that are not functions, keywords or
/// label names (label matchers, `by (...)` lists and range selectors are removed first).
fn metric_names(expr: &str) -> Vec<String> {
    let mut cleaned = String::new();
    let mut depth_braces = 0;
    let mut depth_brackets = 0;
    for c in expr.chars() {
        match c {
            '{' => depth_braces += 1,
            '}' => depth_braces -= 1,
            '[' => depth_brackets += 1,
            ']' => depth_brackets -= 1,
            _ if depth_braces == 0 && depth_brackets == 0 => cleaned.push(c),
            _ => {}
        }
    }
    for keyword in ["by", "without", "on", "ignoring"] {
        while let Some(at) = cleaned.find(&format!("{keyword} (")) {
            let end = cleaned[at..]
                .find(')')
                .map_or(cleaned.len(), |e| at + e + 1);
            cleaned.replace_range(at..end, " ");
        }
    }
    let chars: Vec<char> = cleaned.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let keyword = ["and", "or", "unless", "bool", "offset"].contains(&word.as_str());
            if next != Some(&'(') && !keyword {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every metric the alert rules name is exported by a running otto-api: a renamed metric fails
/// here, not on the pager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_alert_rules_is_exported() -> TestResult {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/prometheus/alerts.yml"
    ))?;
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/grafana/otto.json"
    ))?)?;
    let panel_exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .ok_or("no panels")?
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect();
    let mut wanted: Vec<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:").map(str::to_owned))
        .chain(panel_exprs)
        .flat_map(|expr| metric_names(&expr))
        .collect();
    wanted.sort();
    wanted.dedup();
    assert!(wanted.len() >= 20, "{wanted:?}");
    assert!(
        metric_names("sum by (le) (rate(http_request_duration_ms_bucket{le=\"5\"}[5m])) > 1")
            .contains(&"http_request_duration_ms_bucket".to_owned())
    );
    let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
    app.get("/health").await?;
    // One job through the in-process worker, for the job series.
    let noop = otto_domain::jobs::JobKind::to_job(&otto_domain::jobs::Noop {})?;
    app.ctx.queue.push(noop).await?;
    let exported = |text: &str, name: &str| {
        text.lines().any(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
    };
    let missing = || async {
        let text = match app.get("/metrics").await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        wanted
            .iter()
            .filter(|name| !exported(&text, name))
            .cloned()
            .collect::<Vec<_>>()
    };
    let all_there = eventually(Duration::from_secs(20), || async {
        missing().await.is_empty()
    })
    .await;
    let missing = missing().await;
    assert!(
        all_there,
        "named by the rules but not exported: {missing:?}"
    );
    app.stop().await;
    Ok(())
}
