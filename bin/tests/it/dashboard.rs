//! The dashboard through HTTP (SPEC section 13): figures by local day of a company in
//! America/Chicago (answers worked out by hand below), a rep's own figures, and the cache.

use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_db::entities::{call, company};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CallSeed, TestApp, TestDatabase, TestResult, eventually, redis_prefix, redis_url, seed_call,
    seed_company, seed_lead,
};

on_both_databases!(figures_follow_the_company_day_and_are_cached_per_range_and_rep);

const TENANT: &str = "org_dash";
const RANGE: &str = "/v1/dashboard/metrics?from=2026-11-09&to=2026-11-10";

fn at(rfc3339: &str) -> Option<DateTime<Utc>> {
    rfc3339.parse().ok()
}

/// A call recorded at `when`, with `objections`, answered or not, booked or not, of `lead`.
async fn call_at(
    app: &TestApp,
    when: &str,
    objections: &[&str],
    answered: bool,
    booked: bool,
    lead: Option<Uuid>,
) -> Result<Uuid, sea_orm::DbErr> {
    let seed = CallSeed {
        at: at(when),
        booked,
        analysis: Some(json!({ "objections": objections })),
        ..CallSeed::default()
    };
    let id = seed_call(&app.ctx, TENANT, seed).await?;
    call::Entity::update_many()
        .col_expr(call::Column::Answered, Expr::value(answered))
        .col_expr(call::Column::LeadId, Expr::value(lead))
        .filter(call::Column::Id.eq(id))
        .exec(&app.ctx.db)
        .await?;
    Ok(id)
}

/// The figures without the fields that change between computations.
fn figures(body: &Value) -> Value {
    let mut figures = body.clone();
    if let Some(object) = figures.as_object_mut() {
        object.remove("generated_at");
        object.remove("cached");
    }
    figures
}

async fn figures_follow_the_company_day_and_are_cached_per_range_and_rep(
    db: TestDatabase,
) -> TestResult {
    let app = TestApp::spawn(db, &[("DASHBOARD_CACHE_SECONDS", "3")]).await?;
    seed_company(&app.ctx, TENANT).await?;
    company::Entity::update_many()
        .col_expr(company::Column::TimeZone, Expr::value("America/Chicago"))
        .filter(company::Column::Id.eq(TENANT))
        .exec(&app.ctx.db)
        .await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let reps_lead = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;

    // Chicago is UTC-6 in November: local 2026-11-09 is 06:00Z on the 9th to 06:00Z on the 10th.
    call_at(&app, "2026-11-09T05:59:00Z", &["late"], true, false, None).await?; // Nov 8, out
    call_at(&app, "2026-11-10T05:30:00Z", &["Price"], true, false, None).await?; // Nov 9 23:30
    call_at(
        &app,
        "2026-11-10T06:30:00Z",
        &["price", "timing"],
        true,
        true,
        Some(reps_lead),
    )
    .await?; // Nov 10 00:30
    call_at(&app, "2026-11-10T20:00:00Z", &[], false, false, None).await?; // Nov 10 14:00
    call_at(&app, "2026-11-11T06:10:00Z", &["late"], true, true, None).await?; // Nov 11, out

    let (code, first) = app.json(Method::GET, RANGE, &csr, None).await?;
    assert_eq!(code, 200, "{first}");
    assert_eq!(
        figures(&first),
        json!({
            "from": "2026-11-09", "to": "2026-11-10",
            "calls_total": 3, "calls_answered": 2, "answer_rate": 0.667,
            "appointments_booked": 1, "booking_rate": 0.333,
            "calls_per_day": [
                {"date": "2026-11-09", "calls": 1, "booked": 0},
                {"date": "2026-11-10", "calls": 2, "booked": 1},
            ],
            "top_objections": [
                {"objection": "price", "count": 2},
                {"objection": "timing", "count": 1},
            ],
        })
    );
    assert_eq!(first["cached"], false);

    // Within the TTL: the same entry, even after a new call in the range.
    call_at(&app, "2026-11-10T21:00:00Z", &[], true, false, None).await?;
    let (_, second) = app.json(Method::GET, RANGE, &csr, None).await?;
    assert_eq!(second["cached"], true);
    assert_eq!(second["generated_at"], first["generated_at"]);
    assert_eq!(
        second["calls_total"], 3,
        "the new call waits for the entry to expire"
    );

    // Another range and a rep are entries of their own; a rep sees its own leads' calls.
    let (_, one_day) = app
        .json(
            Method::GET,
            "/v1/dashboard/metrics?from=2026-11-10&to=2026-11-10",
            &csr,
            None,
        )
        .await?;
    assert_eq!(
        (one_day["cached"].clone(), one_day["calls_total"].clone()),
        (json!(false), json!(3))
    );
    let (_, mine) = app.json(Method::GET, RANGE, &rep, None).await?;
    assert_eq!(mine["cached"], false);
    assert_eq!(
        (
            mine["calls_total"].clone(),
            mine["appointments_booked"].clone()
        ),
        (json!(1), json!(1))
    );

    // Once the entry expires, the new call shows.
    let refreshed = eventually(Duration::from_secs(10), || async {
        match app.json(Method::GET, RANGE, &csr, None).await {
            Ok((_, body)) => body["cached"] == false && body["calls_total"] == 4,
            Err(_) => false,
        }
    })
    .await;
    assert!(
        refreshed,
        "the entry should expire and the figures include the new call"
    );

    // Bad ranges, and the counters.
    for bad in [
        "from=2026-11-10&to=2026-11-01",
        "from=2025-01-01&to=2026-11-01",
        "from=soon",
    ] {
        let path = format!("/v1/dashboard/metrics?{bad}");
        assert_eq!(
            app.json(Method::GET, &path, &csr, None).await?.0,
            422,
            "{bad}"
        );
    }
    let metrics = app.get("/metrics").await?.text().await?;
    assert!(metrics.contains("dashboard_cache_hits_total"));
    assert!(metrics.contains("dashboard_cache_misses_total"));
    Ok(())
}

/// In distributed mode the entry lives in Redis (every replica shares it), under the prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_entries_live_in_redis_in_distributed_mode() -> TestResult {
    let prefix = redis_prefix();
    let db = TestDatabase::postgres().await?;
    let app = TestApp::spawn(
        db,
        &[("REDIS_URL", &redis_url()), ("REDIS_PREFIX", &prefix)],
    )
    .await?;
    seed_company(&app.ctx, TENANT).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let (code, first) = app.json(Method::GET, RANGE, &csr, None).await?;
    assert_eq!((code, first["cached"].clone()), (200, json!(false)));
    let (_, second) = app.json(Method::GET, RANGE, &csr, None).await?;
    assert_eq!(second["cached"], true);

    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}cache:dashboard:{TENANT}:*"))
        .query_async(&mut conn)
        .await?;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await?;
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    let _: () = redis::cmd("DEL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await?;
    Ok(())
}
