//! Each subcommand checks one finding of docs/jobs.md against apalis-redis 1.0.0 and a local
//! Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`), printing `REPRODUCED` or `FIXED`. Keys
//! live under a fresh queue name per run and are deleted afterwards.
//!
//!   jam           8,000+ jobs due at once: the fetch script's `unpack` fails and the queue jams.
//!   retained      completed jobs stay in Redis (bytes per job after all have finished).
//!   max-attempts  a job allowed 2 attempts is attempted more often (25 hard-coded retries).
//!   all           the three above.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use apalis::prelude::*;
use apalis_redis::{Config, RedisStorage};
use serde::{Deserialize, Serialize};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Probe {
    n: usize,
}

async fn succeed(_probe: Probe, runs: Data<Arc<AtomicUsize>>) -> Result<(), BoxDynError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

async fn fail(_probe: Probe, runs: Data<Arc<AtomicUsize>>) -> Result<(), BoxDynError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Err("this job always fails".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn queue_name(finding: &str) -> String {
    format!("apalis-repro-{finding}-{}", std::process::id())
}

async fn storage(queue: &str) -> Result<RedisStorage<Probe>, Failure> {
    let conn = apalis_redis::connect(redis_url()).await?;
    Ok(RedisStorage::new(conn).with_config(Config::default().queue(queue)))
}

/// Runs a worker of `handler` for at most `limit`, or until `runs` reaches `target`.
async fn run_worker<F, Fut>(
    queue: &str,
    handler: F,
    runs: Arc<AtomicUsize>,
    target: usize,
    limit: Duration,
) -> Result<(), Failure>
where
    F: Fn(Probe, Data<Arc<AtomicUsize>>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    let backend = storage(queue).await?;
    let watched = runs.clone();
    let stop = async move {
        let started = tokio::time::Instant::now();
        while watched.load(Ordering::SeqCst) < target && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), std::io::Error>(())
    };
    let worker = WorkerBuilder::new(format!("{queue}-worker"))
        .backend(backend)
        .data(runs)
        .build(handler);
    if let Err(err) = worker.run_until(stop).await {
        println!("  the worker ended with an error: {err}");
    }
    Ok(())
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<i64, Failure> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

async fn keys_of(
    conn: &mut redis::aio::MultiplexedConnection,
    queue: &str,
) -> Result<Vec<String>, Failure> {
    Ok(redis::cmd("KEYS")
        .arg(format!("*{queue}*"))
        .query_async(conn)
        .await?)
}

async fn clean_up(queue: &str) -> Result<(), Failure> {
    let mut conn = connection().await?;
    for key in keys_of(&mut conn, queue).await? {
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

async fn connection() -> Result<redis::aio::MultiplexedConnection, Failure> {
    Ok(redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?)
}

fn verdict(reproduced: bool) -> &'static str {
    if reproduced { "REPRODUCED" } else { "FIXED" }
}

/// 10,000 jobs scheduled for the same instant: promoting them runs `rpush(unpack(ids))` with
/// more values than Lua's stack allows, every fetch fails, and nothing runs.
async fn jam() -> Result<bool, Failure> {
    const JOBS: usize = 10_000;
    let queue = queue_name("jam");
    let mut backend = storage(&queue).await?;
    let due = SystemTime::now() + Duration::from_secs(20);
    for n in 0..JOBS {
        let task = TaskBuilder::new(Probe { n }).run_at_time(due).build();
        backend.push_task(task).await.map_err(|e| e.to_string())?;
    }
    let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait).await;
    let runs = Arc::new(AtomicUsize::new(0));
    run_worker(&queue, succeed, runs.clone(), JOBS, Duration::from_secs(30)).await?;
    let ran = runs.load(Ordering::SeqCst);
    println!("jam: {ran} of {JOBS} jobs due at once ran within 30 s");
    clean_up(&queue).await?;
    Ok(ran < JOBS)
}

/// 5,000 jobs run to completion; whatever Redis still holds for the queue afterwards is what
/// every completed job leaves behind.
async fn retained() -> Result<bool, Failure> {
    const JOBS: usize = 5_000;
    let queue = queue_name("retained");
    let mut conn = connection().await?;
    let before = used_memory(&mut conn).await?;
    let mut backend = storage(&queue).await?;
    backend
        .push_bulk((0..JOBS).map(|n| Probe { n }).collect())
        .await
        .map_err(|e| e.to_string())?;
    let runs = Arc::new(AtomicUsize::new(0));
    run_worker(&queue, succeed, runs.clone(), JOBS, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = used_memory(&mut conn).await?;
    let keys = keys_of(&mut conn, &queue).await?;
    let per_job = (after - before) / JOBS as i64;
    println!(
        "retained: {} of {JOBS} ran; Redis grew {} bytes ({per_job} B per job), {} keys left: {:?}",
        runs.load(Ordering::SeqCst),
        after - before,
        keys.len(),
        keys.iter().take(6).collect::<Vec<_>>()
    );
    clean_up(&queue).await?;
    Ok(per_job > 100)
}

/// One job allowed 2 attempts that always fails, watched for 20 s.
async fn max_attempts() -> Result<bool, Failure> {
    let queue = queue_name("attempts");
    let mut backend = storage(&queue).await?;
    let task = TaskBuilder::new(Probe { n: 0 }).max_attempts(2).build();
    backend.push_task(task).await.map_err(|e| e.to_string())?;
    let runs = Arc::new(AtomicUsize::new(0));
    run_worker(
        &queue,
        fail,
        runs.clone(),
        usize::MAX,
        Duration::from_secs(20),
    )
    .await?;
    let attempts = runs.load(Ordering::SeqCst);
    println!("max-attempts: a job allowed 2 attempts was attempted {attempts} times in 20 s");
    clean_up(&queue).await?;
    Ok(attempts > 2)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    let mut results = Vec::new();
    if matches!(which.as_str(), "jam" | "all") {
        results.push(("jam", jam().await?));
    }
    if matches!(which.as_str(), "retained" | "all") {
        results.push(("retained", retained().await?));
    }
    if matches!(which.as_str(), "max-attempts" | "all") {
        results.push(("max-attempts", max_attempts().await?));
    }
    if results.is_empty() {
        return Err(format!("unknown finding '{which}' (jam, retained, max-attempts, all)").into());
    }
    for (finding, reproduced) in results {
        println!("{finding}: {}", verdict(reproduced));
    }
    Ok(())
}
