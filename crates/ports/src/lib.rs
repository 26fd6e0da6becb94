//! # Ports: what the core of the service needs from the outside world
//!
//! Object-safe `#[async_trait]` traits, used as `Arc<dyn Port>`:
//!
//! - [`SessionStore`]: sessions and their reuse-key slots (the claim protocol that guarantees
//!   one upstream mint per key, and the lifecycle: launch, cancel, expiry);
//! - [`RequestLog`]: the signatures of accepted requests (replay protection);
//! - [`OrderLog`]: Transak's order events, matched to sessions;
//! - [`Housekeeping`]: retention and the readiness probe;
//! - [`TravelRuleStore`]: declarations and ownership proofs, with their compliance records;
//! - [`LaunchLinks`]: launch tokens, issued and checked without storing anything;
//! - [`ApplicationStore`]: the partner applications and their credentials;
//! - [`AccessTokenStore`]: the one Transak access token all instances share;
//! - [`EndpointStore`], [`EventLog`] and [`DeliveryQueue`]: webhook endpoints, session
//!   events (written by the session-side stores in the same transaction as each change: a
//!   transactional outbox) and their deliveries;
//! - [`WebhookSender`] and [`EventEncoder`]: webhooks on the wire, and the body partners
//!   receive;
//! - [`WidgetGateway`]: Transak's *Create Widget URL*;
//! - [`SecretSealer`]: secrets at rest, sealed with the configured keys;
//! - [`Clock`] and [`Randomness`]: time, and new ids, secrets and jitter, injected so tests control them;
//! - [`SessionService`]: the use cases, as the HTTP layer sees them.
//!
//! [`Stores`] bundles the store ports of one backend.
//!
//! Every method documents its contract under `# Errors` (which variant for which situation)
//! and, where several callers can race, `# Concurrency`. The Postgres and in-memory adapters
//! both implement exactly this contract and run the same conformance suites.
//!
//! With the `test-util` feature, every port has a `mockall` mock (`MockSessionStore`, …).
//!
//! Two tiny adapters that only wrap the standard library live here too, because every
//! composition needs them and they have nothing to configure: [`SystemClock`] and
//! [`SystemRandomness`].

mod application_store;
mod clock;
mod delivery_queue;
mod endpoint_store;
mod gateway;
mod housekeeping;
mod ids;
mod order_log;
mod request_log;
mod sealer;
mod service;
mod session_store;
mod store_error;
mod stores;
mod token_store;
mod travel_rule_store;
mod webhook_sender;

pub use application_store::{
    ApiKeyDigest, Application, ApplicationError, ApplicationRecord, ApplicationSettings,
    ApplicationStatus, ApplicationStore, EncryptedSecret, NewApplication,
};
pub use clock::{Clock, SystemClock};
pub use delivery_queue::{
    Attempt, AttemptOutcome, ClaimQuery, Delivery, DeliveryKey, DeliveryQueue, DeliveryStatus,
    DueDelivery, EventLog, EventRecord, SessionEvent,
};
pub use endpoint_store::{
    EndpointError, EndpointStore, SealedEndpointSecret, SecretSlot, WebhookEndpoint,
};
pub use gateway::{
    GatewayError, OrderEvent, OrderEventError, UpstreamStatus, WidgetGateway, WidgetRequest,
    WidgetUrl,
};
pub use housekeeping::Housekeeping;
pub use ids::{ClaimToken, LaunchLinks, LaunchToken, Randomness, SystemRandomness};
pub use order_log::{OrderLog, OrderOutcome, OrderUpdate, UnmatchedOrder};
pub use request_log::{MAX_REQUEST_AGE_MS, MAX_REQUEST_LEAD_MS, RequestLog, RequestNonce};
pub use sealer::{SealContext, SealError, SecretSealer};
pub use service::{
    Caller, CancelError, CancelOutcome, CreateError, CreateOutcome, LaunchError, LaunchOutcome,
    LinkState, ListError, SessionPage, SessionService, SessionView,
};
pub use session_store::{
    CancelResult, FulfilError, LaunchResult, ListQuery, NewSession, Page, ReuseOutcome, ReuseQuery,
    SessionOrder, SessionStore, StatusFilter, StoredSession,
};
pub use store_error::{StoreCause, StoreError};
pub use stores::Stores;
pub use token_store::{
    AccessTokenStore, PreviousAccessToken, SealedAccessToken, StoredAccessToken, TokenSlot,
};
pub use travel_rule_store::{
    ComplianceRecord, DeclarationVersion, DeclareOutcome, MAX_REFUSED_PROOFS_KEPT, ProofRecord,
    ProofRejection, ProveOutcome, RejectedProof, TravelRuleEvents, TravelRuleStore,
};
pub use webhook_sender::{EventEncoder, OutboundWebhook, SendError, WebhookSender};

#[cfg(any(test, feature = "test-util"))]
pub use application_store::MockApplicationStore;
#[cfg(any(test, feature = "test-util"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "test-util"))]
pub use delivery_queue::{MockDeliveryQueue, MockEventLog};
#[cfg(any(test, feature = "test-util"))]
pub use endpoint_store::MockEndpointStore;
#[cfg(any(test, feature = "test-util"))]
pub use gateway::MockWidgetGateway;
#[cfg(any(test, feature = "test-util"))]
pub use housekeeping::MockHousekeeping;
#[cfg(any(test, feature = "test-util"))]
pub use ids::MockLaunchLinks;
#[cfg(any(test, feature = "test-util"))]
pub use ids::MockRandomness;
#[cfg(any(test, feature = "test-util"))]
pub use order_log::MockOrderLog;
#[cfg(any(test, feature = "test-util"))]
pub use request_log::MockRequestLog;
#[cfg(any(test, feature = "test-util"))]
pub use sealer::MockSecretSealer;
#[cfg(any(test, feature = "test-util"))]
pub use service::MockSessionService;
#[cfg(any(test, feature = "test-util"))]
pub use session_store::MockSessionStore;
#[cfg(any(test, feature = "test-util"))]
pub use token_store::MockAccessTokenStore;
#[cfg(any(test, feature = "test-util"))]
pub use travel_rule_store::MockTravelRuleStore;
#[cfg(any(test, feature = "test-util"))]
pub use webhook_sender::{MockEventEncoder, MockWebhookSender};
