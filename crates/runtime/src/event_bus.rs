//! The event bus that carries envelopes to every API process (and from there to WebSockets).
//! In-process in embedded mode; Redis pub/sub when Otto runs as several processes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use otto_domain::EventEnvelope;
use redis::AsyncCommands;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Envelopes a local subscriber may lag behind before it starts losing the oldest.
const LOCAL_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("event bus redis pool error: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("event could not be encoded: {0}")]
    Json(#[from] serde_json::Error),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Sends `envelope` to every subscriber of every process.
    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError>;
    /// Envelopes published from now on, from any process.
    fn subscribe(&self) -> broadcast::Receiver<Arc<EventEnvelope>>;
}

/// One process: a broadcast channel.
pub struct InProcessBus {
    local: broadcast::Sender<Arc<EventEnvelope>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self {
            local: broadcast::channel(LOCAL_CAPACITY).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError> {
        // No receiver is not an error: nobody is listening yet.
        let _ = self.local.send(Arc::new(envelope.clone()));
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<EventEnvelope>> {
        self.local.subscribe()
    }
}

/// Many processes: `PUBLISH` on one Redis channel, and one subscriber task per process that
/// feeds the local broadcast channel. The task never waits on a local receiver (a lagging one
/// loses the oldest envelopes instead), so Redis never sees this process as a slow consumer;
/// it reconnects and resubscribes by itself after Redis restarts.
pub struct RedisBus {
    pool: deadpool_redis::Pool,
    channel: String,
    local: broadcast::Sender<Arc<EventEnvelope>>,
}

impl RedisBus {
    /// Starts the subscriber task; it stops when `shutdown` is cancelled.
    ///
    /// # Errors
    /// When `redis_url` is not a valid Redis URL.
    pub fn start(
        redis_url: &str,
        pool: deadpool_redis::Pool,
        prefix: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, BusError> {
        let client = redis::Client::open(redis_url)?;
        let channel = format!("{prefix}events");
        let local = broadcast::channel(LOCAL_CAPACITY).0;
        tokio::spawn(subscribe_forever(
            client,
            channel.clone(),
            local.clone(),
            shutdown,
        ));
        Ok(Self {
            pool,
            channel,
            local,
        })
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, envelope: &EventEnvelope) -> Result<(), BusError> {
        let payload = serde_json::to_string(envelope)?;
        let mut conn = self.pool.get().await?;
        let _: i64 = conn.publish(&self.channel, payload).await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<EventEnvelope>> {
        self.local.subscribe()
    }
}

async fn subscribe_forever(
    client: redis::Client,
    channel: String,
    local: broadcast::Sender<Arc<EventEnvelope>>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let session = relay_messages(&client, &channel, &local, &mut delay);
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = session => result,
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "event bus subscription lost; reconnecting");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn relay_messages(
    client: &redis::Client,
    channel: &str,
    local: &broadcast::Sender<Arc<EventEnvelope>>,
    delay: &mut Duration,
) -> Result<(), redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    *delay = Duration::from_millis(100);
    tracing::debug!(channel, "event bus subscribed");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        match serde_json::from_str::<EventEnvelope>(&payload) {
            Ok(envelope) => {
                let _ = local.send(Arc::new(envelope));
            }
            Err(err) => tracing::warn!(error = %err, "event bus dropped a malformed envelope"),
        }
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::Io,
        "pub/sub stream ended",
    )))
}
