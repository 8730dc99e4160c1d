//! Rate limits: exact budgets under concurrency (Redis and in-process), the shared tenant
//! bucket, never-limited ops endpoints, Redis dying mid-test, and the per-IP public bucket.

use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use otto_api::rate_limit::public_rate_limit;
use otto_domain::Role;
use otto_runtime::AppContext;
use reqwest::Method;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    DisposableRedis, TestApp, TestDatabase, TestResult, config, eventually, redis_prefix, redis_url,
};

async fn burst(app: &TestApp, token: &str, n: usize) -> Vec<reqwest::Response> {
    let requests = (0..n).map(|_| app.authed(Method::GET, "/v1/me", token).send());
    join_all(requests)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

fn count(responses: &[reqwest::Response], status: u16) -> usize {
    responses
        .iter()
        .filter(|r| r.status().as_u16() == status)
        .count()
}

async fn exactly_sixty_of_a_hundred(app: &TestApp) -> TestResult {
    let token = app.token("org_rl", "user_rl", Role::Csr);
    let responses = burst(app, &token, 100).await;
    assert_eq!(responses.len(), 100);
    assert_eq!((count(&responses, 200), count(&responses, 429)), (60, 40));
    let refused = responses
        .into_iter()
        .find(|r| r.status() == 429)
        .ok_or("no 429")?;
    let header = |name: &str| {
        refused
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after: u64 = header("retry-after").ok_or("Retry-After")?.parse()?;
    assert!(retry_after >= 1);
    assert_eq!(header("ratelimit-limit").as_deref(), Some("60"));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert!(header("ratelimit-reset").is_some());
    let trace = header("x-trace-id").ok_or("X-Trace-Id")?;
    let body: Value = refused.json().await?;
    assert_eq!(body["type"], "/problems/rate-limited");
    assert_eq!(body["retry_after"].as_u64(), Some(retry_after));
    assert_eq!(body["trace_id"].as_str(), Some(trace.as_str()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lets_exactly_the_budget_through_under_concurrency() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let prefix = redis_prefix();
    let app = TestApp::spawn(
        db,
        &[
            ("REDIS_URL", &redis_url()),
            ("REDIS_PREFIX", &prefix),
            ("RATE_LIMIT_USER", "60/hour"),
        ],
    )
    .await?;
    exactly_sixty_of_a_hundred(&app).await?;
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(r#"rate_limit_hits_total{route="/v1/me",limit_type="user"}"#),
        "{metrics}"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_limits_in_process() -> TestResult {
    let app = TestApp::spawn(TestDatabase::sqlite(), &[("RATE_LIMIT_USER", "60/hour")]).await?;
    exactly_sixty_of_a_hundred(&app).await?;
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_bucket_is_shared_and_ops_endpoints_are_never_limited() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let prefix = redis_prefix();
    let app = TestApp::spawn(
        db,
        &[
            ("REDIS_URL", &redis_url()),
            ("REDIS_PREFIX", &prefix),
            ("RATE_LIMIT_USER", "100/hour"),
            ("RATE_LIMIT_TENANT", "5/hour"),
        ],
    )
    .await?;
    let mut statuses = Vec::new();
    for user in ["user_1", "user_2", "user_3"] {
        let token = app.token("org_shared", user, Role::Rep);
        for _ in 0..2 {
            let response = app.authed(Method::GET, "/v1/me", &token).send().await?;
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429],
        "five requests across three users"
    );
    let other_tenant = app.token("org_other", "user_1", Role::Rep);
    assert_eq!(
        app.authed(Method::GET, "/v1/me", &other_tenant)
            .send()
            .await?
            .status(),
        200
    );

    let health = join_all((0..150).map(|_| app.get("/health"))).await;
    assert!(
        health
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)),
        "/health is never limited"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_mid_test_falls_back_to_in_process_limits() -> TestResult {
    let mut redis = DisposableRedis::start()?;
    let url = redis.url();
    let db = TestDatabase::postgres().await?;
    let app = TestApp::spawn(db, &[("REDIS_URL", &url), ("RATE_LIMIT_USER", "5/hour")]).await?;
    let token = app.token("org_down", "user_down", Role::Csr);
    let up = eventually(Duration::from_secs(5), || async {
        app.authed(Method::GET, "/v1/me", &token)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "API never answered with Redis up");

    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            app.authed(Method::GET, "/v1/me", &token)
                .send()
                .await?
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        &statuses[..5],
        &[200; 5],
        "the API keeps serving without Redis"
    );
    assert_eq!(
        &statuses[5..],
        &[429, 429],
        "and keeps limiting, in-process"
    );
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("rate_limit_backend_errors_total"),
        "{metrics}"
    );
    app.stop().await;
    Ok(())
}

async fn public_route() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// An app with `/test/public` behind the per-IP limiter, configured by `vars`.
async fn public_app(
    db: &TestDatabase,
    vars: &[(&str, &str)],
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let ctx = AppContext::build(config(db, vars), CancellationToken::new()).await?;
    TestApp::start_with_routes(ctx, |cfg| {
        cfg.service(
            web::resource("/test/public")
                .wrap(from_fn(public_rate_limit))
                .post(public_route),
        );
    })
}

/// Statuses of successive POSTs to `/test/public`, each claiming to come from `forwarded_for`.
async fn statuses(app: &TestApp, forwarded_for: &[&str]) -> Result<Vec<u16>, reqwest::Error> {
    let mut out = Vec::new();
    for ip in forwarded_for {
        let response = app
            .client
            .post(app.url("/test/public"))
            .header("X-Forwarded-For", *ip)
            .send()
            .await?;
        out.push(response.status().as_u16());
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_are_limited_per_client_ip() -> TestResult {
    let db = TestDatabase::sqlite();
    let behind_proxy = [
        ("RATE_LIMIT_BURST", "3"),
        ("RATE_LIMIT_PER_MINUTE", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let app = public_app(&db, &behind_proxy).await?;
    assert_eq!(
        statuses(&app, &["203.0.113.5"; 4]).await?,
        [200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&app, &["198.51.100.7"]).await?,
        [200],
        "another client has its own bucket"
    );
    app.stop().await;

    // Not behind a trusted proxy: X-Forwarded-For is ignored, all share the peer's bucket.
    let app = public_app(
        &db,
        &[("RATE_LIMIT_BURST", "2"), ("RATE_LIMIT_PER_MINUTE", "1")],
    )
    .await?;
    assert_eq!(
        statuses(&app, &["1.1.1.1", "2.2.2.2", "3.3.3.3"]).await?,
        [200, 200, 429]
    );
    app.stop().await;

    // A whitelisted address is never limited.
    let app = public_app(
        &db,
        &[
            ("RATE_LIMIT_BURST", "1"),
            ("RATE_LIMIT_WHITELIST_IPS", "127.0.0.0/8"),
        ],
    )
    .await?;
    assert_eq!(statuses(&app, &["9.9.9.9"; 5]).await?, [200; 5]);
    app.stop().await;
    Ok(())
}

async fn expensive(_caller: otto_api::auth::Authorized<otto_api::auth::AnyRole>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_can_declare_its_own_per_user_budget() -> TestResult {
    use otto_api::rate_limit::RouteLimit;
    use otto_runtime::rate_config::Limit;
    let db = TestDatabase::sqlite();
    let ctx = AppContext::build(config(&db, &[]), CancellationToken::new()).await?;
    let app = TestApp::start_with_routes(ctx, |cfg| {
        cfg.service(
            web::resource("/test/expensive")
                .app_data(RouteLimit(Limit::per(2, Duration::from_secs(3600))))
                .get(expensive),
        );
    })?;
    let token = app.token("org_route", "user_route", Role::Rep);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            app.authed(Method::GET, "/test/expensive", &token)
                .send()
                .await?
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        app.authed(Method::GET, "/v1/me", &token)
            .send()
            .await?
            .status(),
        200,
        "other routes keep the default budget"
    );
    app.stop().await;
    Ok(())
}
