use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use otto_api::auth::dev_token;
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::{AppContext, Config};
use sea_orm::{ConnectionTrait, Database};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The server the tests may create databases on (overridable for other machines).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A database that exists for one test and is removed when dropped.
pub enum TestDatabase {
    Sqlite { path: PathBuf },
    Postgres { name: String },
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("otto-test-{}.db", Uuid::new_v4().simple()));
        Self::Sqlite { path }
    }

    pub async fn postgres() -> Result<Self, sea_orm::DbErr> {
        let name = format!("otto_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(postgres_admin_url()).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        Ok(Self::Postgres { name })
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres { name } => {
                let admin = postgres_admin_url();
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                format!("{base}/{name}")
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Self::Postgres { name } => {
                let name = name.clone();
                // Drop runs outside any runtime guarantee; use a private one on its own thread.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async {
                        if let Ok(admin) = Database::connect(postgres_admin_url()).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Configuration for a test: port 0, the given database, migrations on start, quiet logs.
pub fn config(db: &TestDatabase, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), db.url()),
        ("MIGRATE_ON_START".to_owned(), "true".to_owned()),
        ("HTTP_WORKERS".to_owned(), "2".to_owned()),
        ("SHUTDOWN_GRACE_SECONDS".to_owned(), "1".to_owned()),
        // Objects are keyed by fresh ids, so every test may share one directory.
        (
            "STORAGE_DIR".to_owned(),
            std::env::temp_dir()
                .join("otto-test-storage")
                .display()
                .to_string(),
        ),
    ]);
    for (key, value) in extra {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    match Config::from_map(&vars) {
        Ok(config) => config,
        Err(err) => panic!("test configuration is invalid: {err}"),
    }
}

/// A unique Redis key prefix per test, so tests never see each other's keys.
pub fn redis_prefix() -> String {
    format!("otto-test:{}:", Uuid::new_v4().simple())
}

/// A running application; stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub ctx: AppContext,
    pub client: reqwest::Client,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Declared last: dropped after the server has been told to stop.
    _db: Option<TestDatabase>,
}

impl TestApp {
    pub async fn spawn(
        db: TestDatabase,
        extra: &[(&str, &str)],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let ctx = AppContext::build(config(&db, extra), CancellationToken::new()).await?;
        let mut app = Self::start(ctx)?;
        app._db = Some(db);
        Ok(app)
    }

    /// Spawns the app on a port chosen here (tests whose `PUBLIC_BASE_URL` must name it): a
    /// port found free can be taken by another test before the app binds it, so a refused
    /// bind is tried again on another port.
    pub async fn spawn_on_chosen_port(
        db: TestDatabase,
        vars_for_port: impl Fn(u16) -> Vec<(&'static str, String)>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut last_error = None;
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut vars = vars_for_port(port);
            vars.push(("PORT", port.to_string()));
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let ctx = AppContext::build(config(&db, &vars), CancellationToken::new()).await?;
            match Self::start(ctx) {
                Ok(mut app) => {
                    app._db = Some(db);
                    return Ok(app);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| "no port could be bound".into()))
    }

    /// Starts the application on an already built context (tests that subscribe first).
    pub fn start(ctx: AppContext) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with_routes(ctx, |_| {})
    }

    /// Starts the application with extra routes mounted (tests of guards).
    pub fn start_with_routes(
        ctx: AppContext,
        extra: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let app = otto::api_with_routes(ctx, extra)?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let ctx = app.context().clone();
        let server = tokio::spawn(app.run_until_stopped());
        Ok(Self {
            address,
            ctx,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            server: Some(server),
            _db: None,
        })
    }

    /// A development token for `user` as `role` in `tenant` (trusted outside production).
    pub fn token(&self, tenant: &str, user: &str, role: Role) -> String {
        let (Ok(tenant), Ok(user)) = (TenantId::try_from(tenant), UserId::try_from(user)) else {
            panic!("bad test ids {tenant} {user}");
        };
        match dev_token::mint(
            &self.ctx.config,
            &tenant,
            &user,
            role,
            Duration::from_secs(600),
        ) {
            Ok(token) => token,
            Err(err) => panic!("cannot mint a test token: {err}"),
        }
    }

