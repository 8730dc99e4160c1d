//! Configuration: read once from the environment (and `.env`), validated, then passed down.
//! Nothing else in Otto reads environment variables.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::jobs::Queue;
use crate::rate_config::RateLimitConfig;
use crate::uwc_config::UwcConfig;

pub const DEFAULT_SQLITE_URL: &str = "sqlite://otto.db?mode=rwc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Staging,
    Production,
}

impl Environment {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.to_ascii_lowercase().as_str() {
            "" | "development" | "dev" | "local" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "staging" => Ok(Self::Staging),
            "production" | "prod" => Ok(Self::Production),
            other => Err(ConfigError::Invalid {
                name: "ENVIRONMENT",
                reason: format!("'{other}' is not development, test, staging or production"),
            }),
        }
    }

    /// Staging and production require real services and real secrets.
    pub fn is_deployed(self) -> bool {
        matches!(self, Self::Staging | Self::Production)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

/// How the processes are laid out, decided by whether Redis is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `otto-api` alone: in-process bus, database job queue, worker and scheduler inside.
    Embedded,
    /// Redis-backed bus and queues; `otto-worker` and `otto-scheduler` run as their own processes.
    Distributed,
}

/// A secret whose value never reaches a log line or a `Debug` dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration error: {name} is required when ENVIRONMENT={environment}")]
    Missing {
        name: &'static str,
        environment: &'static str,
    },
    #[error("configuration error: {name} still holds a placeholder value; set the real one")]
    Placeholder { name: &'static str },
    #[error("configuration error: {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything Otto reads from the environment, grouped by concern.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub worker: WorkerConfig,
    pub telemetry: TelemetryConfig,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    pub webhooks: WebhookSecrets,
    pub realtime: RealtimeConfig,
    pub integrations: IntegrationsConfig,
    pub schedule: ScheduleConfig,
    pub crm: CrmConfig,
    /// Where documents and recordings are kept, and the upload limits.
    pub storage: crate::storage_config::StorageConfig,
    /// `ENCRYPTION_KEY` (+ `ENCRYPTION_KEYS_PREVIOUS`): secrets at rest; `None` when unset.
    pub keyring: Option<std::sync::Arc<crate::crypto::Keyring>>,
}

