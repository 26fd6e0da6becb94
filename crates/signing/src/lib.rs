//! # widget-sessions-signing
//!
//! The two signatures of the widget-sessions API, as pure functions (no I/O, no clock reads,
//! no async), so that the partners' client crate and the service compute them with the same
//! code and neither depends on the other:
//!
//! - [`request`]: the `Authorization: HMAC <unix-ms>:<hex>` header every `/api/v1` call
//!   carries (Striga-compatible), its parsing and verification;
//! - [`webhooks`]: Standard Webhooks signatures (`webhook-signature: v1,<base64>`) of the
//!   service's deliveries, signing and verification against an explicit time.

pub mod request;
pub mod webhooks;
