//! `otto-dev`: tools for running Otto on one machine.

mod bench_jobs;
use otto::mock_uwc;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "otto-dev", version, about = "Otto's local development tools.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a mock UWC/Shunya server that checks signatures and calls Otto back.
    MockUwc {
        #[arg(long, default_value_t = 8090)]
        port: u16,
        /// Must equal Otto's UWC_API_KEY.
        #[arg(long, default_value = "dev-uwc-key")]
        api_key: String,
        /// Must equal Otto's UWC_HMAC_SECRET.
        #[arg(long, default_value = "dev-uwc-secret")]
        hmac_secret: String,
        /// How long a transcription takes.
        #[arg(long, default_value_t = 1000)]
        complete_after_ms: u64,
        /// How long an ASR submission or an analysis request takes to answer.
        #[arg(long, default_value_t = 0)]
        respond_after_ms: u64,
        /// Never call Otto back (results only by polling).
        #[arg(long)]
        no_callbacks: bool,
    },
    /// Benchmark no-op jobs through Redis with Otto's worker (see scripts/bench_jobs.sh).
    BenchJobs {
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Jobs of the throughput phase.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Jobs per second of the latency phase.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Worker slots.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::BenchJobs {
            redis_url,
            count,
            rate,
            seconds,
            concurrency,
        } => {
            let args = bench_jobs::BenchArgs {
                redis_url,
                count,
                rate,
                seconds,
                concurrency,
            };
            match bench_jobs::run(args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("otto-dev bench-jobs: {err:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::MockUwc {
            port,
            api_key,
            hmac_secret,
            complete_after_ms,
            respond_after_ms,
            no_callbacks,
        } => {
            let settings = mock_uwc::MockSettings {
                api_key,
                hmac_secret,
                complete_after: Duration::from_millis(complete_after_ms),
                respond_after: Duration::from_millis(respond_after_ms),
                callbacks: !no_callbacks,
            };
            match mock_uwc::serve(port, settings).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("otto-dev mock-uwc: {err}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