/// The CRM's read side.
#[derive(Debug, Clone)]
pub struct CrmConfig {
    /// `DASHBOARD_CACHE_SECONDS` (300): how long dashboard figures are served from the cache.
    pub dashboard_cache_ttl: Duration,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub host: String,
    pub port: u16,
    /// `PUBLIC_BASE_URL`: the URL providers call (Twilio signs it; UWC calls back to it).
    pub public_base_url: Option<String>,
    pub max_body_bytes: usize,
    pub ready_check_timeout: Duration,
    /// HTTP worker threads of `otto-api` (default: one per core).
    pub workers: Option<usize>,
    /// `ALLOWED_ORIGINS`: browser origins (with `*` wildcards) allowed by CORS and as `azp`.
    pub allowed_origins: Vec<String>,
    /// `SHUTDOWN_GRACE_SECONDS` (10): how long requests and jobs may finish after SIGTERM.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    /// `DB_READ_CONNECTIONS` (16): connections tenant reads keep besides the pool, so a read
    /// is one round trip (PostgreSQL only; 0 reads from the pool, which pings each returned
    /// connection).
    pub read_connections: u32,
    /// Apply pending migrations when a process starts (default: only in embedded mode; in
    /// production `otto-api migrate` runs once per release).
    pub migrate_on_start: bool,
    /// `WEBHOOK_BATCH_WINDOW_MS` (2): how long a group commit of webhook deliveries stays open
    /// for more (PostgreSQL only; 0 commits each delivery on its own).
    pub webhook_batch_window: Duration,
    /// `WEBHOOK_BATCH_MAX` (32, at most 60): most deliveries in one group commit.
    pub webhook_batch_max: usize,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL` (or `UPSTASH_REDIS_URL`); set means distributed mode.
    pub url: Option<Secret>,
    /// Prefix of every Redis key and channel, so several deployments (or tests) share a server.
    pub prefix: String,
    /// Connections in the Redis pool (`REDIS_POOL_SIZE`, 32).
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub queues: Vec<Queue>,
    pub concurrency: usize,
    /// `WORKER_QUEUE_CONCURRENCY` (`asr=2,analysis=8`): slots reserved for one queue each; the
    /// other queues of `WORKER_QUEUES` share `WORKER_CONCURRENCY` slots.
    pub queue_concurrency: Vec<(Queue, usize)>,
    /// `WORKER_LEASE_SECONDS` (300): how long a job may run before another worker may take it
    /// over (a worker killed mid-job loses its jobs to others after this).
    pub lease: Duration,
    /// `WORKER_JOB_TIMEOUT_SECONDS` (900): an attempt running longer fails and is retried.
    pub job_timeout: Duration,
    /// Idempotency keys older than this many days are purged (`IDEMPOTENCY_TTL_DAYS`, 90).
    pub idempotency_ttl_days: u32,
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub log_level: String,
    pub redact_pii: bool,
    pub otel_endpoint: Option<String>,
    /// `SENTRY_DSN`: errors and panics are reported there when set.
    pub sentry_dsn: Option<String>,
    /// `METRICS_PORT`: where `otto-worker` and `otto-scheduler` answer `/metrics` (off when unset;
    /// `otto-api` serves `/metrics` on its own port).
    pub metrics_port: Option<u16>,
    pub service_name_api: String,
    pub service_name_worker: String,
}

/// Provider clients' settings.
#[derive(Debug, Clone)]
pub struct IntegrationsConfig {
    pub uwc: UwcConfig,
    pub clerk: ClerkApiConfig,
    pub twilio: TwilioApiConfig,
    pub google: crate::google_config::GoogleConfig,
    pub llm: LlmConfig,
    pub deepgram: DeepgramConfig,
    pub callrail: CallRailApiConfig,
    pub bland: BlandConfig,
}

/// Deepgram, the fallback ASR (SPEC section 17).
#[derive(Debug, Clone)]
pub struct DeepgramConfig {
    /// `DEEPGRAM_API_URL` (`https://api.deepgram.com`).
    pub api_url: String,
    /// `DEEPGRAM_API_KEY`; without it there is no fallback.
    pub api_key: Option<Secret>,
}

/// CallRail's API, to complete a call a webhook left without recording or duration.
#[derive(Debug, Clone)]
pub struct CallRailApiConfig {
    /// `CALLRAIL_API_URL` (`https://api.callrail.com`).
    pub api_url: String,
    /// `CALLRAIL_API_KEY`.
    pub api_key: Option<Secret>,
    /// `CALLRAIL_ACCOUNT_ID`.
    pub account_id: Option<String>,
}

/// Bland, outbound AI calls for missed-call callbacks.
#[derive(Debug, Clone)]
pub struct BlandConfig {
    /// `BLAND_API_URL` (`https://api.bland.ai`).
    pub api_url: String,
    /// `BLAND_API_KEY`; without it callbacks are tasks only.
    pub api_key: Option<Secret>,
}

/// An OpenAI-compatible Chat Completions API (the receptionist's model, SPEC section 16).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `LLM_BASE_URL` (e.g. `https://api.openai.com/v1`); without it the intake script answers.
    pub base_url: Option<String>,
    /// `LLM_API_KEY`.
    pub api_key: Option<Secret>,
    /// `LLM_MODEL` (`gpt-4o-mini`).
    pub model: String,
    /// `LLM_TIMEOUT_SECONDS` (8): one request; one retry follows a timeout or 429/5xx.
    pub timeout: Duration,
}

