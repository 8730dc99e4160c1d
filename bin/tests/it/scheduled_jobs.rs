//! The scheduled jobs' handlers on both databases: daily reports (one row and one event per
//! tenant and day, however often the slot runs), the cleanups, and the pipeline sweep.

use chrono::{Duration, Utc};
use otto_db::entities::{daily_report, recording_session, task};
use otto_runtime::AppContext;
use otto_runtime::jobs::Queue;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{CallSeed, TestDatabase, TestResult, config, seed_call, seed_company};

on_both_databases!(
    daily_reports_are_written_once_per_tenant_and_day,
    missing_reports_of_the_last_week_are_written_once,
    cleanups_remove_only_what_has_expired,
    the_sweep_enqueues_the_missing_step_of_stalled_calls,
);

async fn context(db: &TestDatabase) -> Result<AppContext, Box<dyn std::error::Error>> {
    Ok(AppContext::build(
        config(
            db,
            &[("UWC_BASE_URL", "http://127.0.0.1:9"), ("UWC_API_KEY", "k")],
        ),
        CancellationToken::new(),
    )
    .await?)
}

async fn run(ctx: &AppContext, job: &str, payload: serde_json::Value) -> TestResult {
    let handler = otto::registry(&ctx.config)
        .get(job)
        .ok_or(format!("no handler for {job}"))?;
    handler
        .run(&payload, ctx)
        .await
        .map_err(|e| format!("{job}: {e}"))?;
    Ok(())
}

async fn daily_reports_are_written_once_per_tenant_and_day(db: TestDatabase) -> TestResult {
    let ctx = context(&db).await?;
    let slot = Utc::now();
    let yesterday = slot - Duration::days(1);
    seed_company(&ctx, "org_rep_a").await?;
    seed_company(&ctx, "org_rep_b").await?;
    let analysis = |objections: &[&str]| Some(json!({ "objections": objections }));
    for (booked, objections) in [(true, vec!["price"]), (false, vec!["Price", "timing"])] {
        let seed = CallSeed {
            booked,
            analysis: analysis(&objections),
            at: Some(yesterday),
            ..CallSeed::default()
        };
        seed_call(&ctx, "org_rep_a", seed).await?;
    }
    // Today's call belongs to tomorrow's report; tenant B's to B's.
    seed_call(&ctx, "org_rep_a", CallSeed::default()).await?;
    let for_b = CallSeed {
        at: Some(yesterday),
        ..CallSeed::default()
    };
    seed_call(&ctx, "org_rep_b", for_b).await?;

    let payload = json!({ "schedule": "generate-daily-reports", "slot": slot });
    run(&ctx, "reports.daily", payload.clone()).await?;
    run(&ctx, "reports.daily", payload).await?;

    let reports = daily_report::Entity::find().all(&ctx.db).await?;
    assert_eq!(reports.len(), 2, "one per tenant, whatever the reruns");
    let a = reports
        .iter()
        .find(|r| r.company_id == "org_rep_a")
        .ok_or("no report for A")?;
    assert_eq!(a.report_date, yesterday.format("%Y-%m-%d").to_string());
    assert_eq!(a.metrics["calls"], 2);
    assert_eq!(a.metrics["booked"], 1);
    assert_eq!(a.metrics["booking_rate"], 0.5);
    assert_eq!(
        a.metrics["top_objections"],
        json!([{"objection": "price", "count": 2}, {"objection": "timing", "count": 1}])
    );
    let b = reports
        .iter()
        .find(|r| r.company_id == "org_rep_b")
        .ok_or("no report for B")?;
    assert_eq!(b.metrics["calls"], 1);
    let events = otto_db::entities::outbox_event::Entity::find()
        .filter(otto_db::entities::outbox_event::Column::Event.eq("analytics.daily_recap.ready"))
        .count(&ctx.db)
        .await?;
    assert_eq!(events, 2, "one recap event per report");
    ctx.db.clone().close().await?;
    Ok(())
}

/// A tenant that has existed for a month and lacks all but one report of the last seven days
/// gets the six missing; a tenant created three days ago gets only the days it existed; a rerun
/// writes nothing.
async fn missing_reports_of_the_last_week_are_written_once(db: TestDatabase) -> TestResult {
    use otto_db::entities::company;
    use sea_orm::sea_query::Expr;
    let ctx = context(&db).await?;
    let slot = Utc::now();
    for (tenant, age_days) in [("org_old", 30), ("org_new", 3)] {
        seed_company(&ctx, tenant).await?;
        company::Entity::update_many()
            .col_expr(
                company::Column::CreatedAt,
                Expr::value(slot - Duration::days(age_days)),
            )
            .filter(company::Column::Id.eq(tenant))
            .exec(&ctx.db)
            .await?;
    }
    let two_days_ago = slot - Duration::days(2);
    let payload = json!({ "schedule": "generate-daily-reports", "slot": slot - Duration::days(1) });
    run(&ctx, "reports.daily", payload).await?;
    let before = daily_report::Entity::find().count(&ctx.db).await?;
    assert_eq!(before, 2, "both tenants have the report of {two_days_ago}");

    let payload = json!({ "schedule": "check-missing-reports", "slot": slot });
    run(&ctx, "reports.check_missing", payload.clone()).await?;
    run(&ctx, "reports.check_missing", payload).await?;

    let reports = daily_report::Entity::find().all(&ctx.db).await?;
    let dates = |tenant: &str| {
        let mut dates: Vec<String> = reports
            .iter()
            .filter(|r| r.company_id == tenant)
            .map(|r| r.report_date.clone())
            .collect();
        dates.sort();
        dates
    };
    let days_back = |from: i64, to: i64| -> Vec<String> {
        (from..=to)
            .rev()
            .map(|back| (slot - Duration::days(back)).format("%Y-%m-%d").to_string())
            .collect()
    };
    assert_eq!(
        dates("org_old"),
        days_back(1, 7),
        "the last seven days, once each"
    );
    assert_eq!(
        dates("org_new"),
        days_back(1, 3),
        "only the days it existed"
    );
    ctx.db.clone().close().await?;
    Ok(())
}