    /// A request carrying `token` as its bearer.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// An authenticated request with an optional JSON body: its status and JSON answer (`null`
    /// when the answer has no JSON body).
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
        let mut request = self.authed(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        ))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(self.url(path)).send().await
    }

    /// Stops the server and its background loops, and waits for them.
    pub async fn stop(mut self) {
        self.ctx.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.ctx.db.clone().close().await.ok();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private redis-server this test may stop and start again on the same port.
pub struct DisposableRedis {
    child: Option<std::process::Child>,
    pub port: u16,
}

impl DisposableRedis {
    /// On a free port.
    pub fn start() -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_on(
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
        )
    }

    pub fn start_on(port: u16) -> Result<Self, Box<dyn std::error::Error>> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Self {
            child: Some(child),
            port,
        })
    }

    /// On a free port, once it accepts connections.
    pub async fn started() -> Result<Self, Box<dyn std::error::Error>> {
        let redis = Self::start()?;
        let port = redis.port;
        let up = eventually(Duration::from_secs(5), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        if !up {
            return Err(format!("redis-server on port {port} did not start").into());
        }
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DisposableRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A company row for tests that bypass the API.
pub async fn seed_company(ctx: &AppContext, tenant: &str) -> Result<(), sea_orm::DbErr> {
    use otto_db::entities::company;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = chrono::Utc::now();
    company::Entity::insert(company::ActiveModel {
        id: Set(tenant.to_owned()),
        name: Set(format!("{tenant} HVAC")),
        time_zone: Set("UTC".to_owned()),
        callrail_company_id: Set(None),
        lockdown_mode: Set(false),
        missed_call_callbacks: Set(false),
        quiet_hours_start: Set(None),
        quiet_hours_end: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&ctx.db)
    .await?;
    Ok(())
}

/// What a seeded call holds.
#[derive(Default)]
pub struct CallSeed {
    pub recording: bool,
    pub transcript: Option<String>,
    pub analysis: Option<serde_json::Value>,
    pub booked: bool,
    /// Created and last changed at (default: now).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A call row of `tenant` for tests that bypass the webhooks.
pub async fn seed_call(
    ctx: &AppContext,
    tenant: &str,
    seed: CallSeed,
) -> Result<Uuid, sea_orm::DbErr> {
    use otto_db::entities::call;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let at = seed.at.unwrap_or_else(chrono::Utc::now);
    let id = Uuid::now_v7();
    call::Entity::insert(call::ActiveModel {
        id: Set(id),
        company_id: Set(tenant.to_owned()),
        lead_id: Set(None),
        provider: Set("callrail".to_owned()),
        provider_call_id: Set(format!("CAL{}", id.simple())),
        direction: Set(Some("inbound".to_owned())),
        answered: Set(Some(true)),
        duration_seconds: Set(Some(60)),
        recording_url: Set(seed
            .recording
            .then(|| format!("https://rec.example.com/{id}.mp3"))),
        transcript: Set(seed.transcript),
        objections: Set(seed
            .analysis
            .as_ref()
            .and_then(|a| a.get("objections").cloned())),
        analysis: Set(seed.analysis),
        booked: Set(seed.booked),
        notes: Set(None),
        status: Set("completed".to_owned()),
        started_at: Set(Some(at)),
        asr_provider: Set(None),
        callback_requested_at: Set(None),
        bland_call_id: Set(None),
        recording_key: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_without_returning(&ctx.db)
    .await?;
    Ok(id)
}

/// A lead of `tenant` assigned to `assignee`, for tests that bypass the API.
pub async fn seed_lead(
    ctx: &AppContext,
    tenant: &str,
    assignee: Option<&str>,
) -> Result<Uuid, sea_orm::DbErr> {
    use otto_db::entities::lead;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let (id, now) = (Uuid::now_v7(), chrono::Utc::now());
    lead::Entity::insert(lead::ActiveModel {
        id: Set(id),
        company_id: Set(tenant.to_owned()),
        name: Set(Some("Pat".to_owned())),
        phone: Set(None),
        email: Set(None),
        source: Set(None),
        status: Set("new".to_owned()),
        assigned_user_id: Set(assignee.map(str::to_owned)),
        sms_opted_out: Set(false),
        version: Set(1),
        address: Set(None),
        property: Set(None),
        property_status: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&ctx.db)
    .await?;
    Ok(id)
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket of `token`'s user subscribed to `channel` (the subscription confirmed).
pub async fn subscribed(
    app: &TestApp,
    token: &str,
    channel: &str,
) -> Result<Ws, Box<dyn std::error::Error>> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = app.url("/ws").replace("http://", "ws://");
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let subscribe = serde_json::json!({"type": "subscribe", "channel": channel});
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    next_frame(&mut ws, |v| v["type"] == "subscribed").await?;
    Ok(ws)
}

/// The next text frame `wanted` accepts, within 5 s.
pub async fn next_frame(
    ws: &mut Ws,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await?
            .ok_or("socket closed")??;
        if let Message::Text(text) = frame {
            let value: serde_json::Value = serde_json::from_str(&text)?;
            if wanted(&value) {
                return Ok(value);
            }
        }
    }
}
