//! The emulator's in-memory state: its clock, the one valid access token, the minted
//! sessions, the counters and the active faults.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::EmulatorConfig;

/// Counters of what the emulator has seen, as served by `GET /_emulator/stats`.
///
/// `refreshes` and `sessionsMinted` count successful calls only; the `*Calls` counters count
/// every call that reached the endpoint, including rejected ones and injected failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Successful token refreshes (each one minted a new access token).
    pub refreshes: u64,
    /// Widget sessions minted by successful create-widget-URL calls.
    pub sessions_minted: u64,
    /// Calls to `POST /partners/api/v2/refresh-token`, whatever their outcome.
    pub refresh_calls: u64,
    /// Calls to `POST /api/v2/auth/session`, whatever their outcome.
    pub session_calls: u64,
    /// Partner-API calls answered `401` (bad secret/key or missing/invalid/expired token).
    pub unauthorized: u64,
    /// Partner-API calls answered with an injected failure status (`failNext`, fail rate).
    pub injected_failures: u64,
    /// Partner-API calls left hanging by `hangNext`.
    pub injected_hangs: u64,
    /// Widget pages served successfully (first open of a live session).
    pub widget_opens: u64,
    /// Widget page requests answered "Invalid or Expired Session".
    pub widget_rejections: u64,
    /// Order webhooks sent (`POST /_emulator/orders`, or the widget page's buttons).
    pub orders_sent: u64,
}

/// One session minted by `POST /api/v2/auth/session`, as listed by `GET /_emulator/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedSession {
    /// The random `sessionId` placed in the widget URL.
    pub session_id: String,
    /// The `widgetParams` object exactly as the caller sent it.
    pub widget_params: Map<String, Value>,
    /// Creation time in unix seconds, on the emulator's (advanceable) clock.
    pub created_at: u64,
    /// Whether the widget page has already been opened with this `sessionId`.
    pub opened: bool,
    /// The W3C `traceparent` header the call carried, if any (a caller exporting traces
    /// propagates its trace context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The faults currently active, as served by `GET`/`POST /_emulator/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFaults {
    /// Extra latency added to every partner-API call, on top of
    /// [`EmulatorConfig::latency`], in milliseconds.
    pub latency_ms: u64,
    /// How many of the next partner-API calls answer `failStatus`.
    pub fail_next: u32,
    /// The status those failing calls answer with (default `500`).
    pub fail_status: u16,
    /// How many of the next partner-API calls hang without answering.
    pub hang_next: u32,
}

impl Default for ActiveFaults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            fail_next: 0,
            fail_status: DEFAULT_FAIL_STATUS,
            hang_next: 0,
        }
    }
}

/// The status injected failures answer with unless told otherwise.
pub const DEFAULT_FAIL_STATUS: u16 = 500;

/// A change to the active faults: the body of `POST /_emulator/faults`, and the argument of
/// [`Emulator::set_faults`](crate::Emulator::set_faults). Absent fields leave the current
/// setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultsUpdate {
    /// Set the extra latency of every partner-API call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Make the next `n` partner-API calls answer `fail_status` (`500` if not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_next: Option<u32>,
    /// The status failing calls answer with; must be in `400..=599`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_status: Option<u16>,
    /// Make the next `n` partner-API calls hang without answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_next: Option<u32>,
    /// Revoke the current access token: session calls get `401` until the next refresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoke_token: bool,
}

/// Why a [`FaultsUpdate`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    /// `failStatus` was not an HTTP error status.
    #[error("failStatus must be an HTTP error status in 400..=599, got {0}")]
    InvalidFailStatus(u16),
}

/// What the fault gate decided for one partner-API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Proceed,
    Fail(u16),
    Hang,
}

/// The outcome of checking a presented access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    Invalid,
    Expired,
}

/// The outcome of opening the widget page for a `sessionId`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpenOutcome {
    Opened(Map<String, Value>),
    Unknown,
    AlreadyUsed,
    Expired,
}

/// Everything the HTTP handlers and the [`Emulator`](crate::Emulator) handle share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    /// Base of the widget URLs handed out, without a trailing slash.
    pub(crate) widget_base_url: String,
    /// Turns `true` (or is dropped) when the server shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(
        config: EmulatorConfig,
        widget_base_url: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config,
            widget_base_url,
            shutdown,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave it inconsistent in a
    /// way that matters for an emulator, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once the server is shutting down.
    pub(crate) async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        // An error means the sender is gone, which also means shutdown.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps for `duration` unless the server shuts down first; `true` if the full
    /// duration elapsed.
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.shutting_down() => false,
        }
    }
}

/// The mutable part of the state, behind [`Shared`]'s mutex.
#[derive(Default)]
pub(crate) struct Inner {
    clock_offset: Duration,
    token: Option<AccessToken>,
    sessions: SessionLog,
    /// The order made in each widget session (`sessionId` → order id): one order per session.
    orders: std::collections::HashMap<String, String>,
    /// Where order webhooks go, if anywhere.
    pub(crate) webhook_url: Option<String>,
    pub(crate) stats: Stats,
    pub(crate) faults: ActiveFaults,
}

