//! [`Application`]: the whole service, built from a configuration and run until stopped —
//! the HTTP server, the webhook delivery worker, the expiry sweeper, retention, the upkeep of
//! metrics and limiters, the access-token warm-up and graceful draining. `main` runs it with
//! the process's signals; every test harness runs the same type with its clock and upstream
//! injected ([`Overrides`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::observability::Metrics;
use api::state::{AppState, ClientLimiter, Lifecycle, RateLimiter, ReadinessCache, Shared};
use app::DeliveryWorker;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::compose::{self, EmbeddedEmulator, Overrides, StartupError, UseCases};
use crate::config::Config;
use crate::{http_server, telemetry};

/// How often the retention task runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// A demo application created for a zero-configuration run.
pub struct DemoApp {
    /// Its API key.
    pub api_key: String,
    /// Its API secret.
    pub api_secret: SecretString,
}

/// What asked a running instance to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: an orchestrator is replacing the instance. Readiness turns `503` at once and
    /// the instance keeps serving for the shutdown delay before it stops accepting.
    Terminate,
    /// Ctrl-C (or a test ending the instance): stop accepting at once.
    Interrupt,
}

/// One instance of the service, built and bound, ready to run.
pub struct Application {
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    address: SocketAddr,
    public_base: String,
    state: AppState,
    use_cases: UseCases,
    demo: Option<DemoApp>,
}

impl Application {
    /// Binds the listeners and builds every part of the service from `config`, with
    /// `overrides` in place of configured adapters. Checks that the at-rest keys open every
    /// sealed value in use (before anything is written), creates (or keeps) the applications
    /// of the apps file, and creates the demo application of a zero-configuration run. Serves nothing until
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    ///
    /// See [`StartupError`].
    pub async fn build(config: Config, overrides: Overrides) -> Result<Self, StartupError> {
        let listener = bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
        let public_base = config.public_base(address);
        let use_cases = UseCases::build(&config, &public_base, overrides).await?;

        // Keys that cannot open what is stored would answer `500` to every application, fail
        // every delivery and refresh the shared Transak token over the one the other
        // instances use: refuse to start instead, naming the records and key ids involved.
        // Checked before anything is written (the apps file below seals its applications
        // under whatever key is configured).
        let report = use_cases
            .keys
            .check()
            .await
            .map_err(|e| StartupError::Keys(format!("cannot check the sealed values: {e}")))?;
        if !report.ok() {
            return Err(StartupError::Keys(format!(
                "{}; `widget-sessions doctor` lists them, and what to do if the key is lost",
                report.describe()
            )));
        }
        let applications = &use_cases.applications;
        if let Some(path) = &config.apps_file {
            applications
                .bootstrap(compose::read_apps_file(path)?)
                .await
                .map_err(|e| StartupError::Applications(e.to_string()))?;
        }
        if config.database_url.is_some()
            && applications
                .list()
                .await
                .map_err(|e| StartupError::Applications(e.to_string()))?
                .is_empty()
        {
            let hint = "no applications yet: create one with `widget-sessions apps create NAME` (it prints the API key and secret once)";
            tracing::warn!("{hint}");
            println!("{hint}");
        }
        let demo = if config.database_url.is_none() && config.apps_file.is_none() {
            let issued = applications
                .create(
                    "demo",
                    None,
                    None,
                    // The zero-configuration run shows the whole flow: its launch links ask
                    // the travel-rule questions before they open the widget.
                    ports::ApplicationSettings {
                        hosted: domain::HostedStep {
                            enabled: true,
                            ..domain::HostedStep::off()
                        },
                        ..ports::ApplicationSettings::default()
                    },
                )
                .await
                .map_err(|e| StartupError::Applications(e.to_string()))?;
            Some(DemoApp {
                api_key: issued.api_key,
                api_secret: issued.api_secret,
            })
        } else {
            None
        };

        let state = AppState(Arc::new(Shared {
            sessions: use_cases.sessions.clone(),
            applications: use_cases.applications.clone(),
            keys: use_cases.keys.clone(),
            webhooks: use_cases.webhooks.clone(),
            orders: use_cases.orders.clone(),
            travel_rule: use_cases.travel_rule.clone(),
            housekeeping: use_cases.stores.housekeeping.clone(),
            gateway: use_cases.gateway.clone(),
            clock: use_cases.clock.clone(),
            rules: config.rules.clone(),
            public_base: public_base.clone(),
            limiter: RateLimiter::new(config.rate_limit),
            clients: ClientLimiter::new(config.client_limits.clone()),
            limits: config.http_limits,
            readiness: ReadinessCache::new(ReadinessCache::PING),
            key_check: ReadinessCache::new(ReadinessCache::KEYS),
            lifecycle: Lifecycle::default(),
            metrics: Metrics::install(),
        }));
        Ok(Self {
            config,
            listener,
            metrics_listener,
            address,
            public_base,
            state,
            use_cases,
            demo,
        })
    }

