//! The parts of a distributed deployment a drill may break: a private PostgreSQL server (initdb in
//! a scratch directory, started and stopped with `pg_ctl`), a private Redis that keeps its data in
//! an append-only file (as production must), a UWC stand-in, and the three binaries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::eventually;

pub type DrillResult<T> = Result<T, Box<dyn std::error::Error>>;

pub const API: &str = env!("CARGO_BIN_EXE_otto-api");
pub const WORKER: &str = env!("CARGO_BIN_EXE_otto-worker");
pub const SCHEDULER: &str = env!("CARGO_BIN_EXE_otto-scheduler");
pub const CALLRAIL_SECRET: &str = "drill-callrail-secret";
const UWC_KEY: &str = "drill-uwc-key";

fn free_port() -> DrillResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "otto-drill-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

async fn accepts_connections(port: u16) -> bool {
    eventually(Duration::from_secs(30), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await
}

/// A PostgreSQL server of this test's own, so restarting it disturbs no other test.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub async fn started() -> DrillResult<Self> {
        let bin = postgres_bin_dir()?;
        let data = scratch("pg");
        let initdb = bin.join("initdb");
        let status = as_postgres(&initdb)
            .args(["-D", &data.to_string_lossy()])
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("initdb failed in {}", data.display()).into());
        }
        let server = Self {
            bin,
            data,
            port: free_port()?,
        };
        server.start().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn start(&self) -> DrillResult<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
            self.port
        );
        self.pg_ctl(&["start", "-w", "-o", &options])?;
        if !accepts_connections(self.port).await {
            return Err("the private PostgreSQL did not come up".into());
        }
        Ok(())
    }

    /// A fast shutdown: sessions are ended, the server is down when this returns.
    pub fn stop(&self) -> DrillResult<()> {
        self.pg_ctl(&["stop", "-w", "-m", "fast"])
    }

    fn pg_ctl(&self, args: &[&str]) -> DrillResult<()> {
        let log = self.data.join("server.log");
        let status = as_postgres(&self.bin.join("pg_ctl"))
            .args([
                "-D",
                &self.data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
            ])
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl {args:?} failed").into())
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"]);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// PostgreSQL's server programs refuse to run as root: as root, run them as `postgres`.
fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest installed server's programs (Debian keeps them under /usr/lib/postgresql/N/bin).
fn postgres_bin_dir() -> DrillResult<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no PostgreSQL server programs under /usr/lib/postgresql".into())
}

/// A redis-server of this test's own, with an append-only file fsynced on every write: a
/// queue that must survive `kill -9` needs it (docs/deployment.md).
pub struct PersistentRedis {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl PersistentRedis {
    pub async fn started() -> DrillResult<Self> {
        let dir = scratch("redis");
        std::fs::create_dir_all(&dir)?;
        let mut redis = Self {
            dir,
            port: free_port()?,
            child: None,
        };
        redis.start().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) -> DrillResult<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .stdout(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        if !accepts_connections(self.port).await {
            return Err("the private Redis did not come up".into());
        }
        Ok(())
    }

    /// SIGKILL: no chance to flush anything the append-only file does not already hold.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PersistentRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// UWC accepting every recording, answering a repeated `Idempotency-Key` with the same job (as
/// the real service does), after `delay`.
pub async fn uwc(delay: Duration) -> MockServer {
    struct SameJobPerKey(Duration);
    impl Respond for SameJobPerKey {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let key = request
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            ResponseTemplate::new(202)
                .set_body_json(
                    serde_json::json!({"job_id": format!("job-{key}"), "status": "queued"}),
                )
                .set_delay(self.0)
        }
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/asr/batch"))
        .respond_with(SameJobPerKey(delay))
        .mount(&server)
        .await;
    server
}

/// The settings every process of a drill's deployment shares.
pub struct Deployment {
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub uwc_url: String,
    pub api_port: u16,
}

impl Deployment {
    pub fn new(database_url: String, redis_url: String, uwc_url: String) -> DrillResult<Self> {
        Ok(Self {
            database_url,
            redis_url,
            redis_prefix: crate::helpers::redis_prefix(),
            uwc_url,
            api_port: free_port()?,
        })
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    /// `binary` with the deployment's settings: the worker takes a killed worker's job after
    /// 2 s, and the scheduler sweeps for calls whose job was lost every 2 s after a 3 s grace.
    pub fn spawn(&self, binary: &str) -> DrillResult<Child> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("REDIS_PREFIX", &self.redis_prefix)
            .env("PORT", self.api_port.to_string())
            .env("LOG_LEVEL", "error")
            .env("CALLRAIL_WEBHOOK_SECRET", CALLRAIL_SECRET)
            .env("RATE_LIMIT_BURST", "100000")
            .env("RATE_LIMIT_USER", "100000/minute")
            .env("UWC_BASE_URL", &self.uwc_url)
            .env("UWC_API_KEY", UWC_KEY)
            .env("UWC_HMAC_SECRET", "drill-uwc-secret")
            .env("UWC_MAX_RETRIES", "0")
            .env("UWC_POLL_DELAY_SECONDS", "3600")
            .env("WORKER_LEASE_SECONDS", "2")
            .env("SHUTDOWN_GRACE_SECONDS", "5")
            .env("READY_CHECK_TIMEOUT_MS", "500")
            .env("PIPELINE_SWEEP_GRACE_SECONDS", "3")
            .env("SCHEDULE_OVERRIDES", "process-pending-transcriptions=2s")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(command.spawn()?)
    }
}

pub fn signal(child: &Child, name: &str) -> DrillResult<()> {
    Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()?;
    Ok(())
}

/// Every process of a drill, stopped (SIGKILL) when dropped.
#[derive(Default)]
pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
