//! # Test support (dev-only)
//!
//! - [`fixtures`]: requests, sessions, tokens and instants for tests.
//! - [`clock::TestClock`]: real time that a test moves forward instead of sleeping.
//! - [`conformance`]: the conformance suites of the store ports. Every adapter runs the same
//!   test bodies through [`store_conformance!`], each test on a fresh backend from the
//!   factory it is given, so the in-memory adapters cannot drift from the Postgres ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation panics

pub mod clock;
pub mod conformance;
pub mod fakes;
pub mod fixtures;
pub mod pg;

/// Generates one `#[tokio::test]` per conformance check of every store port, in one module
/// per port, each on a fresh backend from `$factory`: an expression evaluating to a future of
/// `(ports::Stores, guard)`, where the guard (anything, `()` included) is kept alive until
/// the test ends (e.g. the per-test database).
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::__conformance!($factory; session_store;
            a_vacant_key_is_claimed_and_others_wait,
            claimed_and_fulfilled_key_is_reused,
            concurrent_claims_have_one_winner,
            a_pending_claim_blocks_until_its_lease_expires,
            fulfil_after_losing_the_claim_stores_nothing,
            fulfil_after_an_unclaimed_lease_expiry_still_succeeds,
            release_restores_the_previous_binding,
            release_of_a_vacant_claim_makes_the_key_vacant_again,
            reuse_needs_enough_life_left,
            reuse_or_claim_applies_the_domains_rule,
            status_and_launch_apply_the_domains_rule,
            a_recorded_expiry_ends_the_session_for_a_clock_behind,
            ended_sessions_are_not_reused_and_the_slot_is_rebound,
            flag_upgrades_are_upgrade_only,
            concurrent_flag_upgrades_never_lose_true,
            get_is_scoped_by_application,
            list_is_newest_first_paginated_filtered_and_scoped,
            cancel_lifecycle,
            launch_consumes_exactly_once,
            concurrent_launches_have_one_winner,
            launch_without_consume_changes_nothing,
            launch_of_unknown_or_foreign_sessions_is_unknown,
            the_upstream_url_stays_out_of_events_and_ended_sessions,
            a_disabled_applications_links_do_not_open,
        );
        $crate::__conformance!($factory; request_log;
            a_request_nonce_is_accepted_once,
        );
        $crate::__conformance!($factory; order_log;
            order_events_are_recorded_once,
            order_precedence_applies_the_domains_rule,
        );
        $crate::__conformance!($factory; housekeeping;
            purge_deletes_ended_sessions_in_batches,
            ping_answers,
            purge_takes_events_and_deliveries,
            purge_takes_order_events,
        );
        $crate::__conformance!($factory; event_log;
            each_change_writes_one_event_with_a_delivery_per_subscribed_endpoint,
            a_change_that_did_not_happen_writes_no_event,
            expiry_is_emitted_once_however_many_sweepers,
        );
        $crate::__conformance!($factory; delivery_queue;
            deliveries_are_claimed_by_one_worker_at_a_time,
            attempts_retries_and_final_states,
            claims_respect_per_endpoint_limits,
            claims_respect_per_application_limits,
            waiting_workers_wake_on_new_deliveries,
        );
        $crate::__conformance!($factory; endpoint_store;
            endpoints_are_scoped_limited_and_deletable,
            rotation_keeps_the_previous_secret_for_a_while,
            sealed_secrets_are_listed_and_resealed_by_compare_and_swap,
        );
        $crate::__conformance!($factory; travel_rule;
            declarations_are_recorded_with_their_events,
            proofs_are_recorded_with_their_events,
            the_window_and_cancel_close_the_record,
            the_record_is_carried_over_as_the_domain_says,
            a_pending_hosted_step_holds_the_launch_as_the_domain_says,
            a_raised_flag_reopens_as_the_domain_says,
            compliance_records_outlive_the_sessions_retention,
        );
        $crate::__conformance!($factory; token_store;
            no_token_at_first,
            the_refresh_lease_is_exclusive_until_it_expires,
            concurrent_lease_attempts_have_one_winner,
            saving_needs_the_lease_and_bumps_the_version,
            release_frees_the_lease,
            accounts_are_independent,
            sealed_tokens_are_resealed_and_forgotten_by_compare_and_swap,
        );
        $crate::__conformance!($factory; application_store;
            create_and_find,
            names_and_keys_are_unique,
            rotate_replaces_the_credentials,
            disable_and_enable,
            list_is_by_name,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance {
    ($factory:expr; $suite:ident; $($name:ident),* $(,)?) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    // The factory yields the stores and a guard that must outlive the test
                    // (e.g. the per-test database).
                    let (stores, _guard) = $factory.await;
                    $crate::conformance::$suite::$name(stores).await;
                }
            )*
        }
    };
}
