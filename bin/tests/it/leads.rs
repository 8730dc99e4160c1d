//! Leads through HTTP: tenant isolation, rep visibility, cursor pagination, optimistic locking.

use otto_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult};

on_both_databases!(
    tenant_b_cannot_reach_tenant_a,
    pages_filters_and_rep_visibility,
    concurrent_patches_with_one_etag_let_exactly_one_through,
    a_rep_cannot_reassign_and_a_deletion_is_an_event,
);

async fn create(
    app: &TestApp,
    token: &str,
    body: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let response = app
        .authed(Method::POST, "/v1/leads", token)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 201, "create {body}");
    Ok(response.json().await?)
}

async fn tenant_b_cannot_reach_tenant_a(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let alice = app.token("org_a", "user_alice", Role::Leadership);
    let mallory = app.token("org_b", "user_mallory", Role::Leadership);
    let lead = create(
        &app,
        &alice,
        json!({"name": "Secret", "phone": "+15550001111"}),
    )
    .await?;
    let path = format!("/v1/leads/{}", lead["id"].as_str().unwrap_or_default());

    assert_eq!(
        app.authed(Method::GET, &path, &mallory)
            .send()
            .await?
            .status(),
        404
    );
    let listed: Value = app
        .authed(Method::GET, "/v1/leads", &mallory)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["items"], json!([]));
    let patch = app
        .authed(Method::PATCH, &path, &mallory)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Owned"}));
    assert_eq!(patch.send().await?.status(), 404);
    assert_eq!(
        app.authed(Method::DELETE, &path, &mallory)
            .send()
            .await?
            .status(),
        404
    );
    assert_eq!(
        app.authed(Method::GET, "/v1/companies/org_a", &mallory)
            .send()
            .await?
            .status(),
        404
    );
    let company_patch = app
        .authed(Method::PATCH, "/v1/companies/org_a", &mallory)
        .json(&json!({"name": "Pwned"}));
    assert_eq!(company_patch.send().await?.status(), 404);

    let untouched: Value = app
        .authed(Method::GET, &path, &alice)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (untouched["name"].as_str(), untouched["version"].as_i64()),
        (Some("Secret"), Some(1))
    );
    let company: Value = app
        .authed(Method::GET, "/v1/companies/org_a", &alice)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(company["name"], "org_a");
    app.stop().await;
    Ok(())
}

async fn pages_filters_and_rep_visibility(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let csr = app.token("org_p", "user_csr", Role::Csr);
    let rep = app.token("org_p", "user_rep", Role::Rep);
    for n in 0..5 {
        let assigned = if n % 2 == 0 { Some("user_rep") } else { None };
        let status = if n < 3 { "new" } else { "booked" };
        create(&app, &csr, json!({"name": format!("Lead {n}"), "status": status, "source": "callrail", "assigned_user_id": assigned})).await?;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/leads?limit=2&cursor={c}"),
            None => "/v1/leads?limit=2".to_owned(),
        };
        let page: Value = app
            .authed(Method::GET, &path, &csr)
            .send()
            .await?
            .json()
            .await?;
        let items = page["items"].as_array().ok_or("items")?;
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|l| l["name"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["Lead 4", "Lead 3", "Lead 2", "Lead 1", "Lead 0"],
        "newest first, each once"
    );

    let booked: Value = app
        .authed(Method::GET, "/v1/leads?status=booked", &csr)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(booked["items"].as_array().map(Vec::len), Some(2));
    let mine: Value = app
        .authed(Method::GET, "/v1/leads", &rep)
        .send()
        .await?
        .json()
        .await?;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["Lead 4", "Lead 2", "Lead 0"],
        "a rep sees only leads assigned to them"
    );

    for bad in [
        "/v1/leads?limit=0",
        "/v1/leads?limit=201",
        "/v1/leads?cursor=nonsense",
    ] {
        let response = app.authed(Method::GET, bad, &csr).send().await?;
        assert_eq!(response.status(), 422, "{bad}");
    }
    let invalid = app
        .authed(Method::POST, "/v1/leads", &csr)
        .json(&json!({"phone": "call me"}))
        .send()
        .await?;
    assert_eq!(invalid.status(), 422);
    let problem: Value = invalid.json().await?;
    assert_eq!(problem["errors"][0]["field"], "phone");
    app.stop().await;
    Ok(())
}

