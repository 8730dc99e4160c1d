//! Appointments through HTTP (SPEC section 13): booking with its effects, conflicts (also 20 at
//! once on PostgreSQL), `external_id` idempotency, optimistic PATCH, assignment reaching the
//! rep's tasks channel, naive times across a DST change, roles, rep scoping and tenancy.

use std::time::Duration;

use otto_db::entities::{appointment, call, company, lead};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CallSeed, TestApp, TestDatabase, TestResult, next_frame, seed_call, seed_company, seed_lead,
    subscribed,
};

on_both_databases!(booking_conflicts_updates_and_assignment_follow_the_spec);

const TENANT: &str = "org_appt";

/// The rep id of `user` (provisioned by its first request).
async fn rep_id(app: &TestApp, token: &str) -> Result<String, Box<dyn std::error::Error>> {
    let (_, me) = app.json(Method::GET, "/v1/me", token, None).await?;
    Ok(me["rep_id"].as_str().ok_or("no rep_id")?.to_owned())
}

async fn chicago_company(app: &TestApp, tenant: &str) -> TestResult {
    seed_company(&app.ctx, tenant).await?;
    company::Entity::update_many()
        .col_expr(company::Column::TimeZone, Expr::value("America/Chicago"))
        .filter(company::Column::Id.eq(tenant))
        .exec(&app.ctx.db)
        .await?;
    Ok(())
}

fn booking(lead: Uuid, rep: &str, starts: &str, ends: &str) -> Value {
    json!({"lead_id": lead, "rep_id": rep, "starts_at": starts, "ends_at": ends, "title": "AC repair"})
}

