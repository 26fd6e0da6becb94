//! The session entity, its lifecycle, and the reuse policy.
//!
//! ```text
//!            launch link opened once
//!   ACTIVE ─────────────────────────▶ CONSUMED
//!     │  ╲
//!     │   ╲ cancel                      (all three are final: never reused, never reopened)
//!     │    ╲───────────────────────▶ CANCELLED
//!     │ clock passes expiresAt
//!     ╰────────────────────────────▶ EXPIRED
//! ```
//!
//! Every method takes "now" as an argument; nothing here reads the system clock.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ids::{ApplicationId, SessionId};
use crate::ownership::Challenge;
use crate::scope::{SessionScope, ValidRequest};
use crate::travel_rule::{
    DeclarationChange, DeclarationFinal, HostedStep, ProofChange, RecordedDeclaration,
    TravelRuleRecord, TravelRuleStatus, VerifiedProof,
};

/// Where a session stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    /// Usable: not consumed, not cancelled, not expired.
    Active,
    /// Its launch link was opened.
    Consumed,
    /// Its lifetime ran out before anyone opened it.
    Expired,
    /// The application cancelled it.
    Cancelled,
}

impl SessionStatus {
    /// The uppercase name shown in responses and accepted as a list filter.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "ACTIVE",
            SessionStatus::Consumed => "CONSUMED",
            SessionStatus::Expired => "EXPIRED",
            SessionStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses the uppercase name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Consumed, Self::Expired, Self::Cancelled]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a session ended, as a recorded fact.
///
/// A session also ends, unrecorded, when the clock passes its expiry: [`Session::status_at`]
/// derives EXPIRED from the clock until the expiry is recorded (when `session.expired` is
/// emitted, [`Session::record_expiry`]). Once recorded, the session stays EXPIRED whatever
/// clock asks (an instance whose clock runs behind cannot consume or cancel it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEnd {
    /// The launch link was opened at this instant.
    Consumed {
        /// When.
        at: DateTime<Utc>,
    },
    /// The application cancelled the session at this instant.
    Cancelled {
        /// When.
        at: DateTime<Utc>,
    },
    /// Its expiry was recorded (and `session.expired` emitted) at this instant.
    Expired {
        /// When the expiry was recorded (at or after `expires_at` by the recorder's clock).
        at: DateTime<Utc>,
    },
}

/// The operation needs an ACTIVE session and this one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session is {0}, not ACTIVE")]
pub struct NotActive(pub SessionStatus);

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelEffect {
    /// The session was ACTIVE and is now CANCELLED.
    Cancelled,
    /// It was already CANCELLED; nothing changed (cancel is idempotent).
    AlreadyCancelled,
}

/// Everything a session is made of, for adapters that store and restore sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParts {
    /// The id.
    pub id: SessionId,
    /// The owning application.
    pub application_id: ApplicationId,
    /// Subject, asset, counterparty, txHash.
    pub scope: SessionScope,
    /// The stored (upgrade-only) flag.
    pub force_verify_ownership: bool,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// How it ended, if that was recorded.
    pub end: Option<SessionEnd>,
    /// The travel-rule record.
    pub travel_rule: TravelRuleRecord,
    /// The ownership challenge, rendered when the session was created; `None` for a
    /// counterparty that cannot sign.
    pub challenge: Option<Challenge>,
    /// The application's hosted travel-rule step when the session was created.
    pub hosted: HostedStep,
}

