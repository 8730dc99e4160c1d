//! Fault drills on the real binaries in distributed mode, each under steady load (signed CallRail
//! deliveries whose recordings the worker submits to UWC, and lead reads): PostgreSQL restarted,
//! Redis killed and restarted, a worker SIGKILLed, the API SIGTERMed mid-request. For each: no
//! 5xx beyond the outage window (inside it, 503 problems or no answer), `/ready` 503 during and
//! 200 after, and afterwards every delivery takes effect exactly once (the refused ones once
//! CallRail retries them), with no manual step. Each prints its figures.

mod cluster;
mod load;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use otto_api::auth::dev_token;
use otto_db::entities::{call, shunya_job};
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::{AppContext, Config};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use tokio_util::sync::CancellationToken;

use self::cluster::{
    API, Deployment, DrillResult, PersistentRedis, PrivatePostgres, Processes, SCHEDULER, WORKER,
    signal, uwc,
};
use self::load::{CALLRAIL_COMPANY, Load, Sample, deliver};
use crate::helpers::{TestDatabase, eventually, redis_url, seed_company};

const TENANT: &str = "org_drill";
/// How long the load runs before the fault and after recovery.
const STEADY: Duration = Duration::from_secs(2);

/// A deployment under drill: its processes, a connection for counting effects, a token.
struct Drill {
    deployment: Deployment,
    processes: Processes,
    ctx: AppContext,
    token: String,
    client: reqwest::Client,
}

impl Drill {
    async fn start(deployment: Deployment) -> DrillResult<Self> {
        let migrated = Command::new(API)
            .env_clear()
            .env("DATABASE_URL", &deployment.database_url)
            .env("LOG_LEVEL", "error")
            .arg("migrate")
            .status()?;
        if !migrated.success() {
            return Err("otto-api migrate failed".into());
        }
        let mut processes = Processes::default();
        for binary in [API, WORKER, SCHEDULER] {
            processes.0.push(deployment.spawn(binary)?);
        }
        let vars = HashMap::from([("DATABASE_URL".to_owned(), deployment.database_url.clone())]);
        let ctx = AppContext::build(Config::from_map(&vars)?, CancellationToken::new()).await?;
        seed_company(&ctx, TENANT).await?;
        let token = token(&ctx, Role::Leadership)?;
        let drill = Self {
            deployment,
            processes,
            ctx,
            token,
            client: load::client()?,
        };
        if !drill.ready_is(200, Duration::from_secs(30)).await {
            return Err("the deployment never became ready".into());
        }
        let mapped = drill
            .client
            .patch(drill.deployment.api_url(&format!("/v1/companies/{TENANT}")))
            .bearer_auth(&drill.token)
            .json(&serde_json::json!({"callrail_company_id": CALLRAIL_COMPANY}))
            .send()
            .await?;
        if mapped.status() != 200 {
            return Err(format!("mapping CallRail failed: {}", mapped.status()).into());
        }
        Ok(drill)
    }

    fn load(&self, run: &str) -> DrillResult<Load> {
        Load::start(self.deployment.api_url(""), self.token.clone(), run)
    }

    async fn ready_is(&self, status: u16, within: Duration) -> bool {
        let url = self.deployment.api_url("/ready");
        eventually(within, || async {
            self.client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == status)
        })
        .await
    }

    /// After the drill: CallRail retries what was refused, then replays everything once more;
    /// every call must exist once and reach UWC once.
    async fn settle(
        &self,
        drill: &str,
        sample: &Sample,
        window: (Instant, Instant),
    ) -> DrillResult<()> {
        let errors = sample.errors_outside(window.0, window.1);
        assert!(
            errors.is_empty(),
            "{drill}: {} errors beyond the outage, the first: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        let base = self.deployment.api_url("");
        let refused = sample.refused();
        for delivery in &refused {
            let answer = deliver(&self.client, &base, &delivery.call).await;
            assert!(
                answer.status == Some(200),
                "{drill}: the retry of {} was not taken: {answer:?}",
                delivery.call
            );
        }
        let mut duplicates = 0;
        for delivery in &sample.deliveries {
            let replay = deliver(&self.client, &base, &delivery.call).await;
            assert_eq!(replay.status, Some(200), "{drill}: replay {replay:?}");
            if replay.processed() {
                duplicates += 1;
            }
        }
        let calls: Vec<String> = sample.deliveries.iter().map(|d| d.call.clone()).collect();
        let stored = call::Entity::find()
            .filter(call::Column::ProviderCallId.is_in(calls.clone()))
            .count(&self.ctx.db)
            .await?;
        let submitted = || async {
            let ids: Vec<uuid::Uuid> = call::Entity::find()
                .select_only()
                .column(call::Column::Id)
                .filter(call::Column::ProviderCallId.is_in(calls.clone()))
                .into_tuple()
                .all(&self.ctx.db)
                .await
                .unwrap_or_default();
            shunya_job::Entity::find()
                .filter(shunya_job::Column::CallId.is_in(ids))
                .count(&self.ctx.db)
                .await
                .unwrap_or(0)
        };
        let all_submitted = eventually(Duration::from_secs(60), || async {
            submitted().await >= calls.len() as u64
        })
        .await;
        // Anything still queued would show up now as a second submission.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let effects = submitted().await;
        println!(
            "fault drill {drill}: sent {} deliveries and {} reads; accepted {}, refused during the \
             outage {} (all taken on retry), calls stored {stored}, recordings submitted to UWC \
             {effects}, duplicates {duplicates}; outage window {:.1} s",
            sample.deliveries.len(),
            sample.reads.len(),
            sample.accepted(),
            refused.len(),
            window.1.duration_since(window.0).as_secs_f64(),
        );
        assert_eq!(
            duplicates, 0,
            "{drill}: a replayed delivery took effect again"
        );
        assert_eq!(stored, calls.len() as u64, "{drill}: calls stored");
        assert!(
            all_submitted,
            "{drill}: not every call reached UWC ({effects} of {stored})"
        );
        assert_eq!(effects, stored, "{drill}: a call reached UWC twice");
        Ok(())
    }
}

