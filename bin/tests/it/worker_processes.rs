//! The job system through the real binaries, on PostgreSQL and Redis: a worker killed with
//! SIGKILL mid-job loses nothing (a second worker finishes the job once), and two schedulers
//! fire each slot once, the standby taking over when the leader is killed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otto_db::entities::{schedule_run, shunya_job};
use otto_domain::jobs::{JobKind, TranscribeCall};
use otto_domain::{TenantId, TraceId};
use otto_runtime::AppContext;
use redis::AsyncCommands;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    CallSeed, TestDatabase, TestResult, config, eventually, redis_prefix, redis_url, seed_call,
    seed_company,
};

const WORKER: &str = env!("CARGO_BIN_EXE_otto-worker");
const SCHEDULER: &str = env!("CARGO_BIN_EXE_otto-scheduler");

/// A distributed deployment's shared services: a fresh PostgreSQL database (migrated) and a
/// private Redis prefix.
struct Deployment {
    ctx: AppContext,
    db: TestDatabase,
    prefix: String,
}

impl Deployment {
    async fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let db = TestDatabase::postgres().await?;
        let prefix = redis_prefix();
        let ctx = AppContext::build(
            config(
                &db,
                &[("REDIS_URL", &redis_url()), ("REDIS_PREFIX", &prefix)],
            ),
            CancellationToken::new(),
        )
        .await?;
        Ok(Self { ctx, db, prefix })
    }

    /// `binary` configured for this deployment, with `extra` settings.
    fn process(&self, binary: &str, extra: &[(&str, &str)]) -> Result<Child, std::io::Error> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", self.db.url())
            .env("REDIS_URL", redis_url())
            .env("REDIS_PREFIX", &self.prefix)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null());
        for (key, value) in extra {
            command.env(key, value);
        }
        command.spawn()
    }
}