async fn concurrent_patches_with_one_etag_let_exactly_one_through(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let token = app.token("org_lock", "user_l", Role::Leadership);
    let response = app
        .authed(Method::POST, "/v1/leads", &token)
        .json(&json!({"name": "Race"}))
        .send()
        .await?;
    assert_eq!(
        response.headers().get("etag").and_then(|h| h.to_str().ok()),
        Some("\"1\"")
    );
    let lead: Value = response.json().await?;
    let path = format!("/v1/leads/{}", lead["id"].as_str().unwrap_or_default());

    let missing = app
        .authed(Method::PATCH, &path, &token)
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_eq!(missing.status(), 428);

    let patch = |name: &'static str| {
        app.authed(Method::PATCH, &path, &token)
            .header("If-Match", "\"1\"")
            .json(&json!({"name": name}))
            .send()
    };
    let (first, second) = tokio::join!(patch("First"), patch("Second"));
    let mut statuses = [first?.status().as_u16(), second?.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412]);

    let current = app.authed(Method::GET, &path, &token).send().await?;
    assert_eq!(
        current.headers().get("etag").and_then(|h| h.to_str().ok()),
        Some("\"2\"")
    );
    let stale = app
        .authed(Method::PATCH, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Late"}))
        .send()
        .await?;
    assert_eq!(stale.status(), 412);
    let fresh = app
        .authed(Method::PATCH, &path, &token)
        .header("If-Match", "\"2\"")
        .json(&json!({"status": "booked"}))
        .send()
        .await?;
    assert_eq!(fresh.status(), 200);
    let body: Value = fresh.json().await?;
    assert_eq!(
        (body["version"].as_i64(), body["status"].as_str()),
        (Some(3), Some("booked"))
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_numbers_are_normalised_and_unique_across_tenants() -> TestResult {
    let app = TestApp::spawn(TestDatabase::postgres().await?, &[]).await?;
    let first = app.token("org_n1", "user_1", Role::Leadership);
    let second = app.token("org_n2", "user_2", Role::Leadership);
    let body = json!({"name": "Acme HVAC", "time_zone": "America/Denver", "callrail_company_id": "COM123",
        "twilio_numbers": ["(555) 000-1111", "+15550002222"]});
    let response = app
        .authed(Method::PATCH, "/v1/companies/org_n1", &first)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let company: Value = response.json().await?;
    assert_eq!(
        company,
        json!({"id": "org_n1", "name": "Acme HVAC", "time_zone": "America/Denver", "callrail_company_id": "COM123",
            "twilio_numbers": ["+15550001111", "+15550002222"], "lockdown_mode": false,
            "missed_call_callbacks": false, "quiet_hours_start": null, "quiet_hours_end": null})
    );
    // Callback settings: quiet hours are HH:MM.
    let (code, _) = app
        .json(
            Method::PATCH,
            "/v1/companies/org_n1",
            &first,
            Some(json!({"quiet_hours_start": "9pm"})),
        )
        .await?;
    assert_eq!(code, 422);
    let (code, changed) = app
        .json(Method::PATCH, "/v1/companies/org_n1", &first,
            Some(json!({"missed_call_callbacks": true, "quiet_hours_start": "21:00", "quiet_hours_end": "08:00"})))
        .await?;
    assert_eq!(
        (
            code,
            &changed["quiet_hours_start"],
            &changed["missed_call_callbacks"]
        ),
        (200, &json!("21:00"), &json!(true))
    );
    let steal = app
        .authed(Method::PATCH, "/v1/companies/org_n2", &second)
        .json(&json!({"twilio_numbers": ["+1 555 000 1111"]}))
        .send()
        .await?;
    assert_eq!(steal.status(), 409, "a number maps to one company");
    let bad_zone = app
        .authed(Method::PATCH, "/v1/companies/org_n1", &first)
        .json(&json!({"time_zone": "Mars"}))
        .send()
        .await?;
    assert_eq!(bad_zone.status(), 422);
    let unchanged: Value = app
        .authed(Method::GET, "/v1/companies/org_n1", &first)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        unchanged["twilio_numbers"],
        json!(["+15550001111", "+15550002222"])
    );
    app.stop().await;
    Ok(())
}

async fn a_rep_cannot_reassign_and_a_deletion_is_an_event(db: TestDatabase) -> TestResult {
    use otto_db::entities::{audit_log, outbox_event};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let app = TestApp::spawn(db, &[]).await?;
    let owner = app.token("org_a", "user_owner", Role::Leadership);
    let rep = app.token("org_a", "user_rep", Role::Rep);
    let lead = create(
        &app,
        &owner,
        json!({"name": "Mine", "assigned_user_id": "user_rep"}),
    )
    .await?;
    let path = format!("/v1/leads/{}", lead["id"].as_str().unwrap_or_default());

    let reassign = app
        .authed(Method::PATCH, &path, &rep)
        .header("If-Match", "\"1\"")
        .json(&json!({"assigned_user_id": "user_other"}))
        .send()
        .await?;
    assert_eq!(reassign.status(), 403);
    let problem: Value = reassign.json().await?;
    assert_eq!(
        problem["detail"],
        "Access denied. Required roles: leadership, csr. User role: rep"
    );
    let denials = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("access_denied"))
        .filter(audit_log::Column::UserId.eq("user_rep"))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(
        denials.len(),
        1,
        "the field refusal is audited like a route refusal"
    );

    let deleted = app.authed(Method::DELETE, &path, &owner).send().await?;
    assert_eq!(deleted.status(), 204);
    let changes: Vec<Value> = outbox_event::Entity::find()
        .filter(outbox_event::Column::Event.eq("lead.updated"))
        .order_by_asc(outbox_event::Column::Id)
        .all(&app.ctx.db)
        .await?
        .into_iter()
        .map(|row| {
            serde_json::from_str::<Value>(&row.envelope).map(|e| e["data"]["change"].clone())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(changes, [json!("created"), json!("deleted")]);
    assert_eq!(
        app.authed(Method::DELETE, &path, &owner)
            .send()
            .await?
            .status(),
        404
    );
    app.stop().await;
    Ok(())
}
