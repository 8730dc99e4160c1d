//! Identity: Clerk token verification against the PyJWT-made vectors, JWKS rotation, role
//! guards with their audit trail, CORS, and the lockdown guard.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use otto_api::auth::AnyRole;
use otto_api::auth::lockdown::Unlocked;
use otto_db::entities::audit_log;
use otto_domain::Role;
use otto_runtime::AppContext;
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, TestDatabase, TestResult, config};

const VECTORS: &str = include_str!("../../../../shared/test-vectors/clerk_jwt.json");
const ISSUER: &str = "https://clerk.otto.test";

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap_or(Value::Null)
}

fn as_str(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

async fn status_of(app: &TestApp, token: &str) -> Result<(StatusCode, Value), reqwest::Error> {
    let response = app.authed(Method::GET, "/v1/me", token).send().await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

on_both_databases!(
    clerk_vectors_are_accepted_and_forgeries_refused,
    role_guards_follow_the_matrix_and_audit_refusals
);

/// Vectors from `../shared/test-vectors/clerk_jwt.json` (PyJWT 2.15.1, RS256).
async fn clerk_vectors_are_accepted_and_forgeries_refused(db: TestDatabase) -> TestResult {
    let v = vectors();
    let app = TestApp::spawn(
        db,
        &[
            ("CLERK_JWT_KEY", as_str(&v["public_key_pem"])),
            ("CLERK_ISSUER", ISSUER),
            ("ALLOWED_ORIGINS", "http://localhost:3000"),
        ],
    )
    .await?;
    let valid = v["valid"].as_object().ok_or("no valid vectors")?;
    for (name, case) in valid {
        let (status, body) = status_of(&app, as_str(&case["token"])).await?;
        assert_eq!(status, 200, "{name}: {body}");
        let expect = &case["expect"];
        assert_eq!(body["user_id"], expect["user_id"], "{name}");
        assert_eq!(body["tenant_id"], expect["tenant_id"], "{name}");
        assert_eq!(body["user_role"], expect["role"], "{name}");
    }
    let refused = v["refuse_401"].as_object().ok_or("no refusal vectors")?;
    assert!(refused.len() >= 8);
    for (name, token) in refused {
        let (status, body) = status_of(&app, as_str(token)).await?;
        assert_eq!(status, 401, "{name} must be refused: {body}");
        assert_eq!(body["type"], "/problems/unauthorized", "{name}");
    }
    let (status, body) = status_of(&app, as_str(&v["refuse_403_no_tenant"])).await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["detail"], "The token carries no organization.");

    let response = app.get("/v1/me").await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok()),
        Some("Bearer")
    );

    // A correctly signed token issued for another origin (azp) is refused.
    let key = EncodingKey::from_rsa_pem(as_str(&v["private_key_pem"]).as_bytes())?;
    let foreign = sign_claims(
        &key,
        as_str(&v["kid"]),
        json!({"azp": "https://evil.example.com"}),
    )?;
    assert_eq!(status_of(&app, &foreign).await?.0, 401);
    let local = sign_claims(
        &key,
        as_str(&v["kid"]),
        json!({"azp": "http://localhost:3000"}),
    )?;
    assert_eq!(status_of(&app, &local).await?.0, 200);
    app.stop().await;
    Ok(())
}

fn rotated_key() -> Result<(EncodingKey, Jwk), Box<dyn std::error::Error>> {
    let pem = include_str!("../../../dev/dev-jwt-private.pem");
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some("otto-rotated".to_owned());
    Ok((key, jwk))
}

