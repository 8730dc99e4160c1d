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