/// A travel-rule widget session.
///
/// ```
/// use chrono::{DateTime, TimeDelta};
/// use domain::*;
/// let rules = Rules::default();
/// let payment = LightningPayment { payment_hash: PaymentHash::from_bytes([7; 32]), invoice: None };
/// let scope = SessionScope::new(
///     Subject::User(uuid::Uuid::nil()),
///     Asset::new("BTC", "BTC", rules.ledger()).unwrap(),
///     Counterparty::Lightning(payment),
///     None,
/// ).unwrap();
/// let req = ValidRequest::new(scope, false);
/// let policy = ReusePolicy::default();
/// let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
/// let mut s = Session::new(SessionId::from_uuid(uuid::Uuid::nil()), ApplicationId::from_uuid(uuid::Uuid::nil()), req, t0, &policy);
/// assert_eq!(s.status_at(t0), SessionStatus::Active);
/// assert_eq!(s.expires_at() - s.created_at(), TimeDelta::seconds(300));
/// s.consume(t0 + TimeDelta::seconds(10)).unwrap();
/// assert_eq!(s.status_at(t0 + TimeDelta::seconds(11)), SessionStatus::Consumed);
/// assert!(s.consume(t0 + TimeDelta::seconds(12)).is_err());
/// // The travel-rule window ends on a whole second, as the challenge says it does.
/// let day = std::time::Duration::from_secs(86_400);
/// let late = Session::new(SessionId::from_uuid(uuid::Uuid::nil()), ApplicationId::from_uuid(uuid::Uuid::nil()),
///     ValidRequest::new(s.scope().clone(), false), t0 + TimeDelta::milliseconds(640), &policy);
/// let ends = late.travel_rule_window_ends(day);
/// assert_eq!(ends, t0 + TimeDelta::seconds(86_400));
/// assert!(late.travel_rule_open(ends - TimeDelta::milliseconds(1), day).is_ok());
/// assert!(late.travel_rule_open(ends, day).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    parts: SessionParts,
}

impl Session {
    /// A new ACTIVE session created at `now`, living for the policy's TTL.
    pub fn new(
        id: SessionId,
        application_id: ApplicationId,
        request: ValidRequest,
        now: DateTime<Utc>,
        policy: &ReusePolicy,
    ) -> Self {
        let (scope, force_verify_ownership) = request.into_parts();
        Self {
            parts: SessionParts {
                id,
                application_id,
                scope,
                force_verify_ownership,
                created_at: now,
                expires_at: policy.expires_at(now),
                end: None,
                travel_rule: TravelRuleRecord::default(),
                challenge: None,
                hosted: HostedStep::off(),
            },
        }
    }

    /// The session with its travel-rule record (the application's policy, and what it
    /// carries over from the key's previous session) and its ownership challenge.
    pub fn with_travel_rule(
        mut self,
        record: TravelRuleRecord,
        challenge: Option<Challenge>,
    ) -> Self {
        self.parts.travel_rule = record;
        self.parts.challenge = challenge;
        self
    }

    /// Rebuilds a stored session.
    pub fn restore(parts: SessionParts) -> Self {
        Self { parts }
    }

    /// The parts, for storing.
    pub fn parts(&self) -> &SessionParts {
        &self.parts
    }

    /// Consumes the session, returning its parts.
    pub fn into_parts(self) -> SessionParts {
        self.parts
    }

    /// The id.
    pub fn id(&self) -> SessionId {
        self.parts.id
    }

    /// The owning application.
    pub fn application_id(&self) -> ApplicationId {
        self.parts.application_id
    }

    /// Subject, asset, counterparty, txHash.
    pub fn scope(&self) -> &SessionScope {
        &self.parts.scope
    }

    /// The stored `forceVerifyOwnership`.
    pub fn force_verify_ownership(&self) -> bool {
        self.parts.force_verify_ownership
    }

