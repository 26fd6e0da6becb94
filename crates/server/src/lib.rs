//! # widget-sessions: the program
//!
//! The binary of the travel-rule widget-session service (`main.rs`) and what it is made of:
//! configuration from the environment ([`config`]), the composition root that wires every
//! adapter into the use cases ([`compose`]), the whole service built and run until stopped
//! ([`application::Application`]), the admin subcommands
//! ([`admin`]), the `request` subcommand that signs and sends a request ([`request`]), and
//! logging ([`telemetry`]).
//!
//! The in-process Transak emulator of the zero-configuration run is linked only with the
//! default `emulator` feature.

pub mod admin;
pub mod application;
pub mod compose;
pub mod config;
pub mod http_server;
pub mod listen;
pub mod request;
pub mod telemetry;