/// `ENCRYPTION_KEY` and `ENCRYPTION_KEYS_PREVIOUS` as a keyring, checked at load.
fn keyring(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<std::sync::Arc<crate::crypto::Keyring>>, ConfigError> {
    let Some(current) = get("ENCRYPTION_KEY").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let previous = get("ENCRYPTION_KEYS_PREVIOUS").unwrap_or_default();
    crate::crypto::Keyring::new(&current, &previous)
        .map(|k| Some(std::sync::Arc::new(k)))
        .map_err(|e| ConfigError::Invalid {
            name: "ENCRYPTION_KEY",
            reason: e.to_string(),
        })
}

/// A provider's base URL from `name` (trimmed, no trailing slash), else `default`.
pub(crate) fn base_url_or(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> String {
    get(name)
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Twilio's REST API, for outbound SMS (SPEC section 17).
#[derive(Debug, Clone)]
pub struct TwilioApiConfig {
    /// `TWILIO_API_URL` (`https://api.twilio.com`).
    pub api_url: String,
    /// `TWILIO_ACCOUNT_SID`; with `TWILIO_AUTH_TOKEN` it turns sending on.
    pub account_sid: Option<String>,
    /// `TWILIO_FROM_NUMBER`: the sender when the company has no number of its own.
    pub from_number: Option<String>,
}

/// Clerk's Backend API, for the changes Otto makes in Clerk (role changes).
#[derive(Debug, Clone)]
pub struct ClerkApiConfig {
    /// `CLERK_API_URL` (`https://api.clerk.com/v1`).
    pub api_url: String,
    /// `CLERK_SECRET_KEY`; without it (development) a role change is recorded in Otto only.
    pub secret_key: Option<Secret>,
}

/// `SCHEDULE_OVERRIDES`: `name=when` pairs replacing a schedule's timing (tests, local runs),
/// parsed and checked at load; the schedule names are checked when the schedule is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub overrides: Vec<ScheduleOverride>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleOverride {
    pub name: String,
    /// A six-field cron expression (shorthands expanded), or `None` for `off`.
    pub cron: Option<String>,
}

/// WebSocket settings (SPEC section 7).
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Server `ping` frames every this long (`WS_PING_INTERVAL_SECONDS`, 20).
    pub ping_interval: Duration,
    /// No `pong` for this long closes the connection (`WS_PONG_TIMEOUT_SECONDS`, 40).
    pub pong_timeout: Duration,
    /// Messages a connection may have waiting before the oldest are dropped (`WS_BUFFER_SIZE`, 256).
    pub buffer_size: usize,
    /// Envelopes larger than this become pointer messages (`WS_MAX_MESSAGE_BYTES`, 32768).
    pub max_message_bytes: usize,
    /// `DEV_EMIT_KEY`: enables `/ws/test-emit` outside production.
    pub dev_emit_key: Option<Secret>,
}

/// Secrets that authenticate provider webhooks. A provider whose secret is missing has its
/// deliveries refused (401), except CallRail and Bland, which are verified only when set.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub twilio_auth_token: Option<Secret>,
    /// `CLERK_WEBHOOK_SECRET`: one or more `whsec_...` separated by commas or spaces (rotation).
    pub clerk: Vec<Secret>,
    pub uwc_hmac: Option<Secret>,
    pub callrail: Option<Secret>,
    pub bland: Option<Secret>,
}

/// Where session-token signing keys come from (SPEC section 2).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `CLERK_JWT_KEY`: a PEM public key; verification needs no network.
    pub jwt_public_key_pem: Option<String>,
    /// `CLERK_JWKS_URL`, else `{CLERK_ISSUER}/.well-known/jwks.json` when an issuer is set.
    pub jwks_url: Option<String>,
    /// `CLERK_ISSUER`: required `iss` when set.
    pub issuer: Option<String>,
    /// The JWKS is fetched at most once per this window on a miss (`CLERK_JWKS_REFRESH_SECONDS`).
    pub jwks_refresh_interval: Duration,
    /// Trust the repository's development key (`dev/`); never in staging or production.
    pub trust_dev_key: bool,
}

