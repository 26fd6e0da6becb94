//! `serve`: bind, print what runs where, serve until SIGTERM/Ctrl-C, finish in-flight requests.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use api::router;

use crate::compose::{self, Runtime, StartupError};
use crate::config::Config;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Start-up failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; set WIDGET_SESSIONS_LISTEN to a free address")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// How often the retention task runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Runs the service until a shutdown signal.
///
/// # Errors
///
/// See [`ServeError`].
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let runtime = compose::build(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let Runtime {
        state,
        retention,
        emulator,
        demo,
        description,
    } = runtime;
    tokio::spawn(retention.run_forever(RETENTION_EVERY));
    tokio::spawn(state.0.metrics.clone().upkeep_every(Duration::from_secs(5)));
    tracing::info!(%addr, public_url = %config.public_base(), backend = %description, "widget-sessions is listening");
    if let Some(demo) = demo {
        print_quickstart(
            &config,
            &addr.to_string(),
            &description,
            &demo.api_key,
            demo.api_secret.expose_secret(),
        );
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped: in-flight requests finished");
    drop(emulator);
    Ok(())
}

/// The zero-configuration banner: the demo credentials, printed once, and a ready-to-paste
/// example. Printed to stdout, not logged.
fn print_quickstart(
    config: &Config,
    addr: &str,
    description: &str,
    api_key: &str,
    api_secret: &str,
) {
    let url = format!("http://{addr}");
    let url_flag = if url == "http://127.0.0.1:8080" {
        String::new()
    } else {
        format!(" --url {url}")
    };
    println!(
        r#"
widget-sessions is running on {url} ({description}).

A demo application was created. Its credentials are shown only this once:
  api key:    {api_key}
  api secret: {api_secret}

Create a session (run it twice: the second call reuses the session), from another terminal:

  cargo run -q -- request{url_flag} --api-key {api_key} --api-secret {api_secret} \
    POST /travel-rule/widget-sessions \
    '{{"userId":"7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44","currency":"BTC","network":"BTC","counterpartyAddress":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}}'

Then open the "widgetUrl" of the answer in a browser: the first open redirects to the
(emulated) Transak widget, any later open says the link was used.
Public base of launch links: {public}. API reference: {url}/api/v1/openapi.json
"#,
        public = config.public_base()
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
