//! Group commit of webhook deliveries (PostgreSQL): concurrent deliveries share one transaction,
//! each in its own savepoint. One delivery failing rolls back only its own writes and releases
//! only its own idempotency key; the others are committed, and each caller is answered after
//! the shared commit.

use otto_db::entities::{call, idempotency_key, lead};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::webhooks::{count, events, post_callrail, status_of, webhook_app_with};
use crate::helpers::{TestApp, TestDatabase, TestResult};

const DELIVERIES: usize = 50;
const FAILING: usize = 17;

fn body(n: usize) -> String {
    json!({"company_id": "CR1", "call": {"id": format!("CAL_BATCH_{n}")},
        "customer_phone_number": format!("+1555200{n:04}"), "customer_name": format!("Caller {n}"),
        "direction": "inbound", "answered": true, "duration": "60"})
    .to_string()
}

/// A webhook app on a fresh PostgreSQL database whose batches stay open 300 ms (for up to 60
/// deliveries), so concurrent deliveries gather into few batches; `extra` adds settings.
async fn batching_app(extra: &[(&str, &str)]) -> Result<TestApp, Box<dyn std::error::Error>> {
    let mut settings = vec![
        ("WEBHOOK_BATCH_WINDOW_MS", "300"),
        ("WEBHOOK_BATCH_MAX", "60"),
    ];
    settings.extend_from_slice(extra);
    webhook_app_with(TestDatabase::postgres().await?, &settings).await
}

/// Batches committed, and the deliveries they carried.
fn committed(app: &TestApp) -> Result<(usize, usize), &'static str> {
    Ok(app
        .ctx
        .delivery_batches
        .as_ref()
        .ok_or("group commit is off")?
        .committed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_delivery_of_fifty_batched_rolls_back_alone() -> TestResult {
    let app = batching_app(&[]).await?;
    // The database refuses one call, after its idempotency key and its lead were written.
    app.ctx
        .db
        .execute_unprepared(&format!(
            "CREATE FUNCTION refuse_call() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_call BEFORE INSERT ON calls FOR EACH ROW
               WHEN (NEW.provider_call_id = 'CAL_BATCH_{FAILING}') EXECUTE FUNCTION refuse_call();"
        ))
        .await?;

    let sends = (0..DELIVERIES).map(|n| {
        let app = &app;
        async move {
            let response = post_callrail(app, "/webhooks/callrail/pre-call", &body(n)).await?;
            Ok::<_, reqwest::Error>((n, status_of(response).await?))
        }
    });
    for result in futures_util::future::join_all(sends).await {
        let (n, (code, answer)) = result?;
        if n == FAILING {
            assert_eq!(code, 500, "{answer}");
        } else {
            assert_eq!(
                (code, answer["status"].as_str()),
                (200, Some("processed")),
                "{n}"
            );
        }
    }

    let (batches, batched) = committed(&app)?;
    assert_eq!(batched, DELIVERIES, "every delivery went through a batch");
    assert!(
        batches < 10,
        "{batches} batches for {DELIVERIES} deliveries"
    );

    let committed = (DELIVERIES - 1) as u64;
    assert_eq!(count::<call::Entity>(&app).await?, committed);
    assert_eq!(
        count::<lead::Entity>(&app).await?,
        committed,
        "its lead was undone"
    );
    assert_eq!(count::<idempotency_key::Entity>(&app).await?, committed);
    let failed_key = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::ExternalId.eq(format!("pre-call:CAL_BATCH_{FAILING}")))
        .one(&app.ctx.db)
        .await?;
    assert!(failed_key.is_none(), "its key was released");
    assert_eq!(events(&app, "telephony.call.received").await?, committed);
    assert_eq!(events(&app, "system.webhook.processed").await?, committed);

    // CallRail's retries: the committed ones are duplicates, the failed one is taken now.
    app.ctx
        .db
        .execute_unprepared("DROP TRIGGER refuse_call ON calls; DROP FUNCTION refuse_call();")
        .await?;
    for n in [0, FAILING, DELIVERIES - 1] {
        let (code, answer) =
            status_of(post_callrail(&app, "/webhooks/callrail/pre-call", &body(n)).await?).await?;
        let expected = if n == FAILING {
            "processed"
        } else {
            "duplicate_ignored"
        };
        assert_eq!(
            (code, answer["status"].as_str()),
            (200, Some(expected)),
            "{n}"
        );
    }
    assert_eq!(count::<call::Entity>(&app).await?, DELIVERIES as u64);
    let replayed = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::ExternalId.eq("pre-call:CAL_BATCH_0"))
        .one(&app.ctx.db)
        .await?
        .ok_or("no key")?;
    assert_eq!(replayed.attempts, 2);
    app.stop().await;
    Ok(())
}

/// A tenant's deliveries about different callers take parallel lanes; those about one caller
/// share a lane, so twenty concurrent calls from one number still make exactly one lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_spread_over_lanes_and_one_caller_keeps_one_lead() -> TestResult {
    // Four lanes.
    let app = batching_app(&[("DB_MAX_CONNECTIONS", "16")]).await?;
    let delivery = |n: usize| {
        let caller = if n.is_multiple_of(2) {
            "+15553000000".to_owned()
        } else {
            format!("+1555301{n:04}")
        };
        json!({"company_id": "CR1", "call": {"id": format!("CAL_LANES_{n}")},
            "customer_phone_number": caller, "direction": "inbound"})
        .to_string()
    };
    let sends =
        (0..40).map(|n| {
            let (app, body) = (&app, delivery(n));
            async move {
                status_of(post_callrail(app, "/webhooks/callrail/pre-call", &body).await?).await
            }
        });
    for result in futures_util::future::join_all(sends).await {
        let (code, answer) = result?;
        assert_eq!((code, answer["status"].as_str()), (200, Some("processed")));
    }

    let (batches, batched) = committed(&app)?;
    assert_eq!(batched, 40);
    assert!(batches >= 2, "one lane took every caller ({batches} batch)");
    assert_eq!(count::<call::Entity>(&app).await?, 40);
    assert_eq!(
        count::<lead::Entity>(&app).await?,
        21,
        "one lead per caller"
    );
    let repeat_caller = lead::Entity::find()
        .filter(lead::Column::Phone.eq("+15553000000"))
        .one(&app.ctx.db)
        .await?
        .ok_or("no lead for the repeat caller")?;
    let its_calls = call::Entity::find()
        .filter(call::Column::LeadId.eq(repeat_caller.id))
        .all(&app.ctx.db)
        .await?;
    assert_eq!(its_calls.len(), 20);
    app.stop().await;
    Ok(())
}
