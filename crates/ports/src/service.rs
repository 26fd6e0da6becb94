//! The use cases, as the HTTP layer calls them. Implemented by the `app` crate.

use std::time::Duration;

use async_trait::async_trait;
use domain::{ApplicationId, Session, SessionId, SessionStatus, Subject, ValidRequest};

use crate::gateway::WidgetUrl;
use crate::ids::LaunchToken;
use crate::request_log::RequestNonce;
use crate::store_error::StoreError;

/// Who calls the use cases: the authenticated application, its name (the challenge names it)
/// and its settings (snapshotted on each session it creates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The application.
    pub application: ApplicationId,
    /// Its name.
    pub name: String,
    /// Its settings.
    pub settings: crate::ApplicationSettings,
}

/// A session and its status at the instant the use case ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The entity.
    pub session: Session,
    /// Its status then.
    pub status: SessionStatus,
    /// The customer's order, once Transak reported one.
    pub order: Option<crate::SessionOrder>,
}

/// The result of create-or-reuse.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    /// The session.
    pub session: SessionView,
    /// Whether an existing session was returned (`200`) rather than a new one (`201`).
    pub reused: bool,
    /// The session's launch token: the same every time the session is handed out; it opens
    /// the session once.
    pub launch_token: LaunchToken,
}

/// Why create-or-reuse failed. Nothing was stored in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The upstream refused the request (answered `502` with a stable code).
    #[error("upstream rejected the request ({status}): {message}")]
    UpstreamRejected {
        /// Upstream HTTP status.
        status: u16,
        /// Upstream's message.
        message: String,
    },
    /// The upstream is unavailable (answered `503` with `Retry-After`).
    #[error("upstream unavailable: {reason}")]
    UpstreamUnavailable {
        /// When to try again.
        retry_after: Duration,
        /// What happened.
        reason: String,
    },
    /// The upstream answered something that breaks its contract (malformed body, unexpected
    /// status); answered `502` with a stable code.
    #[error("upstream answered unexpectedly: {reason}")]
    UpstreamInvalid {
        /// What was wrong (no secret, no upstream session id).
        reason: String,
    },
    /// Another request for the same key is still minting and did not finish within the
    /// wait bound (answered `503` with `Retry-After`).
    #[error("another request for the same session is still in progress")]
    Busy {
        /// When to try again.
        retry_after: Duration,
    },
    /// The request's signature was already accepted: a replay (answered `401
    /// replayed_request`).
    #[error("this signed request was already accepted; sign every request afresh")]
    Replayed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// Newest first.
    pub items: Vec<SessionView>,
    /// The cursor of the next page, if any.
    pub next: Option<SessionId>,
}

/// Why listing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// `limit` outside 1..=100.
    #[error("limit must be between 1 and 100")]
    InvalidLimit,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// ACTIVE → CANCELLED now.
    Cancelled(SessionView),
    /// It was already CANCELLED (cancel is idempotent).
    AlreadyCancelled(SessionView),
}

/// Why a cancel failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// No such session for this application.
    #[error("no such session")]
    NotFound,
    /// The session is CONSUMED or EXPIRED.
    #[error("the session is {}, not ACTIVE", .0.status)]
    NotActive(Box<SessionView>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What opening a launch link leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// Redirect here (the session was ACTIVE; a consuming launch consumed it).
    Redirect(WidgetUrl),
    /// The session is ACTIVE, runs the hosted travel-rule step and its record is not
    /// `COMPLETE`: show the travel-rule page; nothing was consumed.
    TravelRuleStep(Box<SessionView>),
    /// The session ended: consumed, cancelled or expired.
    Gone(SessionStatus),
    /// The session is active but its application is disabled: the link does not open
    /// while it is.
    Withheld,
    /// No session has this link.
    Unknown,
}

/// Why a launch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The use cases.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SessionService: Send + Sync {
    /// Reuses the application's session for the request's key, or mints one upstream. The
    /// request's `nonce` is recorded in the same store step as the lookup (no extra round
    /// trip); a nonce recorded before makes the call fail with [`CreateError::Replayed`].
    ///
    /// # Concurrency
    ///
    /// N identical concurrent calls, on any number of instances sharing one store, mint
    /// exactly one upstream session and all return the same session id.
    ///
    /// # Errors
    ///
    /// See [`CreateError`]; in every error case nothing was stored.
    async fn create_or_reuse(
        &self,
        caller: Caller,
        request: ValidRequest,
        nonce: RequestNonce,
    ) -> Result<CreateOutcome, CreateError>;

    /// Records an accepted request's signature; `false` when it was recorded before (a
    /// replay). For every signed request but create-or-reuse, which records its own.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store fails.
    async fn remember_request(&self, nonce: RequestNonce) -> Result<bool, StoreError>;

    /// One of the application's sessions; `None` for unknown ids and other applications'.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store fails.
    async fn get(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<Option<SessionView>, StoreError>;

    /// The application's sessions, newest first.
    ///
    /// # Errors
    ///
    /// [`ListError::InvalidLimit`], [`ListError::Store`].
    async fn list(
        &self,
        application: ApplicationId,
        subject: Option<Subject>,
        status: Option<SessionStatus>,
        limit: u32,
        before: Option<SessionId>,
    ) -> Result<SessionPage, ListError>;

    /// Cancels an ACTIVE session; idempotent.
    ///
    /// # Errors
    ///
    /// [`CancelError::NotFound`], [`CancelError::NotActive`], [`CancelError::Store`].
    async fn cancel(
        &self,
        application: ApplicationId,
        id: SessionId,
    ) -> Result<CancelOutcome, CancelError>;

    /// Opens a launch link. With `consume` (a `GET`), an ACTIVE session becomes CONSUMED —
    /// exactly once however many opens race; without (a `HEAD`), nothing changes.
    ///
    /// # Errors
    ///
    /// [`LaunchError::Store`] when the store fails.
    async fn launch(&self, token: &str, consume: bool) -> Result<LaunchOutcome, LaunchError>;

    /// The session behind a launch link, read without consuming anything (for the hosted
    /// travel-rule page's forms).
    ///
    /// # Errors
    ///
    /// [`LaunchError::Store`] when the store fails.
    async fn open_link(&self, token: &str) -> Result<LinkState, LaunchError>;
}

/// The session behind a launch link, as [`SessionService::open_link`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The session is ACTIVE (and its application enabled).
    Active(Box<SessionView>),
    /// The session ended: consumed, cancelled or expired.
    Gone(SessionStatus),
    /// The session is active but its application is disabled.
    Withheld,
    /// No session has this link.
    Unknown,
}