/// Variables whose value must be real (not a placeholder) wherever they are set.
const CHECKED_SECRETS: [&str; 11] = [
    "DATABASE_URL",
    "REDIS_URL",
    "CLERK_SECRET_KEY",
    "CLERK_WEBHOOK_SECRET",
    "TWILIO_AUTH_TOKEN",
    "CALLRAIL_WEBHOOK_SECRET",
    "UWC_HMAC_SECRET",
    "UWC_API_KEY",
    "BLAND_WEBHOOK_SECRET",
    "FILE_URL_SECRET",
    "AWS_SECRET_ACCESS_KEY",
];

impl Config {
    /// Loads `.env` if present, then reads the process environment.
    ///
    /// # Errors
    /// When a variable is missing, invalid, or a placeholder (see [`ConfigError`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the values it leaves unset.
        let _ = dotenvy::dotenv();
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads configuration from `vars` (tests pass their own map).
    ///
    /// # Errors
    /// When a variable is missing, invalid, or a placeholder (see [`ConfigError`]).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());
        let environment = Environment::parse(&get("ENVIRONMENT").unwrap_or_default())?;
        check_placeholders(environment, &get)?;

        let database_url = get("DATABASE_URL").filter(|v| !v.is_empty());
        let redis_url = get("REDIS_URL")
            .or_else(|| get("UPSTASH_REDIS_URL"))
            .filter(|v| !v.is_empty());
        if environment.is_deployed() {
            require_postgres(environment, database_url.as_deref())?;
            if redis_url.is_none() {
                return Err(ConfigError::Missing {
                    name: "REDIS_URL",
                    environment: environment.as_str(),
                });
            }
        }

