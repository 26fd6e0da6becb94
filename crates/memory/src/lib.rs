//! # In-memory adapters
//!
//! [`MemoryStore`] (every session-side store port over one state), [`MemoryApplicationStore`]
//! and [`MemoryTokenStore`] implement the store ports with the exact semantics their
//! documentation states. They back the zero-configuration run and the tests, and pass the
//! same conformance suites (`testkit::conformance`) as the Postgres adapters, so they cannot
//! drift from them.
//!
//! Every operation takes its store's mutex once and never awaits while holding it, so each
//! call is atomic — the property the Postgres adapter gets from single statements. One
//! module per port: `sessions` (claims and lifecycle), `request_log`, `order_log`,
//! `housekeeping`, `travel_rule`, `endpoints`, `deliveries` (events and the delivery queue), `applications`,
//! `tokens`; `state` holds what the session-side ports share, and the outbox.

mod applications;
mod deliveries;
mod endpoints;
mod housekeeping;
mod order_log;
mod request_log;
mod sessions;
mod state;
mod tokens;
mod travel_rule;

use std::sync::Arc;

pub use applications::MemoryApplicationStore;
pub use state::MemoryStore;
pub use tokens::MemoryTokenStore;

/// A fresh in-memory backend: every store port.
pub fn stores() -> ports::Stores {
    let applications = Arc::new(MemoryApplicationStore::new());
    ports::Stores::of(
        Arc::new(MemoryStore::with_applications(applications.clone())),
        applications,
        Arc::new(MemoryTokenStore::new()),
    )
}
