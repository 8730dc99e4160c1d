//! The team through HTTP (SPEC section 13): users with their rep ids, reps kept in step with the
//! `rep` role, rep edits by leadership.

use otto_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, TestResult};

on_both_databases!(reps_follow_the_rep_role_and_users_name_their_rep);

const TENANT: &str = "org_team";

async fn reps_follow_the_rep_role_and_users_name_their_rep(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let owner = app.token(TENANT, "user_owner", Role::Leadership);
    let csr = app.token(TENANT, "user_csr", Role::Csr);
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let stranger = app.token("org_other", "user_other", Role::Leadership);

    // First contact provisions each member; the rep gets its rep row.
    let (_, me) = app.json(Method::GET, "/v1/me", &rep, None).await?;
    let rep_id = me["rep_id"]
        .as_str()
        .ok_or("the rep has no rep_id")?
        .to_owned();
    assert_eq!(
        app.json(Method::GET, "/v1/me", &owner, None).await?.1["rep_id"],
        Value::Null
    );
    app.json(Method::GET, "/v1/me", &csr, None).await?;

    let (code, users) = app.json(Method::GET, "/v1/users", &csr, None).await?;
    assert_eq!(code, 200);
    let listed: Vec<(&str, &str, Option<&str>)> = users["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap_or_default(),
                u["role"].as_str().unwrap_or_default(),
                u["rep_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("user_csr", "csr", None),
            ("user_owner", "leadership", None),
            ("user_rep", "rep", Some(rep_id.as_str())),
        ]
    );
    assert_eq!(app.json(Method::GET, "/v1/users", &rep, None).await?.0, 403);

    let (_, reps) = app.json(Method::GET, "/v1/reps", &rep, None).await?;
    assert_eq!(
        reps["items"],
        json!([{"id": rep_id, "user_id": "user_rep", "name": "user_rep", "phone": null, "active": true}])
    );

    // Leadership edits a rep; csr may not; another tenant cannot reach it.
    let path = format!("/v1/reps/{rep_id}");
    let (code, edited) = app
        .json(
            Method::PATCH,
            &path,
            &owner,
            Some(json!({"name": "Riley", "phone": "+15551234567"})),
        )
        .await?;
    assert_eq!(code, 200);
    assert_eq!(
        edited,
        json!({"id": rep_id, "user_id": "user_rep", "name": "Riley", "phone": "+15551234567", "active": true})
    );
    assert_eq!(
        crate::webhooks::events(&app, "identity.user.updated").await?,
        1
    );
    let refused = app
        .json(Method::PATCH, &path, &csr, Some(json!({"active": false})))
        .await?;
    assert_eq!(refused.0, 403);
    let foreign = app
        .json(
            Method::PATCH,
            &path,
            &stranger,
            Some(json!({"active": false})),
        )
        .await?;
    assert_eq!(foreign.0, 404);
    let invalid = app
        .json(
            Method::PATCH,
            &path,
            &owner,
            Some(json!({"phone": "call me"})),
        )
        .await?;
    assert_eq!(invalid.0, 422);

    // The rep becomes a csr (its next token says so): the rep row goes inactive.
    let promoted = app.token(TENANT, "user_rep", Role::Csr);
    assert_eq!(
        app.json(Method::GET, "/v1/me", &promoted, None).await?.1["rep_id"],
        Value::Null
    );
    let (_, active) = app
        .json(Method::GET, "/v1/reps?active=true", &owner, None)
        .await?;
    assert_eq!(active["items"], json!([]));
    let (_, all) = app.json(Method::GET, "/v1/reps", &owner, None).await?;
    assert_eq!(all["items"][0]["active"], json!(false));
    app.stop().await;
    Ok(())
}