        let migrate_default = redis_url.is_none();
        let issuer = get("CLERK_ISSUER")
            .filter(|v| !v.is_empty())
            .map(|v| v.trim_end_matches('/').to_owned());
        let auth = AuthConfig {
            // Platforms that cannot hold newlines store the PEM with literal "\n".
            jwt_public_key_pem: get("CLERK_JWT_KEY")
                .filter(|v| !v.is_empty())
                .map(|v| v.replace("\\n", "\n")),
            jwks_url: get("CLERK_JWKS_URL").filter(|v| !v.is_empty()).or_else(|| {
                issuer
                    .as_ref()
                    .map(|i| format!("{i}/.well-known/jwks.json"))
            }),
            issuer,
            jwks_refresh_interval: Duration::from_secs(parse_or(
                &get,
                "CLERK_JWKS_REFRESH_SECONDS",
                60,
            )?),
            trust_dev_key: !environment.is_deployed(),
        };
        let allowed_origins = get("ALLOWED_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| {
                if environment.is_deployed() {
                    Vec::new()
                } else {
                    vec![
                        "http://localhost:*".to_owned(),
                        "http://127.0.0.1:*".to_owned(),
                    ]
                }
            });
        let secret = |name: &str| get(name).filter(|v| !v.is_empty()).map(Secret);
        let port = parse_or(&get, "PORT", 8000)?;
        let webhooks = WebhookSecrets {
            twilio_auth_token: secret("TWILIO_AUTH_TOKEN"),
            clerk: get("CLERK_WEBHOOK_SECRET")
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|v| !v.is_empty())
                .map(|v| Secret(v.to_owned()))
                .collect(),
            uwc_hmac: secret("UWC_HMAC_SECRET"),
            callrail: secret("CALLRAIL_WEBHOOK_SECRET"),
            bland: secret("BLAND_WEBHOOK_SECRET"),
        };
        let realtime = RealtimeConfig {
            ping_interval: Duration::from_secs(parse_or(&get, "WS_PING_INTERVAL_SECONDS", 20)?),
            pong_timeout: Duration::from_secs(parse_or(&get, "WS_PONG_TIMEOUT_SECONDS", 40)?),
            buffer_size: parse_or(&get, "WS_BUFFER_SIZE", 256)?,
            max_message_bytes: parse_or(&get, "WS_MAX_MESSAGE_BYTES", 32 * 1024)?,
            dev_emit_key: get("DEV_EMIT_KEY").filter(|v| !v.is_empty()).map(Secret),
        };
        Ok(Self {
            realtime,
            integrations: IntegrationsConfig {
                uwc: UwcConfig::from_lookup(&get)?,
                clerk: ClerkApiConfig {
                    api_url: base_url_or(&get, "CLERK_API_URL", "https://api.clerk.com/v1"),
                    secret_key: get("CLERK_SECRET_KEY")
                        .filter(|v| !v.is_empty())
                        .map(Secret),
                },
                twilio: TwilioApiConfig {
                    api_url: base_url_or(&get, "TWILIO_API_URL", "https://api.twilio.com"),
                    account_sid: get("TWILIO_ACCOUNT_SID").filter(|v| !v.is_empty()),
                    from_number: get("TWILIO_FROM_NUMBER").filter(|v| !v.is_empty()),
                },
                google: crate::google_config::GoogleConfig::from_lookup(
                    &get,
                    get("PUBLIC_BASE_URL").as_deref().filter(|v| !v.is_empty()),
                ),
                llm: LlmConfig {
                    base_url: get("LLM_BASE_URL")
                        .map(|v| v.trim().trim_end_matches('/').to_owned())
                        .filter(|v| !v.is_empty()),
                    api_key: get("LLM_API_KEY").filter(|v| !v.is_empty()).map(Secret),
                    model: get("LLM_MODEL")
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "gpt-4o-mini".to_owned()),
                    timeout: Duration::from_secs(parse_or(&get, "LLM_TIMEOUT_SECONDS", 8)?),
                },
                deepgram: DeepgramConfig {
                    api_url: base_url_or(&get, "DEEPGRAM_API_URL", "https://api.deepgram.com"),
                    api_key: get("DEEPGRAM_API_KEY")
                        .filter(|v| !v.is_empty())
                        .map(Secret),
                },
                callrail: CallRailApiConfig {
                    api_url: base_url_or(&get, "CALLRAIL_API_URL", "https://api.callrail.com"),
                    api_key: get("CALLRAIL_API_KEY")
                        .filter(|v| !v.is_empty())
                        .map(Secret),
                    account_id: get("CALLRAIL_ACCOUNT_ID").filter(|v| !v.is_empty()),
                },
                bland: BlandConfig {
                    api_url: base_url_or(&get, "BLAND_API_URL", "https://api.bland.ai"),
                    api_key: get("BLAND_API_KEY").filter(|v| !v.is_empty()).map(Secret),
                },
            },
            keyring: keyring(&get)?,
            storage: crate::storage_config::StorageConfig::from_lookup(
                &get,
                environment.is_deployed(),
                port,
            )?,
            schedule: ScheduleConfig {
                overrides: parse_schedule_overrides(get("SCHEDULE_OVERRIDES"))?,
            },
            crm: CrmConfig {
                dashboard_cache_ttl: Duration::from_secs(parse_or(
                    &get,
                    "DASHBOARD_CACHE_SECONDS",
                    300,
                )?),
            },
            webhooks,
            rate_limits: RateLimitConfig::from_lookup(&get)?,
            auth,
            environment,
            http: HttpConfig {
                host: get("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
                port,
                public_base_url: get("PUBLIC_BASE_URL").filter(|v| !v.is_empty()),
                max_body_bytes: parse_or(&get, "MAX_BODY_BYTES", 1024 * 1024)?,
                ready_check_timeout: Duration::from_millis(parse_or(
                    &get,
                    "READY_CHECK_TIMEOUT_MS",
                    1000,
                )?),
                workers: get("HTTP_WORKERS")
                    .filter(|v| !v.is_empty())
                    .map(|raw| {
                        raw.parse().map_err(|e| ConfigError::Invalid {
                            name: "HTTP_WORKERS",
                            reason: format!("'{raw}': {e}"),
                        })
                    })
                    .transpose()?,
                allowed_origins,
                shutdown_grace: Duration::from_secs(parse_or(&get, "SHUTDOWN_GRACE_SECONDS", 10)?),
            },
            database: DatabaseConfig {
                url: Secret(database_url.unwrap_or_else(|| DEFAULT_SQLITE_URL.to_owned())),
                max_connections: parse_or(&get, "DB_MAX_CONNECTIONS", 10)?,
                read_connections: parse_or(&get, "DB_READ_CONNECTIONS", 16)?,
                migrate_on_start: flag_or(&get, "MIGRATE_ON_START", migrate_default)?,
                webhook_batch_window: Duration::from_millis(parse_or(
                    &get,
                    "WEBHOOK_BATCH_WINDOW_MS",
                    2,
                )?),
                // Each delivery is a subtransaction; PostgreSQL caches 64 per backend.
                webhook_batch_max: parse_or(&get, "WEBHOOK_BATCH_MAX", 32)?.clamp(1, 60),
            },
            redis: RedisConfig {
                url: redis_url.map(Secret),
                prefix: get("REDIS_PREFIX").unwrap_or_else(|| "otto:".to_owned()),
                pool_size: parse_or(&get, "REDIS_POOL_SIZE", 32)?,
            },
            worker: WorkerConfig {
                queues: parse_queues(get("WORKER_QUEUES"))?,
                queue_concurrency: parse_queue_concurrency(get("WORKER_QUEUE_CONCURRENCY"))?,
                concurrency: parse_or(&get, "WORKER_CONCURRENCY", 4)?,
                lease: Duration::from_secs(parse_or(&get, "WORKER_LEASE_SECONDS", 300)?),
                job_timeout: Duration::from_secs(parse_or(
                    &get,
                    "WORKER_JOB_TIMEOUT_SECONDS",
                    900,
                )?),
                idempotency_ttl_days: parse_or(&get, "IDEMPOTENCY_TTL_DAYS", 90)?,
            },
            telemetry: TelemetryConfig {
                log_level: get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned()),
                redact_pii: flag_or(&get, "OBS_REDACT_PII", true)?,
                otel_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty()),
                sentry_dsn: get("SENTRY_DSN").filter(|v| !v.trim().is_empty()),
                metrics_port: match get("METRICS_PORT").filter(|v| !v.trim().is_empty()) {
                    Some(raw) => Some(raw.trim().parse().map_err(|e| ConfigError::Invalid {
                        name: "METRICS_PORT",
                        reason: format!("'{raw}': {e}"),
                    })?),
                    None => None,
                },
                service_name_api: get("OTEL_SERVICE_NAME_API")
                    .unwrap_or_else(|| "otto-api".to_owned()),
                service_name_worker: get("OTEL_SERVICE_NAME_WORKER")
                    .unwrap_or_else(|| "otto-worker".to_owned()),
            },
        })
    }

    pub fn mode(&self) -> Mode {
        if self.redis.url.is_some() {
            Mode::Distributed
        } else {
            Mode::Embedded
        }
    }

    pub fn bind_address(&self) -> String {
        format!("{}:{}", self.http.host, self.http.port)
    }
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: format!("'{raw}': {e}"),
        }),
    }
}

