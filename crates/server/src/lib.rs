//! # widget-sessions: the program
//!
//! The binary of the travel-rule widget-session service (`main.rs`) and what it is made of:
//! configuration from the environment ([`config`]), the composition root that wires every
//! adapter into the use cases ([`compose`]), the whole service built and run until stopped
//! ([`application::Application`]), the admin subcommands
//! ([`admin`]), the checks of `doctor` ([`doctor`]), the `request` subcommand that signs and sends a request ([`request_command`]), and
//! logging ([`telemetry`]).
//!
//! The in-process Transak emulator of the zero-configuration run is linked only with the
//! default `emulator` feature.

pub mod admin;
pub mod application;
pub mod compose;
pub mod config;
pub mod doctor;
pub mod http_server;
pub mod listen;
pub mod request_command;
pub mod telemetry;

#[cfg(test)]
mod tests {
    /// The partners' client crate knows every problem code the API can answer a partner's
    /// call with, and no other.
    #[test]
    fn the_client_knows_every_problem_code_partners_can_get() {
        use std::collections::BTreeSet;
        let sent: BTreeSet<&str> = api::http::error::ProblemCode::ALL
            .iter()
            .filter(|c| c.for_partners())
            .map(|c| c.as_str())
            .collect();
        let known: BTreeSet<&str> = client::ProblemCode::KNOWN.iter().copied().collect();
        assert_eq!(sent, known);
    }
}
