//! [`ports::SessionStore`]: the claim protocol and the session lifecycle.
#![allow(unused_imports)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    ApplicationId, EventType, SessionStatus, Subject, ValidRequest, WebhookEndpointId, WebhookUrl,
};
use ports::*;
use uuid::Uuid;

use crate::fixtures::*;

use super::support::*;

type Store = Arc<dyn SessionStore>;

fn reused(outcome: ReuseOutcome) -> StoredSession {
    match outcome {
        ReuseOutcome::Reused(s) => *s,
        other => panic!("expected a reuse, got {other:?}"),
    }
}

/// Reuse-or-claim of request `r` for `app` at `now`, with claim `c` (under a 30 s
/// lease) and a fresh request nonce.
async fn ask(
    store: &Store,
    app: ApplicationId,
    r: &ValidRequest,
    now: DateTime<Utc>,
    c: u128,
) -> ReuseOutcome {
    let mut q = reuse_query(app, r, now, 0);
    q.claim = claim(c);
    // As every HTTP create: a fresh request nonce.
    q.nonce = Some(nonce(app));
    store.reuse_or_claim(&q).await.unwrap()
}

/// How a generated session ended before the question, if it did: by an action at that
/// many seconds after its creation, or by a recorded expiry (its `session.expired` emitted by
/// a sweep at that many seconds, at or after its expiry).
#[derive(Debug, Clone, Copy)]
enum End {
    Active,
    Consumed(i64),
    Cancelled(i64),
    ExpiryRecorded(i64),
}

fn ends() -> impl proptest::strategy::Strategy<Value = End> {
    use proptest::prelude::*;
    prop_oneof![
        Just(End::Active),
        (0..300i64).prop_map(End::Consumed),
        (0..300i64).prop_map(End::Cancelled),
        (300..400i64).prop_map(End::ExpiryRecorded),
    ]
}

/// Brings session `id` of `APP_A` (created at `t0()`) to `end`.
async fn apply(store: &Store, id: domain::SessionId, end: End) {
    match end {
        End::Active => {}
        End::Consumed(s) => {
            let r = store.launch(APP_A, id, at(s), true, evt()).await.unwrap();
            assert!(matches!(r, LaunchResult::Opened(_)), "{end:?}");
        }
        End::Cancelled(s) => {
            let r = store.cancel(APP_A, id, at(s), evt()).await.unwrap();
            assert!(matches!(r, CancelResult::Cancelled(_)), "{end:?}");
        }
        End::ExpiryRecorded(s) => {
            // Sweeps record every due session of the store: sweep until this one is.
            for _ in 0..100 {
                store
                    .sweep_expired(at(s), &[evt(), evt(), evt()])
                    .await
                    .unwrap();
                let now = store.get(APP_A, id).await.unwrap().unwrap().session;
                if matches!(now.end(), Some(domain::SessionEnd::Expired { .. })) {
                    return;
                }
            }
            panic!("the expiry of {id} was never recorded");
        }
    }
}

/// One generated case of [`reuse_or_claim_applies_the_domains_rule`].
#[derive(Debug, Clone)]
struct ReuseCase {
    bound: bool,
    stored_flag: bool,
    requested_flag: bool,
    end: End,
    min_remaining_micros: u64,
    now_micros: i64,
}

fn reuse_cases() -> impl proptest::strategy::Strategy<Value = ReuseCase> {
    use proptest::prelude::*;
    let ttl = 300_000_000i64;
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(End::Active),
            (0..ttl / 1_000_000).prop_map(End::Consumed),
            (0..ttl / 1_000_000).prop_map(End::Cancelled),
        ],
        prop_oneof![Just(0u64), Just(60_000_000), 0..=ttl as u64],
    )
        .prop_flat_map(move |(bound, stored, requested, end, min)| {
            // Instants around the two boundaries (the reuse threshold and expiry) to the
            // microsecond, and anywhere from before creation to after expiry.
            let threshold = ttl - min as i64;
            let now = prop_oneof![
                (threshold - 2..=threshold + 2),
                (ttl - 2..=ttl + 2),
                (-5_000_000..=ttl + 5_000_000),
            ];
            (
                Just(bound),
                Just(stored),
                Just(requested),
                Just(end),
                Just(min),
                now,
            )
        })
        .prop_map(
            |(bound, stored_flag, requested_flag, end, min, now)| ReuseCase {
                bound,
                stored_flag,
                requested_flag,
                end,
                min_remaining_micros: min,
                now_micros: now,
            },
        )
}

