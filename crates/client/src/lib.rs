//! # widget-sessions-client
//!
//! For partners' backends: call the travel-rule widget-sessions API from Rust.
//!
//! - [`Client`]: a typed async client for every endpoint. Each call is signed afresh
//!   (`api-key` + `Authorization: HMAC …`, see [`signing`]); answers are typed
//!   ([`Session`], [`SessionPage`]); failures are typed [`Error`]s built from the service's
//!   problem documents, with a stable [`ProblemCode`] to match on.
//! - [`signing`]: the request signature on its own, for other HTTP stacks.
//! - [`webhooks`]: verifying the signed webhooks the service sends (Standard Webhooks).
//!
//! This crate depends on no server crate (no axum, no sqlx): it is all a partner needs.
//!
//! ```no_run
//! use widget_sessions_client::{Client, CreateSession, CounterpartyInput, ProblemCode, Subject};
//!
//! # async fn run() -> Result<(), widget_sessions_client::Error> {
//! let client = Client::new("https://sessions.example.com", "wsk_…", "wss_…")?;
//! let request = CreateSession::new(
//!     Subject::User("7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44".parse().unwrap()),
//!     "BTC",
//!     "BTC",
//!     CounterpartyInput::Address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into()),
//! );
//! match client.create_session(&request).await {
//!     Ok(session) => println!("send the customer to {}", session.widget_url.unwrap_or_default()),
//!     Err(e) if e.code() == Some(&ProblemCode::ValidationFailed) => {
//!         for problem in &e.problem().unwrap().errors {
//!             eprintln!("{}: {}", problem.field, problem.message);
//!         }
//!     }
//!     Err(e) if e.is_retryable() => eprintln!("try again later: {e}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```

mod error;
pub mod signing;
mod types;
pub mod webhooks;

#[cfg(feature = "http")]
pub use error::Error;
pub use error::{ApiProblem, FieldProblem, ProblemCode};
pub use types::{
    Counterparty, CounterpartyInput, CreateEndpoint, CreateSession, Declaration, Delivery,
    Endpoint, Event, InvoiceInfo, ListSessions, Order, OwnershipChallenge, OwnershipProof,
    RecordedDeclaration, Session, SessionPage, SessionStatus, Subject, ThirdParty, TravelRule,
    VaspParty,
};

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
pub use http::{Client, RawResponse};