/// The one boolean grammar of every flag: `1|true|yes|on` and `0|false|no|off`, any case.
pub(crate) fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The flag `name`, or `default` when unset.
pub(crate) fn flag_or(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => parse_flag(&raw).ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!("'{raw}' is not one of 1, true, yes, on, 0, false, no, off"),
        }),
    }
}

/// `name=when,...`: `when` is a six-field cron expression without commas, a shorthand (`5s`,
/// `2m`, `1h`: every so many seconds, minutes or hours) or `off`.
fn parse_schedule_overrides(raw: Option<String>) -> Result<Vec<ScheduleOverride>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "SCHEDULE_OVERRIDES",
        reason,
    };
    raw.unwrap_or_default()
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, when) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("'{pair}' is not name=when")))?;
            let (name, when) = (name.trim(), when.trim());
            let cron = match when {
                "off" => None,
                _ => {
                    let expression = shorthand(when).unwrap_or_else(|| when.to_owned());
                    <cron::Schedule as std::str::FromStr>::from_str(&expression).map_err(|e| {
                        invalid(format!(
                            "schedule '{name}': '{when}' is not a cron expression: {e}"
                        ))
                    })?;
                    Some(expression)
                }
            };
            Ok(ScheduleOverride {
                name: name.to_owned(),
                cron,
            })
        })
        .collect()
}