/// The store's reuse decision is the domain's: for random sessions (active, consumed,
/// cancelled, expired, with little or much life left), stored and requested flags,
/// instants and policies, `reuse_or_claim` reuses exactly when
/// [`domain::ReusePolicy::decide`] says so, with the flag it says, and claims otherwise.
pub async fn reuse_or_claim_applies_the_domains_rule(stores: Stores) {
    let store = stores.sessions.clone();
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    let strategy = reuse_cases();
    for n in 0..96u32 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let user = 10_000 + u128::from(n);
        let id = sid(10_000 + u128::from(n));
        let stored_request = request(user, case.stored_flag);
        let asked = request(user, case.requested_flag);
        let candidate = if case.bound {
            mint(&store, APP_A, id, &stored_request, t0()).await;
            apply(&store, id, case.end).await;
            Some(store.get(APP_A, id).await.unwrap().unwrap().session)
        } else {
            None
        };
        let policy = min_remaining(Duration::from_micros(case.min_remaining_micros));
        let now = t0() + chrono::TimeDelta::microseconds(case.now_micros);
        let mut q = reuse_query(APP_A, &asked, now, 2);
        q.policy = policy;
        // As every HTTP create: a fresh request nonce.
        q.nonce = Some(nonce(APP_A));
        let outcome = store.reuse_or_claim(&q).await.unwrap();
        match policy.decide(candidate.as_ref(), case.requested_flag, now) {
            domain::ReuseDecision::Reuse { .. } => {
                let s = match outcome {
                    ReuseOutcome::Reused(s) => s.session,
                    other => panic!("{case:?}: the domain reuses, the store said {other:?}"),
                };
                assert_eq!(s.id(), id, "{case:?}");
                let upgraded = domain::upgrade_flag(case.stored_flag, case.requested_flag);
                assert_eq!(s.force_verify_ownership(), upgraded, "{case:?}");
                let kept = store.get(APP_A, id).await.unwrap().unwrap().session;
                assert_eq!(
                    kept.force_verify_ownership(),
                    upgraded,
                    "{case:?}: the flag is stored, not only answered"
                );
            }
            domain::ReuseDecision::MintNew(reason) => assert_eq!(
                outcome,
                ReuseOutcome::Claimed,
                "{case:?}: the domain mints ({reason:?})"
            ),
        }
    }
}

