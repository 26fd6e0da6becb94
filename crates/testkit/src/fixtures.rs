//! Values for tests.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, Asset, Counterparty, CounterpartyAddress, EventId, ReusePolicy, Rules, Session,
    SessionId, SessionScope, Subject, ValidRequest,
};
use ports::{
    ClaimToken, LaunchLinks, NewSession, RequestNonce, ReuseOutcome, ReuseQuery, SessionStore,
    StoredSession, WidgetUrl,
};
use uuid::Uuid;

/// Application A.
pub const APP_A: ApplicationId = ApplicationId::from_uuid(Uuid::from_u128(0xA));
/// Application B.
pub const APP_B: ApplicationId = ApplicationId::from_uuid(Uuid::from_u128(0xB));

/// A fixed instant with whole microseconds (what stores keep).
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 123_456_000).unwrap()
}

/// `t0()` plus whole seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// Session id `n` (ids order like `n`).
pub fn sid(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(n))
}

/// Claim token `n`.
pub fn claim(n: u128) -> ClaimToken {
    ClaimToken(Uuid::from_u128(n))
}

/// A valid request for subject `user` (each user gives a distinct reuse key).
pub fn request(user: u128, force_verify_ownership: bool) -> ValidRequest {
    let rules = Rules::default();
    let asset = Asset::new("ETH", "ETH", rules.ledger()).unwrap();
    let address = CounterpartyAddress::parse(
        asset.network(),
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        rules.bitcoin_network(),
    )
    .unwrap();
    let scope = SessionScope::new(
        Subject::User(Uuid::from_u128(user)),
        asset,
        Counterparty::Address(address),
        None,
    )
    .unwrap();
    ValidRequest::new(scope, force_verify_ownership)
}

/// The travel-rule window of the fixtures: a day.
pub const TRAVEL_RULE_WINDOW: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The default 300 s TTL with this least remaining life for reuse.
pub fn min_remaining(min_remaining: std::time::Duration) -> ReusePolicy {
    ReusePolicy::new(ReusePolicy::DEFAULT_TTL, min_remaining).unwrap()
}

/// A new session for `request`, created at `created` with the default policy.
pub fn new_session(
    app: ApplicationId,
    id: SessionId,
    request: &ValidRequest,
    created: DateTime<Utc>,
) -> NewSession {
    NewSession {
        session: Session::new(id, app, request.clone(), created, &ReusePolicy::default()),
        key: request.reuse_key().digest(),
        widget_url: WidgetUrl::new(format!(
            "https://widget.test/?apiKey=k&sessionId=upstream-{id}"
        )),
        event: evt(),
        travel_rule_window: TRAVEL_RULE_WINDOW,
        completed_event: evt(),
    }
}

/// A reuse-or-claim query at `now`, with the default policy, no nonce, and claim
/// `claim(n)` under a 30 s lease.
pub fn reuse_query(
    app: ApplicationId,
    request: &ValidRequest,
    now: DateTime<Utc>,
    n: u8,
) -> ReuseQuery {
    ReuseQuery {
        application: app,
        key: request.reuse_key().digest(),
        now,
        policy: ReusePolicy::default(),
        force_verify_ownership: request.force_verify_ownership(),
        nonce: None,
        reopened_event: evt(),
        claim: claim(u128::from(n)),
        lease_until: now + TimeDelta::seconds(30),
    }
}

/// A fresh request nonce of `app` (random signature, remembered for a year after `t0()`).
pub fn nonce(app: ApplicationId) -> RequestNonce {
    let mut signature = [0u8; 32];
    signature[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    signature[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    RequestNonce {
        application: app,
        signature,
        expires_at: at(365 * 86_400),
        durable: false,
    }
}

/// Launch links under a fresh random at-rest key.
pub fn links() -> Arc<dyn LaunchLinks> {
    Arc::new(keyring::Keyring::generate())
}

/// Runs the whole protocol for one mint at `created`: claim, fulfil. Panics if the key is
/// reusable or pending under a live claim.
pub async fn mint(
    store: &Arc<dyn SessionStore>,
    app: ApplicationId,
    id: SessionId,
    request: &ValidRequest,
    created: DateTime<Utc>,
) -> StoredSession {
    let mut query = reuse_query(app, request, created, 200);
    let c = ClaimToken(Uuid::new_v4());
    query.claim = c;
    match store.reuse_or_claim(&query).await.unwrap() {
        ReuseOutcome::Claimed => {}
        other => panic!("expected to claim the key, got {other:?}"),
    }
    store
        .fulfil(app, c, new_session(app, id, request, created))
        .await
        .unwrap()
}

/// `app` as the caller of the use cases (named after its id, default settings).
pub fn caller(app: ApplicationId) -> ports::Caller {
    ports::Caller {
        application: app,
        name: format!("app-{}", app.as_uuid().simple()),
        settings: ports::ApplicationSettings::default(),
    }
}

/// A fresh event id (UUID v7).
pub fn evt() -> EventId {
    EventId::from_uuid(Uuid::now_v7())
}