fn original_jwk() -> Result<Jwk, Box<dyn std::error::Error>> {
    let v = vectors();
    let key = EncodingKey::from_rsa_pem(as_str(&v["private_key_pem"]).as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some(as_str(&v["kid"]).to_owned());
    Ok(jwk)
}

fn sign(key: &EncodingKey, kid: &str) -> Result<String, jsonwebtoken::errors::Error> {
    sign_claims(key, kid, json!({}))
}

/// A fresh admin token for `org_rot`, with `extra` claims merged in.
fn sign_claims(
    key: &EncodingKey,
    kid: &str,
    extra: Value,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({"sub": "user_rot", "org_id": "org_rot", "org_role": "org:admin", "iss": ISSUER,
        "iat": now, "nbf": now, "exp": now + 600});
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    jsonwebtoken::encode(&header, &claims, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_rotation_is_picked_up_and_unknown_kids_do_not_hammer_it() -> TestResult {
    let jwks_server = MockServer::start().await;
    let original = original_jwk()?;
    let (rotated_key, rotated) = rotated_key()?;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet {
            keys: vec![original.clone()],
        }))
        .up_to_n_times(1)
        .mount(&jwks_server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet {
            keys: vec![original, rotated],
        }))
        .mount(&jwks_server)
        .await;
    let db = TestDatabase::postgres().await?;
    let jwks_url = format!("{}/.well-known/jwks.json", jwks_server.uri());
    let app = TestApp::spawn(
        db,
        &[
            ("CLERK_JWKS_URL", &jwks_url),
            ("CLERK_ISSUER", ISSUER),
            ("CLERK_JWKS_REFRESH_SECONDS", "1"),
        ],
    )
    .await?;
    let v = vectors();
    let (status, _) = status_of(&app, as_str(&v["valid"]["admin_v1"]["token"])).await?;
    assert_eq!(status, 200, "the original key serves from the first fetch");

    // The provider rotates; once the refresh window has passed, the new kid is fetched.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = status_of(&app, &sign(&rotated_key, "otto-rotated")?).await?;
    assert_eq!(status, 200, "rotated key: {body}");
    let fetches_after_rotation = jwks_server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    assert_eq!(fetches_after_rotation, 2);

    // A burst of unknown kids within one window costs at most one more fetch.
    let unknown = sign(&rotated_key, "otto-unknown")?;
    let burst = (0..20).map(|_| status_of(&app, &unknown));
    for result in futures_util::future::join_all(burst).await {
        assert_eq!(result?.0, 401);
    }
    let fetches = jwks_server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    assert!(
        fetches <= fetches_after_rotation + 1,
        "unknown kids fetched the JWKS {fetches} times"
    );
    app.stop().await;
    Ok(())
}