/// The store's status of a session is the domain's (`Session::status_at`): for random
/// sessions — active, consumed, cancelled, or whose expiry was recorded — asked at random
/// instants (before creation, around expiry, and with a clock that runs behind the one that
/// recorded the expiry), the session reads back with the same status, a list filtered by
/// each status holds it exactly when that is its status then, a launch that does not
/// consume opens it exactly when it is ACTIVE, and so does one that consumes.
pub async fn status_and_launch_apply_the_domains_rule(stores: Stores) {
    use proptest::prelude::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    let store = stores.sessions.clone();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let strategy = (
        ends(),
        prop_oneof![
            (-5_000_000i64..=405_000_000),
            (299_999_998i64..=300_000_002)
        ],
    );
    let statuses = [
        SessionStatus::Active,
        SessionStatus::Consumed,
        SessionStatus::Cancelled,
        SessionStatus::Expired,
    ];
    for n in 0..64u32 {
        let (end, now_micros) = strategy.new_tree(&mut runner).unwrap().current();
        let user = 20_000 + u128::from(n);
        let id = sid(20_000 + u128::from(n));
        mint(&store, APP_A, id, &request(user, false), t0()).await;
        apply(&store, id, end).await;
        let now = t0() + TimeDelta::microseconds(now_micros);
        let session = store.get(APP_A, id).await.unwrap().unwrap().session;
        let expected = session.status_at(now);
        let case = format!("{end:?} at {now_micros} µs: the domain says {expected:?}");
        if let End::ExpiryRecorded(_) = end {
            assert_eq!(
                session.status_at(t0()),
                SessionStatus::Expired,
                "{case}: a recorded expiry holds for a clock behind"
            );
        }
        let subject = Some(request(user, false).scope().subject());
        for status in statuses {
            let page = store
                .list(&ListQuery {
                    application: APP_A,
                    subject,
                    status: Some(StatusFilter(status)),
                    now,
                    limit: 10,
                    before: None,
                })
                .await
                .unwrap();
            let listed = page.items.iter().any(|s| s.session.id() == id);
            assert_eq!(listed, status == expected, "{case}: listed as {status:?}");
        }
        let peek = store.launch(APP_A, id, now, false, evt()).await.unwrap();
        assert_eq!(
            matches!(peek, LaunchResult::Opened(_)),
            expected == SessionStatus::Active,
            "{case}: {peek:?}"
        );
        let open = store.launch(APP_A, id, now, true, evt()).await.unwrap();
        assert_eq!(
            matches!(open, LaunchResult::Opened(_)),
            expected == SessionStatus::Active,
            "{case}: {open:?}"
        );
    }
}

/// Once a session's expiry was recorded (its `session.expired` emitted), it stays ended for
/// every caller, also one whose clock runs behind the sweeper's and still sees time left:
/// its link neither opens (`HEAD`) nor consumes (`GET`), it cannot be cancelled, it reads as
/// EXPIRED, and its key is claimed for a new session instead of reused.
pub async fn a_recorded_expiry_ends_the_session_for_a_clock_behind(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    mint(&store, APP_A, sid(1), &r, t0()).await;
    assert_eq!(store.sweep_expired(at(301), &[evt()]).await.unwrap(), 1);
    let behind = at(100);
    let peek = store
        .launch(APP_A, sid(1), behind, false, evt())
        .await
        .unwrap();
    assert!(matches!(peek, LaunchResult::Ended(_)), "{peek:?}");
    let open = store
        .launch(APP_A, sid(1), behind, true, evt())
        .await
        .unwrap();
    let LaunchResult::Ended(ended) = open else {
        panic!("a recorded expiry opened: {open:?}");
    };
    assert_eq!(ended.session.status_at(behind), SessionStatus::Expired);
    let cancel = store.cancel(APP_A, sid(1), behind, evt()).await.unwrap();
    assert!(matches!(cancel, CancelResult::NotActive(_)), "{cancel:?}");
    let stored = store.get(APP_A, sid(1)).await.unwrap().unwrap().session;
    assert_eq!(stored.status_at(behind), SessionStatus::Expired);
    assert_eq!(
        stored.end(),
        Some(domain::SessionEnd::Expired { at: at(301) })
    );
    let mut q = reuse_query(APP_A, &r, behind, 2);
    q.nonce = Some(nonce(APP_A));
    assert_eq!(
        store.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
}

/// A vacant key is claimed; while the lease holds, others are told to wait; the same key
/// of another application is independent.
pub async fn a_vacant_key_is_claimed_and_others_wait(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let first = ask(&store, APP_A, &r, t0(), 1).await;
    assert_eq!(first, ReuseOutcome::Claimed);
    let second = ask(&store, APP_A, &r, at(1), 2).await;
    assert_eq!(
        second,
        ReuseOutcome::Pending {
            lease_until: at(30)
        }
    );
    let other = ask(&store, APP_B, &r, at(1), 3).await;
    assert_eq!(other, ReuseOutcome::Claimed);
}

/// After claim + fulfil the key serves that session; the session opens by its id.
pub async fn claimed_and_fulfilled_key_is_reused(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let minted = mint(&store, APP_A, sid(1), &r, t0()).await;
    assert_eq!(minted.session.id(), sid(1));
    assert_eq!(minted.session.created_at(), t0());
    assert_eq!(minted.session.expires_at(), at(300));
    let got = reused(ask(&store, APP_A, &r, at(10), 2).await);
    assert_eq!(got, minted);
    assert_eq!(
        store.get(APP_A, sid(1)).await.unwrap(),
        Some(minted.clone())
    );
    // It opens without being consumed (HEAD).
    let peek = store
        .launch(APP_A, sid(1), at(11), false, evt())
        .await
        .unwrap();
    assert_eq!(peek, LaunchResult::Opened(minted.clone()));
    // A reuse claims nothing: the key stays reusable for the next caller.
    let again = reused(ask(&store, APP_A, &r, at(12), 4).await);
    assert_eq!(again.session.id(), sid(1));
    // Another application never sees it: the same key is vacant there.
    let other = ask(&store, APP_B, &r, at(10), 3).await;
    assert_eq!(other, ReuseOutcome::Claimed);
}

/// 32 concurrent callers on one vacant key: exactly one claims it; nobody reuses.
pub async fn concurrent_claims_have_one_winner(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let store = store.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            ask(&store, APP_A, &r, t0(), 100 + u128::from(n)).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            ReuseOutcome::Claimed => winners += 1,
            ReuseOutcome::Pending { .. } | ReuseOutcome::Changed => {}
            other => panic!("nothing is reusable yet: {other:?}"),
        }
    }
    assert_eq!(winners, 1);
}

