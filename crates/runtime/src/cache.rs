//! A small time-to-live cache of computed answers (the dashboard's figures): Redis in
//! distributed mode, so every replica shares an entry, and this process's memory in embedded
//! mode. A cache that fails is a miss: a Redis error never fails the request that asked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use redis::AsyncCommands;

/// Entries kept in memory before expired ones are swept.
const MEMORY_SWEEP_AT: usize = 10_000;

pub enum Cache {
    Memory(Mutex<HashMap<String, (Instant, String)>>),
    Redis { pool: Pool, prefix: String },
}

impl Cache {
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    pub fn redis(pool: Pool, prefix: &str) -> Self {
        Self::Redis {
            pool,
            prefix: format!("{prefix}cache:"),
        }
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        match self {
            Self::Memory(entries) => {
                let entries = entries.lock().unwrap_or_else(|e| e.into_inner());
                entries
                    .get(key)
                    .filter(|(expires, _)| *expires > Instant::now())
                    .map(|(_, value)| value.clone())
            }
            Self::Redis { pool, prefix } => {
                let fetched: Result<Option<String>, String> = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    conn.get(format!("{prefix}{key}"))
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                fetched
                    .inspect_err(|err| tracing::warn!(error = %err, "cache read failed"))
                    .ok()
                    .flatten()
            }
        }
    }

    pub async fn put(&self, key: &str, value: &str, ttl: Duration) {
        match self {
            Self::Memory(entries) => {
                let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if entries.len() >= MEMORY_SWEEP_AT {
                    entries.retain(|_, (expires, _)| *expires > now);
                }
                entries.insert(key.to_owned(), (now + ttl, value.to_owned()));
            }
            Self::Redis { pool, prefix } => {
                let stored: Result<(), String> = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    conn.set_ex(format!("{prefix}{key}"), value, ttl.as_secs().max(1))
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                if let Err(err) = stored {
                    tracing::warn!(error = %err, "cache write failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_memory_entry_lives_for_its_ttl() {
        let cache = Cache::memory();
        cache.put("k", "v", Duration::from_millis(50)).await;
        assert_eq!(cache.get("k").await.as_deref(), Some("v"));
        assert_eq!(cache.get("other").await, None);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get("k").await, None);
    }
}
