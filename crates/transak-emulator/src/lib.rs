//! A stand-in for Transak's partner API, for local runs and end-to-end tests.
//!
//! It implements, over real HTTP:
//!
//! - `POST /partners/api/v2/refresh-token` (header `api-secret`, body `{"apiKey"}`): mints a
//!   JWT-shaped access token valid for [`EmulatorConfig::token_ttl`]; **each refresh
//!   invalidates the previous token**.
//! - `POST /api/v2/auth/session` (header `access-token`, body `{"widgetParams": {...}}` with
//!   mandatory `apiKey` and `referrerDomain`): mints a single-use `sessionId` and answers
//!   `{"data": {"widgetUrl": "<base>/?apiKey=…&sessionId=…"}}`.
//! - `GET /?apiKey=…&sessionId=…`: the widget page, served once per session within
//!   [`EmulatorConfig::session_ttl`]; afterwards "Invalid or Expired Session".
//!
//! plus control endpoints under `/_emulator/` (stats, minted sessions, faults, clock,
//! reset), mirrored by methods on the [`Emulator`] handle for in-process tests:
//!
//! ```no_run
//! # async fn demo() -> Result<(), std::io::Error> {
//! use transak_emulator::{EmulatorConfig, FaultsUpdate};
//!
//! let emulator = transak_emulator::spawn(EmulatorConfig::default()).await?;
//! let base_url = emulator.base_url(); // "http://127.0.0.1:<port>", gateway and API base
//! let _ = emulator.set_faults(FaultsUpdate { fail_next: Some(1), ..Default::default() });
//! assert_eq!(emulator.stats().refreshes, 0);
//! # let _ = base_url;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod http;
mod page;
mod state;

pub use http::{CREATE_SESSION_PATH, REFRESH_TOKEN_PATH};
pub use page::INVALID_SESSION_TEXT;
pub use state::{
    ActiveFaults, DEFAULT_FAIL_STATUS, FaultsError, FaultsUpdate, MintedSession, Stats,
};

use state::Shared;

/// The API key the emulator accepts unless configured otherwise.
pub const DEFAULT_API_KEY: &str = "emulator-api-key";
/// The API secret the emulator accepts unless configured otherwise.
pub const DEFAULT_API_SECRET: &str = "emulator-api-secret";

/// How the emulator behaves. Build it with [`EmulatorConfig::new`] or
/// `EmulatorConfig { .., ..EmulatorConfig::default() }`.
///
/// `Debug` redacts the API secret.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// The partner API key: required in refresh bodies and in `widgetParams.apiKey`.
    pub api_key: String,
    /// The partner API secret: required in the `api-secret` header of refreshes.
    pub api_secret: String,
    /// Latency added to every partner-API call (not to the widget page or `/_emulator/*`).
    pub latency: Duration,
    /// Probability in `0.0..=1.0` that a partner-API call answers `500`.
    pub fail_rate: f64,
    /// Lifetime of an access token (Transak: 7 days).
    pub token_ttl: Duration,
    /// Lifetime of a widget URL (Transak: 5 minutes).
    pub session_ttl: Duration,
    /// How long a call hit by `hangNext` waits before finally answering `504`; far longer
    /// than any client timeout.
    pub hang_duration: Duration,
    /// How many minted sessions are remembered (oldest forgotten first).
    pub max_sessions: usize,
    /// Base of the widget URLs handed out, e.g. `http://localhost:8090`; defaults to
    /// `http://<bound address>`. A trailing `/` is ignored.
    pub public_base_url: Option<String>,
    /// Where order webhooks go (the partner's `/webhooks/transak`), if anywhere.
    pub webhook_url: Option<String>,
}

impl EmulatorConfig {
    /// Default settings with the given credentials.
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            ..Self::default()
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            api_secret: DEFAULT_API_SECRET.to_owned(),
            latency: Duration::ZERO,
            fail_rate: 0.0,
            token_ttl: Duration::from_secs(7 * 24 * 60 * 60),
            session_ttl: Duration::from_secs(5 * 60),
            hang_duration: Duration::from_secs(60),
            max_sessions: 100_000,
            public_base_url: None,
            webhook_url: None,
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[REDACTED]")
            .field("latency", &self.latency)
            .field("fail_rate", &self.fail_rate)
            .field("token_ttl", &self.token_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("hang_duration", &self.hang_duration)
            .field("max_sessions", &self.max_sessions)
            .field("public_base_url", &self.public_base_url)
            .finish()
    }
}