async fn booking_conflicts_updates_and_assignment_follow_the_spec(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    chicago_company(&app, TENANT).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let other = app.token(TENANT, "user_rep_2", Role::Rep);
    let stranger = app.token("org_appt_other", "user_x", Role::Leadership);
    let rep_a = rep_id(&app, &rep).await?;
    let rep_b = rep_id(&app, &other).await?;
    let lead_id = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;
    let call_id = seed_call(&app.ctx, TENANT, CallSeed::default()).await?;

    // Naive times are read in America/Chicago: CDT (UTC-5) before 2026-11-01, CST (UTC-6) after.
    let mut body = booking(lead_id, &rep_a, "2026-10-30T09:00", "2026-10-30T10:00");
    body["call_id"] = json!(call_id);
    let (code, created) = app
        .json(Method::POST, "/v1/appointments", &csr, Some(body))
        .await?;
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().ok_or("id")?.to_owned();
    assert_eq!(
        created,
        json!({"id": id, "lead_id": lead_id, "rep_id": rep_a, "call_id": call_id,
            "starts_at": "2026-10-30T14:00:00.000Z", "ends_at": "2026-10-30T15:00:00.000Z",
            "title": "AC repair", "address": null, "notes": null, "status": "scheduled",
            "external_id": null, "google_event_id": null, "version": 1})
    );
    let (code, winter) = app
        .json(
            Method::POST,
            "/v1/appointments",
            &csr,
            Some(booking(
                lead_id,
                &rep_a,
                "2026-11-02T09:00:00",
                "2026-11-02T10:30:00",
            )),
        )
        .await?;
    assert_eq!(code, 201, "{winter}");
    assert_eq!(winter["starts_at"], "2026-11-02T15:00:00.000Z");

    // Booking's effects: the lead is booked, the call is booked, the events are out.
    let booked_lead = lead::Entity::find_by_id(lead_id)
        .one(&app.ctx.db)
        .await?
        .ok_or("lead")?;
    assert_eq!(booked_lead.status, "booked");
    let booked_call = call::Entity::find_by_id(call_id)
        .one(&app.ctx.db)
        .await?
        .ok_or("call")?;
    assert!(booked_call.booked);
    for (event, count) in [
        ("appointment.created", 2),
        ("appointment.assigned", 2),
        ("lead.updated", 2),
    ] {
        assert_eq!(
            crate::webhooks::events(&app, event).await?,
            count,
            "{event}"
        );
    }

    // An overlapping slot of the same rep: 409 appointment-conflict; another rep: fine.
    let overlapping = booking(lead_id, &rep_a, "2026-10-30T09:30", "2026-10-30T11:00");
    let (code, problem) = app
        .json(Method::POST, "/v1/appointments", &csr, Some(overlapping))
        .await?;
    assert_eq!(
        (code, problem["type"].as_str()),
        (409, Some("/problems/appointment-conflict"))
    );
    let (code, _) = app
        .json(
            Method::POST,
            "/v1/appointments",
            &csr,
            Some(booking(
                lead_id,
                &rep_b,
                "2026-10-30T09:30",
                "2026-10-30T11:00",
            )),
        )
        .await?;
    assert_eq!(code, 201);

    // external_id: the second create answers 200 with the first.
    let mut keyed = booking(lead_id, &rep_b, "2026-12-01T09:00", "2026-12-01T10:00");
    keyed["external_id"] = json!("conv-123");
    let (first_code, first) = app
        .json(Method::POST, "/v1/appointments", &csr, Some(keyed.clone()))
        .await?;
    let (again_code, again) = app
        .json(Method::POST, "/v1/appointments", &csr, Some(keyed))
        .await?;
    assert_eq!((first_code, again_code), (201, 200));
    assert_eq!(first["id"], again["id"]);

    // Bad input changes nothing.
    let before = appointment::Entity::find().count(&app.ctx.db).await?;
    for bad in [
        booking(lead_id, &rep_a, "2026-12-02T10:00", "2026-12-02T09:00"),
        booking(lead_id, &rep_a, "2026-12-02T10:00", "2026-12-04T10:00"),
        booking(lead_id, &rep_a, "2026-03-08T02:30", "2026-03-08T04:00"),
        booking(
            lead_id,
            &Uuid::new_v4().to_string(),
            "2026-12-02T09:00",
            "2026-12-02T10:00",
        ),
        booking(lead_id, &rep_a, "soon", "later"),
    ] {
        let (code, problem) = app
            .json(Method::POST, "/v1/appointments", &csr, Some(bad.clone()))
            .await?;
        assert_eq!(code, 422, "{bad} -> {problem}");
    }
    let unknown_lead = booking(
        Uuid::new_v4(),
        &rep_a,
        "2026-12-02T09:00",
        "2026-12-02T10:00",
    );
    assert_eq!(
        app.json(Method::POST, "/v1/appointments", &csr, Some(unknown_lead))
            .await?
            .0,
        404
    );
    assert_eq!(
        appointment::Entity::find().count(&app.ctx.db).await?,
        before
    );

    // Roles and scoping: a rep cannot book; it lists its own; another tenant sees nothing.
    let by_rep = booking(lead_id, &rep_a, "2026-12-03T09:00", "2026-12-03T10:00");
    assert_eq!(
        app.json(Method::POST, "/v1/appointments", &rep, Some(by_rep))
            .await?
            .0,
        403
    );
    let (_, mine) = app
        .json(Method::GET, "/v1/appointments", &rep, None)
        .await?;
    let mine: Vec<&str> = mine["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter_map(|i| i["starts_at"].as_str())
        .collect();
    assert_eq!(
        mine,
        ["2026-10-30T14:00:00.000Z", "2026-11-02T15:00:00.000Z"],
        "a rep's own, by starts_at"
    );
    let (_, page) = app
        .json(Method::GET, "/v1/appointments?limit=2", &csr, None)
        .await?;
    let cursor = page["next_cursor"].as_str().ok_or("a second page")?;
    let (_, rest) = app
        .json(
            Method::GET,
            &format!("/v1/appointments?limit=2&cursor={cursor}"),
            &csr,
            None,
        )
        .await?;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
    let path = format!("/v1/appointments/{id}");
    assert_eq!(app.json(Method::GET, &path, &stranger, None).await?.0, 404);
    assert_eq!(app.json(Method::GET, &path, &other, None).await?.0, 404);

    // PATCH needs If-Match: 428 without, 412 stale, then 200 with the next version.
    let patch = json!({"status": "completed", "notes": "Replaced the capacitor"});
    let no_match = app
        .authed(Method::PATCH, &path, &csr)
        .json(&patch)
        .send()
        .await?;
    assert_eq!(no_match.status(), 428);
    let stale = app
        .authed(Method::PATCH, &path, &csr)
        .header("If-Match", "\"7\"")
        .json(&patch)
        .send()
        .await?;
    assert_eq!(stale.status(), 412);
    let patched = app
        .authed(Method::PATCH, &path, &csr)
        .header("If-Match", "\"1\"")
        .json(&patch)
        .send()
        .await?;
    assert_eq!(patched.status(), 200);
    assert_eq!(
        patched.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"2\"")
    );
    let patched: Value = patched.json().await?;
    assert_eq!(
        (patched["status"].as_str(), patched["version"].as_i64()),
        (Some("completed"), Some(2))
    );

    // Assigning the winter appointment to rep B reaches B's tasks channel.
    let winter_id = winter["id"].as_str().ok_or("id")?;
    let mut ws = subscribed(&app, &other, "user:user_rep_2:tasks").await?;
    let (code, assigned) = app
        .json(
            Method::POST,
            &format!("/v1/appointments/{winter_id}/assign"),
            &csr,
            Some(json!({"rep_id": rep_b})),
        )
        .await?;
    assert_eq!(
        (code, assigned["rep_id"].as_str()),
        (200, Some(rep_b.as_str())),
        "{assigned}"
    );
    let started = std::time::Instant::now();
    let event = next_frame(&mut ws, |v| v["event"] == "appointment.assigned").await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(event["data"]["appointment_id"], winter_id);
    Ok(())
}