    /// The address the instance listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port the instance listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The base of its launch links.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// Its HTTP state (the use cases as the HTTP edge sees them).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The in-process Transak emulator, when the configuration asked for one.
    pub fn emulator(&self) -> Option<&EmbeddedEmulator> {
        self.use_cases.emulator.as_ref()
    }

    /// The demo application of a zero-configuration run.
    pub fn demo(&self) -> Option<&DemoApp> {
        self.demo.as_ref()
    }

    /// A further webhook delivery worker over the same stores, to run rounds on demand
    /// ([`DeliveryWorker::deliver_due`]) beside the one the instance runs.
    pub fn delivery_worker(&self) -> DeliveryWorker {
        self.use_cases.delivery_worker(&self.config)
    }

    /// Serves until `stop` completes, then drains: on [`Stop::Terminate`] readiness turns
    /// `503` and the instance keeps serving for `WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS` (so a
    /// load balancer stops sending it traffic); then it stops accepting connections, in-flight
    /// requests get `WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS` to finish, the delivery worker lets
    /// its attempts finish within the same grace, and the background tasks stop. Returns
    /// whether every in-flight request finished.
    pub async fn run_until_stopped(self, stop: impl Future<Output = Stop> + Send) -> bool {
        let Self {
            config,
            listener,
            metrics_listener,
            address,
            public_base,
            state,
            use_cases,
            demo,
        } = self;
        let mut background = tokio::task::JoinSet::new();
        background.spawn(use_cases.retention.clone().run_forever(RETENTION_EVERY));
        // The webhook side stops claiming work as soon as the instance starts draining;
        // deliveries in flight get the shutdown grace to finish, then their leases are
        // released.
        let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
        let grace = config.connections.shutdown_grace;
        let delivery_worker = tokio::spawn(
            use_cases
                .delivery_worker(&config)
                .run(workers_stop.clone(), grace),
        );
        background.spawn(use_cases.expiry_sweeper(&config).run(workers_stop));
        background.spawn(upkeep(state.clone(), use_cases.pool.clone()));
        // A warm start: the first request should not wait for an access-token refresh. A
        // failure is only reported (readiness shows it, requests retry it with backoff).
        let gateway = use_cases.gateway.clone();
        background.spawn(async move {
            if let Err(e) = gateway.check_credentials().await {
                tracing::warn!(error = %e, "could not obtain a Transak access token at start-up");
            }
        });
        if let Some(listener) = metrics_listener {
            let app = api::http::metrics_router(state.clone());
            if let Ok(metrics_addr) = listener.local_addr() {
                tracing::info!(%metrics_addr, "serving /metrics on its own listener");
            }
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
        tracing::info!(%address, public_url = %public_base, backend = %use_cases.description, "widget-sessions is listening");
        if let Some(demo) = &demo {
            print_quickstart(
                &address.to_string(),
                &public_base,
                &use_cases.description,
                &demo.api_key,
                demo.api_secret.expose_secret(),
            );
        }
        let lifecycle_state = state.clone();
        let router = api::http::router_with(state, config.metrics_listen.is_none());
        let delay = config.shutdown_delay;
        let finished = http_server::serve(listener, router, config.connections, async move {
            let signal = stop.await;
            lifecycle_state.0.lifecycle.start_draining();
            let _ = stop_workers.send(true);
            // On SIGTERM, keep serving while the load balancer notices that readiness failed
            // (Kubernetes removes the endpoint asynchronously), then stop accepting.
            if signal == Stop::Terminate && !delay.is_zero() {
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
        // The emulator (if any) stops with the instance.
        drop(use_cases);
        finished
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
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
fn print_quickstart(addr: &str, public: &str, description: &str, api_key: &str, api_secret: &str) {
    let url = format!("http://{addr}");
    // `request` calls the default service URL unless told otherwise.
    let url_flag = if url == crate::config::variables::WIDGET_SESSIONS_URL.default_value() {
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

Then open the "widgetUrl" of the answer in a browser: the demo application runs the hosted
travel-rule step, so the link first asks about the recipient; Continue then opens the
(emulated) Transak widget, and any later open says the link was used.
Public base of launch links: {public}. API reference: {url}/api/v1/openapi.json
"#
    );
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() -> Stop {
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
        () = ctrl_c => Stop::Interrupt,
        () = terminate => Stop::Terminate,
    }
}
