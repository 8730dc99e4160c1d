//! `otto-worker`: runs jobs from the queues named by `WORKER_QUEUES`.

use clap::{Parser, Subcommand};
use otto_runtime::telemetry::Service;
use otto_runtime::{AppContext, startup};
use otto_worker::{Worker, WorkerSettings};

#[derive(Parser)]
#[command(name = "otto-worker", version, about = "Otto's job worker.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run jobs until SIGTERM (the default).
    Run,
    /// Inspect or retry dead-lettered jobs.
    #[command(subcommand)]
    Dead(DeadCommand),
}

#[derive(Subcommand)]
enum DeadCommand {
    /// List dead-lettered jobs.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put a dead job back in its queue with a fresh attempt budget.
    Retry { id: String },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = startup::config_or_exit();
    let shutdown = startup::init(Service::Worker, &config);
    let ctx = match AppContext::build(config, shutdown).await {
        Ok(ctx) => ctx,
        Err(err) => {
            eprintln!("otto-worker: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let relay = ctx.spawn_outbox_relay();
            Worker::new(
                ctx.clone(),
                otto::registry(&ctx.config),
                WorkerSettings::from_context(&ctx),
            )
            .run()
            .await;
            let _ = relay.await;
            Ok(())
        }
        Command::Dead(DeadCommand::List { limit }) => ctx.queue.dead(limit).await.map(|jobs| {
            for job in jobs {
                println!(
                    "{}\t{}\t{}\tattempts={}\t{}",
                    job.id,
                    job.queue,
                    job.name,
                    job.attempts,
                    job.last_error.unwrap_or_default()
                );
            }
        }),
        Command::Dead(DeadCommand::Retry { id }) => {
            ctx.queue.retry_dead(&id).await.map(|retried| {
                if retried {
                    println!("{id} re-enqueued");
                } else {
                    println!("{id} is not a dead job");
                }
            })
        }
    };
    ctx.shutdown.cancel();
    otto_runtime::telemetry::otlp::shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("otto-worker: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
