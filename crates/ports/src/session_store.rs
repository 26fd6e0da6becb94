//! Sessions and their reuse-key slots: the claim protocol and the session lifecycle.
//!
//! # The slot and claim protocol
//!
//! For every (application, reuse key) there is at most one **slot**. A slot is either
//! *bound* to the session currently serving the key, or *pending*: claimed by one caller who
//! is minting that session upstream right now, under a lease. The protocol:
//!
//! 1. [`SessionStore::reuse_or_claim`] — one atomic step, one round trip: if the slot is
//!    bound to a session that is reusable ([`ReusePolicy::decide`](domain::ReusePolicy::decide):
//!    ACTIVE and living long enough), apply the flag upgrade and return it. Otherwise, if the slot is free — vacant, bound to a session that is not reusable,
//!    or pending under a lapsed lease — claim it for the caller. Otherwise say why not.
//! 2. If the slot is pending under someone else's unexpired lease, that caller is minting:
//!    wait and go back to 1. If the slot changed while it was being looked at, go back to 1.
//! 3. The claimer mints upstream, then [`SessionStore::fulfil`]s its claim: the session and
//!    the slot binding are written atomically, and only while the
//!    claim is still the claimer's. If the mint fails, it [`SessionStore::release`]s the
//!    claim.
//! 4. A claim whose owner died is taken over (step 1) once its lease expires.
//!
//! Sessions that are not reusable any more (consumed, cancelled, expired, or with too little
//! life left) stay where they are: a new claim simply rebinds the slot to a new session. Such
//! a state never becomes reusable again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ApplicationId, EventId, OrderStatus, ReuseKeyDigest, ReusePolicy, Session, SessionId,
    SessionStatus, Subject,
};

use crate::gateway::WidgetUrl;
use crate::ids::ClaimToken;
use crate::request_log::RequestNonce;
use crate::store_error::StoreError;

/// A session as stored: the domain entity, the upstream widget URL its launch links
/// redirect to, and the customer's order in the widget once Transak reported one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The entity.
    pub session: Session,
    /// Where the launch link redirects (contains the upstream `sessionId`, a bearer;
    /// redacted in `Debug`). Cleared when the session ends (consumed, cancelled, or its
    /// expiry recorded): `None` from then on. Never in an event's copy of the session.
    pub widget_url: Option<WidgetUrl>,
    /// The order, as the last accepted order event reported it.
    pub order: Option<SessionOrder>,
}

/// The customer's order in the widget, as Transak last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOrder {
    /// Transak's order id.
    pub id: String,
    /// The order's own status (`webhookData.status`), e.g. `PROCESSING`, `COMPLETED`.
    pub status: OrderStatus,
    /// The event that reported it (`eventID`), e.g. `ORDER_COMPLETED`.
    pub event_id: String,
    /// When this service accepted that event.
    pub updated_at: DateTime<Utc>,
}

/// A freshly minted session to store with [`SessionStore::fulfil`].
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The entity (ACTIVE, created now), with an empty travel-rule record under the
    /// application's policy; the store carries the previous session's record over.
    pub session: Session,
    /// Its reuse key digest.
    pub key: ReuseKeyDigest,
    /// The upstream URL.
    pub widget_url: WidgetUrl,
    /// The id of its `session.created` event.
    pub event: EventId,
    /// The travel-rule window: a declaration or proof of the key's previous session made
    /// within it is carried over ([`domain::TravelRuleRecord::carried_over`]).
    pub travel_rule_window: std::time::Duration,
    /// The id of its `session.travel_rule_completed` event, written if the record it carries
    /// over is complete.
    pub completed_event: EventId,
}

