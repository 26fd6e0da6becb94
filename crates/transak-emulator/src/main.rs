//! `transak-emulator`: serves the Transak emulator (refresh token, create widget URL, widget
//! page and the `/_emulator/*` switches) until Ctrl-C or SIGTERM.
//!
//! ```text
//! transak-emulator --listen 127.0.0.1:8090 --api-key KEY --api-secret SECRET \
//!     [--latency-ms N] [--fail-rate F] [--public-url URL]
//! ```
//!
//! Logs go to stdout, filtered by `RUST_LOG` (default `info`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use transak_emulator::{DEFAULT_API_KEY, DEFAULT_API_SECRET, EmulatorConfig};

/// A stand-in for Transak's partner API, for local runs and end-to-end tests.
#[derive(Parser)]
#[command(name = "transak-emulator", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "TRANSAK_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    listen: String,

    /// Partner API key the emulator accepts.
    #[arg(long, env = "TRANSAK_API_KEY", default_value = DEFAULT_API_KEY)]
    api_key: String,

    /// Partner API secret the emulator accepts.
    #[arg(
        long,
        env = "TRANSAK_API_SECRET",
        default_value = DEFAULT_API_SECRET,
        hide_env_values = true,
        hide_default_value = true
    )]
    api_secret: String,

    /// Latency added to every partner-API call, in milliseconds.
    #[arg(long, env = "TRANSAK_EMULATOR_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,

    /// Probability (0..=1) that a partner-API call answers 500.
    #[arg(long, env = "TRANSAK_EMULATOR_FAIL_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    fail_rate: f64,

    /// Base of the widget URLs handed out (default: http://<listen address>).
    #[arg(long, env = "TRANSAK_EMULATOR_PUBLIC_URL")]
    public_url: Option<String>,

    /// Where to send order webhooks (the service's `/webhooks/transak`), e.g.
    /// http://127.0.0.1:8080/webhooks/transak.
    #[arg(long, env = "TRANSAK_EMULATOR_WEBHOOK_URL")]
    webhook_url: Option<String>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|error| format!("not a number: {error}"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("must be between 0 and 1, got {rate}"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "transak emulator failed to start");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), std::io::Error> {
    let config = EmulatorConfig {
        api_key: cli.api_key,
        api_secret: cli.api_secret,
        latency: Duration::from_millis(cli.latency_ms),
        fail_rate: cli.fail_rate,
        public_base_url: cli.public_url,
        webhook_url: cli.webhook_url,
        ..EmulatorConfig::default()
    };
    let listener = TcpListener::bind(&cli.listen).await?;
    let emulator = transak_emulator::serve(listener, config)?;
    tracing::info!(
        listen = %emulator.addr(),
        widget_base_url = %emulator.widget_base_url(),
        latency_ms = cli.latency_ms,
        fail_rate = cli.fail_rate,
        "transak emulator listening"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
