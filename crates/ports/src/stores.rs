//! Every store port, as one backend provides them.

use std::sync::Arc;

use crate::{
    AccessTokenStore, ApplicationStore, DeliveryQueue, EndpointStore, EventLog, Housekeeping,
    OrderLog, RequestLog, SessionStore, TravelRuleStore,
};

/// The stores of one backend (Postgres, or memory). The session-side ports of a backend are
/// one store underneath: an event is written by the same statement (or critical section) as
/// the change it reports, whichever port made the change.
#[derive(Clone)]
pub struct Stores {
    /// Sessions and their reuse-key slots.
    pub sessions: Arc<dyn SessionStore>,
    /// Accepted requests' signatures.
    pub requests: Arc<dyn RequestLog>,
    /// Transak's order events.
    pub orders: Arc<dyn OrderLog>,
    /// Retention and readiness.
    pub housekeeping: Arc<dyn Housekeeping>,
    /// Travel-rule declarations and ownership proofs.
    pub travel_rule: Arc<dyn TravelRuleStore>,
    /// Webhook endpoints.
    pub endpoints: Arc<dyn EndpointStore>,
    /// Sessions' events with their deliveries.
    pub events: Arc<dyn EventLog>,
    /// The delivery queue.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// Partner applications.
    pub applications: Arc<dyn ApplicationStore>,
    /// The shared Transak access token.
    pub tokens: Arc<dyn AccessTokenStore>,
}

impl Stores {
    /// The session-side ports of one store that implements them all.
    pub fn of<S>(
        store: Arc<S>,
        applications: Arc<dyn ApplicationStore>,
        tokens: Arc<dyn AccessTokenStore>,
    ) -> Self
    where
        S: SessionStore
            + RequestLog
            + OrderLog
            + Housekeeping
            + TravelRuleStore
            + EndpointStore
            + EventLog
            + DeliveryQueue
            + 'static,
    {
        Self {
            sessions: store.clone(),
            requests: store.clone(),
            orders: store.clone(),
            housekeeping: store.clone(),
            travel_rule: store.clone(),
            endpoints: store.clone(),
            events: store.clone(),
            deliveries: store,
            applications,
            tokens,
        }
    }
}