fn sigterm(child: &mut Child) -> Result<(), Box<dyn std::error::Error>> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_sigkilled_worker_completes_once_on_another() -> TestResult {
    let deployment = Deployment::new().await?;
    let ctx = &deployment.ctx;
    // UWC takes 3 s to accept a recording: long enough to kill the worker while it waits.
    let uwc = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/asr/batch"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(serde_json::json!({"job_id": "uwc_job_kill", "status": "queued"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&uwc)
        .await;
    let tenant = "org_kill";
    seed_company(ctx, tenant).await?;
    let call_id = seed_call(
        ctx,
        tenant,
        CallSeed {
            recording: true,
            ..CallSeed::default()
        },
    )
    .await?;
    let job = TranscribeCall {
        tenant_id: TenantId::try_from(tenant)?,
        call_id: call_id.into(),
        trace_id: TraceId::generate(),
    };
    ctx.queue.push(job.to_job()?).await?;
    let uwc_url = uwc.uri();
    let settings = [
        ("UWC_BASE_URL", uwc_url.as_str()),
        ("UWC_API_KEY", "k"),
        ("UWC_HMAC_SECRET", "s"),
        ("WORKER_QUEUES", "asr"),
        ("WORKER_LEASE_SECONDS", "2"),
    ];

    let mut first = deployment.process(WORKER, &settings)?;
    let submitted = eventually(Duration::from_secs(20), || async {
        uwc.received_requests().await.is_some_and(|r| r.len() == 1)
    })
    .await;
    assert!(submitted, "the first worker never started the job");
    let _ = first.kill(); // SIGKILL: no chance to hand the job back.
    first.wait()?;
    let rows = || async {
        shunya_job::Entity::find()
            .filter(shunya_job::Column::CallId.eq(call_id))
            .count(&ctx.db)
            .await
            .unwrap_or(0)
    };
    assert_eq!(rows().await, 0, "the killed worker finished nothing");

    let mut second = deployment.process(WORKER, &settings)?;
    let finished = eventually(Duration::from_secs(30), || async {
        let queued: u64 = ctx
            .queue
            .lengths()
            .await
            .map(|l| l.iter().map(|(_, n)| n).sum())
            .unwrap_or(1);
        rows().await == 1 && queued == 0
    })
    .await;
    sigterm(&mut second)?;
    assert!(
        finished,
        "the second worker did not finish the job after the lease expired"
    );
    assert_eq!(rows().await, 1, "the job's effect happened once");
    let requests = uwc.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2, "one killed attempt, one that completed");
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.headers.get("idempotency-key").cloned())
        .collect();
    assert_eq!(
        keys[0], keys[1],
        "both attempts carry the same idempotency key"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_fire_each_slot_once_and_the_standby_takes_over() -> TestResult {
    let deployment = Deployment::new().await?;
    let ctx = &deployment.ctx;
    let settings = [("SCHEDULE_OVERRIDES", "purge-sent-outbox-events=1s")];
    let mut schedulers = vec![
        deployment.process(SCHEDULER, &settings)?,
        deployment.process(SCHEDULER, &settings)?,
    ];
    let fired = || async {
        schedule_run::Entity::find()
            .filter(schedule_run::Column::Name.eq("purge-sent-outbox-events"))
            .count(&ctx.db)
            .await
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(20), || async { fired().await >= 3 }).await,
        "the 1-second schedule does not fire"
    );

    let mut redis = otto_runtime::redis_pool::build(&redis_url(), 2)?
        .get()
        .await?;
    let key = format!("{}scheduler:leader", deployment.prefix);
    let holder: String = redis.get(&key).await?;
    let leader_pid: u32 = holder.split(':').next().unwrap_or_default().parse()?;
    let leader = schedulers
        .iter()
        .position(|c| c.id() == leader_pid)
        .ok_or("the lock names neither scheduler")?;
    let mut killed = schedulers.remove(leader);
    let _ = killed.kill();
    killed.wait()?;
    let killed_at = Instant::now();
    let before = fired().await;
    let resumed = eventually(Duration::from_secs(20), || async { fired().await > before }).await;
    let handover = killed_at.elapsed();
    eprintln!("standby fired its first slot {handover:?} after the leader was killed");
    assert!(resumed, "the standby never took over");
    assert!(
        handover < Duration::from_secs(13),
        "takeover took {handover:?}; the lock expires after 10 s"
    );
    let holder: String = redis.get(&key).await?;
    assert!(
        holder.starts_with(&format!("{}:", schedulers[0].id())),
        "{holder}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for child in &mut schedulers {
        sigterm(child)?;
    }

    // Each slot claimed once (the unique constraint), and each claim enqueued exactly one job.
    let slots = schedule_run::Entity::find().count(&ctx.db).await?;
    let jobs: u64 = ctx.queue.lengths().await?.iter().map(|(_, n)| n).sum();
    assert_eq!(jobs, slots, "one job per fired slot");
    let runs = schedule_run::Entity::find()
        .filter(schedule_run::Column::Name.eq("purge-sent-outbox-events"))
        .all(&ctx.db)
        .await?;
    let mut distinct: Vec<_> = runs.iter().map(|r| r.slot).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), runs.len());
    Ok(())
}

