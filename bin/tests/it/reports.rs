//! Stored daily reports through HTTP: a range of UTC days, newest first, staff only, per tenant.

use otto_db::entities::daily_report;
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestDatabase, TestResult};

on_both_databases!(daily_reports_are_listed_by_range_for_staff);

async fn seed_report(
    app: &TestApp,
    tenant: &str,
    date: &str,
    calls: u32,
) -> Result<(), sea_orm::DbErr> {
    let now = chrono::Utc::now();
    daily_report::Entity::insert(daily_report::ActiveModel {
        id: Set(Uuid::now_v7()),
        company_id: Set(tenant.to_owned()),
        report_date: Set(date.to_owned()),
        metrics: Set(json!({ "calls": calls })),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.ctx.db)
    .await?;
    Ok(())
}

fn days(page: &Value) -> Vec<(String, Value)> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| {
                    (
                        r["report_date"].as_str().unwrap_or_default().to_owned(),
                        r["metrics"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn daily_reports_are_listed_by_range_for_staff(db: TestDatabase) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    for (date, calls) in [("2026-11-01", 3), ("2026-11-02", 5), ("2026-11-03", 8)] {
        seed_report(&app, "org_reports", date, calls).await?;
    }
    seed_report(&app, "org_other", "2026-11-02", 99).await?;
    let csr = app.token("org_reports", "user_csr", Role::Csr);

    let (code, page) = app
        .json(
            Method::GET,
            "/v1/reports/daily?from=2026-11-02&to=2026-11-03",
            &csr,
            None,
        )
        .await?;
    assert_eq!(code, 200);
    assert_eq!(
        days(&page),
        [
            ("2026-11-03".to_owned(), json!({"calls": 8})),
            ("2026-11-02".to_owned(), json!({"calls": 5})),
        ]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, one) = app
        .json(
            Method::GET,
            "/v1/reports/daily?from=2026-11-01&to=2026-11-01",
            &csr,
            None,
        )
        .await?;
    assert_eq!(days(&one), [("2026-11-01".to_owned(), json!({"calls": 3}))]);

    let rep = app.token("org_reports", "user_rep", Role::Rep);
    assert_eq!(
        app.json(Method::GET, "/v1/reports/daily", &rep, None)
            .await?
            .0,
        403
    );
    for bad in [
        "from=2026-11-05&to=2026-11-01",
        "from=yesterday",
        "from=2024-01-01&to=2026-11-01",
    ] {
        assert_eq!(
            app.json(Method::GET, &format!("/v1/reports/daily?{bad}"), &csr, None)
                .await?
                .0,
            422,
            "{bad}"
        );
    }
    let stranger = app.token("org_third", "user_x", Role::Leadership);
    let (_, none) = app
        .json(
            Method::GET,
            "/v1/reports/daily?from=2026-11-01&to=2026-11-03",
            &stranger,
            None,
        )
        .await?;
    assert_eq!(none["items"], json!([]));
    app.stop().await;
    Ok(())
}