/// A pending claim cannot be taken over before its lease expires, and can after.
pub async fn a_pending_claim_blocks_until_its_lease_expires(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    assert_eq!(ask(&store, APP_A, &r, t0(), 1).await, ReuseOutcome::Claimed);
    let early = ask(&store, APP_A, &r, at(29), 2).await;
    assert_eq!(
        early,
        ReuseOutcome::Pending {
            lease_until: at(30)
        }
    );
    let late = ask(&store, APP_A, &r, at(30), 2).await;
    assert_eq!(late, ReuseOutcome::Claimed);
    let again = ask(&store, APP_A, &r, at(31), 3).await;
    assert_eq!(
        again,
        ReuseOutcome::Pending {
            lease_until: at(60)
        },
        "the takeover holds its own lease"
    );
}

/// A minter whose claim was taken over cannot store its session.
pub async fn fulfil_after_losing_the_claim_stores_nothing(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    assert_eq!(ask(&store, APP_A, &r, t0(), 1).await, ReuseOutcome::Claimed);
    assert_eq!(
        ask(&store, APP_A, &r, at(31), 2).await,
        ReuseOutcome::Claimed
    );
    let late = store
        .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, t0()))
        .await;
    assert_eq!(late, Err(FulfilError::ClaimLost));
    assert_eq!(store.get(APP_A, sid(1)).await.unwrap(), None);
    let launch = store
        .launch(APP_A, sid(1), at(32), false, evt())
        .await
        .unwrap();
    assert_eq!(launch, LaunchResult::Unknown);
    // The new owner fulfils normally.
    let s = store
        .fulfil(APP_A, claim(2), new_session(APP_A, sid(2), &r, at(31)))
        .await
        .unwrap();
    assert_eq!(s.session.id(), sid(2));
}

/// An expired lease that nobody took over is still the owner's to fulfil.
pub async fn fulfil_after_an_unclaimed_lease_expiry_still_succeeds(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    assert_eq!(ask(&store, APP_A, &r, t0(), 1).await, ReuseOutcome::Claimed);
    let s = store
        .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, at(40)))
        .await
        .unwrap();
    assert_eq!(s.session.id(), sid(1));
    let got = reused(ask(&store, APP_A, &r, at(41), 2).await);
    assert_eq!(got.session.id(), sid(1));
}

