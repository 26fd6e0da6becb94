//! The conformance suites: the documented contract of each store port, as test bodies that
//! take a fresh backend ([`ports::Stores`]). One module per port; every adapter runs them all
//! through [`store_conformance!`](crate::store_conformance), so the in-memory adapters
//! cannot drift from the Postgres ones.
//!
//! Where a rule also lives in SQL for atomicity (the reuse rule, the status of a session, the
//! flag upgrade, the order-status precedence), a property test here checks on random inputs
//! that the store decides exactly as the domain's function does.

pub mod application_store;
pub mod delivery_queue;
pub mod endpoint_store;
pub mod event_log;
pub mod housekeeping;
pub mod order_log;
pub mod request_log;
pub mod session_store;
mod support;
pub mod token_store;
pub mod travel_rule;
