//! `serve`: bind, print what runs where, serve until SIGTERM/Ctrl-C, finish in-flight requests.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use api::state::AppState;

use crate::compose::{self, Runtime, StartupError};
use crate::config::Config;
use crate::{http_server, telemetry};

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
/// On SIGTERM readiness turns `503` at once; the instance keeps serving for
/// `WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS` (so a load balancer stops sending it traffic), then
/// stops accepting connections, and in-flight requests get
/// `WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS` to finish; background tasks stop. Ctrl-C skips the
/// delay.
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
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };
    let addr = listener.local_addr()?;
    let Runtime {
        state,
        retention,
        deliveries,
        sweeper,
        // Kept alive until the service stops.
        emulator: _emulator,
        demo,
        description,
        pool,
    } = runtime;
    let mut background = tokio::task::JoinSet::new();
    background.spawn(retention.run_forever(RETENTION_EVERY));
    // The webhook side stops claiming work as soon as the instance starts draining; deliveries
    // in flight get the shutdown grace to finish, then their leases are released.
    let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
    let grace = config.connections.shutdown_grace;
    let delivery_worker = tokio::spawn(deliveries.run(workers_stop.clone(), grace));
    background.spawn(sweeper.run(workers_stop));
    background.spawn(upkeep(state.clone(), pool));
    // A warm start: the first request should not wait for an access-token refresh. A failure
    // is only reported (readiness shows it, requests retry it with backoff).
    let gateway = state.0.gateway.clone();
    background.spawn(async move {
        if let Err(e) = gateway.check_credentials().await {
            tracing::warn!(error = %e, "could not obtain a Transak access token at start-up");
        }
    });
    if let Some(listener) = metrics_listener {
        let app = api::http::metrics_router(state.clone());
        let metrics_addr = listener.local_addr()?;
        tracing::info!(%metrics_addr, "serving /metrics on its own listener");
        background.spawn(async move {
            http_server::serve(
                listener,
                app,
                http_server::ConnectionSettings::default(),
                std::future::pending(),
            )
            .await;
        });
    }
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
    let lifecycle_state = state.clone();
    let app = api::http::router_with(state, config.metrics_listen.is_none());
    let delay = config.shutdown_delay;
    let finished = http_server::serve(listener, app, config.connections, async move {
        let signal = shutdown_signal().await;
        lifecycle_state.0.lifecycle.start_draining();
        let _ = stop_workers.send(true);
        // On SIGTERM, keep serving while the load balancer notices that readiness failed
        // (Kubernetes removes the endpoint asynchronously), then stop accepting.
        if signal == Signal::Terminate && !delay.is_zero() {
            tracing::info!(
                ?delay,
                "SIGTERM: not ready any more; still serving for the shutdown delay"
            );
            tokio::time::sleep(delay).await;
        }
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
    })
    .await;
    if tokio::time::timeout(grace + Duration::from_secs(1), delivery_worker)
        .await
        .is_err()
    {
        tracing::warn!("the webhook worker did not stop within the shutdown grace period");
    }
    background.abort_all();
    if finished {
        tracing::info!("stopped: in-flight requests finished");
    } else {
        tracing::warn!(
            grace = ?config.connections.shutdown_grace,
            "stopped: some requests did not finish within the shutdown grace period"
        );
    }
    Ok(())
}

/// Periodic housekeeping: process and database-pool metrics, the metrics recorder's
/// upkeep, and forgetting idle clients of the limiter.
async fn upkeep(state: AppState, pool: Option<sqlx::PgPool>) {
    let process = metrics_process::Collector::new("widget_sessions_");
    process.describe();
    telemetry::describe_runtime_metrics();
    transak::describe_metrics();
    metrics::gauge!(telemetry::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        process.collect();
        if let Some(pool) = &pool {
            telemetry::record_pool(pool);
        }
        state.0.metrics.run_upkeep();
        state.0.clients.forget_idle();
    }
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

/// Which signal asked the instance to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM: an orchestrator is replacing the instance.
    Terminate,
    /// Ctrl-C: someone at a terminal.
    Interrupt,
}

async fn shutdown_signal() -> Signal {
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
        () = ctrl_c => Signal::Interrupt,
        () = terminate => Signal::Terminate,
    }
}
