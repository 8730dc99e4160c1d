//! The worker on apalis's runtime: slots gate leasing, a stop hands running jobs back, and an
//! attempt over the job timeout is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use otto_runtime::AppContext;
use otto_runtime::jobs::{NewJob, Queue};
use otto_worker::{JobError, JobHandler, Registry, Worker, WorkerSettings};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestDatabase, TestResult, config, eventually};

/// Counts starts, then waits for a permit of `gate` (forever when none is ever added).
struct Gated {
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl JobHandler for Gated {
    async fn run(&self, _payload: &Value, _ctx: &AppContext) -> Result<(), JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| JobError::Permanent(e.into()))?;
        permit.forget();
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Harness {
    ctx: AppContext,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    worker: tokio::task::JoinHandle<()>,
}

async fn gated_worker(
    db: &TestDatabase,
    slots: usize,
    extra: &[(&str, &str)],
) -> Result<Harness, Box<dyn std::error::Error>> {
    let ctx = AppContext::build(config(db, extra), CancellationToken::new()).await?;
    let (started, finished) = (Arc::default(), Arc::default());
    let gate = Arc::new(Semaphore::new(0));
    let mut registry = Registry::default();
    registry.register(
        "test.gated",
        Gated {
            started: Arc::clone(&started),
            finished: Arc::clone(&finished),
            gate: gate.clone(),
        },
    );
    let settings = WorkerSettings {
        queues: vec![Queue::Default],
        concurrency: slots,
        dedicated: Vec::new(),
        lease: Duration::from_secs(30),
        idle_poll: Duration::from_millis(20),
        retry_base: Duration::from_millis(100),
    };
    let worker = tokio::spawn(Worker::new(ctx.clone(), registry, settings).run());
    Ok(Harness {
        ctx,
        started,
        finished,
        gate,
        worker,
    })
}

async fn push_gated(ctx: &AppContext, count: usize) -> TestResult {
    for _ in 0..count {
        ctx.queue
            .push(NewJob::now(Queue::Default, "test.gated", json!({})))
            .await?;
    }
    Ok(())
}

async fn started_at_least(h: &Harness, count: usize) -> bool {
    eventually(Duration::from_secs(10), || async {
        h.started.load(Ordering::SeqCst) >= count
    })
    .await
}

/// With both slots busy, the worker holds no other job: the three left are all still there for
/// anyone to lease. Once the slots free up, every job runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_leases_only_what_its_slots_can_start() -> TestResult {
    let db = TestDatabase::sqlite();
    let h = gated_worker(&db, 2, &[]).await?;
    push_gated(&h.ctx, 5).await?;
    assert!(started_at_least(&h, 2).await, "two jobs should start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.started.load(Ordering::SeqCst), 2, "only two slots");

    let mut leased_here = Vec::new();
    while let Some(job) = h
        .ctx
        .queue
        .reserve(&[Queue::Default], Duration::from_secs(30))
        .await?
    {
        leased_here.push(job);
    }
    assert_eq!(
        leased_here.len(),
        3,
        "the worker must not hold jobs it cannot start"
    );
    for job in &leased_here {
        h.ctx.queue.release(job).await?;
    }

    h.gate.add_permits(5);
    let drained = eventually(Duration::from_secs(10), || async {
        h.finished.load(Ordering::SeqCst) == 5
    })
    .await;
    assert!(drained, "all five jobs should finish");
    assert_eq!(h.started.load(Ordering::SeqCst), 5, "each job runs once");
    h.ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), h.worker).await??;
    Ok(())
}

/// A job still running when the shutdown grace (1 s here) runs out goes back to the queue with
/// its attempt uncounted, and the worker stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_hands_running_jobs_back_uncounted() -> TestResult {
    let db = TestDatabase::sqlite();
    let h = gated_worker(&db, 2, &[]).await?;
    push_gated(&h.ctx, 1).await?;
    assert!(started_at_least(&h, 1).await, "the job should start");

    h.ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), h.worker)
        .await
        .map_err(|_| "the worker must stop within the grace")??;

    let job = h
        .ctx
        .queue
        .reserve(&[Queue::Default], Duration::from_secs(30))
        .await?
        .ok_or("the running job must be back in the queue")?;
    assert_eq!(job.name, "test.gated");
    assert_eq!(job.attempts, 1, "a handed-back attempt is not counted");
    assert_eq!(h.finished.load(Ordering::SeqCst), 0);
    Ok(())
}

/// An attempt over `WORKER_JOB_TIMEOUT_SECONDS` fails and is retried; the retry that finishes in
/// time completes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_over_the_job_timeout_is_retried() -> TestResult {
    let db = TestDatabase::sqlite();
    let h = gated_worker(&db, 1, &[("WORKER_JOB_TIMEOUT_SECONDS", "1")]).await?;
    push_gated(&h.ctx, 1).await?;
    assert!(
        started_at_least(&h, 1).await,
        "the first attempt should start"
    );
    // The first attempt blocks past the timeout; the retry finds a permit.
    assert!(
        started_at_least(&h, 2).await,
        "the timed-out attempt must be retried"
    );
    h.gate.add_permits(1);
    let done = eventually(Duration::from_secs(10), || async {
        h.finished.load(Ordering::SeqCst) == 1
            && h.ctx
                .queue
                .lengths()
                .await
                .map(|l| l.iter().all(|(_, n)| *n == 0))
                .unwrap_or(false)
    })
    .await;
    assert!(done, "the retry should complete the job");
    assert!(h.ctx.queue.dead(10).await?.is_empty(), "nothing dead");
    h.ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), h.worker).await??;
    Ok(())
}