    /// Creation instant.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.parts.created_at
    }

    /// Expiry instant.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.parts.expires_at
    }

    /// How it ended, if that was recorded.
    pub fn end(&self) -> Option<SessionEnd> {
        self.parts.end
    }

    /// The status at `now`: a recorded end wins (consumed, cancelled, or an expiry already
    /// recorded); otherwise EXPIRED from `expiresAt` on (inclusive), ACTIVE before. The
    /// Postgres store runs this rule as the SQL function `session_status`, checked against
    /// this one by a property test.
    pub fn status_at(&self, now: DateTime<Utc>) -> SessionStatus {
        match self.parts.end {
            Some(SessionEnd::Consumed { .. }) => SessionStatus::Consumed,
            Some(SessionEnd::Cancelled { .. }) => SessionStatus::Cancelled,
            Some(SessionEnd::Expired { .. }) => SessionStatus::Expired,
            None if now >= self.parts.expires_at => SessionStatus::Expired,
            None => SessionStatus::Active,
        }
    }

    /// When the session ended or will end: when it was consumed or cancelled, otherwise its
    /// expiry (also once the expiry was recorded). Retention counts from this instant.
    pub fn ends_at(&self) -> DateTime<Utc> {
        match self.parts.end {
            Some(SessionEnd::Consumed { at }) | Some(SessionEnd::Cancelled { at }) => at,
            Some(SessionEnd::Expired { .. }) | None => self.parts.expires_at,
        }
    }

    /// Records that the session expired (when `session.expired` is emitted): only a session
    /// that is EXPIRED at `now` by the clock and whose end was not recorded yet. Returns
    /// whether it was recorded now.
    pub fn record_expiry(&mut self, now: DateTime<Utc>) -> bool {
        if self.parts.end.is_none() && self.status_at(now) == SessionStatus::Expired {
            self.parts.end = Some(SessionEnd::Expired { at: now });
            true
        } else {
            false
        }
    }

    /// Life left at `now` (zero once expired).
    pub fn remaining_at(&self, now: DateTime<Utc>) -> Duration {
        (self.parts.expires_at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// Marks the session consumed (its launch link was opened). Only an ACTIVE session can
    /// be consumed, once.
    pub fn consume(&mut self, now: DateTime<Utc>) -> Result<(), NotActive> {
        match self.status_at(now) {
            SessionStatus::Active => {
                self.parts.end = Some(SessionEnd::Consumed { at: now });
                Ok(())
            }
            other => Err(NotActive(other)),
        }
    }

    /// Cancels an ACTIVE session; cancelling a cancelled one changes nothing. A consumed or
    /// expired session cannot be cancelled.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<CancelEffect, NotActive> {
        match self.status_at(now) {
            SessionStatus::Active => {
                self.parts.end = Some(SessionEnd::Cancelled { at: now });
                Ok(CancelEffect::Cancelled)
            }
            SessionStatus::Cancelled => Ok(CancelEffect::AlreadyCancelled),
            other => Err(NotActive(other)),
        }
    }

    /// Applies a requested `forceVerifyOwnership`: `true` upgrades the stored flag, `false`
    /// never downgrades it. Says whether the stored flag changed, and whether that moved the
    /// travel-rule record from `COMPLETE` back to `AWAITING_PROOF`.
    pub fn request_force_verify_ownership(&mut self, requested: bool) -> FlagChange {
        let before = self.parts.force_verify_ownership;
        let upgraded = upgrade_flag(before, requested);
        self.parts.force_verify_ownership = upgraded;
        if upgraded == before {
            FlagChange::Unchanged
        } else {
            FlagChange::Raised {
                reopened: self.parts.travel_rule.reopened_by(before, upgraded),
            }
        }
    }

    /// The session with the application's hosted travel-rule step (snapshotted at creation).
    pub fn with_hosted_step(mut self, hosted: HostedStep) -> Self {
        self.parts.hosted = hosted;
        self
    }

    /// The application's hosted travel-rule step when the session was created.
    pub fn hosted_step(&self) -> &HostedStep {
        &self.parts.hosted
    }

    /// Whether the launch link shows the hosted travel-rule page instead of opening the
    /// widget: the step is on and the record is not `COMPLETE` (contract §11). Such a link
    /// consumes nothing until the page's Continue.
    pub fn hosted_step_pending(&self) -> bool {
        self.parts.hosted.enabled && self.travel_rule_status() != TravelRuleStatus::Complete
    }

    /// The travel-rule record.
    pub fn travel_rule(&self) -> &TravelRuleRecord {
        &self.parts.travel_rule
    }

    /// The record's status now (it depends on the stored flag).
    pub fn travel_rule_status(&self) -> TravelRuleStatus {
        self.parts
            .travel_rule
            .status(self.parts.force_verify_ownership)
    }

    /// Whether a proof is required: `None` before a declaration.
    pub fn proof_required(&self) -> Option<bool> {
        self.parts
            .travel_rule
            .proof_required(self.parts.force_verify_ownership)
    }

    /// The ownership challenge, if the counterparty can sign.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.parts.challenge.as_ref()
    }

    /// When the travel-rule window ends: creation plus `window`, to the whole second below
    /// (the challenge's `valid until` is written to the second, and says exactly this).
    pub fn travel_rule_window_ends(&self, window: Duration) -> DateTime<Utc> {
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        let end = self
            .parts
            .created_at
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        DateTime::from_timestamp(end.timestamp(), 0).unwrap_or(end)
    }

    /// Whether declarations, challenges and proofs are served at `now`: for a session that is
    /// not cancelled (ACTIVE, CONSUMED or EXPIRED: a held transfer may be resolved after the
    /// link was opened or left unopened), until the end of the window.
    ///
    /// # Errors
    ///
    /// [`TravelRuleClosed::SessionCancelled`], then [`TravelRuleClosed::WindowClosed`].
    pub fn travel_rule_open(
        &self,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<(), TravelRuleClosed> {
        if matches!(self.parts.end, Some(SessionEnd::Cancelled { .. })) {
            return Err(TravelRuleClosed::SessionCancelled);
        }
        if now >= self.travel_rule_window_ends(window) {
            return Err(TravelRuleClosed::WindowClosed);
        }
        Ok(())
    }

    /// Records a declaration at `now` (see [`TravelRuleRecord::declare`]).
    ///
    /// # Errors
    ///
    /// [`DeclareRefused::Closed`] outside the window, [`DeclareRefused::Final`] when the
    /// record is complete and the declaration differs.
    pub fn declare(
        &mut self,
        declaration: RecordedDeclaration,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<DeclarationChange, DeclareRefused> {
        self.travel_rule_open(now, window)
            .map_err(DeclareRefused::Closed)?;
        self.parts
            .travel_rule
            .declare(declaration, self.parts.force_verify_ownership)
            .map_err(|DeclarationFinal| DeclareRefused::Final)
    }

    /// Records a verified ownership proof at `now` (see [`TravelRuleRecord::verify`]).
    ///
    /// # Errors
    ///
    /// [`TravelRuleClosed`] outside the window.
    pub fn record_proof(
        &mut self,
        proof: VerifiedProof,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<ProofChange, TravelRuleClosed> {
        self.travel_rule_open(now, window)?;
        Ok(self
            .parts
            .travel_rule
            .verify(proof, self.parts.force_verify_ownership))
    }
}

/// What applying a requested `forceVerifyOwnership` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    /// The stored flag is as it was.
    Unchanged,
    /// The stored flag went from `false` to `true`; `reopened` when that moved the
    /// travel-rule record from `COMPLETE` back to `AWAITING_PROOF`
    /// (`session.travel_rule_reopened`).
    Raised {
        /// Whether the record reopened.
        reopened: bool,
    },
}

/// Why a session serves no travel-rule change now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TravelRuleClosed {
    /// The session was cancelled (`409 session_cancelled`).
    #[error("the session was cancelled")]
    SessionCancelled,
    /// The travel-rule window ended (`410 travel_rule_window_closed`).
    #[error("the travel-rule window of this session has closed")]
    WindowClosed,
}

