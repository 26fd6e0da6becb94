//! # The use cases
//!
//! [`Sessions`] implements [`ports::SessionService`] — create-or-reuse, get, list, cancel and
//! launch — using nothing but the ports: a [`SessionStore`], a [`WidgetGateway`], a
//! [`Clock`] and an [`Randomness`]. The rules come from the `domain` crate; the concurrency
//! guarantee (one upstream mint per key, however many requests race on however many
//! instances) comes from the store's claim protocol, driven here:
//!
//! 1. `reuse_or_claim` — the hot path, one store round trip: the bound session is reused,
//!    or the slot is claimed if it is free;
//! 2. a slot pending under someone else's unexpired claim → wait (bounded) and ask again; a
//!    slot that changed while the store looked at it → ask again at once;
//! 3. the claimer mints upstream, then `fulfil`s the claim (session and slot binding written
//!    atomically) — or `release`s it if the mint failed, so an upstream
//!    failure stores nothing and never blocks the key;
//! 4. a claim whose owner died is taken over once its lease expires.

mod applications;
mod credential_cache;
mod diagnostics;
mod keys;
mod orders;
mod retention;
mod travel_rule;
mod webhooks;

pub use applications::{
    API_KEY_PREFIX, API_SECRET_PREFIX, AdminError, Applications, AuthError, BootstrapEntry,
    IssuedCredentials, MAX_REQUEST_AGE_MS, MAX_REQUEST_LEAD_MS, MIN_CREDENTIAL_LEN, SignedRequest,
    VerifiedRequest, timestamp_acceptable,
};
pub use credential_cache::{CredentialCache, Credentials};
pub use diagnostics::Diagnostics;
pub use keys::{AtRestKeys, KeyError, KeyReport, ResealReport, SealedKind, Unopenable};
pub use orders::{ORDER_EVENTS, OrderAccepted, OrderError, Orders};
pub use retention::Retention;
pub use travel_rule::{ChallengeView, TravelRule, TravelRuleError, TravelRuleSettings};
pub use webhooks::{
    DeliveryWorker, EndpointWithSecret, ExpirySweeper, WEBHOOK_SECRET_PREFIX, WebhookDependencies,
    WebhookError, WebhookSettings, Webhooks,
};
/// The metrics of the webhook side (names and descriptions).
pub mod webhook_metrics {
    pub use crate::webhooks::{ATTEMPTS, BACKLOG, DELIVERIES, EXPIRED, LATENCY, describe_metrics};
}

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, Challenge, ChallengeNonce, ProofTarget, ReuseKeyDigest, ReusePolicy, Session,
    SessionId, SessionStatus, Subject, TravelRuleRecord, ValidRequest,
};
use ports::{
    Caller, CancelError, CancelOutcome, CancelResult, ClaimToken, Clock, CreateError,
    CreateOutcome, FulfilError, GatewayError, LaunchError, LaunchLinks, LaunchOutcome,
    LaunchResult, LinkState, ListError, ListQuery, NewSession, Randomness, RequestLog,
    RequestNonce, ReuseOutcome, ReuseQuery, SessionPage, SessionService, SessionStore, SessionView,
    StatusFilter, StoreError, StoredSession, WidgetGateway, WidgetRequest,
};
use tracing::{debug, error, info, instrument, warn};

/// Tuning of the claim protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimSettings {
    /// How long a claim holds before another request may take the key over. Must exceed the
    /// gateway's worst-case time for one mint (timeouts × attempts + backoff), or a slow but
    /// alive minter could lose its claim (its link is then abandoned, never duplicated).
    pub lease: Duration,
    /// How long a request waits for another request's pending mint before answering `503`.
    pub wait: Duration,
    /// How often a waiting request looks again.
    pub poll_interval: Duration,
}

impl Default for ClaimSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            wait: Duration::from_secs(25),
            poll_interval: Duration::from_millis(20),
        }
    }
}

