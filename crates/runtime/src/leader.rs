//! A Redis leader lock with expiry and renewal: one holder at a time; a holder that dies (stops
//! renewing) loses the lock when it expires, and another process takes over.

use std::time::Duration;

use deadpool_redis::Pool;
use redis::Script;

/// Renews the lock only if this holder still owns it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Releases the lock only if this holder still owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

pub struct LeaderLock {
    pool: Pool,
    key: String,
    holder: String,
    ttl: Duration,
}

impl LeaderLock {
    pub fn new(pool: Pool, key: impl Into<String>, ttl: Duration) -> Self {
        Self {
            pool,
            key: key.into(),
            // The pid first, so an operator (or a test) can tell which process leads.
            holder: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            ttl,
        }
    }

    /// Takes the lock if free, or keeps it if already ours; false when someone else holds it.
    ///
    /// # Errors
    /// When Redis cannot be reached (the caller must then assume it is not the leader).
    pub async fn acquire_or_renew(&self) -> Result<bool, redis::RedisError> {
        let mut conn =
            self.pool.get().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "pool", e.to_string()))
            })?;
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let renewed: i64 = Script::new(RENEW)
            .key(&self.key)
            .arg(&self.holder)
            .arg(ttl_ms)
            .invoke_async(&mut *conn)
            .await?;
        if renewed == 1 {
            return Ok(true);
        }
        let taken: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut *conn)
            .await?;
        Ok(taken.is_some())
    }

    /// Gives the lock up (clean shutdown) so a standby takes over at once.
    ///
    /// # Errors
    /// When Redis cannot be reached (the lock then expires by itself).
    pub async fn release(&self) -> Result<(), redis::RedisError> {
        let mut conn =
            self.pool.get().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "pool", e.to_string()))
            })?;
        let _: i64 = Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.holder)
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }
}