/// Why a declaration was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeclareRefused {
    /// Cancelled, or outside the window.
    #[error(transparent)]
    Closed(TravelRuleClosed),
    /// The record is complete and the declaration differs (`409
    /// declaration_already_recorded`).
    #[error("the travel-rule record is complete; its declaration cannot be changed")]
    Final,
}

/// The upgrade-only merge of a stored `forceVerifyOwnership` with a requested one.
///
/// ```
/// use domain::upgrade_flag;
/// assert!(upgrade_flag(false, true));
/// assert!(upgrade_flag(true, false));
/// assert!(!upgrade_flag(false, false));
/// ```
pub const fn upgrade_flag(stored: bool, requested: bool) -> bool {
    stored || requested
}

/// How long sessions live and how much life a session must have left to be reused.
///
/// ```
/// use std::time::Duration;
/// use domain::ReusePolicy;
/// let p = ReusePolicy::new(Duration::from_secs(120), Duration::from_secs(30)).unwrap();
/// assert_eq!(p.ttl(), Duration::from_secs(120));
/// assert!(ReusePolicy::new(Duration::from_secs(301), Duration::from_secs(60)).is_err());
/// assert!(ReusePolicy::new(Duration::from_secs(60), Duration::from_secs(61)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    ttl: Duration,
    min_remaining: Duration,
}

/// An unusable reuse policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// TTL of zero or above the upstream link's 300 s.
    #[error(
        "session TTL must be between 1 and 300 seconds (the upstream link lives 5 minutes), got {0:?}"
    )]
    Ttl(Duration),
    /// `min_remaining` longer than the TTL: nothing could ever be reused.
    #[error(
        "the least remaining life for reuse ({min_remaining:?}) cannot exceed the TTL ({ttl:?})"
    )]
    MinRemaining {
        /// Configured TTL.
        ttl: Duration,
        /// Configured minimum remaining life.
        min_remaining: Duration,
    },
}