struct AccessToken {
    value: String,
    expires_at: Duration,
}

impl Inner {
    /// The emulator's notion of now, since the unix epoch: wall clock plus the offset
    /// accumulated by [`Inner::advance_clock`].
    pub(crate) fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.clock_offset)
    }

    pub(crate) fn clock_offset(&self) -> Duration {
        self.clock_offset
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.clock_offset = self.clock_offset.saturating_add(by);
    }

    /// Forgets everything: tokens, sessions, counters, faults and the clock offset.
    pub(crate) fn reset(&mut self) {
        // Where webhooks go is configuration, not state.
        let webhook_url = self.webhook_url.take();
        *self = Self::default();
        self.webhook_url = webhook_url;
    }

    /// Mints a new access token, which replaces (and so invalidates) the previous one.
    /// Returns the token and its expiry in unix seconds.
    pub(crate) fn issue_token(&mut self, api_key: &str, ttl: Duration) -> (String, u64) {
        let now = self.now();
        let expires_at = now.saturating_add(ttl);
        let value = jwt_like_token(api_key, now.as_secs(), expires_at.as_secs());
        self.token = Some(AccessToken {
            value: value.clone(),
            expires_at,
        });
        self.stats.refreshes += 1;
        (value, expires_at.as_secs())
    }

    pub(crate) fn check_token(&self, presented: &str) -> TokenCheck {
        match &self.token {
            Some(token) if constant_time_eq(token.value.as_bytes(), presented.as_bytes()) => {
                if self.now() < token.expires_at {
                    TokenCheck::Valid
                } else {
                    TokenCheck::Expired
                }
            }
            _ => TokenCheck::Invalid,
        }
    }

    /// The widget parameters of session `session_id` and its order id (created on first
    /// use), or `None` for an unknown session.
    pub(crate) fn order_for(&mut self, session_id: &str) -> Option<(Map<String, Value>, String)> {
        let params = self.sessions.get_mut(session_id)?.widget_params.clone();
        let order_id = self
            .orders
            .entry(session_id.to_string())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        Some((params, order_id))
    }

    pub(crate) fn current_token(&self) -> Option<String> {
        self.token
            .as_ref()
            .filter(|token| self.now() < token.expires_at)
            .map(|token| token.value.clone())
    }

    pub(crate) fn revoke_token(&mut self) {
        self.token = None;
    }

    /// Remembers a new session and returns its fresh random id.
    pub(crate) fn mint_session(
        &mut self,
        widget_params: Map<String, Value>,
        traceparent: Option<String>,
        max_sessions: usize,
    ) -> String {
        let session_id = uuid::Uuid::new_v4().to_string();
        let created_at = self.now();
        self.sessions.push(
            SessionEntry {
                session_id: session_id.clone(),
                widget_params,
                created_at,
                opened: false,
                traceparent,
            },
            max_sessions,
        );
        self.stats.sessions_minted += 1;
        session_id
    }

    /// Opens the widget page for `session_id`: succeeds once, within `ttl` of creation.
    pub(crate) fn open_session(
        &mut self,
        session_id: &str,
        api_key: Option<&str>,
        ttl: Duration,
    ) -> OpenOutcome {
        let now = self.now();
        let Some(entry) = self.sessions.get_mut(session_id) else {
            return OpenOutcome::Unknown;
        };
        let key_matches = match (api_key, entry.widget_params.get("apiKey")) {
            (None, _) => true,
            (Some(given), Some(Value::String(minted))) => given == minted,
            (Some(_), _) => false,
        };
        if !key_matches {
            return OpenOutcome::Unknown;
        }
        if entry.opened {
            return OpenOutcome::AlreadyUsed;
        }
        // Opening consumes the session whether or not it is still fresh.
        entry.opened = true;
        if now.saturating_sub(entry.created_at) >= ttl {
            return OpenOutcome::Expired;
        }
        OpenOutcome::Opened(entry.widget_params.clone())
    }

    pub(crate) fn sessions(&self) -> Vec<MintedSession> {
        self.sessions
            .entries
            .iter()
            .map(|entry| MintedSession {
                session_id: entry.session_id.clone(),
                widget_params: entry.widget_params.clone(),
                created_at: entry.created_at.as_secs(),
                opened: entry.opened,
                traceparent: entry.traceparent.clone(),
            })
            .collect()
    }

    /// Applies a change to the faults; all-or-nothing.
    pub(crate) fn apply_faults(
        &mut self,
        update: &FaultsUpdate,
    ) -> Result<ActiveFaults, FaultsError> {
        if let Some(status) = update.fail_status.filter(|s| !(400..=599).contains(s)) {
            return Err(FaultsError::InvalidFailStatus(status));
        }
        if let Some(latency_ms) = update.latency_ms {
            self.faults.latency_ms = latency_ms;
        }
        if let Some(fail_next) = update.fail_next {
            self.faults.fail_next = fail_next;
            self.faults.fail_status = update.fail_status.unwrap_or(DEFAULT_FAIL_STATUS);
        } else if let Some(status) = update.fail_status {
            self.faults.fail_status = status;
        }
        if let Some(hang_next) = update.hang_next {
            self.faults.hang_next = hang_next;
        }
        if update.revoke_token {
            self.revoke_token();
        }
        Ok(self.faults)
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults = ActiveFaults::default();
    }

    /// Decides, on arrival, what happens to one partner-API call, consuming one
    /// `hangNext` or `failNext` if any is pending. `random_failure` is the outcome of the
    /// configured fail-rate draw.
    pub(crate) fn take_fault(&mut self, random_failure: bool) -> FaultAction {
        if self.faults.hang_next > 0 {
            self.faults.hang_next -= 1;
            self.stats.injected_hangs += 1;
            FaultAction::Hang
        } else if self.faults.fail_next > 0 {
            self.faults.fail_next -= 1;
            self.stats.injected_failures += 1;
            FaultAction::Fail(self.faults.fail_status)
        } else if random_failure {
            self.stats.injected_failures += 1;
            FaultAction::Fail(DEFAULT_FAIL_STATUS)
        } else {
            FaultAction::Proceed
        }
    }
}