fn token(ctx: &AppContext, role: Role) -> DrillResult<String> {
    Ok(dev_token::mint(
        &ctx.config,
        &TenantId::try_from(TENANT)?,
        &UserId::try_from("user_drill")?,
        role,
        Duration::from_secs(3600),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load() -> DrillResult<()> {
    let postgres = PrivatePostgres::started().await?;
    let uwc = uwc(Duration::ZERO).await;
    let drill = Drill::start(Deployment::new(postgres.url(), redis_url(), uwc.uri())?).await?;
    let load = drill.load("pg")?;
    tokio::time::sleep(STEADY).await;

    let down = Instant::now();
    postgres.stop()?;
    assert!(
        drill.ready_is(503, Duration::from_secs(10)).await,
        "/ready stayed 200"
    );
    // Longer than the pool's 5 s acquire timeout: requests waiting for a connection give up.
    tokio::time::sleep(Duration::from_secs(6)).await;
    postgres.start().await?;
    assert!(
        drill.ready_is(200, Duration::from_secs(30)).await,
        "/ready never recovered"
    );
    let up = Instant::now();
    tokio::time::sleep(STEADY).await;

    let sample = load.finish().await?;
    drill.settle("postgres restart", &sample, (down, up)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() -> DrillResult<()> {
    let db = TestDatabase::postgres().await?;
    let mut redis = PersistentRedis::started().await?;
    let uwc = uwc(Duration::ZERO).await;
    let drill = Drill::start(Deployment::new(db.url(), redis.url(), uwc.uri())?).await?;
    let load = drill.load("redis")?;
    tokio::time::sleep(STEADY).await;

    let down = Instant::now();
    redis.kill();
    assert!(
        drill.ready_is(503, Duration::from_secs(10)).await,
        "/ready stayed 200"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.start().await?;
    assert!(
        drill.ready_is(200, Duration::from_secs(30)).await,
        "/ready never recovered"
    );
    let up = Instant::now();
    tokio::time::sleep(STEADY).await;

    let sample = load.finish().await?;
    drill.settle("redis kill", &sample, (down, up)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_under_load() -> DrillResult<()> {
    let db = TestDatabase::postgres().await?;
    // UWC answers slowly, so the worker always has submissions in flight when it is killed.
    let uwc = uwc(Duration::from_millis(300)).await;
    let mut drill = Drill::start(Deployment::new(db.url(), redis_url(), uwc.uri())?).await?;
    let load = drill.load("worker")?;
    tokio::time::sleep(STEADY).await;

    let down = Instant::now();
    let worker = &mut drill.processes.0[1];
    worker.kill()?;
    worker.wait()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replacement = drill.deployment.spawn(WORKER)?;
    drill.processes.0.push(replacement);
    let up = Instant::now();
    assert!(
        drill.ready_is(200, Duration::from_secs(30)).await,
        "/ready never recovered"
    );
    tokio::time::sleep(STEADY).await;

    let sample = load.finish().await?;
    drill.settle("worker SIGKILL", &sample, (down, up)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_sigtermed_mid_request() -> DrillResult<()> {
    let db = TestDatabase::postgres().await?;
    let uwc = uwc(Duration::ZERO).await;
    let mut drill = Drill::start(Deployment::new(db.url(), redis_url(), uwc.uri())?).await?;
    let load = drill.load("api")?;
    tokio::time::sleep(STEADY).await;

    let down = Instant::now();
    let api = &mut drill.processes.0[0];
    signal(api, "TERM")?;
    let status = api.wait()?;
    assert!(
        status.success(),
        "otto-api must drain and exit 0 on SIGTERM, got {status}"
    );
    let replacement = drill.deployment.spawn(API)?;
    drill.processes.0.push(replacement);
    assert!(
        drill.ready_is(200, Duration::from_secs(30)).await,
        "/ready never recovered"
    );
    let up = Instant::now();
    tokio::time::sleep(STEADY).await;

    let sample = load.finish().await?;
    drill.settle("API SIGTERM", &sample, (down, up)).await
}