/// 20 concurrent bookings of one rep's slot: exactly one 201, the rest 409, one row; the same
/// `external_id` posted 20 times at once: one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bookings_of_one_slot_book_it_once() -> TestResult {
    let app = TestApp::spawn(
        TestDatabase::postgres().await?,
        &[("RATE_LIMIT_BURST", "100000")],
    )
    .await?;
    chicago_company(&app, TENANT).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let rep_a = rep_id(&app, &rep).await?;
    let mut leads = Vec::new();
    for _ in 0..20 {
        leads.push(seed_lead(&app.ctx, TENANT, None).await?);
    }
    let attempts = leads.iter().map(|lead| {
        let body = booking(*lead, &rep_a, "2026-12-10T09:00", "2026-12-10T10:00");
        app.json(Method::POST, "/v1/appointments", &csr, Some(body))
    });
    let answers: Vec<(u16, Value)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut codes: Vec<u16> = answers.iter().map(|(code, _)| *code).collect();
    let unexpected: Vec<&Value> = answers
        .iter()
        .filter(|(code, _)| *code != 201 && *code != 409)
        .map(|(_, body)| body)
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    codes.sort_unstable();
    assert_eq!(codes[0], 201);
    assert!(codes[1..].iter().all(|code| *code == 409), "{codes:?}");
    let slot_rows = appointment::Entity::find()
        .filter(appointment::Column::RepUserId.eq("user_rep"))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(slot_rows, 1);

    let same_key = (0..20).map(|n| {
        let mut body = json!({"lead_id": leads[n % 20], "starts_at": "2026-12-11T09:00",
            "ends_at": "2026-12-11T10:00"});
        body["external_id"] = json!("conv-race");
        app.json(Method::POST, "/v1/appointments", &csr, Some(body))
    });
    let answers = futures_util::future::join_all(same_key).await;
    let mut ids = Vec::new();
    for answer in answers {
        let (code, body) = answer?;
        assert!(code == 201 || code == 200, "{code} {body}");
        ids.push(body["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the one appointment");
    let keyed = appointment::Entity::find()
        .filter(appointment::Column::ExternalId.eq("conv-race"))
        .count(&app.ctx.db)
        .await?;
    assert_eq!(keyed, 1);
    Ok(())
}
