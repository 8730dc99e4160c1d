//! The Redis connection pool shared by the bus, the queue, and (later) the rate limiter.

use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime, Timeouts};

/// A lazily connecting pool: building it never touches the network, so a process starts (and
/// `/ready` reports `redis: false`) while Redis is down.
///
/// # Errors
/// When `url` is not a valid Redis URL.
pub fn build(url: &str, max_size: usize) -> Result<Pool, deadpool_redis::CreatePoolError> {
    let mut config = Config::from_url(url);
    let mut pool = deadpool_redis::PoolConfig::new(max_size);
    pool.timeouts = Timeouts {
        wait: Some(Duration::from_secs(2)),
        create: Some(Duration::from_secs(2)),
        recycle: Some(Duration::from_secs(2)),
    };
    config.pool = Some(pool);
    config.create_pool(Some(Runtime::Tokio1))
}

/// `PING`; true when Redis answered.
pub async fn ping(pool: &Pool) -> bool {
    let Ok(mut conn) = pool.get().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut *conn)
        .await
        .is_ok()
}