async fn cleanups_remove_only_what_has_expired(db: TestDatabase) -> TestResult {
    let ctx = context(&db).await?;
    let now = Utc::now();
    seed_company(&ctx, "org_clean").await?;
    let tasks = [
        ("completed", now - Duration::days(120), false),
        ("completed", now - Duration::days(10), true),
        ("open", now - Duration::days(400), true),
    ];
    for (status, updated, _) in &tasks {
        task::Entity::insert(task::ActiveModel {
            id: Set(Uuid::now_v7()),
            company_id: Set("org_clean".into()),
            assignee_user_id: Set(None),
            lead_id: Set(None),
            title: Set(format!("{status} task")),
            unique_key: Set(None),
            due_at: Set(None),
            status: Set((*status).into()),
            completed_at: Set(None),
            created_at: Set(*updated),
            updated_at: Set(*updated),
        })
        .exec_without_returning(&ctx.db)
        .await?;
    }
    let sessions = [
        ("open", Some(now - Duration::hours(1)), "deleted"),
        ("open", Some(now + Duration::hours(1)), "open"),
        ("completed", Some(now - Duration::hours(1)), "completed"),
    ];
    let tenant = otto_domain::TenantId::try_from("org_clean")?;
    let mut ids = Vec::new();
    let mut keys = Vec::new();
    for (status, expires, _) in &sessions {
        let id = Uuid::now_v7();
        ids.push(id);
        // Each session has its audio stored.
        let key = otto_service::recordings::object_key(&tenant, id);
        let mut writer = ctx.storage.writer(&key, 1024);
        writer
            .write(bytes::Bytes::from_static(b"RIFF....WAVE"))
            .await?;
        writer.finish().await?;
        keys.push(key);
        recording_session::Entity::insert(recording_session::ActiveModel {
            id: Set(id),
            company_id: Set("org_clean".into()),
            user_id: Set("user_rep".into()),
            appointment_id: Set(None),
            status: Set((*status).into()),
            audio_key: Set(Some(keys[keys.len() - 1].as_str().to_owned())),
            started_at: Set(now - Duration::days(9)),
            ended_at: Set(None),
            expires_at: Set(*expires),
            lead_id: Set(None),
            content_type: Set(Some("audio/wav".into())),
            size_bytes: Set(Some(12)),
            call_id: Set(None),
            created_at: Set(now - Duration::days(9)),
            updated_at: Set(now - Duration::days(9)),
        })
        .exec_without_returning(&ctx.db)
        .await?;
    }
    let payload = json!({ "schedule": "test", "slot": now });
    run(&ctx, "maintenance.cleanup_old_tasks", payload.clone()).await?;
    run(&ctx, "maintenance.cleanup_ephemeral_sessions", payload).await?;

    let kept = task::Entity::find().all(&ctx.db).await?;
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter()
            .all(|t| t.updated_at > now - Duration::days(100) || t.status == "open")
    );
    for ((id, key), (_, _, expected)) in ids.iter().zip(&keys).zip(sessions) {
        let row = recording_session::Entity::find_by_id(*id)
            .one(&ctx.db)
            .await?;
        let object = ctx.storage.size(key).await?;
        match expected {
            "deleted" => {
                assert!(row.is_none(), "an open session past its expiry is deleted");
                assert_eq!(object, None, "with its audio");
            }
            status => {
                assert_eq!(row.map(|r| r.status).as_deref(), Some(status));
                assert_eq!(object, Some(12), "its audio stays");
            }
        }
    }
    ctx.db.clone().close().await?;
    Ok(())
}

async fn the_sweep_enqueues_the_missing_step_of_stalled_calls(db: TestDatabase) -> TestResult {
    let ctx = context(&db).await?;
    let stalled = Some(Utc::now() - Duration::minutes(10));
    seed_company(&ctx, "org_sweep").await?;
    let untranscribed = CallSeed {
        recording: true,
        at: stalled,
        ..CallSeed::default()
    };
    let unanalysed = CallSeed {
        recording: true,
        transcript: Some("hello".into()),
        at: stalled,
        ..CallSeed::default()
    };
    let undrafted = CallSeed {
        recording: true,
        transcript: Some("hello".into()),
        analysis: Some(json!({"objections": [], "sentiment": "neutral", "booking_intent": "low"})),
        at: stalled,
        ..CallSeed::default()
    };
    let fresh = CallSeed {
        recording: true,
        ..CallSeed::default()
    };
    for seed in [untranscribed, unanalysed, undrafted, fresh] {
        seed_call(&ctx, "org_sweep", seed).await?;
    }
    run(
        &ctx,
        "transcriptions.process_pending",
        json!({ "schedule": "process-pending-transcriptions", "slot": Utc::now() }),
    )
    .await?;
    let mut names = Vec::new();
    for queue in [Queue::Asr, Queue::Analysis, Queue::Followups] {
        while let Some(job) = ctx
            .queue
            .reserve(&[queue], std::time::Duration::from_secs(30))
            .await?
        {
            assert_eq!(job.payload["tenant_id"], "org_sweep");
            names.push(job.name.clone());
            ctx.queue.complete(&job).await?;
        }
    }
    names.sort();
    assert_eq!(
        names,
        ["analysis.run", "asr.transcribe", "followups.draft"],
        "one job per stalled call; the fresh call is left to its own job"
    );
    ctx.db.clone().close().await?;
    Ok(())
}
