//! `otto-dev bench-jobs`: no-op jobs through Redis with Otto's own worker (`Worker` over
//! `RedisJobQueue`, exactly what `otto-worker` runs) hosted in this process. Phase 1 pushes
//! `count` jobs as fast as sixteen pushers can and times enqueue-to-completion of all of them;
//! phase 2 pushes at a steady `rate` per second and measures enqueue-to-start latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use otto_runtime::jobs::{NewJob, Queue};
use otto_runtime::{AppContext, Config};
use otto_worker::{JobError, JobHandler, Registry, Worker, WorkerSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const JOB: &str = "bench.noop";
/// Concurrent pushers of the throughput phase (each waits for its push's reply).
const PUSHERS: u64 = 16;

pub struct BenchArgs {
    pub redis_url: String,
    pub count: u64,
    pub rate: u64,
    pub seconds: u64,
    pub concurrency: usize,
}

/// Records how long each job waited between its push and its start.
struct Probe {
    epoch: Instant,
    done: Arc<AtomicU64>,
    waits_us: Arc<Mutex<Vec<u64>>>,
}

#[async_trait]
impl JobHandler for Probe {
    async fn run(&self, payload: &Value, _ctx: &AppContext) -> Result<(), JobError> {
        let now = self.epoch.elapsed().as_micros() as u64;
        if let Some(sent) = payload.get("sent_us").and_then(Value::as_u64) {
            let mut waits = self.waits_us.lock().unwrap_or_else(|e| e.into_inner());
            waits.push(now.saturating_sub(sent));
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// Runs both phases and prints their figures.
///
/// # Errors
/// When the context cannot be built or Redis refuses a push.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("otto-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let vars = std::collections::HashMap::from([
        ("REDIS_URL".to_owned(), args.redis_url.clone()),
        (
            "REDIS_PREFIX".to_owned(),
            format!("otto-bench:{}:", uuid::Uuid::new_v4().simple()),
        ),
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
        ),
        ("MIGRATE_ON_START".to_owned(), "true".to_owned()),
    ]);
    let ctx = AppContext::build(Config::from_map(&vars)?, CancellationToken::new()).await?;
    let epoch = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let waits = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::default();
    registry.register(
        JOB,
        Probe {
            epoch,
            done: done.clone(),
            waits_us: waits.clone(),
        },
    );
    let mut settings = WorkerSettings::from_context(&ctx);
    settings.queues = vec![Queue::Default];
    settings.concurrency = args.concurrency;
    let worker = tokio::spawn(Worker::new(ctx.clone(), registry, settings).run());
    let job = |epoch: Instant| {
        let sent = epoch.elapsed().as_micros() as u64;
        NewJob::now(Queue::Default, JOB, json!({ "sent_us": sent }))
    };

    // Phase 1: throughput, enqueue to completion.
    let started = Instant::now();
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|i| {
            let queue = ctx.queue.clone();
            let share = args.count / PUSHERS + u64::from(i < args.count % PUSHERS);
            tokio::spawn(async move {
                for _ in 0..share {
                    queue.push(job(epoch)).await?;
                }
                Ok::<_, otto_runtime::jobs::QueueError>(())
            })
        })
        .collect();
    for pusher in pushers {
        pusher.await??;
    }
    let pushed_in = started.elapsed();
    while done.load(Ordering::Relaxed) < args.count {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "throughput: {} no-op jobs in {:.2} s = {:.0} jobs/min ({:.0}/s); pushing alone took {:.2} s",
        args.count,
        elapsed,
        args.count as f64 / elapsed * 60.0,
        args.count as f64 / elapsed,
        pushed_in.as_secs_f64()
    );

    // Phase 2: latency at a steady rate.
    waits.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let target = done.load(Ordering::Relaxed) + args.rate * args.seconds;
    let per_tick = (args.rate / 100).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..(args.seconds * 100) {
        ticker.tick().await;
        for _ in 0..per_tick {
            ctx.queue.push(job(epoch)).await?;
        }
    }
    while done.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sorted = waits.lock().unwrap_or_else(|e| e.into_inner()).clone();
    sorted.sort_unstable();
    println!(
        "latency at {}/s ({} jobs/min) for {} s: enqueue-to-start p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} jobs)",
        args.rate,
        args.rate * 60,
        args.seconds,
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        percentile(&sorted, 1.0),
        sorted.len()
    );
    ctx.shutdown.cancel();
    let _ = worker.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