/// Why a new session must be minted instead of reusing the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintReason {
    /// No session exists for the key.
    NoCandidate,
    /// The candidate's link was already opened.
    Consumed,
    /// The candidate was cancelled.
    Cancelled,
    /// The candidate expired.
    Expired,
    /// The candidate is active but has less than `min_remaining` left.
    TooLittleLifeLeft,
}

/// The outcome of [`ReusePolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseDecision {
    /// Return the candidate; when `upgrade_flag` is set its `forceVerifyOwnership` must be
    /// raised to `true` first.
    Reuse {
        /// Whether the stored flag must be upgraded.
        upgrade_flag: bool,
    },
    /// Mint a new session.
    MintNew(MintReason),
}

impl ReusePolicy {
    /// The upper bound of a TTL: the upstream widget URL's own life.
    pub const MAX_TTL: Duration = Duration::from_secs(300);
    /// The default TTL (contract §4).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    /// The default least remaining life for reuse (contract §2).
    pub const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(60);

    /// A policy; the TTL must be within (0, 300 s] and `min_remaining` at most the TTL.
    pub fn new(ttl: Duration, min_remaining: Duration) -> Result<Self, PolicyError> {
        if ttl.is_zero() || ttl > Self::MAX_TTL {
            return Err(PolicyError::Ttl(ttl));
        }
        if min_remaining > ttl {
            return Err(PolicyError::MinRemaining { ttl, min_remaining });
        }
        Ok(Self { ttl, min_remaining })
    }

    /// Session lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Least remaining life for reuse.
    pub fn min_remaining(&self) -> Duration {
        self.min_remaining
    }

    /// When a session created at `created_at` expires.
    pub fn expires_at(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        // ttl ≤ 300 s, so the conversion cannot fail; saturate at the end of time rather
        // than panic on a clock gone mad.
        let ttl = TimeDelta::from_std(self.ttl).unwrap_or(TimeDelta::seconds(300));
        created_at
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The least expiry a session must have to be reused at `now`: `now` plus the least
    /// remaining life. A session is reusable at `now` when it is ACTIVE and
    /// `expires_at >= must_live_until(now)` (to the microsecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// use chrono::{DateTime, TimeDelta};
    /// use domain::ReusePolicy;
    /// let p = ReusePolicy::new(Duration::from_secs(300), Duration::from_secs(60)).unwrap();
    /// let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    /// assert_eq!(p.must_live_until(now), now + TimeDelta::seconds(60));
    /// ```
    pub fn must_live_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // min_remaining ≤ ttl ≤ 300 s: the conversion cannot fail; saturate rather than panic.
        let min = TimeDelta::from_std(self.min_remaining).unwrap_or(TimeDelta::seconds(300));
        now.checked_add_signed(min)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether `candidate` (the session stored under the request's reuse key, if any) may
    /// serve a request asking for `requested_flag` at `now`. This is the rule the service's
    /// stores apply on every create request: the in-memory store calls it, and the Postgres
    /// store's `session_reusable` SQL function is checked against it by a property test.
    pub fn decide(
        &self,
        candidate: Option<&Session>,
        requested_flag: bool,
        now: DateTime<Utc>,
    ) -> ReuseDecision {
        let Some(candidate) = candidate else {
            return ReuseDecision::MintNew(MintReason::NoCandidate);
        };
        match candidate.status_at(now) {
            SessionStatus::Consumed => ReuseDecision::MintNew(MintReason::Consumed),
            SessionStatus::Cancelled => ReuseDecision::MintNew(MintReason::Cancelled),
            SessionStatus::Expired => ReuseDecision::MintNew(MintReason::Expired),
            SessionStatus::Active if candidate.expires_at() < self.must_live_until(now) => {
                ReuseDecision::MintNew(MintReason::TooLittleLifeLeft)
            }
            SessionStatus::Active => ReuseDecision::Reuse {
                upgrade_flag: requested_flag && !candidate.force_verify_ownership(),
            },
        }
    }
}

impl Default for ReusePolicy {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            min_remaining: Self::DEFAULT_MIN_REMAINING,
        }
    }
}