/// The hot path: reuse the key's session, or claim the key to mint one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseQuery {
    /// The calling application.
    pub application: ApplicationId,
    /// The request's reuse key digest.
    pub key: ReuseKeyDigest,
    /// Now.
    pub now: DateTime<Utc>,
    /// The reuse rule: the bound session is reused when
    /// [`ReusePolicy::decide`](domain::ReusePolicy::decide) says so.
    pub policy: ReusePolicy,
    /// The requested `forceVerifyOwnership`: when `true` and the stored flag is `false`, the
    /// stored flag becomes `true` (never the other way).
    pub force_verify_ownership: bool,
    /// The request's signature: when given, it is recorded in the same step, and if it was
    /// recorded before nothing is done and [`ReuseOutcome::Replayed`] is returned.
    pub nonce: Option<RequestNonce>,
    /// The id of the `session.travel_rule_reopened` event to write if raising the flag moves
    /// the session's travel-rule record from `COMPLETE` back to `AWAITING_PROOF`.
    pub reopened_event: EventId,
    /// The caller's claim, taken if nothing is reusable and the slot is free.
    pub claim: ClaimToken,
    /// Until when that claim holds; after that anyone may take the slot over.
    pub lease_until: DateTime<Utc>,
}

/// What [`SessionStore::reuse_or_claim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReuseOutcome {
    /// The bound session is reusable; the flag was upgraded if asked. The session is
    /// returned as stored after the upgrade.
    Reused(Box<StoredSession>),
    /// The query's nonce was already recorded: the request is a replay; nothing was done.
    Replayed,
    /// Nothing was reusable and the caller now holds the slot's claim: it must mint, then
    /// fulfil or release.
    Claimed,
    /// Another caller holds the slot's claim until `lease_until` (it is minting): wait, then
    /// ask again.
    Pending {
        /// When that claim lapses.
        lease_until: DateTime<Utc>,
    },
    /// The slot changed while it was being looked at (another caller claimed or fulfilled
    /// it at the same moment); nothing was done. Ask again.
    Changed,
}

/// Why [`SessionStore::fulfil`] stored nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FulfilError {
    /// The claim is no longer the caller's (its lease expired and another caller took the
    /// slot over). Nothing was stored; the minted upstream URL must be abandoned.
    #[error("the claim on this reuse key was lost")]
    ClaimLost,
    /// The store failed. Nothing was stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which sessions a list returns, by status at the query's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFilter(pub SessionStatus);

/// A page request: the application's sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The calling application (every list is scoped to it).
    pub application: ApplicationId,
    /// Only this subject's sessions.
    pub subject: Option<Subject>,
    /// Only sessions in this status at `now`.
    pub status: Option<StatusFilter>,
    /// Now, for the time-derived statuses.
    pub now: DateTime<Utc>,
    /// At most this many (1 to 100).
    pub limit: u32,
    /// Only sessions older than this one (the previous page's last id).
    pub before: Option<SessionId>,
}

/// One page of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Newest first.
    pub items: Vec<StoredSession>,
    /// Pass as `before` to get the next page; `None` on the last page.
    pub next: Option<SessionId>,
}

/// The result of [`SessionStore::cancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelResult {
    /// It was ACTIVE and is now CANCELLED.
    Cancelled(StoredSession),
    /// It was already CANCELLED.
    AlreadyCancelled(StoredSession),
    /// It is CONSUMED or EXPIRED; nothing changed.
    NotActive(StoredSession),
    /// No such session for this application.
    NotFound,
}

/// The result of [`SessionStore::launch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchResult {
    /// The session was ACTIVE; if `consume` was asked it is now CONSUMED (by this call and
    /// no other). As it was opened: with its `widget_url`, which the store cleared if it
    /// consumed the session.
    Opened(StoredSession),
    /// The session is ACTIVE but its application is disabled: its links do not open (nor
    /// consume) while it is, and open again once it is enabled if the session still is.
    Withheld,
    /// The session is ACTIVE and enabled, but it runs the hosted travel-rule step and its
    /// record is not `COMPLETE` ([`domain::Session::hosted_step_pending`]): nothing was
    /// consumed, even when `consume` was asked.
    Held(StoredSession),
    /// The session is CONSUMED, CANCELLED or EXPIRED.
    Ended(StoredSession),
    /// No such session for this application.
    Unknown,
}

