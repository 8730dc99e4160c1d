//! Where the receptionist's conversations live between turns (SPEC section 16): Redis in
//! distributed mode, so any API replica can answer the next turn, this process's memory in
//! embedded mode; a 30-minute idle time-to-live either way. A turn holds the conversation's lock
//! (`SET NX PX` with a random token, released only by its holder), so a provider's retry or a
//! double click never interleaves with the turn in progress. Unlike the cache, a failure here is
//! an error: a conversation is never silently forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use redis::AsyncCommands;

/// A conversation idle this long is forgotten.
pub const IDLE_TTL: Duration = Duration::from_secs(30 * 60);
/// A lock not released (its holder crashed) lapses after this.
const LOCK_TTL: Duration = Duration::from_secs(30);
const LOCK_POLL: Duration = Duration::from_millis(10);
/// Entries kept in memory before expired ones are swept.
const MEMORY_SWEEP_AT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation store unavailable: {0}")]
    Unavailable(String),
    #[error("another turn of this conversation is still running")]
    Busy,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

#[derive(Default)]
pub struct MemoryState {
    states: HashMap<String, (Instant, String)>,
    locks: HashMap<String, (Instant, String)>,
}

pub enum ConversationStore {
    Memory(Mutex<MemoryState>),
    Redis { pool: Pool, prefix: String },
}

/// A held lock: give it back with [`ConversationStore::unlock`].
#[derive(Debug)]
pub struct TurnLock {
    id: String,
    token: String,
}

/// KEYS: lock, state. ARGV: token, lock ms. `{1, state or ""}` when taken, `{0, ""}` when held.
const LOCK_AND_GET: &str = r"if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('get', KEYS[2]) or ''} else return {0, ''} end";
/// KEYS: lock, state. ARGV: token, state, ttl seconds.
const SAVE_AND_UNLOCK: &str = r"redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3]) if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end return 1";
const UNLOCK: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl ConversationStore {
    pub fn memory() -> Self {
        Self::Memory(Mutex::default())
    }

    pub fn redis(pool: Pool, prefix: &str) -> Self {
        Self::Redis {
            pool,
            prefix: format!("{prefix}conversation:"),
        }
    }

    fn memory_guard(memory: &Mutex<MemoryState>) -> std::sync::MutexGuard<'_, MemoryState> {
        memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored state of `id`, if it is not idle past its time-to-live.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn get(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Memory(memory) => Ok(Self::memory_guard(memory)
                .states
                .get(id)
                .filter(|(expires, _)| *expires > Instant::now())
                .map(|(_, state)| state.clone())),
            Self::Redis { pool, prefix } => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                conn.get(format!("{prefix}{id}")).await.map_err(unavailable)
            }
        }
    }

    /// Stores `state` for `id` for another [`IDLE_TTL`].
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn put(&self, id: &str, state: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(memory) => {
                let mut memory = Self::memory_guard(memory);
                let now = Instant::now();
                if memory.states.len() >= MEMORY_SWEEP_AT {
                    memory.states.retain(|_, (expires, _)| *expires > now);
                }
                memory
                    .states
                    .insert(id.to_owned(), (now + IDLE_TTL, state.to_owned()));
                Ok(())
            }
            Self::Redis { pool, prefix } => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                conn.set_ex(format!("{prefix}{id}"), state, IDLE_TTL.as_secs())
                    .await
                    .map_err(unavailable)
            }
        }
    }

    /// Takes the lock if free and reads the state, in one round trip: `None` when the lock is
    /// held, else the state (`None` inside when there is none).
    async fn try_lock(&self, id: &str, token: &str) -> Result<Option<Option<String>>, StoreError> {
        match self {
            Self::Memory(memory) => {
                let mut memory = Self::memory_guard(memory);
                let now = Instant::now();
                let free = memory
                    .locks
                    .get(id)
                    .is_none_or(|(expires, _)| *expires <= now);
                if !free {
                    return Ok(None);
                }
                memory
                    .locks
                    .insert(id.to_owned(), (now + LOCK_TTL, token.to_owned()));
                let state = memory
                    .states
                    .get(id)
                    .filter(|(expires, _)| *expires > now)
                    .map(|(_, state)| state.clone());
                Ok(Some(state))
            }
            Self::Redis { pool, prefix } => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                let (taken, state): (i64, String) = redis::Script::new(LOCK_AND_GET)
                    .key(format!("{prefix}{id}:lock"))
                    .key(format!("{prefix}{id}"))
                    .arg(token)
                    .arg(LOCK_TTL.as_millis() as u64)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok((taken == 1).then(|| Some(state).filter(|s| !s.is_empty())))
            }
        }
    }

    /// Takes the lock of `id`, waiting up to `wait` for the turn holding it, and reads the
    /// state under it.
    ///
    /// # Errors
    /// `Busy` after `wait`; `Unavailable` when Redis fails.
    pub async fn lock(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<(TurnLock, Option<String>), StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(state) = self.try_lock(id, &token).await? {
                let lock = TurnLock {
                    id: id.to_owned(),
                    token,
                };
                return Ok((lock, state));
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Busy);
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Stores `state` for another [`IDLE_TTL`] and releases `lock`, in one round trip.
    ///
    /// # Errors
    /// When Redis fails (the lock then lapses by itself).
    pub async fn save_and_unlock(&self, lock: TurnLock, state: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(_) => {
                self.put(&lock.id, state).await?;
                self.unlock(lock).await;
                Ok(())
            }
            Self::Redis { pool, prefix } => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                redis::Script::new(SAVE_AND_UNLOCK)
                    .key(format!("{prefix}{}:lock", lock.id))
                    .key(format!("{prefix}{}", lock.id))
                    .arg(&lock.token)
                    .arg(state)
                    .arg(IDLE_TTL.as_secs())
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
        }
    }

    /// Releases `lock` if it is still this holder's (a lapsed lock taken over is left alone).
    pub async fn unlock(&self, lock: TurnLock) {
        let released = match self {
            Self::Memory(memory) => {
                let mut memory = Self::memory_guard(memory);
                if memory
                    .locks
                    .get(&lock.id)
                    .is_some_and(|(_, t)| *t == lock.token)
                {
                    memory.locks.remove(&lock.id);
                }
                Ok(())
            }
            Self::Redis { pool, prefix } => {
                async {
                    let mut conn = pool.get().await.map_err(unavailable)?;
                    redis::Script::new(UNLOCK)
                        .key(format!("{prefix}{}:lock", lock.id))
                        .arg(&lock.token)
                        .invoke_async::<i64>(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    Ok::<(), StoreError>(())
                }
                .await
            }
        };
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release a conversation lock; it lapses");
        }
    }
}
