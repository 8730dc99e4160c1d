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
        json!([{"id": rep_id, "user_id": "user_rep", "name": "user_rep", "phone": null, "active": true,
            "training_status": null, "trained_at": null}])
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
        json!({"id": rep_id, "user_id": "user_rep", "name": "Riley", "phone": "+15551234567", "active": true,
            "training_status": null, "trained_at": null})
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

/// Role changes (SPEC section 13): Clerk gets the exact membership update first, then Otto's
/// record and the rep row follow; the membership webhook Clerk sends next changes nothing more;
/// one's own role is 403; a Clerk failure changes nothing.
mod role_changes {
    use otto_db::entities::{sales_rep, user};
    use otto_domain::Role;
    use reqwest::Method;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use crate::helpers::{TestApp, TestDatabase, TestResult};
    use crate::webhooks::{CLERK_SECRET, post_clerk};

    const TENANT: &str = "org_roles";

    on_both_databases!(a_role_change_goes_through_clerk_then_otto);

    async fn stored(
        app: &TestApp,
        id: &str,
    ) -> Result<(String, Vec<bool>), Box<dyn std::error::Error>> {
        let row = user::Entity::find_by_id(id.to_owned())
            .one(&app.ctx.db)
            .await?
            .ok_or("no user")?;
        let reps = sales_rep::Entity::find()
            .filter(sales_rep::Column::UserId.eq(id))
            .all(&app.ctx.db)
            .await?;
        Ok((row.role, reps.iter().map(|r| r.active).collect()))
    }

    async fn a_role_change_goes_through_clerk_then_otto(db: TestDatabase) -> TestResult {
        let clerk = MockServer::start().await;
        let api_url = format!("{}/v1", clerk.uri());
        let app = TestApp::spawn(
            db,
            &[
                ("CLERK_SECRET_KEY", "sk_test_otto_roles"),
                ("CLERK_API_URL", &api_url),
                ("CLERK_WEBHOOK_SECRET", CLERK_SECRET),
            ],
        )
        .await?;
        Mock::given(method("PATCH"))
            .and(path(format!(
                "/v1/organizations/{TENANT}/memberships/user_csr"
            )))
            .and(header("authorization", "Bearer sk_test_otto_roles"))
            .and(body_json(json!({"role": "org:sales_rep"})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"role": "org:sales_rep"})),
            )
            .expect(1)
            .mount(&clerk)
            .await;
        Mock::given(path(format!(
            "/v1/organizations/{TENANT}/memberships/user_down"
        )))
        .respond_with(ResponseTemplate::new(500))
        .mount(&clerk)
        .await;
        let owner = app.token(TENANT, "user_owner", Role::Leadership);
        let csr = app.token(TENANT, "user_csr", Role::Csr);
        let down = app.token(TENANT, "user_down", Role::Csr);
        let stranger = app.token("org_elsewhere", "user_far", Role::Csr);
        for token in [&owner, &csr, &down, &stranger] {
            assert_eq!(app.json(Method::GET, "/v1/me", token, None).await?.0, 200);
        }

        let (code, changed) = app
            .json(
                Method::PATCH,
                "/v1/users/user_csr",
                &owner,
                Some(json!({"role": "rep"})),
            )
            .await?;
        assert_eq!(code, 200, "{changed}");
        assert_eq!(
            (changed["id"].as_str(), changed["role"].as_str()),
            (Some("user_csr"), Some("rep"))
        );
        assert!(
            changed["rep_id"].is_string(),
            "a rep has a rep row: {changed}"
        );
        assert_eq!(
            stored(&app, "user_csr").await?,
            ("rep".to_owned(), vec![true])
        );
        assert_eq!(
            crate::webhooks::events(&app, "identity.user.updated").await?,
            1
        );

        // The membership webhook Clerk sends next: nothing more changes.
        let membership = json!({"type": "organizationMembership.updated", "data": {
            "organization": {"id": TENANT},
            "public_user_data": {"user_id": "user_csr", "identifier": "casey@example.com"},
            "role": "org:sales_rep"}});
        assert_eq!(
            post_clerk(&app, "msg_role_1", &membership).await?.status(),
            200
        );
        assert_eq!(
            stored(&app, "user_csr").await?,
            ("rep".to_owned(), vec![true])
        );

        // One's own role, a non-leader, an unknown role, another company's user.
        let own = app
            .json(
                Method::PATCH,
                "/v1/users/user_owner",
                &owner,
                Some(json!({"role": "csr"})),
            )
            .await?;
        assert_eq!(own.0, 403, "{}", own.1);
        let by_csr = app
            .json(
                Method::PATCH,
                "/v1/users/user_down",
                &csr,
                Some(json!({"role": "rep"})),
            )
            .await?;
        assert_eq!(by_csr.0, 403);
        let unknown = app
            .json(
                Method::PATCH,
                "/v1/users/user_down",
                &owner,
                Some(json!({"role": "janitor"})),
            )
            .await?;
        assert_eq!(unknown.0, 422);
        let far = app
            .json(
                Method::PATCH,
                "/v1/users/user_far",
                &owner,
                Some(json!({"role": "rep"})),
            )
            .await?;
        assert_eq!(far.0, 404);

        // Clerk fails: 503, and Otto's record is unchanged.
        let refused = app
            .json(
                Method::PATCH,
                "/v1/users/user_down",
                &owner,
                Some(json!({"role": "rep"})),
            )
            .await?;
        assert_eq!(refused.0, 503, "{}", refused.1);
        assert_eq!(stored(&app, "user_down").await?, ("csr".to_owned(), vec![]));
        Ok(())
    }

    /// Without `CLERK_SECRET_KEY` (development) only Otto's record changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_clerk_only_otto_changes() -> TestResult {
        let app = TestApp::spawn(TestDatabase::sqlite(), &[]).await?;
        let owner = app.token(TENANT, "user_owner", Role::Leadership);
        let rep = app.token(TENANT, "user_rep", Role::Rep);
        app.json(Method::GET, "/v1/me", &owner, None).await?;
        app.json(Method::GET, "/v1/me", &rep, None).await?;
        let (code, body) = app
            .json(
                Method::PATCH,
                "/v1/users/user_rep",
                &owner,
                Some(json!({"role": "csr"})),
            )
            .await?;
        assert_eq!(
            (code, body["role"].as_str(), body["rep_id"].clone()),
            (200, Some("csr"), json!(null))
        );
        assert_eq!(
            stored(&app, "user_rep").await?,
            ("csr".to_owned(), vec![false])
        );
        Ok(())
    }
}