/// A worker SIGKILLed while Twilio accepts a text (the create was received, the row not yet
/// updated): after the lease expires another worker's retry finds the message by listing and
/// adopts it; Twilio saw one create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_of_a_sigkilled_worker_is_adopted_not_sent_twice() -> TestResult {
    use otto_db::entities::message;
    use otto_domain::jobs::SendSms;
    use sea_orm::ActiveValue::Set;

    let deployment = Deployment::new().await?;
    let ctx = &deployment.ctx;
    let twilio = MockServer::start().await;
    let messages = "/2010-04-01/Accounts/ACkill/Messages.json";
    Mock::given(method("POST"))
        .and(path(messages))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SMkill", "status": "queued"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(messages))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"messages": [
                {"sid": "SMkill", "status": "sent", "body": "See you Tuesday"}
            ]})),
        )
        .mount(&twilio)
        .await;
    let tenant = "org_smskill";
    seed_company(ctx, tenant).await?;
    let (id, now) = (uuid::Uuid::now_v7(), chrono::Utc::now());
    message::Entity::insert(message::ActiveModel {
        id: Set(id),
        company_id: Set(tenant.to_owned()),
        lead_id: Set(None),
        direction: Set("outbound".to_owned()),
        from_number: Set("+15557654321".to_owned()),
        to_number: Set("+15559990000".to_owned()),
        body: Set("See you Tuesday".to_owned()),
        provider: Set("twilio".to_owned()),
        provider_sid: Set(None),
        status: Set("queued".to_owned()),
        send_attempted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&ctx.db)
    .await?;
    let job = SendSms {
        tenant_id: TenantId::try_from(tenant)?,
        message_id: id,
        trace_id: TraceId::generate(),
    };
    ctx.queue.push(job.to_job()?).await?;
    let twilio_url = twilio.uri();
    let settings = [
        ("TWILIO_ACCOUNT_SID", "ACkill"),
        ("TWILIO_AUTH_TOKEN", "kill-token"),
        ("TWILIO_API_URL", twilio_url.as_str()),
        ("WORKER_QUEUES", "default"),
        ("WORKER_LEASE_SECONDS", "2"),
    ];
    let creates = || async {
        twilio
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .count()
    };
    let stored = || async {
        message::Entity::find_by_id(id)
            .one(&ctx.db)
            .await
            .ok()
            .flatten()
            .and_then(|m| m.provider_sid)
    };

    let mut first = deployment.process(WORKER, &settings)?;
    let reached = eventually(Duration::from_secs(20), || async { creates().await == 1 }).await;
    assert!(reached, "the first worker never called Twilio");
    let _ = first.kill(); // SIGKILL while Twilio holds the request.
    first.wait()?;
    assert_eq!(stored().await, None, "the killed worker recorded nothing");

    let mut second = deployment.process(WORKER, &settings)?;
    let adopted = eventually(Duration::from_secs(30), || async {
        stored().await.as_deref() == Some("SMkill")
    })
    .await;
    sigterm(&mut second)?;
    assert!(
        adopted,
        "the retry should adopt the message Twilio already has"
    );
    assert_eq!(creates().await, 1, "Twilio saw one create");
    Ok(())
}

/// A missed inbound call of `tenant` from `phone`.
async fn missed_call(
    ctx: &AppContext,
    tenant: &str,
    phone: &str,
) -> Result<uuid::Uuid, Box<dyn std::error::Error>> {
    use otto_db::entities::{call, lead};
    use sea_orm::sea_query::Expr;
    let lead_id = crate::helpers::seed_lead(ctx, tenant, None).await?;
    lead::Entity::update_many()
        .col_expr(lead::Column::Phone, Expr::value(phone))
        .filter(lead::Column::Id.eq(lead_id))
        .exec(&ctx.db)
        .await?;
    let call_id = seed_call(ctx, tenant, CallSeed::default()).await?;
    call::Entity::update_many()
        .col_expr(call::Column::Answered, Expr::value(false))
        .col_expr(call::Column::Status, Expr::value("no-answer"))
        .col_expr(call::Column::LeadId, Expr::value(lead_id))
        .filter(call::Column::Id.eq(call_id))
        .exec(&ctx.db)
        .await?;
    Ok(call_id)
}

