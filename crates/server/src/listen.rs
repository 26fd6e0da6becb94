//! `listen`: a developer's view of webhooks. Registers a temporary endpoint on this machine
//! with the service, prints every event as it arrives once its signature verifies (and
//! forwards it, headers and body untouched, to a local URL if asked), and deletes the
//! endpoint when stopped.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use client::webhooks::{DEFAULT_TOLERANCE, WebhookHeaders, verify};
use client::{CreateEndpoint, Event};

/// What to listen for and where. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct ListenOptions {
    /// The service's base URL.
    pub service_url: String,
    /// The application's API key.
    pub api_key: String,
    /// The application's API secret.
    pub api_secret: String,
    /// Where to receive deliveries on this machine (port 0: any free port).
    pub listen: SocketAddr,
    /// The URL the service should POST to, when it is not `http://<listen address>/` (the
    /// service runs elsewhere, or behind a tunnel).
    pub public_url: Option<String>,
    /// Only these event types; all when empty.
    pub event_types: Vec<String>,
    /// Forward every verified delivery here (headers and body as received).
    pub forward_to: Option<String>,
    /// Print each event's JSON body on one line instead of a summary.
    pub json: bool,
}

impl std::fmt::Debug for ListenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenOptions")
            .field("service_url", &self.service_url)
            .field("api_key", &self.api_key)
            .field("listen", &self.listen)
            .field("event_types", &self.event_types)
            .field("forward_to", &self.forward_to)
            .finish_non_exhaustive()
    }
}

/// Resolves when the developer stops `listen`: Ctrl-C, SIGTERM or SIGHUP (the terminal was
/// closed) — each lets it delete its endpoint first. A signal that cannot be watched is
/// ignored rather than taken as a stop.
pub async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let others = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = hup.recv() => {},
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let others = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = others => {},
    }
}

/// Why `listen` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The local address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The service refused or could not be reached.
    #[error("{0}")]
    Service(String),
}

struct Listening {
    secret: String,
    forward_to: Option<String>,
    http: reqwest::Client,
    json: bool,
    out: Arc<Mutex<dyn Write + Send>>,
}

impl Listening {
    fn print(&self, line: &str) {
        if let Ok(mut out) = self.out.lock() {
            // A closed output (`listen | head`) is not worth failing a delivery for.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Registers the endpoint, serves deliveries until `stop` resolves, then deletes it.
/// Everything is written to `out`: a line when ready, one per delivery.
///
/// # Errors
///
/// [`ListenError`] when the address cannot be bound or the service refuses the endpoint.
pub async fn run(
    options: ListenOptions,
    out: Arc<Mutex<dyn Write + Send>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ListenError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ListenError::Bind {
            addr: options.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ListenError::Bind {
        addr: options.listen,
        source,
    })?;
    let url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}/"));
    let service = client::Client::new(&options.service_url, &options.api_key, &options.api_secret)
        .map_err(|e| ListenError::Service(e.to_string()))?;
    let endpoint = service
        .create_endpoint(&CreateEndpoint {
            url: url.clone(),
            event_types: options.event_types.clone(),
        })
        .await
        .map_err(|e| match e {
            client::Error::Transport(_) => ListenError::Service(format!(
                "could not reach {}: {e}. Is the service running (cargo run)?",
                options.service_url
            )),
            e => ListenError::Service(format!(
                "the service refused the endpoint {url}: {e}{}",
                if e.to_string().contains("not_public") || e.to_string().contains("https") {
                    " (a service on Postgres refuses local URLs unless \
                     WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true)"
                } else {
                    ""
                }
            )),
        })?;
    let Some(secret) = endpoint.secret.clone() else {
        return Err(ListenError::Service(
            "the service did not return the endpoint's secret".into(),
        ));
    };
    let state = Arc::new(Listening {
        secret,
        forward_to: options.forward_to.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| ListenError::Service(e.to_string()))?,
        json: options.json,
        out,
    });
    state.print(&format!(
        "Listening on {url} as webhook endpoint {} ({}); events are verified before they are shown{}. Ctrl-C deletes the endpoint and stops.",
        endpoint.id,
        if options.event_types.is_empty() {
            "every event type".to_string()
        } else {
            options.event_types.join(", ")
        },
        options
            .forward_to
            .as_deref()
            .map(|f| format!(" and forwarded to {f}"))
            .unwrap_or_default(),
    ));
    let app = Router::new()
        .fallback(post(receive))
        .with_state(state.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
    let deleted = service.delete_endpoint(&endpoint.id).await;
    match &deleted {
        Ok(()) => state.print(&format!("Deleted webhook endpoint {}.", endpoint.id)),
        Err(e) => state.print(&format!(
            "Could not delete webhook endpoint {}: {e}. Delete it with DELETE /api/v1/webhook-endpoints/{}.",
            endpoint.id, endpoint.id
        )),
    }
    served.map_err(|e| ListenError::Service(format!("the listener failed: {e}")))
}

async fn receive(
    State(state): State<Arc<Listening>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let id = header("webhook-id");
    let verified = verify(
        &[state.secret.as_str()],
        &WebhookHeaders {
            id,
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        },
        &body,
        chrono::Utc::now().timestamp(),
        DEFAULT_TOLERANCE,
    );
    if let Err(e) = verified {
        state.print(&format!(
            "! refused a delivery that does not verify ({e}); webhook-id {id:?}"
        ));
        return StatusCode::UNAUTHORIZED;
    }
    if state.json {
        state.print(&String::from_utf8_lossy(&body));
    } else {
        state.print(&summary(id, &body));
    }
    let Some(target) = &state.forward_to else {
        return StatusCode::NO_CONTENT;
    };
    let mut forward = state.http.post(target).body(body);
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
    ] {
        forward = forward.header(name, header(name));
    }
    match forward.send().await {
        Ok(r) => {
            state.print(&format!("  -> {target}: {}", r.status().as_u16()));
            if r.status().is_success() {
                StatusCode::NO_CONTENT
            } else {
                // The service retries it later, as it would for the partner's own endpoint.
                StatusCode::BAD_GATEWAY
            }
        }
        Err(e) => {
            state.print(&format!("  -> {target}: not delivered ({e})"));
            StatusCode::BAD_GATEWAY
        }
    }
}

/// One line: id, type, session, status and the order when there is one.
fn summary(id: &str, body: &[u8]) -> String {
    match serde_json::from_slice::<Event>(body) {
        Ok(e) => {
            let order = e
                .data
                .order
                .as_ref()
                .map(|o| format!(" order {} {} ({})", o.id, o.status, o.event_id))
                .unwrap_or_default();
            format!(
                "{} {} {id} session {} {}{order}",
                e.created_at.format("%H:%M:%S"),
                e.kind,
                e.data.id,
                e.data.status.as_str(),
            )
        }
        Err(_) => format!(
            "{id} (verified, but not an event this version knows): {}",
            String::from_utf8_lossy(body)
        ),
    }
}
