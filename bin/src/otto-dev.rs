//! `otto-dev`: tools for running Otto on one machine.

mod mock_uwc;

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
        /// Never call Otto back (results only by polling).
        #[arg(long)]
        no_callbacks: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::MockUwc {
            port,
            api_key,
            hmac_secret,
            complete_after_ms,
            no_callbacks,
        } => {
            let settings = mock_uwc::MockSettings {
                api_key,
                hmac_secret,
                complete_after: Duration::from_millis(complete_after_ms),
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