/// Everything [`Sessions`] needs.
#[derive(Clone)]
pub struct Dependencies {
    /// Sessions and their reuse-key slots.
    pub store: Arc<dyn SessionStore>,
    /// The request log (signed requests other than create-or-reuse).
    pub requests: Arc<dyn RequestLog>,
    /// The upstream.
    pub gateway: Arc<dyn WidgetGateway>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Randomness>,
    /// Launch tokens.
    pub links: Arc<dyn LaunchLinks>,
}

/// The use cases. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Sessions {
    deps: Dependencies,
    policy: ReusePolicy,
    claims: ClaimSettings,
    travel_rule: TravelRuleSettings,
}

/// What to do after an attempt that did not finish the request.
enum Next {
    LookAgain,
    Wait,
}

impl Sessions {
    /// The use cases over these ports, with this reuse policy and claim tuning.
    pub fn new(deps: Dependencies, policy: ReusePolicy, claims: ClaimSettings) -> Self {
        Self {
            deps,
            policy,
            claims,
            travel_rule: TravelRuleSettings::default(),
        }
    }

    /// The use cases with these travel-rule settings (the window sets when a new session's
    /// challenge is valid until, and what it carries over from the key's previous session).
    pub fn with_travel_rule(mut self, settings: TravelRuleSettings) -> Self {
        self.travel_rule = settings;
        self
    }

    /// The reuse policy in force.
    pub fn policy(&self) -> &ReusePolicy {
        &self.policy
    }

    fn view(&self, session: Session, now: DateTime<Utc>) -> SessionView {
        let status = session.status_at(now);
        SessionView {
            session,
            status,
            order: None,
        }
    }

    fn view_stored(&self, stored: StoredSession, now: DateTime<Utc>) -> SessionView {
        SessionView {
            order: stored.order,
            ..self.view(stored.session, now)
        }
    }

    /// The answer of create-or-reuse: the session, and its launch token.
    fn outcome(
        &self,
        application: ApplicationId,
        session: Session,
        reused: bool,
        now: DateTime<Utc>,
    ) -> CreateOutcome {
        let launch_token = self.deps.links.issue(application, session.id());
        CreateOutcome {
            session: self.view(session, now),
            reused,
            launch_token,
        }
    }

    /// Mints upstream under a held claim, then fulfils it. `Ok(None)` means the claim was
    /// lost meanwhile (the minted link was abandoned) and the caller should look again.
    async fn mint(
        &self,
        caller: &Caller,
        key: ReuseKeyDigest,
        request: &ValidRequest,
        claim: ClaimToken,
    ) -> Result<Option<StoredSession>, CreateError> {
        let application = caller.application;
        let session_id = self.deps.random.session_id();
        // Taken before the upstream call, so the session never outlives the upstream link.
        let now = self.deps.clock.now();
        let scope = request.scope();
        let widget_request = WidgetRequest {
            session_id,
            subject: scope.subject(),
            asset: scope.asset().clone(),
            counterparty: scope.counterparty().clone(),
        };
        let widget_url = match self.deps.gateway.create_widget_url(&widget_request).await {
            Ok(url) => url,
            Err(e) => {
                self.release_quietly(application, &key, claim).await;
                return Err(match e {
                    GatewayError::Rejected { status, message } => {
                        CreateError::UpstreamRejected { status, message }
                    }
                    GatewayError::Unavailable {
                        retry_after,
                        reason,
                    } => CreateError::UpstreamUnavailable {
                        retry_after,
                        reason,
                    },
                    GatewayError::Unexpected(reason) => CreateError::UpstreamInvalid { reason },
                });
            }
        };
        let session = Session::new(session_id, application, request.clone(), now, &self.policy);
        let challenge = self.challenge(caller, &session);
        let session = session
            .with_travel_rule(
                TravelRuleRecord::new(caller.settings.proof_policy),
                challenge,
            )
            .with_hosted_step(caller.settings.hosted.clone());
        let new = NewSession {
            session,
            key,
            widget_url: widget_url.clone(),
            event: self.deps.random.event_id(),
            travel_rule_window: self.travel_rule.window,
            completed_event: self.deps.random.event_id(),
        };
        match self.deps.store.fulfil(application, claim, new).await {
            Ok(stored) => {
                info!(session_id = %session_id, widget_url = %widget_url, "minted a new session");
                Ok(Some(stored))
            }
            Err(FulfilError::ClaimLost) => {
                warn!(
                    session_id = %session_id,
                    widget_url = %widget_url,
                    "claim lost while minting (lease expired and the key was taken over); the minted upstream link is abandoned"
                );
                Ok(None)
            }
            Err(FulfilError::Store(e)) => {
                error!(
                    session_id = %session_id,
                    widget_url = %widget_url,
                    error = %e,
                    "could not store a minted session; the minted upstream link is abandoned"
                );
                self.release_quietly(application, &key, claim).await;
                Err(CreateError::Store(e))
            }
        }
    }