/// Sessions and reuse-key slots, always scoped by application.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The hot path, one round trip: reuse the key's session or claim the key (see
    /// [`ReuseQuery`], [`ReuseOutcome`] and the module docs).
    ///
    /// # Concurrency
    ///
    /// Atomic. Any number of concurrent calls for one key, on any number of instances, all
    /// see the same bound session; when nothing is reusable, at most one of them gets
    /// [`ReuseOutcome::Claimed`] per lease. Flag upgrades are never lost (a `true` written
    /// by one call is never overwritten with `false` by another). A reuse takes no lock on
    /// the session unless it upgrades the flag; it writes nothing durable then (the nonce
    /// may live in a table that a crash empties).
    ///
    /// # Durability
    ///
    /// A flag upgrade is durable when the call returns. A claim need not be: a claim lost in
    /// a store crash only means [`SessionStore::fulfil`] reports [`FulfilError::ClaimLost`]
    /// and the key is claimed again. A recorded nonce need not be either (losing it in a
    /// crash reopens a replay window of at most the accepted timestamp window).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn reuse_or_claim(&self, query: &ReuseQuery) -> Result<ReuseOutcome, StoreError>;

    /// Stores a minted session and binds the slot to it — all or nothing, and only while
    /// `claim` is still the slot's claim (an expired lease that nobody took over still
    /// counts) — with its `session.created` event (`session.event`) and the event's
    /// deliveries (the outbox: see [`crate::DeliveryQueue`]). The new session starts with the
    /// travel-rule record of the session the slot was bound to, unless that one was
    /// cancelled, as [`domain::TravelRuleRecord::carried_over`] says (with its compliance
    /// records); if that record is complete, `session.travel_rule_completed` follows. Returns
    /// the session as stored.
    ///
    /// # Errors
    ///
    /// [`FulfilError::ClaimLost`] when the slot's claim is another one (nothing stored);
    /// [`FulfilError::Store`] with [`StoreError::Unavailable`] when the store cannot be
    /// reached.
    async fn fulfil(
        &self,
        application: ApplicationId,
        claim: ClaimToken,
        session: NewSession,
    ) -> Result<StoredSession, FulfilError>;

    /// Gives up `claim` on the slot (the mint failed): the slot returns to its previous
    /// binding, or disappears if it had none. Releasing a claim one does not hold does
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn release(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) -> Result<(), StoreError>;

    /// One session of `application`; `None` if it does not exist or belongs to another
    /// application.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// A page of the application's sessions, newest (highest id) first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Cancels an ACTIVE session at `now`, with its `session.cancelled` event `event` (and
    /// deliveries) in the same transaction; a session already cancelled or not active
    /// writes no event.
    ///
    /// # Concurrency
    ///
    /// Atomic: a cancel racing a launch of the same session ends with exactly one of them
    /// having taken effect.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        event: EventId,
    ) -> Result<CancelResult, StoreError>;

    /// Opens a session's launch link: if `consume`, marks the ACTIVE session CONSUMED at
    /// `now` and writes its `session.consumed` event `event` (and deliveries) — unless its
    /// hosted travel-rule step is pending ([`LaunchResult::Held`], decided in the same
    /// statement). One atomic statement, one round trip.
    ///
    /// # Concurrency
    ///
    /// Atomic: of any number of concurrent consuming launches of one session (on any
    /// instance), exactly one gets [`LaunchResult::Opened`]; the others get
    /// [`LaunchResult::Ended`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn launch(
        &self,
        application: ApplicationId,
        id: SessionId,
        now: DateTime<Utc>,
        consume: bool,
        event: EventId,
    ) -> Result<LaunchResult, StoreError>;

    /// Emits `session.expired` for sessions (of any application) that passed their expiry
    /// while ACTIVE and have not had it yet — at most `events.len()` of them, one event id
    /// each — with their deliveries; returns how many.
    ///
    /// # Concurrency
    ///
    /// Each such session gets exactly one `session.expired`, however many sweepers run at
    /// once on however many instances.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn sweep_expired(
        &self,
        now: DateTime<Utc>,
        events: &[EventId],
    ) -> Result<u64, StoreError>;
}