/// `5s` -> `*/5 * * * * *`, `2m` -> `0 */2 * * * *`, `1h` -> `0 0 */1 * * *`.
fn shorthand(raw: &str) -> Option<String> {
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let (count, unit) = raw.split_at(split);
    let count: u32 = count.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "s" => Some(format!("*/{count} * * * * *")),
        "m" => Some(format!("0 */{count} * * * *")),
        "h" => Some(format!("0 0 */{count} * * *")),
        _ => None,
    }
}

fn parse_queues(raw: Option<String>) -> Result<Vec<Queue>, ConfigError> {
    let Some(raw) = raw.filter(|v| !v.is_empty()) else {
        return Ok(Queue::ALL.to_vec());
    };
    raw.split(',')
        .map(|name| {
            Queue::parse(name.trim()).ok_or_else(|| ConfigError::Invalid {
                name: "WORKER_QUEUES",
                reason: format!("unknown queue '{}'", name.trim()),
            })
        })
        .collect()
}

fn parse_queue_concurrency(raw: Option<String>) -> Result<Vec<(Queue, usize)>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "WORKER_QUEUE_CONCURRENCY",
        reason,
    };
    raw.unwrap_or_default()
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, slots) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("'{pair}' is not queue=slots")))?;
            let queue = Queue::parse(name.trim())
                .ok_or_else(|| invalid(format!("unknown queue '{}'", name.trim())))?;
            let slots = slots
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(format!("'{slots}' is not a positive number")))?;
            Ok((queue, slots))
        })
        .collect()
}

fn require_postgres(environment: Environment, url: Option<&str>) -> Result<(), ConfigError> {
    match url {
        None => Err(ConfigError::Missing {
            name: "DATABASE_URL",
            environment: environment.as_str(),
        }),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(()),
        Some(_) => Err(ConfigError::Invalid {
            name: "DATABASE_URL",
            reason: format!(
                "ENVIRONMENT={} needs a postgres:// URL",
                environment.as_str()
            ),
        }),
    }
}

