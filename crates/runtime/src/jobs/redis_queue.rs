use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::Pool;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{DeadJob, JobQueue, LeasedJob, NewJob, Queue, QueueError};

/// Jobs in Redis. Per queue a `ready` sorted set (score: when due) and a `leased` one (score:
/// when the lease ends); job bodies, attempt counts and last errors in hashes. Every move between
/// sets is one Lua script, so a job is always in exactly one set, and a finished job is deleted
/// outright (nothing accumulates).
#[derive(Clone)]
pub struct RedisJobQueue {
    pool: Pool,
    prefix: String,
}

#[derive(Serialize, Deserialize)]
struct StoredJob {
    queue: String,
    name: String,
    payload: Value,
    max_attempts: u32,
}

/// Wake-up tokens kept per queue; more would only wake workers that find nothing.
const WAKE_TOKENS: isize = 64;
/// Unclaimed tokens vanish after this: by then a polling worker has found the job anyway, and
/// an idle system keeps no keys.
const WAKE_TOKEN_TTL_MS: i64 = 2000;

/// Requeues expired leases of this queue, then leases its next due job.
const RESERVE: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #ids == 0 then return false end
local id = ids[1]
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', KEYS[2], ARGV[2], id)
local attempts = redis.call('HINCRBY', KEYS[4], id, 1)
return {id, redis.call('HGET', KEYS[3], id), attempts}
";

/// Moves a job from `leased` to the sorted set KEYS[2] at score ARGV[2]; records ARGV[3] as its
/// last error and adds ARGV[4] to its attempt count.
const MOVE_FROM_LEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[4], ARGV[1], ARGV[4]) end
return 1
";

const COMPLETE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
";

/// Pushes back the lease end of a job still leased under this attempt.
const EXTEND: &str = r"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return 0 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 1
";

const RETRY_DEAD: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], 0)
return 1
";

