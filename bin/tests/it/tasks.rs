//! Tasks through HTTP (SPEC section 13): `unique_key` idempotency, due ordering with no due
//! time last, `assignee=me`, a rep completing only its own, `task.updated` on the assignee's
//! tasks channel, tenancy.

use std::time::Duration;

use otto_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult, next_frame, seed_lead, subscribed};

on_both_databases!(tasks_are_idempotent_ordered_and_completed_by_their_assignee);

const TENANT: &str = "org_tasks";

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn tasks_are_idempotent_ordered_and_completed_by_their_assignee(
    db: TestDatabase,
) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let stranger = app.token("org_tasks_other", "user_x", Role::Leadership);
    app.json(Method::GET, "/v1/me", &rep, None).await?;
    let lead = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;

    let task = |title: &str, due: Value, key: Value| {
        json!({"title": title, "lead_id": lead, "assignee_id": "user_rep", "due_at": due,
               "unique_key": key})
    };
    let (code, later) = app
        .json(
            Method::POST,
            "/v1/tasks",
            &csr,
            Some(task(
                "later",
                json!("2026-12-02T15:00:00Z"),
                json!("k-later"),
            )),
        )
        .await?;
    assert_eq!(code, 201, "{later}");
    let id = later["id"].as_str().ok_or("id")?.to_owned();
    assert_eq!(
        later,
        json!({"id": id, "title": "later", "lead_id": lead, "assignee_id": "user_rep",
            "due_at": "2026-12-02T15:00:00.000Z", "status": "open", "unique_key": "k-later",
            "created_at": later["created_at"], "completed_at": null})
    );
    let (code, again) = app
        .json(
            Method::POST,
            "/v1/tasks",
            &csr,
            Some(task("later, again", json!(null), json!("k-later"))),
        )
        .await?;
    assert_eq!((code, again["id"].as_str()), (200, Some(id.as_str())));
    for (title, due) in [
        ("sooner", json!("2026-12-01T15:00:00Z")),
        ("whenever 1", json!(null)),
        ("whenever 2", json!(null)),
    ] {
        let (code, _) = app
            .json(
                Method::POST,
                "/v1/tasks",
                &csr,
                Some(task(title, due, json!(null))),
            )
            .await?;
        assert_eq!(code, 201);
    }
    let (code, _) = app
        .json(
            Method::POST,
            "/v1/tasks",
            &csr,
            Some(json!({"title": "the csr's own", "assignee_id": "user_csr"})),
        )
        .await?;
    assert_eq!(code, 201);

    // Due first, then no due time; a rep sees its own; assignee=me; pages of two.
    let (_, mine) = app
        .json(Method::GET, "/v1/tasks?assignee=me", &rep, None)
        .await?;
    assert_eq!(
        titles(&mine),
        ["sooner", "later", "whenever 1", "whenever 2"]
    );
    let (_, all) = app.json(Method::GET, "/v1/tasks", &csr, None).await?;
    assert_eq!(titles(&all).len(), 5);
    let (_, first) = app
        .json(
            Method::GET,
            "/v1/tasks?assignee=user_rep&limit=3",
            &csr,
            None,
        )
        .await?;
    let cursor = first["next_cursor"].as_str().ok_or("a second page")?;
    let (_, second) = app
        .json(
            Method::GET,
            &format!("/v1/tasks?assignee=user_rep&limit=3&cursor={cursor}"),
            &csr,
            None,
        )
        .await?;
    assert_eq!(
        [titles(&first), titles(&second)].concat(),
        ["sooner", "later", "whenever 1", "whenever 2"]
    );

    // The rep completes its own task; the change reaches its tasks channel within 1 s.
    let mut ws = subscribed(&app, &rep, "user:user_rep:tasks").await?;
    let path = format!("/v1/tasks/{id}");
    let (code, done) = app
        .json(Method::PATCH, &path, &rep, Some(json!({"status": "done"})))
        .await?;
    assert_eq!(
        (code, done["status"].as_str()),
        (200, Some("done")),
        "{done}"
    );
    assert!(done["completed_at"].is_string());
    let started = std::time::Instant::now();
    let event = next_frame(&mut ws, |v| {
        v["event"] == "task.updated" && v["data"]["status"] == "done"
    })
    .await?;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(event["data"]["task_id"], id.as_str());

    // A rep changes nothing but the status, and nobody else's; staff reopen and reassign.
    assert_eq!(
        app.json(
            Method::PATCH,
            &path,
            &rep,
            Some(json!({"title": "mine now"}))
        )
        .await?
        .0,
        403
    );
    let (_, csr_task) = app
        .json(Method::GET, "/v1/tasks?assignee=user_csr", &csr, None)
        .await?;
    let csr_task = csr_task["items"][0]["id"]
        .as_str()
        .ok_or("csr task")?
        .to_owned();
    let other = format!("/v1/tasks/{csr_task}");
    assert_eq!(
        app.json(Method::PATCH, &other, &rep, Some(json!({"status": "done"})))
            .await?
            .0,
        404
    );
    let (code, reopened) = app
        .json(
            Method::PATCH,
            &path,
            &csr,
            Some(json!({"status": "open", "assignee_id": null, "due_at": null})),
        )
        .await?;
    assert_eq!(code, 200);
    assert_eq!(
        (
            reopened["status"].clone(),
            reopened["completed_at"].clone(),
            reopened["assignee_id"].clone()
        ),
        (json!("open"), json!(null), json!(null))
    );
    for bad in [json!({"status": "maybe"}), json!({"title": ""})] {
        assert_eq!(
            app.json(Method::PATCH, &path, &csr, Some(bad)).await?.0,
            422
        );
    }

    // Another tenant: absent from lists, 404 on change.
    let (_, theirs) = app.json(Method::GET, "/v1/tasks", &stranger, None).await?;
    assert!(titles(&theirs).is_empty());
    assert_eq!(
        app.json(
            Method::PATCH,
            &path,
            &stranger,
            Some(json!({"status": "done"}))
        )
        .await?
        .0,
        404
    );
    Ok(())
}
