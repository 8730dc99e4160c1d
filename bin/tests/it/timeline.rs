//! A lead's timeline through HTTP (SPEC section 13): five kinds merged newest first, one cursor
//! across them, rep visibility and tenant isolation.

use chrono::{DateTime, Duration, Utc};
use otto_db::entities::{appointment, call, follow_up, message, task};
use otto_domain::Role;
use reqwest::Method;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, TestDatabase, TestResult, seed_lead};

on_both_databases!(a_timeline_of_120_mixed_items_pages_each_item_once_in_order);

const TENANT: &str = "org_tl";
const KINDS: [&str; 5] = ["call", "message", "appointment", "task", "followup"];

/// Inserts one item of `kind` for `lead`, recorded at `at`.
async fn seed_item(
    db: &DatabaseConnection,
    tenant: &str,
    lead: Uuid,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let id = Uuid::new_v4();
    let lead_id = lead;
    let (company, lead) = (Set(tenant.to_owned()), Set(Some(lead)));
    match kind {
        "call" => {
            call::Entity::insert(call::ActiveModel {
                id: Set(id),
                company_id: company,
                lead_id: lead,
                provider: Set("callrail".into()),
                provider_call_id: Set(format!("CAL{}", id.simple())),
                direction: Set(Some("inbound".into())),
                answered: Set(Some(true)),
                duration_seconds: Set(Some(90)),
                recording_url: Set(None),
                transcript: Set(None),
                analysis: Set(None),
                objections: Set(None),
                booked: Set(false),
                notes: Set(None),
                status: Set("completed".into()),
                started_at: Set(Some(at)),
                asr_provider: Set(None),
                callback_requested_at: Set(None),
                bland_call_id: Set(None),
                recording_key: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .exec_without_returning(db)
            .await?;
        }
        "message" => {
            message::Entity::insert(message::ActiveModel {
                id: Set(id),
                company_id: company,
                lead_id: lead,
                direction: Set("inbound".into()),
                from_number: Set("+15551112222".into()),
                to_number: Set("+15550001111".into()),
                body: Set("Is Tuesday free?".into()),
                provider: Set("twilio".into()),
                provider_sid: Set(Some(format!("SM{}", id.simple()))),
                status: Set("received".into()),
                send_attempted_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .exec_without_returning(db)
            .await?;
        }
        "appointment" => {
            appointment::Entity::insert(appointment::ActiveModel {
                id: Set(id),
                company_id: company,
                lead_id: Set(lead_id),
                rep_user_id: Set(None),
                external_id: Set(None),
                scheduled_start: Set(at + Duration::days(2)),
                scheduled_end: Set(at + Duration::days(2) + Duration::hours(1)),
                status: Set("scheduled".into()),
                google_event_id: Set(None),
                title: Set(None),
                address: Set(None),
                notes: Set(None),
                call_id: Set(None),
                rep_id: Set(None),
                version: Set(1),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .exec_without_returning(db)
            .await?;
        }
        "task" => {
            task::Entity::insert(task::ActiveModel {
                id: Set(id),
                company_id: company,
                assignee_user_id: Set(None),
                lead_id: lead,
                title: Set("Call back about the quote".into()),
                unique_key: Set(None),
                due_at: Set(None),
                status: Set("open".into()),
                completed_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .exec_without_returning(db)
            .await?;
        }
        _ => {
            follow_up::Entity::insert(follow_up::ActiveModel {
                id: Set(id),
                company_id: company,
                call_id: Set(None),
                lead_id: lead,
                channel: Set("sms".into()),
                draft: Set("Thanks for calling!".into()),
                status: Set("draft".into()),
                sent_at: Set(None),
                message_id: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .exec_without_returning(db)
            .await?;
        }
    }
    Ok(id)
}

fn keys(page: &Value) -> Vec<(String, String)> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let field = |name: &str| item[name].as_str().unwrap_or_default().to_owned();
                    (field("kind"), field("id"))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn a_timeline_of_120_mixed_items_pages_each_item_once_in_order(
    db: TestDatabase,
) -> TestResult {
    let app = TestApp::spawn(db, &[]).await?;
    let rep = app.token(TENANT, "user_rep", Role::Rep);
    let other_rep = app.token(TENANT, "user_rep_2", Role::Rep);
    let stranger = app.token("org_other", "user_x", Role::Leadership);
    let lead = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;
    let neighbour = seed_lead(&app.ctx, TENANT, Some("user_rep")).await?;

    // 120 items, 24 of each kind; seven share each instant, so the keyset's ties on `at` and on
    // `(at, kind)` are both exercised.
    let base = Utc::now() - Duration::days(1);
    let mut expected = Vec::new();
    for i in 0..120i64 {
        let kind = KINDS[(i % 5) as usize];
        let at = base + Duration::milliseconds(1_500 * (i / 7));
        let id = seed_item(&app.ctx.db, TENANT, lead, kind, at).await?;
        expected.push((at, kind.to_owned(), id));
    }
    seed_item(&app.ctx.db, TENANT, neighbour, "call", base).await?;
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(_, kind, id)| (kind, id.to_string()))
        .collect();

    let mut seen = Vec::new();
    let mut path = format!("/v1/leads/{lead}/timeline?limit=25");
    let mut pages = 0;
    loop {
        let (code, page) = app.json(Method::GET, &path, &rep, None).await?;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        seen.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/leads/{lead}/timeline?limit=25&cursor={cursor}");
            }
            None => break,
        }
        assert!(pages < 10, "the cursor must end");
    }
    assert_eq!(pages, 5);
    assert_eq!(
        seen, expected,
        "every item once, newest first, (at, kind, id) order"
    );

    // The shape of an item.
    let (_, first) = app
        .json(
            Method::GET,
            &format!("/v1/leads/{lead}/timeline?limit=1"),
            &rep,
            None,
        )
        .await?;
    let item = &first["items"][0];
    let mut fields: Vec<&str> = item
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fields.sort_unstable();
    assert_eq!(fields, ["at", "id", "kind", "summary"]);
    assert!(item["summary"].as_str().is_some_and(|s| !s.is_empty()));

    // Another rep's lead, another tenant, a cursor Otto never issued.
    for (token, code) in [(&other_rep, 404), (&stranger, 404)] {
        let path = format!("/v1/leads/{lead}/timeline");
        assert_eq!(app.json(Method::GET, &path, token, None).await?.0, code);
    }
    let bad = format!("/v1/leads/{lead}/timeline?cursor=abc");
    assert_eq!(app.json(Method::GET, &bad, &rep, None).await?.0, 422);
    Ok(())
}