/// Starts an emulator on `127.0.0.1` with an OS-assigned port.
///
/// # Errors
///
/// The listener could not be bound.
pub async fn spawn(config: EmulatorConfig) -> Result<Emulator, std::io::Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    serve(listener, config)
}

/// Starts an emulator on an already bound listener, in a background task of the current
/// Tokio runtime (so it must be called from within one).
///
/// # Errors
///
/// The listener's local address could not be read.
pub fn serve(listener: TcpListener, config: EmulatorConfig) -> Result<Emulator, std::io::Error> {
    let addr = listener.local_addr()?;
    let widget_base_url = config
        .public_base_url
        .as_deref()
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let webhook_url = config.webhook_url.clone();
    let shared = Arc::new(Shared::new(config, widget_base_url, shutdown_rx.clone()));
    shared.lock().webhook_url = webhook_url;
    let app = http::router(Arc::clone(&shared));
    let mut stop = shutdown_rx;
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "transak emulator server failed");
        }
    });
    Ok(Emulator {
        addr,
        shared,
        shutdown: shutdown_tx,
        task: Some(task),
    })
}

/// A running emulator. Dropping it stops the server (in-flight calls, including hanging
/// ones, are answered `503` and the listener closes); [`Emulator::shutdown`] also waits
/// for that to finish.
///
/// The methods mirror the `/_emulator/*` HTTP switches.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("widget_base_url", &self.shared.widget_base_url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<bound address>`, without a trailing slash: the base URL for both the
    /// "gateway" (`/api/v2/auth/session`) and the "api" (`/partners/api/v2/refresh-token`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base of the widget URLs handed out (the configured public URL, or
    /// [`Emulator::base_url`]).
    pub fn widget_base_url(&self) -> String {
        self.shared.widget_base_url.clone()
    }

    /// The API key the emulator accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// The emulator's counters (`GET /_emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// The sessions minted so far, oldest first (`GET /_emulator/sessions`).
    pub fn sessions(&self) -> Vec<MintedSession> {
        self.shared.lock().sessions()
    }

    /// Sends order webhooks to `url` from now on.
    pub fn set_webhook_url(&self, url: impl Into<String>) {
        self.shared.lock().webhook_url = Some(url.into());
    }

    /// The currently valid access token, if any (not revoked, not expired).
    pub fn current_access_token(&self) -> Option<String> {
        self.shared.lock().current_token()
    }

    /// The faults currently active (`GET /_emulator/faults`).
    pub fn faults(&self) -> ActiveFaults {
        self.shared.lock().faults
    }

    /// Changes the faults (`POST /_emulator/faults`) and returns the resulting settings.
    ///
    /// # Errors
    ///
    /// [`FaultsError::InvalidFailStatus`] if `fail_status` is not in `400..=599`; nothing
    /// is changed then.
    pub fn set_faults(&self, update: FaultsUpdate) -> Result<ActiveFaults, FaultsError> {
        self.shared.lock().apply_faults(&update)
    }

    /// Clears every fault (`DELETE /_emulator/faults`). The configured base latency and
    /// fail rate stay.
    pub fn clear_faults(&self) {
        self.shared.lock().clear_faults();
    }

    /// Revokes the current access token: session calls get `401` until the next refresh
    /// (`POST /_emulator/faults {"revokeToken": true}`).
    pub fn revoke_token(&self) {
        self.shared.lock().revoke_token();
    }

    /// Moves the emulator's clock forward, expiring tokens and sessions without sleeping
    /// (`POST /_emulator/clock {"advanceSecs": n}`).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }

    /// The emulator's current time in unix seconds (wall clock plus any advance).
    pub fn now_unix_secs(&self) -> u64 {
        self.shared.lock().now().as_secs()
    }

    /// Forgets tokens, sessions, counters, faults and clock advances, as if upstream had
    /// restarted (`POST /_emulator/reset`).
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    /// Stops the server and waits until it has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let config = EmulatorConfig::new("my-key", "super-secret-value");
        let debug = format!("{config:?}");
        assert!(debug.contains("my-key"));
        assert!(!debug.contains("super-secret-value"));
        assert!(debug.contains("[REDACTED]"));
    }

    #[test]
    fn defaults_match_transak() {
        let config = EmulatorConfig::default();
        assert_eq!(config.token_ttl, Duration::from_secs(604_800));
        assert_eq!(config.session_ttl, Duration::from_secs(300));
        assert_eq!(config.api_key, DEFAULT_API_KEY);
        assert_eq!(config.api_secret, DEFAULT_API_SECRET);
    }
}