    /// The ownership challenge of a new session, rendered once: `None` when its counterparty
    /// cannot sign (a bare payment hash, a script address).
    fn challenge(&self, caller: &Caller, session: &Session) -> Option<Challenge> {
        let target = ProofTarget::for_counterparty(session.scope().counterparty()).ok()?;
        let random = self.deps.random.secret_bytes();
        let mut nonce = [0u8; 7];
        nonce.copy_from_slice(&random[..7]);
        let until = session.travel_rule_window_ends(self.travel_rule.window);
        match Challenge::new(
            &caller.name,
            &target,
            session.id(),
            ChallengeNonce::from_bytes(nonce),
            until,
        ) {
            Ok(challenge) => Some(challenge),
            Err(e) => {
                // Cannot happen for a challenge of at most 240 bytes until year 9999; the
                // session is still served, and a proof for it answers that none can be made.
                error!(session_id = %session.id(), error = %e, "no ownership challenge could be rendered");
                None
            }
        }
    }

    async fn release_quietly(
        &self,
        application: ApplicationId,
        key: &ReuseKeyDigest,
        claim: ClaimToken,
    ) {
        if let Err(e) = self.deps.store.release(application, key, claim).await {
            // The lease expires on its own; the key is blocked at most that long.
            warn!(error = %e, "could not release a claim; it will lapse when its lease expires");
        }
    }
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[async_trait]
impl SessionService for Sessions {
    #[instrument(skip_all, fields(application = %caller.application))]
    async fn create_or_reuse(
        &self,
        caller: Caller,
        request: ValidRequest,
        nonce: RequestNonce,
    ) -> Result<CreateOutcome, CreateError> {
        let application = caller.application;
        let key = request.reuse_key().digest();
        let started = tokio::time::Instant::now();
        // The nonce is recorded by the first look only: later looks are the same request.
        let mut nonce = Some(nonce);
        loop {
            let now = self.deps.clock.now();
            let claim = self.deps.random.claim_token();
            let query = ReuseQuery {
                application,
                key,
                now,
                policy: self.policy,
                force_verify_ownership: request.force_verify_ownership(),
                nonce: nonce.take(),
                reopened_event: self.deps.random.event_id(),
                claim,
                lease_until: now + to_delta(self.claims.lease),
            };
            let next = match self.deps.store.reuse_or_claim(&query).await? {
                ReuseOutcome::Reused(stored) => {
                    let stored = *stored;
                    debug!(session_id = %stored.session.id(), "reused");
                    return Ok(self.outcome(application, stored.session, true, now));
                }
                ReuseOutcome::Replayed => return Err(CreateError::Replayed),
                ReuseOutcome::Pending { .. } => Next::Wait,
                ReuseOutcome::Changed => Next::LookAgain,
                ReuseOutcome::Claimed => match self.mint(&caller, key, &request, claim).await? {
                    Some(stored) => {
                        let now = self.deps.clock.now();
                        return Ok(self.outcome(application, stored.session, false, now));
                    }
                    None => Next::LookAgain,
                },
            };
            if started.elapsed() >= self.claims.wait {
                return Err(CreateError::Busy {
                    retry_after: Duration::from_secs(1),
                });
            }
            if let Next::Wait = next {
                tokio::time::sleep(self.claims.poll_interval).await;
            }
        }
    }