/// A claim over a bound slot keeps the binding; releasing the claim returns the slot to
/// it. Releasing a claim one does not hold does nothing.
pub async fn release_restores_the_previous_binding(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let key = r.reuse_key().digest();
    mint(&store, APP_A, sid(1), &r, t0()).await;
    // At +250 s the session has 50 s left: not reusable (60 s asked), so the key is claimed.
    assert_eq!(
        ask(&store, APP_A, &r, at(250), 9).await,
        ReuseOutcome::Claimed
    );
    store.release(APP_A, &key, claim(8)).await.unwrap();
    assert!(matches!(
        ask(&store, APP_A, &r, at(251), 7).await,
        ReuseOutcome::Pending { .. }
    ));
    store.release(APP_A, &key, claim(9)).await.unwrap();
    // Bound to session 1 again: reusable for a caller content with 40 s of life...
    let mut q = reuse_query(APP_A, &r, at(251), 4);
    q.policy = min_remaining(Duration::from_secs(40));
    assert_eq!(
        reused(store.reuse_or_claim(&q).await.unwrap()).session.id(),
        sid(1)
    );
    // ...and claimable again by one that is not.
    assert_eq!(
        ask(&store, APP_A, &r, at(252), 10).await,
        ReuseOutcome::Claimed
    );
}

/// Releasing the claim of a vacant key makes it vacant again: the next caller claims it
/// without waiting.
pub async fn release_of_a_vacant_claim_makes_the_key_vacant_again(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let key = r.reuse_key().digest();
    assert_eq!(ask(&store, APP_A, &r, t0(), 1).await, ReuseOutcome::Claimed);
    store.release(APP_A, &key, claim(1)).await.unwrap();
    assert_eq!(
        ask(&store, APP_A, &r, at(1), 2).await,
        ReuseOutcome::Claimed
    );
}

