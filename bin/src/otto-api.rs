//! `otto-api`: the HTTP server (and, with nothing configured, the whole product).

mod replay;

use clap::{Parser, Subcommand};
use otto_api::auth::dev_token;
use otto_domain::{Role, TenantId, UserId};
use otto_runtime::context::StartError;
use otto_runtime::telemetry::Service;
use otto_runtime::{AppContext, startup};

#[derive(Parser)]
#[command(
    name = "otto-api",
    version,
    about = "Otto's HTTP API. With nothing configured it runs the whole product on SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on HOST:PORT (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print a development session token (refused in staging and production).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// leadership, csr or rep (Clerk names such as org:admin are accepted).
        #[arg(long)]
        role: String,
        #[arg(long, default_value_t = 12)]
        ttl_hours: u64,
    },
    /// Sign a sample provider delivery with this deployment's secrets and send it.
    ReplayWebhook(replay::Replay),
    /// Development only: the whole product with a demo company and a day of calls, bookings,
    /// tasks and texts (idempotent), then serve until Ctrl-C.
    Demo,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut config = startup::config_or_exit();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Token {
        tenant,
        user,
        role,
        ttl_hours,
    } = &command
    {
        return print_token(&config, tenant, user, role, *ttl_hours);
    }
    if let Command::ReplayWebhook(replay) = command {
        otto_runtime::startup::install_crypto_provider();
        return match replay::run(&config, replay).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("otto-api replay-webhook: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Command::Demo = command {
        return match otto::demo::run().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("otto-api demo: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = match command {
        Command::Serve => {
            let shutdown = startup::init(Service::Api, &config);
            serve(config, shutdown).await
        }
        Command::Migrate => {
            config.database.migrate_on_start = true;
            let shutdown = startup::init(Service::Api, &config);
            AppContext::build(config, shutdown).await.map(|_| {
                tracing::info!("migrations applied");
            })
        }
        Command::Token { .. } | Command::ReplayWebhook(_) | Command::Demo => Ok(()),
    };
    otto_runtime::telemetry::otlp::shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "otto-api failed");
            eprintln!("otto-api: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: otto_runtime::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), StartError> {
    let ctx = AppContext::build(config, shutdown).await?;
    let app = otto::api(ctx)?;
    let ctx = app.context();
    tracing::info!(
        address = %format!("{}:{}", ctx.config.http.host, app.port()),
        mode = ?ctx.config.mode(),
        environment = ctx.config.environment.as_str(),
        "otto-api listening"
    );
    app.run_until_stopped().await?;
    tracing::info!("otto-api stopped");
    Ok(())
}

fn print_token(
    config: &otto_runtime::Config,
    tenant: &str,
    user: &str,
    role: &str,
    ttl_hours: u64,
) -> std::process::ExitCode {
    let parsed = (
        TenantId::try_from(tenant),
        UserId::try_from(user),
        role.parse::<Role>(),
    );
    let (Ok(tenant), Ok(user), Ok(role)) = parsed else {
        eprintln!(
            "otto-api token: --tenant and --user must be ids (letters, digits, _ - . :) and --role leadership, csr or rep"
        );
        return std::process::ExitCode::from(2);
    };
    match dev_token::mint(
        config,
        &tenant,
        &user,
        role,
        std::time::Duration::from_secs(ttl_hours * 3600),
    ) {
        Ok(token) => {
            println!("{token}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("otto-api token: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
