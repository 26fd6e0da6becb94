//! # widget-sessions: the HTTP service
//!
//! The axum API of SPEC §2–§3 (create-or-reuse, get, list, cancel, launch links, health,
//! readiness, metrics, OpenAPI), application authentication (§6), configuration (§7), and
//! the composition root that wires every adapter: in-memory or Postgres stores, the Transak
//! gateway, and — for zero-configuration runs — an in-process Transak emulator.
//!
//! The binary (`widget-sessions`) is in `main.rs`; [`http::router`] is what the end-to-end
//! tests spawn on port 0.

pub mod admin;
pub mod auth;
pub mod client;
pub mod compose;
pub mod config;
pub mod http;
pub mod observability;
pub mod security;
pub mod server;
pub mod state;

pub use http::router;
