use std::time::Duration;

use otto_db::outbox;
use otto_domain::{EventEnvelope, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_runtime::event_bus::{EventBus, RedisBus};
use sea_orm::TransactionTrait;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestApp, TestDatabase, TestResult, config, redis_prefix, redis_url};

on_both_databases!(
    event_committed_while_relay_is_down_is_delivered_after_restart,
    rolled_back_event_is_never_published
);

fn envelope(event: &str) -> Result<EventEnvelope, Box<dyn std::error::Error>> {
    Ok(EventEnvelope::new(
        event,
        TenantId::try_from("org_outbox")?,
        TraceId::parse("trace-outbox").ok_or("trace")?,
        serde_json::json!({"n": 1}),
    ))
}

async fn event_committed_while_relay_is_down_is_delivered_after_restart(
    db: TestDatabase,
) -> TestResult {
    // A process commits a change with its event, then dies before its relay publishes.
    let ctx = AppContext::build(config(&db, &[]), CancellationToken::new()).await?;
    let txn = ctx.db.begin().await?;
    outbox::record(&txn, &envelope("lead.updated")?).await?;
    txn.commit().await?;
    assert_eq!(outbox::backlog(&ctx.db).await?, 1);
    ctx.db.clone().close().await?;

    // Restart: the new process's relay finds the row and publishes it.
    let ctx = AppContext::build(config(&db, &[]), CancellationToken::new()).await?;
    let mut events = ctx.bus.subscribe();
    let app = TestApp::start(ctx)?;
    let delivered = tokio::time::timeout(Duration::from_secs(5), events.recv()).await??;
    assert_eq!(delivered.event, "lead.updated");
    assert_eq!(delivered.trace_id.as_str(), "trace-outbox");
    assert_eq!(delivered.tenant_id.as_str(), "org_outbox");
    let drained = crate::helpers::eventually(Duration::from_secs(5), || async {
        outbox::backlog(&app.ctx.db).await.is_ok_and(|n| n == 0)
    })
    .await;
    assert!(drained, "the relayed row must be marked sent");
    app.stop().await;
    Ok(())
}

async fn rolled_back_event_is_never_published(db: TestDatabase) -> TestResult {
    let ctx = AppContext::build(config(&db, &[]), CancellationToken::new()).await?;
    let mut events = ctx.bus.subscribe();
    let app = TestApp::start(ctx)?;
    let txn = app.ctx.db.begin().await?;
    outbox::record(&txn, &envelope("lead.updated")?).await?;
    txn.rollback().await?;
    app.ctx.outbox.notify();
    assert_eq!(outbox::backlog(&app.ctx.db).await?, 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(700), events.recv())
            .await
            .is_err()
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bus_fans_out_between_processes() -> TestResult {
    let prefix = redis_prefix();
    let shutdown = CancellationToken::new();
    let url = redis_url();
    let pool = otto_runtime::redis_pool::build(&url, 4)?;
    let publisher = RedisBus::start(&url, pool.clone(), &prefix, shutdown.clone())?;
    let receiver = RedisBus::start(&url, pool, &prefix, shutdown.clone())?;
    let mut events = receiver.subscribe();
    // The subscriber connects in the background; publish until it is listening.
    let sent = envelope("system.webhook.processed")?;
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            publisher.publish(&sent).await?;
            if let Ok(Ok(got)) =
                tokio::time::timeout(Duration::from_millis(100), events.recv()).await
            {
                return Ok::<_, Box<dyn std::error::Error>>(got);
            }
        }
    })
    .await??;
    assert_eq!(*got, sent);
    shutdown.cancel();
    Ok(())
}