struct SessionEntry {
    session_id: String,
    widget_params: Map<String, Value>,
    created_at: Duration,
    opened: bool,
    traceparent: Option<String>,
}

/// Sessions in creation order, indexed by id, keeping at most `max` of them (oldest
/// evicted first) so a long-running emulator does not grow without bound.
#[derive(Default)]
struct SessionLog {
    entries: VecDeque<SessionEntry>,
    /// Session id → sequence number; the entry's position is `seq - first_seq`.
    index: HashMap<String, u64>,
    first_seq: u64,
}

impl SessionLog {
    fn push(&mut self, entry: SessionEntry, max: usize) {
        let seq = self.first_seq + self.entries.len() as u64;
        self.index.insert(entry.session_id.clone(), seq);
        self.entries.push_back(entry);
        while self.entries.len() > max.max(1) {
            if let Some(evicted) = self.entries.pop_front() {
                self.index.remove(&evicted.session_id);
                self.first_seq += 1;
            }
        }
    }

    fn get_mut(&mut self, session_id: &str) -> Option<&mut SessionEntry> {
        let seq = *self.index.get(session_id)?;
        let position = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get_mut(position)
    }
}

/// A random token shaped like Transak's HS256 JWT: three base64url segments. It is not
/// signed with anything; only its exact value is ever checked.
fn jwt_like_token(api_key: &str, issued_at: u64, expires_at: u64) -> String {
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT" });
    let payload = serde_json::json!({
        "API_KEY": api_key,
        "iat": issued_at,
        "exp": expires_at,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let signature: [u8; 32] = rand::random();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature),
    )
}

/// Compares two secrets without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_looks_like_a_jwt() {
        let token = jwt_like_token("key", 1, 2);
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        for segment in &segments {
            assert!(URL_SAFE_NO_PAD.decode(segment).is_ok(), "{segment}");
        }
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
        assert_eq!(payload["exp"], 2);
        assert_ne!(token, jwt_like_token("key", 1, 2));
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn session_log_evicts_oldest_beyond_max() {
        let mut inner = Inner::default();
        let first = inner.mint_session(Map::new(), None, 2);
        let second = inner.mint_session(Map::new(), None, 2);
        let third = inner.mint_session(Map::new(), None, 2);
        let ids: Vec<String> = inner.sessions().into_iter().map(|s| s.session_id).collect();
        assert_eq!(ids, vec![second.clone(), third.clone()]);
        assert_eq!(
            inner.open_session(&first, None, Duration::from_secs(60)),
            OpenOutcome::Unknown
        );
        assert_eq!(
            inner.open_session(&third, None, Duration::from_secs(60)),
            OpenOutcome::Opened(Map::new())
        );
        assert_eq!(inner.stats.sessions_minted, 3);
    }

    #[test]
    fn fail_next_defaults_to_500_and_rejects_non_error_statuses() {
        let mut inner = Inner::default();
        let faults = inner
            .apply_faults(&FaultsUpdate {
                fail_next: Some(1),
                ..FaultsUpdate::default()
            })
            .unwrap();
        assert_eq!(faults.fail_status, 500);
        assert_eq!(inner.take_fault(false), FaultAction::Fail(500));
        assert_eq!(inner.take_fault(false), FaultAction::Proceed);
        assert_eq!(
            inner.apply_faults(&FaultsUpdate {
                fail_status: Some(200),
                ..FaultsUpdate::default()
            }),
            Err(FaultsError::InvalidFailStatus(200))
        );
    }
}
