//! The runtime pieces every Otto process shares: configuration, telemetry, the Redis pool,
//! the event bus, the job queue, the outbox relay, and graceful shutdown.

pub mod cache;
pub mod config;
pub mod context;
pub mod conversations;
pub mod crypto;
pub mod event_bus;
pub mod google_config;
pub mod jobs;
pub mod leader;
pub mod metrics_endpoint;
pub mod metrics_recorder;
pub mod outbox_relay;
pub mod rate_config;
pub mod redis_pool;
pub mod shutdown;
pub mod startup;
pub mod storage;
pub mod storage_config;
pub mod telemetry;
pub mod uwc_config;

pub use config::{Config, ConfigError, Environment, Mode};
pub use context::AppContext;
