//! # Transak gateway
//!
//! The adapter behind [`ports::WidgetGateway`]: Transak's *Create Widget URL* partner API
//! over `reqwest` (rustls), with the partner access token shared by every API instance
//! through [`ports::AccessTokenStore`].
//!
//! - [`TransakConfig`] (built with [`TransakConfig::builder`], which checks every rule) and
//!   [`Environment`];
//! - [`TransakGateway`], the gateway;
//! - [`widget_params`] and [`transak_network`], the pure request building.
//!
//! ## Calls
//!
//! | call | request | answer |
//! |---|---|---|
//! | Create Widget URL | `POST {gateway}/api/v2/auth/session`, `access-token`, `{"widgetParams": {…}}` | `{"data": {"widgetUrl": "…"}}` |
//! | Refresh Access Token | `POST {api}/partners/api/v2/refresh-token`, `api-secret`, `{"apiKey": "…"}` | `{"data": {"accessToken": "…", "expiresAt": …}}` |
//!
//! `expiresAt` is read as unix seconds, or milliseconds when above 10^11. Unknown fields in
//! Transak's answers are ignored.
//!
//! ## Timeouts and retries
//!
//! Every attempt has the configured timeout (default 5 s). Connection errors, timeouts,
//! `5xx` and `408` are retried up to `max_retries` times (default 2, so 3 attempts) after a
//! jittered exponential backoff (uniform in ½–1 × `100 ms · 2^n`, capped at 2 s). A `5xx`
//! whose `Retry-After` asks for longer than one backoff step is not retried: the caller gets
//! `Unavailable` with that delay at once. Retrying *Create Widget URL* is safe: a session
//! minted by an attempt whose answer was lost is never handed out and expires upstream in
//! 5 minutes. Redirects are not followed (they would carry the credential headers along).
//!
//! ## The access token
//!
//! Refreshing upstream invalidates the previous token, so:
//!
//! 1. **Hot path.** The gateway keeps the token it uses in memory with its store `version`;
//!    while more than `refresh_margin` (default 10 min) is left before `expiresAt`, minting
//!    costs no store read.
//! 2. **Slow path** (no cached token, or within the margin), one task per instance at a
//!    time: re-read the store and use the stored token if it is fresh; otherwise take the
//!    store's refresh lease (`now + refresh_lease`, default 30 s, holder = a UUID per gateway
//!    instance). The lease holder refreshes upstream and `save_refreshed`s (or
//!    `release_refresh`es if the refresh failed). An instance that did not get the lease
//!    never refreshes while the lease is held: every `token_poll_interval` (50 ms) it
//!    re-reads the store and uses the first version newer than the one it started from; if
//!    the holder released the lease (its refresh failed) or died (the lease expired), it
//!    takes the lease over on a later round. It gives up after two leases.
//! 3. **`401` from Create Widget URL**: at most one replacement and one retry. The store is
//!    re-read first: a version newer than the refused one (another instance refreshed) is
//!    simply used; only if the refused token is still the stored one is it refreshed,
//!    through the lease as above. A second `401` is returned as `Rejected`.
//! 4. **Proactive refresh failing** while the stored token is still valid (e.g. Transak's
//!    refresh endpoint is down): the valid token keeps being used and logged about, and the
//!    next refresh attempt waits for the error's `retry_after` (default 5 s).
//!
//! "Now" for expiry and leases comes from the injected [`ports::Clock`]; waiting and polling
//! use tokio's monotonic timer.
//!
//! ## Errors
//!
//! | upstream | [`ports::GatewayError`] |
//! |---|---|
//! | Create Widget URL `2xx` with a malformed body (not JSON, missing `data.widgetUrl`, not an http(s) URL) | `Unexpected` — the upstream broke its contract; retrying would not help |
//! | Create Widget URL `401` | one token replacement and one retry; a second `401` → `Rejected { 401, … }` |
//! | `429` (either call) | `Unavailable` with `Retry-After` (default 5 s), not retried in the call |
//! | other `4xx` (either call) | `Rejected { status, message }`, Transak's message from `{"error": {"message"}}`, `{"message"}`, `{"error": "…"}`, `{"errors": [{"message"}]}` or `{"msg"}`, else the status text |
//! | refresh `401`/`403` | `Rejected { status, "Transak refused the partner credentials …" }` |
//! | refresh `2xx` malformed (or an already expired token) | `Unexpected` |
//! | connection error, timeout, `5xx`, `408`, after the retries | `Unavailable { retry_after: Retry-After or 5 s, reason }` |
//! | `3xx`, `1xx` | `Unexpected` |
//! | token store `Unavailable` | `Unavailable` (5 s) |
//! | token store `Conflict`/`Unexpected` (other than a lost lease, which is waited out) | `Unexpected` |
//! | no token after waiting two leases for another instance | `Unavailable` (5 s) |
//!
//! ## Metrics
//!
//! Recorded through the [`metrics`] facade (the binary installs the exporter):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `widget_sessions_upstream_calls_total` (counter) | `call` = `create_widget_url` \| `refresh_token`, `outcome` = `ok` \| `rejected` \| `unavailable` \| `unexpected` (the [`ports::GatewayError`] variant) | logical calls: a `create_widget_url` includes getting the token and the `401` retry; transport retries are not counted again |
//! | `widget_sessions_upstream_call_duration_seconds` (histogram) | `call`, `outcome` | the duration of those calls |
//! | `widget_sessions_upstream_token_refreshes_total` (counter) | `outcome` = `ok` \| `failed` | refreshes by the lease holder; `failed` also when the token returned has already expired |
//! | `widget_sessions_upstream_up` (gauge) | — | 1 when the last attempt to obtain an access token succeeded, 0 when it failed |
//!
//! ## Secrets
//!
//! The API secret and access tokens are [`secrecy::SecretString`]s exposed only where the
//! header is written (and the header is marked sensitive). Errors and logs never carry a
//! token, a response body or a widget URL's `sessionId` ([`ports::WidgetUrl`] redacts it);
//! `Debug` of the configuration and the gateway shows `[REDACTED]` for the secret.

mod config;
mod gateway;
mod http;
pub mod orders;
#[cfg(feature = "otel")]
mod otel;
mod params;
mod token;
mod wire;

pub use config::{
    ConfigError, DEFAULT_MAX_RETRIES, DEFAULT_REFRESH_LEASE, DEFAULT_REFRESH_MARGIN,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_AFTER, DEFAULT_RETRY_BASE_DELAY,
    DEFAULT_RETRY_MAX_DELAY, DEFAULT_TOKEN_POLL_INTERVAL, Environment, MANDATORY_WIDGET_PARAMS,
    TransakConfig, TransakConfigBuilder, UnknownEnvironment,
};
pub use gateway::{TransakGateway, describe_metrics};
pub use params::{LIGHTNING_NETWORK, transak_network, widget_params};