/// Reusable means ACTIVE and `expires_at >= now + min_remaining`, to the microsecond.
pub async fn reuse_needs_enough_life_left(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let key = r.reuse_key().digest();
    mint(&store, APP_A, sid(1), &r, t0()).await;
    let mut q = reuse_query(APP_A, &r, at(100), 2);
    q.policy = min_remaining(Duration::from_secs(200));
    assert_eq!(
        reused(store.reuse_or_claim(&q).await.unwrap()).session.id(),
        sid(1)
    );
    q.policy = min_remaining(Duration::from_secs(200) + Duration::from_micros(1));
    assert_eq!(
        store.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
    store.release(APP_A, &key, q.claim).await.unwrap();
    // Past expiry, even with no minimum remaining life.
    let mut q = reuse_query(APP_A, &r, at(300), 3);
    q.policy = min_remaining(Duration::ZERO);
    assert_eq!(
        store.reuse_or_claim(&q).await.unwrap(),
        ReuseOutcome::Claimed
    );
}

/// Consumed and cancelled sessions are never reused; a new mint rebinds the key and the
/// old session stays readable.
pub async fn ended_sessions_are_not_reused_and_the_slot_is_rebound(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    let key = r.reuse_key().digest();
    mint(&store, APP_A, sid(1), &r, t0()).await;
    let opened = store
        .launch(APP_A, sid(1), at(5), true, evt())
        .await
        .unwrap();
    assert!(matches!(opened, LaunchResult::Opened(_)));
    assert_eq!(
        ask(&store, APP_A, &r, at(6), 2).await,
        ReuseOutcome::Claimed
    );
    store.release(APP_A, &key, claim(2)).await.unwrap();
    let second = mint(&store, APP_A, sid(2), &r, at(6)).await;
    assert_eq!(reused(ask(&store, APP_A, &r, at(7), 4).await), second);
    let old = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(old.session.status_at(at(7)), SessionStatus::Consumed);
    // Cancelled works the same way.
    store.cancel(APP_A, sid(2), at(8), evt()).await.unwrap();
    assert_eq!(
        ask(&store, APP_A, &r, at(9), 5).await,
        ReuseOutcome::Claimed
    );
}

/// `true` upgrades the stored flag; `false` never downgrades it.
pub async fn flag_upgrades_are_upgrade_only(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    mint(&store, APP_A, sid(1), &r, t0()).await;
    let plain = reused(ask(&store, APP_A, &r, at(1), 2).await);
    assert!(!plain.session.force_verify_ownership());
    let upgraded = reused(ask(&store, APP_A, &request(1, true), at(2), 3).await);
    assert!(upgraded.session.force_verify_ownership());
    let after = reused(ask(&store, APP_A, &r, at(3), 4).await);
    assert!(after.session.force_verify_ownership());
    let stored = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert!(stored.session.force_verify_ownership());
}

/// Concurrent reuses with mixed flags: the stored flag ends `true`.
pub async fn concurrent_flag_upgrades_never_lose_true(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let r = request(1, n % 4 == 0);
            reused(ask(&store, APP_A, &r, at(1), u128::from(10 + n)).await)
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stored = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert!(stored.session.force_verify_ownership());
}

/// Another application's session is invisible.
pub async fn get_is_scoped_by_application(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    assert!(store.get(APP_A, sid(1)).await.unwrap().is_some());
    assert_eq!(store.get(APP_B, sid(1)).await.unwrap(), None);
    assert_eq!(store.get(APP_A, sid(2)).await.unwrap(), None);
}

/// Lists: newest first, cursor pagination, subject and status filters, per application.
pub async fn list_is_newest_first_paginated_filtered_and_scoped(stores: Stores) {
    let store = stores.sessions.clone();
    for n in 1..=5u128 {
        // Users 1..=5, one session each; user 3 twice (its first consumed).
        mint(&store, APP_A, sid(n), &request(n, false), at(n as i64)).await;
    }
    store
        .launch(APP_A, sid(3), at(10), true, evt())
        .await
        .unwrap();
    mint(&store, APP_A, sid(6), &request(3, false), at(11)).await;
    mint(&store, APP_B, sid(7), &request(1, false), at(12)).await;

    let q = |limit, before, subject, status| ListQuery {
        application: APP_A,
        subject,
        status,
        now: at(20),
        limit,
        before,
    };
    let ids = |p: &Page| p.items.iter().map(|s| s.session.id()).collect::<Vec<_>>();

    let p1 = store.list(&q(4, None, None, None)).await.unwrap();
    assert_eq!(ids(&p1), vec![sid(6), sid(5), sid(4), sid(3)]);
    assert_eq!(p1.next, Some(sid(3)));
    let p2 = store.list(&q(4, p1.next, None, None)).await.unwrap();
    assert_eq!(ids(&p2), vec![sid(2), sid(1)]);
    assert_eq!(p2.next, None);
    let exact = store.list(&q(6, None, None, None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (6, None));

    let user3 = Subject::User(Uuid::from_u128(3));
    let p = store.list(&q(10, None, Some(user3), None)).await.unwrap();
    assert_eq!(ids(&p), vec![sid(6), sid(3)]);
    // One subject's sessions page, filter by status, and stay within the application
    // and the subject kind.
    let s1 = store.list(&q(1, None, Some(user3), None)).await.unwrap();
    assert_eq!((ids(&s1), s1.next), (vec![sid(6)], Some(sid(6))));
    let s2 = store.list(&q(1, s1.next, Some(user3), None)).await.unwrap();
    assert_eq!((ids(&s2), s2.next), (vec![sid(3)], None));
    let user3_active = Some(StatusFilter(SessionStatus::Active));
    let a = store
        .list(&q(10, None, Some(user3), user3_active))
        .await
        .unwrap();
    assert_eq!(ids(&a), vec![sid(6)]);
    let business3 = Subject::Business(Uuid::from_u128(3));
    let b3 = store
        .list(&q(10, None, Some(business3), None))
        .await
        .unwrap();
    assert!(b3.items.is_empty() && b3.next.is_none());
    let user1 = Subject::User(Uuid::from_u128(1));
    assert_eq!(
        ids(&store.list(&q(10, None, Some(user1), None)).await.unwrap()),
        vec![sid(1)]
    );
    let consumed = store
        .list(&q(
            10,
            None,
            None,
            Some(StatusFilter(SessionStatus::Consumed)),
        ))
        .await
        .unwrap();
    assert_eq!(ids(&consumed), vec![sid(3)]);
    let active = store
        .list(&q(
            10,
            None,
            None,
            Some(StatusFilter(SessionStatus::Active)),
        ))
        .await
        .unwrap();
    assert_eq!(ids(&active), vec![sid(6), sid(5), sid(4), sid(2), sid(1)]);
    // At +303 s sessions 1 and 2 (created at +1, +2) have expired.
    let mut late = q(10, None, None, Some(StatusFilter(SessionStatus::Expired)));
    late.now = at(303);
    let expired = store.list(&late).await.unwrap();
    assert_eq!(ids(&expired), vec![sid(2), sid(1)]);
    let mut b = q(10, None, None, None);
    b.application = APP_B;
    assert_eq!(ids(&store.list(&b).await.unwrap()), vec![sid(7)]);
}

/// ACTIVE → CANCELLED; again → already; consumed or expired → not active; others' → not
/// found. A cancelled session's links stop working.
pub async fn cancel_lifecycle(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    match store.cancel(APP_A, sid(1), at(5), evt()).await.unwrap() {
        CancelResult::Cancelled(s) => {
            assert_eq!(s.session.status_at(at(5)), SessionStatus::Cancelled)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.cancel(APP_A, sid(1), at(6), evt()).await.unwrap(),
        CancelResult::AlreadyCancelled(_)
    ));
    let launch = store
        .launch(APP_A, sid(1), at(7), true, evt())
        .await
        .unwrap();
    assert!(matches!(launch, LaunchResult::Ended(_)));
    assert_eq!(
        store.get(APP_A, sid(1)).await.unwrap().unwrap().widget_url,
        None,
        "the upstream URL is cleared once cancelled"
    );
    assert_eq!(
        store.cancel(APP_B, sid(1), at(6), evt()).await.unwrap(),
        CancelResult::NotFound
    );

    mint(&store, APP_A, sid(2), &request(2, false), t0()).await;
    store
        .launch(APP_A, sid(2), at(1), true, evt())
        .await
        .unwrap();
    assert!(matches!(
        store.cancel(APP_A, sid(2), at(2), evt()).await.unwrap(),
        CancelResult::NotActive(_)
    ));
    mint(&store, APP_A, sid(3), &request(3, false), t0()).await;
    assert!(matches!(
        store.cancel(APP_A, sid(3), at(300), evt()).await.unwrap(),
        CancelResult::NotActive(_)
    ));
    let s3 = store.get(APP_A, sid(3)).await.unwrap().unwrap();
    assert_eq!(s3.session.status_at(at(300)), SessionStatus::Expired);
}

/// The first consuming launch opens; every later one is ended.
pub async fn launch_consumes_exactly_once(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    mint(&store, APP_A, sid(1), &r, t0()).await;
    reused(
        store
            .reuse_or_claim(&reuse_query(APP_A, &r, at(1), 2))
            .await
            .unwrap(),
    );
    match store
        .launch(APP_A, sid(1), at(3), true, evt())
        .await
        .unwrap()
    {
        LaunchResult::Opened(s) => {
            assert_eq!(
                s.widget_url.as_ref().map(|u| u.expose().to_string()),
                Some(format!(
                    "https://widget.test/?apiKey=k&sessionId=upstream-{}",
                    sid(1)
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..2 {
        match store
            .launch(APP_A, sid(1), at(4), true, evt())
            .await
            .unwrap()
        {
            LaunchResult::Ended(s) => {
                assert_eq!(s.session.status_at(at(4)), SessionStatus::Consumed);
                assert_eq!(
                    s.widget_url, None,
                    "the upstream URL is cleared once consumed"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let stored = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(stored.widget_url, None);
    // Expired sessions do not open either.
    mint(&store, APP_A, sid(2), &request(2, false), t0()).await;
    let late = store
        .launch(APP_A, sid(2), at(300), true, evt())
        .await
        .unwrap();
    assert!(matches!(late, LaunchResult::Ended(_)));
}

/// 32 concurrent consuming launches of one session: exactly one opens it.
pub async fn concurrent_launches_have_one_winner(stores: Stores) {
    let store = stores.sessions.clone();
    let r = request(1, false);
    mint(&store, APP_A, sid(1), &r, t0()).await;
    for n in 2..10u8 {
        reused(
            store
                .reuse_or_claim(&reuse_query(APP_A, &r, at(1), n))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for _ in 0..32u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .launch(APP_A, sid(1), at(2), true, evt())
                .await
                .unwrap()
        }));
    }
    let mut opened = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), LaunchResult::Opened(_)) {
            opened += 1;
        }
    }
    assert_eq!(opened, 1);
}

/// Without `consume` (HEAD), nothing changes.
pub async fn launch_without_consume_changes_nothing(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    for _ in 0..3 {
        let peek = store
            .launch(APP_A, sid(1), at(1), false, evt())
            .await
            .unwrap();
        assert!(matches!(peek, LaunchResult::Opened(_)));
    }
    let s = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(s.session.status_at(at(1)), SessionStatus::Active);
}

/// Unknown sessions, and a session looked up under another application, are unknown.
pub async fn launch_of_unknown_or_foreign_sessions_is_unknown(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    let unknown = store
        .launch(APP_A, sid(99), at(1), true, evt())
        .await
        .unwrap();
    assert_eq!(unknown, LaunchResult::Unknown);
    let foreign = store
        .launch(APP_B, sid(1), at(1), true, evt())
        .await
        .unwrap();
    assert_eq!(foreign, LaunchResult::Unknown);
    let peek = store
        .launch(APP_B, sid(1), at(1), false, evt())
        .await
        .unwrap();
    assert_eq!(peek, LaunchResult::Unknown);
    // And nothing was consumed by those.
    let s = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert_eq!(s.session.status_at(at(1)), SessionStatus::Active);
}

/// The upstream widget URL (its `sessionId` is a bearer) is kept only while the session can
/// be launched: never in an event's copy of the session, cleared once its expiry is
/// recorded.
pub async fn the_upstream_url_stays_out_of_events_and_ended_sessions(stores: Stores) {
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    assert!(
        store
            .get(APP_A, sid(1))
            .await
            .unwrap()
            .unwrap()
            .widget_url
            .is_some()
    );
    assert_eq!(store.sweep_expired(at(301), &[evt()]).await.unwrap(), 1);
    assert_eq!(
        store.get(APP_A, sid(1)).await.unwrap().unwrap().widget_url,
        None
    );
    let trail = stores.events.session_events(APP_A, sid(1)).await.unwrap();
    assert_eq!(trail.len(), 2, "created and expired");
    for record in trail {
        assert_eq!(
            record.event.session.widget_url, None,
            "{:?}",
            record.event.kind
        );
    }
}

/// A disabled application's launch links neither open nor consume (nor reveal anything with
/// `HEAD`); enabled again, a link whose session is still active opens.
pub async fn a_disabled_applications_links_do_not_open(stores: Stores) {
    ensure_applications(&stores).await;
    let store = stores.sessions.clone();
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    mint(&store, APP_B, sid(2), &request(2, false), t0()).await;
    stores
        .applications
        .set_status(APP_A, ApplicationStatus::Disabled)
        .await
        .unwrap();
    for consume in [false, true] {
        assert!(
            matches!(
                store
                    .launch(APP_A, sid(1), at(1), consume, evt())
                    .await
                    .unwrap(),
                LaunchResult::Withheld
            ),
            "consume {consume}"
        );
    }
    assert_eq!(
        store
            .get(APP_A, sid(1))
            .await
            .unwrap()
            .unwrap()
            .session
            .status_at(at(2)),
        SessionStatus::Active,
        "nothing consumed"
    );
    // Another application's links are not affected.
    assert!(matches!(
        store
            .launch(APP_B, sid(2), at(2), true, evt())
            .await
            .unwrap(),
        LaunchResult::Opened(_)
    ));
    stores
        .applications
        .set_status(APP_A, ApplicationStatus::Active)
        .await
        .unwrap();
    assert!(matches!(
        store
            .launch(APP_A, sid(1), at(3), true, evt())
            .await
            .unwrap(),
        LaunchResult::Opened(_)
    ));
}