    async fn remember_request(&self, nonce: RequestNonce) -> Result<bool, StoreError> {
        self.deps.requests.remember(&nonce).await
    }

    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<SessionView>, StoreError> {
        let found = self.deps.store.get(application, id).await?;
        let now = self.deps.clock.now();
        Ok(found.map(|s| self.view_stored(s, now)))
    }

    #[instrument(skip_all, fields(application = %application))]
    async fn list(
        &self,
        application: ApplicationId,
        subject: Option<Subject>,
        status: Option<SessionStatus>,
        limit: u32,
        before: Option<SessionId>,
    ) -> Result<SessionPage, ListError> {
        if !(1..=100).contains(&limit) {
            return Err(ListError::InvalidLimit);
        }
        let now = self.deps.clock.now();
        let page = self
            .deps
            .store
            .list(&ListQuery {
                application,
                subject,
                status: status.map(StatusFilter),
                now,
                limit,
                before,
            })
            .await?;
        Ok(SessionPage {
            items: page
                .items
                .into_iter()
                .map(|s| self.view_stored(s, now))
                .collect(),
            next: page.next,
        })
    }

    #[instrument(skip_all, fields(application = %application, session_id = %id))]
    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<CancelOutcome, CancelError> {
        let now = self.deps.clock.now();
        let event = self.deps.random.event_id();
        match self.deps.store.cancel(application, id, now, event).await? {
            CancelResult::Cancelled(s) => {
                info!("cancelled");
                Ok(CancelOutcome::Cancelled(self.view_stored(s, now)))
            }
            CancelResult::AlreadyCancelled(s) => {
                Ok(CancelOutcome::AlreadyCancelled(self.view_stored(s, now)))
            }
            CancelResult::NotActive(s) => {
                Err(CancelError::NotActive(Box::new(self.view_stored(s, now))))
            }
            CancelResult::NotFound => Err(CancelError::NotFound),
        }
    }

    #[instrument(skip_all, fields(consume))]
    async fn launch(&self, token: &str, consume: bool) -> Result<LaunchOutcome, LaunchError> {
        // A token this service did not issue never reaches the store.
        let Some((application, id)) = self.deps.links.verify(token) else {
            return Ok(LaunchOutcome::Unknown);
        };
        let now = self.deps.clock.now();
        match self
            .deps
            .store
            .launch(application, id, now, consume, self.deps.random.event_id())
            .await?
        {
            LaunchResult::Opened(s) => {
                if consume {
                    info!(session_id = %s.session.id(), "launch link opened; session consumed");
                }
                let url = s.widget_url.ok_or_else(|| {
                    StoreError::unexpected("an open session without its upstream URL")
                })?;
                Ok(LaunchOutcome::Redirect(url))
            }
            LaunchResult::Held(s) => Ok(LaunchOutcome::TravelRuleStep(Box::new(
                self.view_stored(s, now),
            ))),
            LaunchResult::Ended(s) => Ok(LaunchOutcome::Gone(s.session.status_at(now))),
            LaunchResult::Withheld => Ok(LaunchOutcome::Withheld),
            LaunchResult::Unknown => Ok(LaunchOutcome::Unknown),
        }
    }

    async fn open_link(&self, token: &str) -> Result<LinkState, LaunchError> {
        let Some((application, id)) = self.deps.links.verify(token) else {
            return Ok(LinkState::Unknown);
        };
        let now = self.deps.clock.now();
        // A launch that does not consume is a read.
        match self
            .deps
            .store
            .launch(application, id, now, false, self.deps.random.event_id())
            .await?
        {
            LaunchResult::Opened(s) | LaunchResult::Held(s) => {
                Ok(LinkState::Active(Box::new(self.view_stored(s, now))))
            }
            LaunchResult::Ended(s) => Ok(LinkState::Gone(s.session.status_at(now))),
            LaunchResult::Withheld => Ok(LinkState::Withheld),
            LaunchResult::Unknown => Ok(LinkState::Unknown),
        }
    }
}
