//! Values for tests.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, Asset, Counterparty, CounterpartyAddress, ReusePolicy, Rules, Session,
    SessionId, SessionScope, Subject, ValidRequest,
};
use ports::{
    ClaimToken, LaunchToken, NewSession, ReuseOutcome, ReuseQuery, SessionStore, StoredSession,
    WidgetUrl,
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

/// The default 300 s TTL with this least remaining life for reuse.
pub fn min_remaining(min_remaining: std::time::Duration) -> ReusePolicy {
    ReusePolicy::new(ReusePolicy::DEFAULT_TTL, min_remaining).unwrap()
}

/// Launch token `n` of `app`.
pub fn token(app: ApplicationId, n: u8) -> LaunchToken {
    LaunchToken::from_parts(app, [n; 32])
}

/// A new session for `request`, created at `created` with the default policy, handed out
/// with launch token `token_n`.
pub fn new_session(
    app: ApplicationId,
    id: SessionId,
    request: &ValidRequest,
    created: DateTime<Utc>,
    token_n: u8,
) -> NewSession {
    NewSession {
        session: Session::new(id, app, request.clone(), created, &ReusePolicy::default()),
        key: request.reuse_key().digest(),
        widget_url: WidgetUrl::new(format!(
            "https://widget.test/?apiKey=k&sessionId=upstream-{id}"
        )),
        launch_token: token(app, token_n).digest(),
    }
}

/// A reuse-or-claim query at `now`, with the default 60 s minimum remaining life, launch
/// token `token_n`, and claim `claim(token_n)` under a 30 s lease.
pub fn reuse_query(
    app: ApplicationId,
    request: &ValidRequest,
    now: DateTime<Utc>,
    token_n: u8,
) -> ReuseQuery {
    ReuseQuery {
        application: app,
        key: request.reuse_key().digest(),
        now,
        policy: ReusePolicy::default(),
        force_verify_ownership: request.force_verify_ownership(),
        launch_token: token(app, token_n).digest(),
        claim: claim(u128::from(token_n)),
        lease_until: now + TimeDelta::seconds(30),
    }
}

/// Runs the whole protocol for one mint at `created`: claim, fulfil. Panics if the key is
/// reusable or pending under a live claim.
pub async fn mint(
    store: &Arc<dyn SessionStore>,
    app: ApplicationId,
    id: SessionId,
    request: &ValidRequest,
    created: DateTime<Utc>,
    token_n: u8,
) -> StoredSession {
    let mut query = reuse_query(app, request, created, 200);
    let c = ClaimToken(Uuid::new_v4());
    query.claim = c;
    match store.reuse_or_claim(&query).await.unwrap() {
        ReuseOutcome::Claimed => {}
        other => panic!("expected to claim the key, got {other:?}"),
    }
    store
        .fulfil(app, c, new_session(app, id, request, created, token_n))
        .await
        .unwrap()
}