/// Every protected route x every role -> the expected status (SPEC sections 2 and 12).
async fn role_guards_follow_the_matrix_and_audit_refusals(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let tenant = "org_matrix";
    let tokens = [
        (
            Role::Leadership,
            app.token(tenant, "user_lead", Role::Leadership),
        ),
        (Role::Csr, app.token(tenant, "user_csr", Role::Csr)),
        (Role::Rep, app.token(tenant, "user_rep", Role::Rep)),
    ];
    let company = format!("/v1/companies/{tenant}");
    // (method, path, body, [leadership, csr, rep])
    let table: Vec<(Method, String, Option<Value>, [u16; 3])> = vec![
        (Method::GET, "/v1/me".into(), None, [200, 200, 200]),
        (Method::GET, company.clone(), None, [200, 200, 200]),
        (
            Method::PATCH,
            company.clone(),
            Some(json!({"name": "Acme Roofing"})),
            [200, 403, 403],
        ),
        (
            Method::POST,
            "/v1/owner/lockdown".into(),
            Some(json!({"enabled": false})),
            [200, 403, 403],
        ),
        (
            Method::POST,
            "/v1/leads".into(),
            Some(json!({"name": "Lead"})),
            [201, 201, 403],
        ),
        (Method::GET, "/v1/leads".into(), None, [200, 200, 200]),
    ];
    let mut refusals = 0;
    for (verb, path, body, expected) in &table {
        for ((role, token), want) in tokens.iter().zip(expected) {
            let mut request = app.authed(verb.clone(), path, token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            assert_eq!(status, *want, "{verb} {path} as {role}");
            if status == 403 {
                refusals += 1;
                let problem: Value = response.json().await?;
                assert!(
                    problem["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("Access denied. Required roles: ")
                            && d.ends_with(&format!("User role: {role}"))),
                    "{problem}"
                );
            }
        }
    }
    // DELETE needs a lead per attempt.
    for ((role, token), want) in tokens.iter().zip([204u16, 204, 403]) {
        let created: Value = app
            .authed(Method::POST, "/v1/leads", &tokens[0].1)
            .json(&json!({"name": "Doomed"}))
            .send()
            .await?
            .json()
            .await?;
        let path = format!("/v1/leads/{}", as_str(&created["id"]));
        let status = app
            .authed(Method::DELETE, &path, token)
            .send()
            .await?
            .status()
            .as_u16();
        assert_eq!(status, want, "DELETE lead as {role}");
        if status == 403 {
            refusals += 1;
        }
    }
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::CompanyId.eq(tenant))
        .filter(audit_log::Column::Action.eq("access_denied"))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(audited, refusals, "one audit row per refusal");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_listed_and_wildcard_origins_and_refuses_others() -> TestResult {
    let db = TestDatabase::sqlite();
    let app = TestApp::spawn(
        db,
        &[(
            "ALLOWED_ORIGINS",
            "https://app.otto.ai,https://*.vercel.app,exp://*",
        )],
    )
    .await?;
    for origin in [
        "https://app.otto.ai",
        "https://otto-pr-12.vercel.app",
        "exp://192.168.1.20:8081",
    ] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("Origin", origin)
            .send()
            .await?;
        assert_eq!(response.status(), 200, "{origin}");
        let allowed = response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|h| h.to_str().ok());
        assert_eq!(allowed, Some(origin));
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-credentials")
                .and_then(|h| h.to_str().ok()),
            Some("true")
        );
    }
    let response = app
        .client
        .get(app.url("/health"))
        .header("Origin", "https://evil.example.com")
        .send()
        .await?;
    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/origin-not-allowed");
    assert!(problem["trace_id"].is_string());

    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/v1/leads"))
        .header("Origin", "https://otto-pr-12.vercel.app")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "authorization, if-match")
        .send()
        .await?;
    assert_eq!(preflight.status(), 204);
    let header = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://otto-pr-12.vercel.app")
    );
    assert!(header("access-control-allow-methods").is_some_and(|m| m.contains("PATCH")));
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("authorization, if-match")
    );

    let refused = app
        .client
        .request(Method::OPTIONS, app.url("/v1/leads"))
        .header("Origin", "https://evil.vercel.app.example.com")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    app.stop().await;
    Ok(())
}

async fn automation(_caller: Unlocked<AnyRole>) -> HttpResponse {
    HttpResponse::Accepted().finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_guard_answers_423_while_dashboards_keep_working() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let ctx = AppContext::build(config(&db, &[]), CancellationToken::new()).await?;
    let app = TestApp::start_with_routes(ctx, |cfg| {
        cfg.route("/test/automation", web::post().to(automation));
    })?;
    let owner = app.token("org_lock", "user_owner", Role::Leadership);
    let rep = app.token("org_lock", "user_rep", Role::Rep);
    assert_eq!(
        app.authed(Method::POST, "/test/automation", &rep)
            .send()
            .await?
            .status(),
        202
    );

    let company: Value = app
        .authed(Method::POST, "/v1/owner/lockdown", &owner)
        .json(&json!({"enabled": true}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(company["lockdown_mode"], true);
    let response = app
        .authed(Method::POST, "/test/automation", &rep)
        .send()
        .await?;
    assert_eq!(response.status(), 423);
    let problem: Value = response.json().await?;
    assert_eq!(problem["type"], "/problems/tenant-locked");
    assert_eq!(
        app.authed(Method::GET, "/v1/leads", &rep)
            .send()
            .await?
            .status(),
        200,
        "dashboards keep working"
    );

    // Other tenants are not affected.
    let other = app.token("org_free", "user_x", Role::Rep);
    assert_eq!(
        app.authed(Method::POST, "/test/automation", &other)
            .send()
            .await?
            .status(),
        202
    );

    app.authed(Method::POST, "/v1/owner/lockdown", &owner)
        .json(&json!({"enabled": false}))
        .send()
        .await?;
    assert_eq!(
        app.authed(Method::POST, "/test/automation", &rep)
            .send()
            .await?
            .status(),
        202
    );
    app.stop().await;
    Ok(())
}