impl RedisJobQueue {
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}jobs:{suffix}", self.prefix)
    }

    fn ready(&self, queue: &str) -> String {
        self.key(&format!("{queue}:ready"))
    }

    /// A short list of wake-up tokens: an idle worker blocks on it instead of sleeping.
    fn wake(&self, queue: &str) -> String {
        self.key(&format!("{queue}:wake"))
    }

    fn leased(&self, queue: &str) -> String {
        self.key(&format!("{queue}:leased"))
    }

    async fn move_from_lease(
        &self,
        job: &LeasedJob,
        to: &str,
        score: i64,
        error: &str,
        attempts_delta: i64,
    ) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = Script::new(MOVE_FROM_LEASE)
            .key(self.leased(&job.queue))
            .key(to)
            .key(self.key("errors"))
            .key(self.key("attempts"))
            .arg(&job.id)
            .arg(score)
            .arg(error)
            .arg(attempts_delta)
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    async fn push(&self, job: NewJob) -> Result<String, QueueError> {
        let id = Uuid::now_v7().to_string();
        let stored = serde_json::to_string(&StoredJob {
            queue: job.queue.as_str().to_owned(),
            name: job.name,
            payload: job.payload,
            max_attempts: job.max_attempts,
        })?;
        let wake = self.wake(job.queue.as_str());
        let mut conn = self.pool.get().await?;
        redis::pipe()
            .atomic()
            .hset(self.key("data"), &id, stored)
            .zadd(self.ready(job.queue.as_str()), &id, millis(job.run_at))
            .lpush(&wake, 1)
            .ltrim(&wake, 0, WAKE_TOKENS - 1)
            .pexpire(&wake, WAKE_TOKEN_TTL_MS)
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(id)
    }

    async fn wait_for_work(&self, queues: &[Queue], timeout: Duration) {
        let keys: Vec<String> = queues.iter().map(|q| self.wake(q.as_str())).collect();
        let waited = async {
            let mut conn = self.pool.get().await?;
            redis::cmd("BLPOP")
                .arg(&keys)
                .arg(timeout.as_secs_f64())
                .query_async::<Option<(String, String)>>(&mut *conn)
                .await
                .map_err(QueueError::from)
        };
        // A slow or broken Redis must not make the caller spin: fall back to sleeping.
        match tokio::time::timeout(timeout + Duration::from_millis(100), waited).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => tokio::time::sleep(timeout).await,
        }
    }

    async fn reserve(
        &self,
        queues: &[Queue],
        lease: Duration,
    ) -> Result<Option<LeasedJob>, QueueError> {
        let now = Utc::now();
        let deadline =
            now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let mut conn = self.pool.get().await?;
        for queue in queues {
            let leased: Option<(String, Option<String>, u32)> = Script::new(RESERVE)
                .key(self.ready(queue.as_str()))
                .key(self.leased(queue.as_str()))
                .key(self.key("data"))
                .key(self.key("attempts"))
                .arg(millis(now))
                .arg(millis(deadline))
                .invoke_async(&mut *conn)
                .await?;
            let Some((id, body, attempts)) = leased else {
                continue;
            };
            let Some(body) = body else {
                // Its body was deleted by a completion racing an expired lease: nothing to run.
                let _: () = conn.zrem(self.leased(queue.as_str()), &id).await?;
                continue;
            };
            let stored: StoredJob = serde_json::from_str(&body)?;
            return Ok(Some(LeasedJob {
                id,
                queue: stored.queue,
                name: stored.name,
                payload: stored.payload,
                attempts,
                max_attempts: stored.max_attempts,
            }));
        }
        Ok(None)
    }

    async fn complete(&self, job: &LeasedJob) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = Script::new(COMPLETE)
            .key(self.leased(&job.queue))
            .key(self.key("data"))
            .key(self.key("attempts"))
            .key(self.key("errors"))
            .arg(&job.id)
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }

    async fn fail(
        &self,
        job: &LeasedJob,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), QueueError> {
        match retry_at {
            Some(at) => {
                self.move_from_lease(job, &self.ready(&job.queue), millis(at), error, 0)
                    .await
            }
            None => {
                self.move_from_lease(job, &self.key("dead"), millis(Utc::now()), error, 0)
                    .await
            }
        }
    }

    async fn extend(&self, job: &LeasedJob, lease: Duration) -> Result<bool, QueueError> {
        let until =
            Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let mut conn = self.pool.get().await?;
        let extended: i64 = Script::new(EXTEND)
            .key(self.leased(&job.queue))
            .key(self.key("attempts"))
            .arg(&job.id)
            .arg(millis(until))
            .arg(job.attempts)
            .invoke_async(&mut *conn)
            .await?;
        Ok(extended == 1)
    }

    async fn release(&self, job: &LeasedJob) -> Result<(), QueueError> {
        self.move_from_lease(job, &self.ready(&job.queue), millis(Utc::now()), "", -1)
            .await
    }

    async fn lengths(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let mut conn = self.pool.get().await?;
        let mut lengths = Vec::with_capacity(Queue::ALL.len());
        for queue in Queue::ALL {
            let (ready, leased): (u64, u64) = redis::pipe()
                .zcard(self.ready(queue.as_str()))
                .zcard(self.leased(queue.as_str()))
                .query_async(&mut *conn)
                .await?;
            lengths.push((queue.as_str().to_owned(), ready + leased));
        }
        Ok(lengths)
    }

    async fn oldest_due(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>, QueueError> {
        let mut conn = self.pool.get().await?;
        let mut oldest = Vec::with_capacity(Queue::ALL.len());
        for queue in Queue::ALL {
            // The ready set is scored by the time each job becomes due.
            let first: Vec<(String, i64)> = conn
                .zrange_withscores(self.ready(queue.as_str()), 0, 0)
                .await?;
            let due = first
                .first()
                .and_then(|(_, at)| DateTime::<Utc>::from_timestamp_millis(*at));
            oldest.push((queue.as_str().to_owned(), due));
        }
        Ok(oldest)
    }

    async fn dead(&self, limit: u64) -> Result<Vec<DeadJob>, QueueError> {
        let mut conn = self.pool.get().await?;
        let stop = isize::try_from(limit)
            .unwrap_or(isize::MAX)
            .saturating_sub(1);
        let ids: Vec<String> = conn.zrange(self.key("dead"), 0, stop).await?;
        let mut dead = Vec::with_capacity(ids.len());
        for id in ids {
            let (body, attempts, error): (Option<String>, Option<u32>, Option<String>) =
                redis::pipe()
                    .hget(self.key("data"), &id)
                    .hget(self.key("attempts"), &id)
                    .hget(self.key("errors"), &id)
                    .query_async(&mut *conn)
                    .await?;
            let Some(body) = body else { continue };
            let stored: StoredJob = serde_json::from_str(&body)?;
            dead.push(DeadJob {
                id,
                queue: stored.queue,
                name: stored.name,
                attempts: attempts.unwrap_or(0),
                last_error: error,
            });
        }
        Ok(dead)
    }

    async fn retry_dead(&self, id: &str) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let body: Option<String> = conn.hget(self.key("data"), id).await?;
        let Some(body) = body else { return Ok(false) };
        let stored: StoredJob = serde_json::from_str(&body)?;
        let moved: i64 = Script::new(RETRY_DEAD)
            .key(self.key("dead"))
            .key(self.ready(&stored.queue))
            .key(self.key("attempts"))
            .arg(id)
            .arg(millis(Utc::now()))
            .invoke_async(&mut *conn)
            .await?;
        Ok(moved == 1)
    }
}