fn check_placeholders(
    environment: Environment,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if !environment.is_deployed() {
        return Ok(());
    }
    for name in CHECKED_SECRETS {
        let Some(value) = get(name) else { continue };
        let lower = value.to_ascii_lowercase();
        let placeholder = lower.contains("your_")
            || lower.contains("changeme")
            || lower.contains("change_me")
            || value.is_empty()
            || (environment == Environment::Production && value.starts_with("sk_test_"));
        if placeholder {
            return Err(ConfigError::Placeholder { name });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn queue_concurrency_is_parsed_and_checked() -> Result<(), ConfigError> {
        let config = Config::from_map(&vars(&[("WORKER_QUEUE_CONCURRENCY", "asr=2, analysis=8")]))?;
        assert_eq!(
            config.worker.queue_concurrency,
            vec![(Queue::Asr, 2), (Queue::Analysis, 8)]
        );
        for bad in ["asr", "nope=2", "asr=0", "asr=x"] {
            assert!(
                Config::from_map(&vars(&[("WORKER_QUEUE_CONCURRENCY", bad)])).is_err(),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn nothing_configured_means_embedded_sqlite_on_8000() -> Result<(), ConfigError> {
        let config = Config::from_map(&HashMap::new())?;
        assert_eq!(config.mode(), Mode::Embedded);
        assert_eq!(config.database.url.expose(), DEFAULT_SQLITE_URL);
        assert_eq!(config.bind_address(), "127.0.0.1:8000");
        assert_eq!(config.worker.queues.len(), 7);
        Ok(())
    }

    #[test]
    fn production_requires_postgres_and_redis() {
        let err = Config::from_map(&vars(&[("ENVIRONMENT", "production")]));
        assert_eq!(
            err.err(),
            Some(ConfigError::Missing {
                name: "DATABASE_URL",
                environment: "production"
            })
        );
        let err = Config::from_map(&vars(&[
            ("ENVIRONMENT", "production"),
            ("DATABASE_URL", "postgres://db/otto"),
        ]));
        assert_eq!(
            err.err(),
            Some(ConfigError::Missing {
                name: "REDIS_URL",
                environment: "production"
            })
        );
    }

    #[test]
    fn placeholders_are_refused() {
        let cases = [
            ("TWILIO_AUTH_TOKEN", "your_twilio_token"),
            ("REDIS_URL", "redis://changeme@host"),
            ("CLERK_SECRET_KEY", "sk_test_abc"),
        ];
        for (name, value) in cases {
            let err = Config::from_map(&vars(&[
                ("ENVIRONMENT", "production"),
                ("DATABASE_URL", "postgres://db/otto"),
                ("REDIS_URL", "redis://127.0.0.1"),
                (name, value),
            ]));
            assert!(
                matches!(err, Err(ConfigError::Placeholder { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_queue_is_invalid() {
        let err = Config::from_map(&vars(&[("WORKER_QUEUES", "asr,nope")]));
        assert!(matches!(
            err,
            Err(ConfigError::Invalid {
                name: "WORKER_QUEUES",
                ..
            })
        ));
    }

    #[test]
    fn every_flag_shares_one_grammar() -> Result<(), ConfigError> {
        for (raw, expected) in [
            ("1", true),
            ("Yes", true),
            ("on", true),
            ("0", false),
            ("FALSE", false),
            ("off", false),
        ] {
            let config = Config::from_map(&vars(&[
                ("MIGRATE_ON_START", raw),
                ("OBS_REDACT_PII", raw),
                ("ENABLE_UWC_ASR", raw),
            ]))?;
            assert_eq!(
                (
                    config.database.migrate_on_start,
                    config.telemetry.redact_pii,
                    config.integrations.uwc.features.asr
                ),
                (expected, expected, expected),
                "{raw}"
            );
        }
        for name in ["MIGRATE_ON_START", "OBS_REDACT_PII", "ENABLE_UWC_ASR"] {
            assert!(
                Config::from_map(&vars(&[(name, "maybe")])).is_err(),
                "{name}"
            );
        }
        Ok(())
    }

    #[test]
    fn schedule_overrides_are_parsed_at_load() -> Result<(), ConfigError> {
        let config = Config::from_map(&vars(&[(
            "SCHEDULE_OVERRIDES",
            "poll-shunya-jobs=2s, cleanup-old-tasks=0 */5 * * * *, generate-daily-reports=off",
        )]))?;
        let expected = |name: &str, cron: Option<&str>| ScheduleOverride {
            name: name.to_owned(),
            cron: cron.map(str::to_owned),
        };
        assert_eq!(
            config.schedule.overrides,
            [
                expected("poll-shunya-jobs", Some("*/2 * * * * *")),
                expected("cleanup-old-tasks", Some("0 */5 * * * *")),
                expected("generate-daily-reports", None),
            ]
        );
        for bad in ["poll-shunya-jobs=soon", "poll-shunya-jobs", "x=0 0"] {
            assert!(
                matches!(
                    Config::from_map(&vars(&[("SCHEDULE_OVERRIDES", bad)])),
                    Err(ConfigError::Invalid {
                        name: "SCHEDULE_OVERRIDES",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn secrets_do_not_debug_print() -> Result<(), ConfigError> {
        let config = Config::from_map(&vars(&[("DATABASE_URL", "postgres://u:pw@h/db")]))?;
        assert!(!format!("{config:?}").contains("pw@"));
        Ok(())
    }
}