/// Two schedulers and two workers over missed calls: each call gets one task and at most one
/// Bland call, and a company inside its quiet hours (in its own zone) gets tasks only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_calls_get_one_task_and_at_most_one_bland_call() -> TestResult {
    use otto_db::entities::{call, company, task};
    use sea_orm::sea_query::Expr;
    let deployment = Deployment::new().await?;
    let ctx = &deployment.ctx;
    let bland = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/calls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "status": "success", "call_id": "bl-1", "message": "Call successfully queued."
        })))
        .mount(&bland)
        .await;
    seed_company(ctx, "org_open").await?;
    seed_company(ctx, "org_quiet").await?;
    // org_quiet is in Chicago and inside its quiet hours now (an hour either side).
    let chicago_now =
        chrono::Utc::now().with_timezone(&chrono::FixedOffset::west_opt(6 * 3600).ok_or("offset")?);
    let around = |hours: i64| {
        (chicago_now + chrono::Duration::hours(hours))
            .format("%H:%M")
            .to_string()
    };
    company::Entity::update_many()
        .col_expr(company::Column::MissedCallCallbacks, Expr::value(true))
        .exec(&ctx.db)
        .await?;
    company::Entity::update_many()
        .col_expr(company::Column::TimeZone, Expr::value("-06:00"))
        .col_expr(company::Column::QuietHoursStart, Expr::value(around(-1)))
        .col_expr(company::Column::QuietHoursEnd, Expr::value(around(1)))
        .filter(company::Column::Id.eq("org_quiet"))
        .exec(&ctx.db)
        .await?;
    let mut open_calls = Vec::new();
    for n in 0..3 {
        open_calls.push(missed_call(ctx, "org_open", &format!("+1555200000{n}")).await?);
    }
    for n in 0..2 {
        missed_call(ctx, "org_quiet", &format!("+1555300000{n}")).await?;
    }
    let bland_url = bland.uri();
    let settings = [
        ("SCHEDULE_OVERRIDES", "process-missed-calls=1s"),
        ("BLAND_API_URL", bland_url.as_str()),
        ("BLAND_API_KEY", "bland-key"),
    ];
    let mut processes = vec![
        deployment.process(SCHEDULER, &settings)?,
        deployment.process(SCHEDULER, &settings)?,
        deployment.process(WORKER, &settings)?,
        deployment.process(WORKER, &settings)?,
    ];
    let runs = || async {
        schedule_run::Entity::find()
            .filter(schedule_run::Column::Name.eq("process-missed-calls"))
            .count(&ctx.db)
            .await
            .unwrap_or(0)
    };
    let tasks = || async {
        task::Entity::find()
            .filter(task::Column::UniqueKey.starts_with("missed:"))
            .count(&ctx.db)
            .await
            .unwrap_or(0)
    };
    let settled = eventually(Duration::from_secs(30), || async {
        tasks().await == 5 && bland.received_requests().await.unwrap_or_default().len() >= 3
    })
    .await;
    assert!(settled, "tasks: {}", tasks().await);
    // More slots fire and run on both workers: nothing more is created or dialed.
    let seen = runs().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            runs().await >= seen + 3
        })
        .await
    );
    let dialed = bland.received_requests().await.unwrap_or_default();
    for process in &mut processes {
        sigterm(process)?;
    }
    assert_eq!(tasks().await, 5, "one task per missed call");
    assert_eq!(
        dialed.len(),
        3,
        "one Bland call per missed call of the open company"
    );
    let mut numbers: Vec<String> = dialed
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter_map(|b| b["phone_number"].as_str().map(str::to_owned))
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["+15552000000", "+15552000001", "+15552000002"]);
    let quiet = call::Entity::find()
        .filter(call::Column::CompanyId.eq("org_quiet"))
        .filter(call::Column::CallbackRequestedAt.is_not_null())
        .count(&ctx.db)
        .await?;
    assert_eq!(quiet, 0, "quiet hours: no callback claimed");
    for id in open_calls {
        let row = call::Entity::find_by_id(id)
            .one(&ctx.db)
            .await?
            .ok_or("call")?;
        assert_eq!(row.bland_call_id.as_deref(), Some("bl-1"));
    }
    Ok(())
}
