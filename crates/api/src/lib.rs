//! # The HTTP adapter
//!
//! The axum API of the widget-session service: routes ([`router`]), authentication as an
//! extractor that calls the application use case ([`auth::Signed`]), one error type rendered
//! as `application/problem+json` ([`http::error::ApiError`]), the OpenAPI document generated
//! from the handlers ([`http::openapi`]), and the HTTP metrics and request ids
//! ([`observability`]).
//!
//! Handlers are thin: extract, call a use case, map the result. The `widget-sessions` binary
//! (the `server` crate) composes the use cases with their adapters and serves [`router`].

pub mod auth;
pub mod http;
pub mod observability;
pub mod state;

pub use http::router;
