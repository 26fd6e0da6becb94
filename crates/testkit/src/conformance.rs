//! The conformance suites: the documented contract of each store port, as test bodies that
//! take a fresh store. Run them through the macros at the crate root.

/// [`ports::SessionStore`].
pub mod session_store {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use domain::{ApplicationId, SessionStatus, Subject, ValidRequest};
    use ports::*;
    use uuid::Uuid;

    use crate::fixtures::*;

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

    /// How a generated session ended before the reuse question, if it did.
    #[derive(Debug, Clone, Copy)]
    enum End {
        Active,
        Consumed(i64),
        Cancelled(i64),
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
    pub async fn reuse_or_claim_applies_the_domains_rule(store: Store) {
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
                match case.end {
                    End::Active => {}
                    End::Consumed(s) => {
                        let r = store.launch(APP_A, id, at(s), true, evt()).await.unwrap();
                        assert!(matches!(r, LaunchResult::Opened(_)), "{case:?}");
                    }
                    End::Cancelled(s) => {
                        let r = store.cancel(APP_A, id, at(s), evt()).await.unwrap();
                        assert!(matches!(r, StoreCancel::Cancelled(_)), "{case:?}");
                    }
                }
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
                    assert_eq!(
                        s.force_verify_ownership(),
                        case.stored_flag || case.requested_flag,
                        "{case:?}"
                    );
                    let kept = store.get(APP_A, id).await.unwrap().unwrap().session;
                    assert_eq!(
                        kept.force_verify_ownership(),
                        case.stored_flag || case.requested_flag,
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

    /// A vacant key is claimed; while the lease holds, others are told to wait; the same key
    /// of another application is independent.
    pub async fn a_vacant_key_is_claimed_and_others_wait(store: Store) {
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
    pub async fn claimed_and_fulfilled_key_is_reused(store: Store) {
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
    pub async fn concurrent_claims_have_one_winner(store: Store) {
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
    pub async fn a_pending_claim_blocks_until_its_lease_expires(store: Store) {
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
    pub async fn fulfil_after_losing_the_claim_stores_nothing(store: Store) {
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
    pub async fn fulfil_after_an_unclaimed_lease_expiry_still_succeeds(store: Store) {
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
    pub async fn release_restores_the_previous_binding(store: Store) {
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
    pub async fn release_of_a_vacant_claim_makes_the_key_vacant_again(store: Store) {
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
    pub async fn reuse_needs_enough_life_left(store: Store) {
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
    pub async fn ended_sessions_are_not_reused_and_the_slot_is_rebound(store: Store) {
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
    pub async fn flag_upgrades_are_upgrade_only(store: Store) {
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
    pub async fn concurrent_flag_upgrades_never_lose_true(store: Store) {
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
    pub async fn get_is_scoped_by_application(store: Store) {
        mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
        assert!(store.get(APP_A, sid(1)).await.unwrap().is_some());
        assert_eq!(store.get(APP_B, sid(1)).await.unwrap(), None);
        assert_eq!(store.get(APP_A, sid(2)).await.unwrap(), None);
    }

    /// Lists: newest first, cursor pagination, subject and status filters, per application.
    pub async fn list_is_newest_first_paginated_filtered_and_scoped(store: Store) {
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
    pub async fn cancel_lifecycle(store: Store) {
        mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
        match store.cancel(APP_A, sid(1), at(5), evt()).await.unwrap() {
            StoreCancel::Cancelled(s) => {
                assert_eq!(s.session.status_at(at(5)), SessionStatus::Cancelled)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.cancel(APP_A, sid(1), at(6), evt()).await.unwrap(),
            StoreCancel::AlreadyCancelled(_)
        ));
        let launch = store
            .launch(APP_A, sid(1), at(7), true, evt())
            .await
            .unwrap();
        assert!(matches!(launch, LaunchResult::Ended(_)));
        assert_eq!(
            store.cancel(APP_B, sid(1), at(6), evt()).await.unwrap(),
            StoreCancel::NotFound
        );

        mint(&store, APP_A, sid(2), &request(2, false), t0()).await;
        store
            .launch(APP_A, sid(2), at(1), true, evt())
            .await
            .unwrap();
        assert!(matches!(
            store.cancel(APP_A, sid(2), at(2), evt()).await.unwrap(),
            StoreCancel::NotActive(_)
        ));
        mint(&store, APP_A, sid(3), &request(3, false), t0()).await;
        assert!(matches!(
            store.cancel(APP_A, sid(3), at(300), evt()).await.unwrap(),
            StoreCancel::NotActive(_)
        ));
        let s3 = store.get(APP_A, sid(3)).await.unwrap().unwrap();
        assert_eq!(s3.session.status_at(at(300)), SessionStatus::Expired);
    }

    /// The first consuming launch opens; every later one is ended.
    pub async fn launch_consumes_exactly_once(store: Store) {
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
                    s.widget_url.expose(),
                    format!(
                        "https://widget.test/?apiKey=k&sessionId=upstream-{}",
                        sid(1)
                    )
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
                    assert_eq!(s.session.status_at(at(4)), SessionStatus::Consumed)
                }
                other => panic!("{other:?}"),
            }
        }
        // Expired sessions do not open either.
        mint(&store, APP_A, sid(2), &request(2, false), t0()).await;
        let late = store
            .launch(APP_A, sid(2), at(300), true, evt())
            .await
            .unwrap();
        assert!(matches!(late, LaunchResult::Ended(_)));
    }

    /// 32 concurrent consuming launches of one session: exactly one opens it.
    pub async fn concurrent_launches_have_one_winner(store: Store) {
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
    pub async fn launch_without_consume_changes_nothing(store: Store) {
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
    pub async fn launch_of_unknown_or_foreign_sessions_is_unknown(store: Store) {
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

    /// A request's nonce is accepted once, by `remember_request` and by `reuse_or_claim`
    /// alike (one table), per application; a replayed create does nothing at all; expired
    /// nonces are forgotten.
    pub async fn a_request_nonce_is_accepted_once(store: Store) {
        let nonce = |app, byte: u8, until| RequestNonce {
            application: app,
            signature: [byte; 32],
            expires_at: until,
            durable: false,
        };
        assert!(
            store
                .remember_request(&nonce(APP_A, 1, at(300)))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remember_request(&nonce(APP_A, 1, at(300)))
                .await
                .unwrap()
        );
        assert!(
            store
                .remember_request(&nonce(APP_B, 1, at(300)))
                .await
                .unwrap()
        );
        // Durably recorded requests (those that change something) are accepted once too,
        // and forgotten after their window like the others.
        let durable = RequestNonce {
            durable: true,
            ..nonce(APP_A, 9, at(300))
        };
        assert!(store.remember_request(&durable).await.unwrap());
        assert!(!store.remember_request(&durable).await.unwrap());

        // The create path records its nonce in its own step.
        let r = request(1, false);
        let mut q = reuse_query(APP_A, &r, t0(), 1);
        q.nonce = Some(nonce(APP_A, 2, at(300)));
        assert_eq!(
            store.reuse_or_claim(&q).await.unwrap(),
            ReuseOutcome::Claimed
        );
        let mut again = reuse_query(APP_A, &r, at(40), 2);
        again.nonce = Some(nonce(APP_A, 2, at(300)));
        assert_eq!(
            store.reuse_or_claim(&again).await.unwrap(),
            ReuseOutcome::Replayed
        );
        // ...which claimed nothing: the first claim is still the slot's.
        store
            .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, t0()))
            .await
            .unwrap();
        // A replayed reuse upgrades no flag.
        let mut upgrade = reuse_query(APP_A, &request(1, true), at(2), 3);
        upgrade.nonce = Some(nonce(APP_A, 1, at(300)));
        assert_eq!(
            store.reuse_or_claim(&upgrade).await.unwrap(),
            ReuseOutcome::Replayed
        );
        let s = store.get(APP_A, sid(1)).await.unwrap().unwrap();
        assert!(!s.session.force_verify_ownership());
        // Recorded by the create path, refused by the other one too.
        assert!(
            !store
                .remember_request(&nonce(APP_A, 2, at(300)))
                .await
                .unwrap()
        );

        // Forgetting: only what expired before the cutoff, durable or not.
        assert!(
            store
                .remember_request(&nonce(APP_A, 3, at(100)))
                .await
                .unwrap()
        );
        let durable_old = RequestNonce {
            durable: true,
            ..nonce(APP_A, 4, at(100))
        };
        assert!(store.remember_request(&durable_old).await.unwrap());
        assert_eq!(store.forget_requests(at(200)).await.unwrap(), 2);
        assert!(store.remember_request(&durable_old).await.unwrap());
        assert!(
            store
                .remember_request(&nonce(APP_A, 3, at(100)))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remember_request(&nonce(APP_A, 1, at(300)))
                .await
                .unwrap()
        );
    }

    /// Purge deletes ended sessions older than the cutoff, at most `limit`
    /// at a time; active ones stay; purged keys become vacant.
    pub async fn purge_deletes_ended_sessions_in_batches(store: Store) {
        for n in 1..=3u128 {
            mint(&store, APP_A, sid(n), &request(n, false), t0()).await;
        }
        store
            .launch(APP_A, sid(1), at(10), true, evt())
            .await
            .unwrap();
        store.cancel(APP_A, sid(2), at(20), evt()).await.unwrap();
        mint(&store, APP_B, sid(4), &request(4, false), at(1000)).await;
        // Ended: 1 (at +10), 2 (at +20), 3 (expired at +300). 4 is active until +1300.
        assert_eq!(store.purge(at(15), 10).await.unwrap(), 1);
        assert_eq!(store.get(APP_A, sid(1)).await.unwrap(), None);
        let gone = store
            .launch(APP_A, sid(1), at(16), false, evt())
            .await
            .unwrap();
        assert_eq!(gone, LaunchResult::Unknown);
        assert_eq!(store.purge(at(1001), 1).await.unwrap(), 1);
        assert_eq!(store.purge(at(1001), 1).await.unwrap(), 1);
        assert_eq!(store.purge(at(1001), 10).await.unwrap(), 0);
        assert!(store.get(APP_B, sid(4)).await.unwrap().is_some());
        // The purged sessions' keys are vacant and mintable again.
        let r = request(1, false);
        mint(&store, APP_A, sid(5), &r, at(1002)).await;
        let distinct: HashSet<_> = [sid(4), sid(5)].into_iter().collect();
        assert_eq!(distinct.len(), 2);
    }

    /// A working store answers pings.
    pub async fn ping_answers(store: Store) {
        store.ping().await.unwrap();
    }
}

/// [`ports::AccessTokenStore`].
pub mod token_store {
    use std::sync::Arc;

    use ports::*;
    use secrecy::{ExposeSecret, SecretString};
    use uuid::Uuid;

    use crate::fixtures::*;

    type Store = Arc<dyn AccessTokenStore>;
    const ACCOUNT: &str = "emulator:key";

    fn holder(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Nothing is stored at first.
    pub async fn no_token_at_first(store: Store) {
        assert!(store.current(ACCOUNT).await.unwrap().is_none());
    }

    /// One holder at a time until the lease expires; the holder may renew.
    pub async fn the_refresh_lease_is_exclusive_until_it_expires(store: Store) {
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_lease_refresh(ACCOUNT, holder(2), at(29), at(59))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(1), at(29), at(59))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(2), at(59), at(89))
                .await
                .unwrap()
        );
        // The first holder lost it: saving fails and stores nothing.
        let late = store
            .save_refreshed(
                ACCOUNT,
                holder(1),
                SecretString::from("t1"),
                at(1000),
                at(1000 - 1),
            )
            .await;
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
        assert!(store.current(ACCOUNT).await.unwrap().is_none());
    }

    /// 32 concurrent attempts: one holder.
    pub async fn concurrent_lease_attempts_have_one_winner(store: Store) {
        let mut tasks = Vec::new();
        for n in 0..32u128 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .try_lease_refresh(ACCOUNT, holder(n), t0(), at(30))
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    /// Saving needs the lease, releases it, and versions go 1, 2, …
    pub async fn saving_needs_the_lease_and_bumps_the_version(store: Store) {
        let no_lease = store
            .save_refreshed(
                ACCOUNT,
                holder(1),
                SecretString::from("t0"),
                at(100),
                at(100 - 1),
            )
            .await;
        assert!(matches!(no_lease, Err(StoreError::Conflict(_))));
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
                .await
                .unwrap()
        );
        let v1 = store
            .save_refreshed(
                ACCOUNT,
                holder(1),
                SecretString::from("t1"),
                at(1000),
                at(1000 - 1),
            )
            .await
            .unwrap();
        assert_eq!(v1.version, 1);
        // The lease was released by the save.
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
                .await
                .unwrap()
        );
        let v2 = store
            .save_refreshed(
                ACCOUNT,
                holder(2),
                SecretString::from("t2"),
                at(2000),
                at(2000 - 1),
            )
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        let current = store.current(ACCOUNT).await.unwrap().unwrap();
        assert_eq!(current.token.expose_secret(), "t2");
        assert_eq!((current.version, current.expires_at), (2, at(2000)));
        // The token it replaced is kept, with when it was replaced.
        let previous = current.previous.expect("the replaced token is kept");
        assert_eq!(previous.token.expose_secret(), "t1");
        assert_eq!(previous.replaced_at, at(1999));
        assert_eq!(
            v2.previous.map(|p| p.token.expose_secret().to_string()),
            Some("t1".into())
        );
        assert!(v1.previous.is_none(), "the first token replaced none");
    }

    /// Releasing frees the lease for others; releasing a lease one does not hold does nothing.
    pub async fn release_frees_the_lease(store: Store) {
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(1), t0(), at(30))
                .await
                .unwrap()
        );
        store.release_refresh(ACCOUNT, holder(2)).await.unwrap();
        assert!(
            !store
                .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
                .await
                .unwrap()
        );
        store.release_refresh(ACCOUNT, holder(1)).await.unwrap();
        assert!(
            store
                .try_lease_refresh(ACCOUNT, holder(2), at(1), at(31))
                .await
                .unwrap()
        );
    }

    /// Two upstream accounts never share a token or a lease.
    pub async fn accounts_are_independent(store: Store) {
        assert!(
            store
                .try_lease_refresh("a", holder(1), t0(), at(30))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease_refresh("b", holder(2), t0(), at(30))
                .await
                .unwrap()
        );
        store
            .save_refreshed(
                "a",
                holder(1),
                SecretString::from("ta"),
                at(100),
                at(100 - 1),
            )
            .await
            .unwrap();
        assert!(store.current("b").await.unwrap().is_none());
    }
}

/// [`ports::ApplicationStore`].
pub mod application_store {
    use std::sync::Arc;

    use domain::ApplicationId;
    use ports::*;
    use uuid::Uuid;

    use crate::fixtures::*;

    type Store = Arc<dyn ApplicationStore>;

    fn secret(n: u8) -> EncryptedSecret {
        EncryptedSecret {
            key_id: "k1".into(),
            sealed: vec![n; 40],
        }
    }

    fn new_app(n: u128, name: &str, key: &str) -> NewApplication {
        NewApplication {
            id: ApplicationId::from_uuid(Uuid::from_u128(n)),
            name: name.into(),
            api_key: ApiKeyDigest::of(key),
            secret: secret(n as u8),
            now: t0(),
        }
    }

    /// Created applications are found by API key and by name, active.
    pub async fn create_and_find(store: Store) {
        let app = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
        assert_eq!(app.status, ApplicationStatus::Active);
        assert_eq!((app.created_at, app.rotated_at), (t0(), t0()));
        let by_key = store
            .find_by_api_key(&ApiKeyDigest::of("key-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_key.application, app);
        assert_eq!(by_key.secret, secret(1));
        let by_name = store.find_by_name("alpha").await.unwrap().unwrap();
        assert_eq!(by_name.application.id, app.id);
        assert!(
            store
                .find_by_api_key(&ApiKeyDigest::of("key-2"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.find_by_name("beta").await.unwrap().is_none());
    }

    /// Names and API keys are unique.
    pub async fn names_and_keys_are_unique(store: Store) {
        store.create(new_app(1, "alpha", "key-1")).await.unwrap();
        assert_eq!(
            store.create(new_app(2, "alpha", "key-2")).await,
            Err(ApplicationError::NameTaken("alpha".into()))
        );
        assert_eq!(
            store.create(new_app(3, "beta", "key-1")).await,
            Err(ApplicationError::ApiKeyTaken)
        );
    }

    /// Rotation replaces key and secret at once.
    pub async fn rotate_replaces_the_credentials(store: Store) {
        let a = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
        store.create(new_app(2, "beta", "key-2")).await.unwrap();
        let rotated = store
            .rotate(a.id, ApiKeyDigest::of("key-1b"), secret(9), at(60))
            .await
            .unwrap();
        assert_eq!(rotated.rotated_at, at(60));
        assert!(
            store
                .find_by_api_key(&ApiKeyDigest::of("key-1"))
                .await
                .unwrap()
                .is_none()
        );
        let found = store
            .find_by_api_key(&ApiKeyDigest::of("key-1b"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.secret, secret(9));
        assert_eq!(
            store
                .rotate(a.id, ApiKeyDigest::of("key-2"), secret(9), at(61))
                .await,
            Err(ApplicationError::ApiKeyTaken)
        );
        let missing = ApplicationId::from_uuid(Uuid::from_u128(99));
        assert_eq!(
            store
                .rotate(missing, ApiKeyDigest::of("x"), secret(1), at(61))
                .await,
            Err(ApplicationError::NotFound)
        );
    }

    /// Status changes are stored.
    pub async fn disable_and_enable(store: Store) {
        let a = store.create(new_app(1, "alpha", "key-1")).await.unwrap();
        let d = store
            .set_status(a.id, ApplicationStatus::Disabled)
            .await
            .unwrap();
        assert_eq!(d.status, ApplicationStatus::Disabled);
        let found = store
            .find_by_api_key(&ApiKeyDigest::of("key-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.application.status, ApplicationStatus::Disabled);
        let e = store
            .set_status(a.id, ApplicationStatus::Active)
            .await
            .unwrap();
        assert_eq!(e.status, ApplicationStatus::Active);
        let missing = ApplicationId::from_uuid(Uuid::from_u128(99));
        assert_eq!(
            store.set_status(missing, ApplicationStatus::Active).await,
            Err(ApplicationError::NotFound)
        );
    }

    /// Listing is ordered by name.
    pub async fn list_is_by_name(store: Store) {
        store.create(new_app(1, "zeta", "k1")).await.unwrap();
        store.create(new_app(2, "alpha", "k2")).await.unwrap();
        store.create(new_app(3, "mu", "k3")).await.unwrap();
        let names: Vec<String> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec!["alpha", "mu", "zeta"]);
    }
}

/// [`ports::WebhookStore`] together with the [`ports::SessionStore`] whose changes write the
/// events (the outbox): the same store behind both traits. Postgres factories must create the
/// applications `APP_A` and `APP_B` (endpoints reference their application).
pub mod webhook_store {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, Utc};
    use domain::{ApplicationId, EventType, WebhookEndpointId, WebhookUrl};
    use ports::*;
    use uuid::Uuid;

    use crate::fixtures::*;

    /// The store under test, behind both of its traits.
    pub type Stores = (Arc<dyn SessionStore>, Arc<dyn WebhookStore>);

    fn endpoint(app: ApplicationId, n: u128, types: &[EventType]) -> WebhookEndpoint {
        WebhookEndpoint {
            id: WebhookEndpointId::from_uuid(Uuid::from_u128(0xE000 + n)),
            application: app,
            url: WebhookUrl::parse(&format!("https://hooks.example.com/{n}"), false).unwrap(),
            event_types: types.to_vec(),
            created_at: t0() + TimeDelta::seconds(i64::try_from(n).unwrap_or(0)),
        }
    }

    fn sealed(n: u8) -> EncryptedSecret {
        EncryptedSecret {
            key_id: format!("k2-test{n}"),
            sealed: vec![n; 40],
        }
    }

    async fn register(w: &Arc<dyn WebhookStore>, e: &WebhookEndpoint) {
        w.create_endpoint(e, sealed(1), 10).await.unwrap();
    }

    fn claim_query(now: DateTime<Utc>, owner: u128, limit: u32) -> ClaimQuery {
        ClaimQuery {
            now,
            owner: Uuid::from_u128(owner),
            lease_until: now + TimeDelta::seconds(30),
            limit,
            per_endpoint: 100,
            skip_endpoints: Vec::new(),
        }
    }

    async fn events_of(
        w: &Arc<dyn WebhookStore>,
        app: ApplicationId,
        id: domain::SessionId,
    ) -> Vec<(EventType, Vec<WebhookEndpointId>)> {
        w.session_events(app, id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let mut targets: Vec<WebhookEndpointId> =
                    r.deliveries.iter().map(|d| d.endpoint).collect();
                targets.sort();
                (r.event.kind, targets)
            })
            .collect()
    }

    /// A mint, a consume and a cancel each write one event, with the session as it was right
    /// after, and one pending delivery per endpoint of the application that receives its
    /// type; another application's endpoints get nothing.
    pub async fn each_change_writes_one_event_with_a_delivery_per_subscribed_endpoint(
        (s, w): Stores,
    ) {
        let all = endpoint(APP_A, 1, &[]);
        let consumed_only = endpoint(APP_A, 2, &[EventType::SessionConsumed]);
        let other_app = endpoint(APP_B, 3, &[]);
        for e in [&all, &consumed_only, &other_app] {
            register(&w, e).await;
        }
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        let launched = s.launch(APP_A, sid(1), at(5), true, evt()).await.unwrap();
        assert!(matches!(launched, LaunchResult::Opened(_)));
        mint(&s, APP_A, sid(2), &request(2, false), t0()).await;
        let cancelled = s.cancel(APP_A, sid(2), at(6), evt()).await.unwrap();
        assert!(matches!(cancelled, StoreCancel::Cancelled(_)));

        assert_eq!(
            events_of(&w, APP_A, sid(1)).await,
            vec![
                (EventType::SessionCreated, vec![all.id]),
                (EventType::SessionConsumed, vec![all.id, consumed_only.id]),
            ]
        );
        assert_eq!(
            events_of(&w, APP_A, sid(2)).await,
            vec![
                (EventType::SessionCreated, vec![all.id]),
                (EventType::SessionCancelled, vec![all.id]),
            ]
        );
        // The session as it was right after each change, and the delivery's starting state.
        let records = w.session_events(APP_A, sid(1)).await.unwrap();
        assert_eq!(records[0].event.created_at, t0());
        assert!(records[0].event.session.session.end().is_none());
        assert_eq!(records[1].event.created_at, at(5));
        assert_eq!(
            records[1].event.session.session.end(),
            Some(domain::SessionEnd::Consumed { at: at(5) })
        );
        let d = &records[1].deliveries[0];
        assert_eq!(
            (d.status, d.attempts, d.next_attempt_at, d.last_attempt_at),
            (DeliveryStatus::Pending, 0, Some(at(5)), None)
        );
        // Scoped by application.
        assert!(w.session_events(APP_B, sid(1)).await.unwrap().is_empty());
    }

    /// What did not change writes nothing: a lost claim's fulfil, a launch of a session that
    /// is not ACTIVE, a launch without consume, a second cancel, an unknown session.
    pub async fn a_change_that_did_not_happen_writes_no_event((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[])).await;
        let r = request(1, false);
        // A claim lost to another request: its fulfil stores nothing, no event.
        let mut q = reuse_query(APP_A, &r, t0(), 1);
        q.claim = claim(1);
        assert_eq!(s.reuse_or_claim(&q).await.unwrap(), ReuseOutcome::Claimed);
        let mut q2 = reuse_query(APP_A, &r, at(31), 2);
        q2.claim = claim(2);
        assert_eq!(s.reuse_or_claim(&q2).await.unwrap(), ReuseOutcome::Claimed);
        let lost = s
            .fulfil(APP_A, claim(1), new_session(APP_A, sid(1), &r, t0()))
            .await;
        assert_eq!(lost, Err(FulfilError::ClaimLost));
        assert!(w.session_events(APP_A, sid(1)).await.unwrap().is_empty());

        mint(&s, APP_A, sid(2), &request(2, false), t0()).await;
        s.launch(APP_A, sid(2), at(1), false, evt()).await.unwrap();
        s.launch(APP_A, sid(2), at(2), true, evt()).await.unwrap();
        let again = s.launch(APP_A, sid(2), at(3), true, evt()).await.unwrap();
        assert!(matches!(again, LaunchResult::Ended(_)));
        let not_active = s.cancel(APP_A, sid(2), at(4), evt()).await.unwrap();
        assert!(matches!(not_active, StoreCancel::NotActive(_)));
        assert_eq!(
            events_of(&w, APP_A, sid(2))
                .await
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            vec![EventType::SessionCreated, EventType::SessionConsumed]
        );

        mint(&s, APP_A, sid(3), &request(3, false), t0()).await;
        s.cancel(APP_A, sid(3), at(1), evt()).await.unwrap();
        let twice = s.cancel(APP_A, sid(3), at(2), evt()).await.unwrap();
        assert!(matches!(twice, StoreCancel::AlreadyCancelled(_)));
        assert_eq!(events_of(&w, APP_A, sid(3)).await.len(), 2);
        assert!(matches!(
            s.cancel(APP_A, sid(99), at(1), evt()).await.unwrap(),
            StoreCancel::NotFound
        ));
        assert!(w.session_events(APP_A, sid(99)).await.unwrap().is_empty());
    }

    /// Every ACTIVE session that passed its expiry gets exactly one `session.expired`,
    /// however many sweepers run at once; ended and unexpired sessions get none; once its
    /// expiry was emitted a session cannot be consumed or cancelled any more (an instance
    /// whose clock runs behind may still see it ACTIVE).
    pub async fn expiry_is_emitted_once_however_many_sweepers((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[])).await;
        for n in 0..24u128 {
            mint(&s, APP_A, sid(100 + n), &request(100 + n, false), t0()).await;
        }
        s.launch(APP_A, sid(100), at(10), true, evt())
            .await
            .unwrap();
        s.cancel(APP_A, sid(101), at(10), evt()).await.unwrap();
        // Not yet expired (sessions live 300 s).
        assert_eq!(s.sweep_expired(at(299), &[evt(), evt()]).await.unwrap(), 0);

        let sweepers: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    loop {
                        let ids: Vec<_> = (0..5).map(|_| evt()).collect();
                        let got = s.sweep_expired(at(301), &ids).await.unwrap();
                        n += got;
                        if got == 0 {
                            return n;
                        }
                    }
                })
            })
            .collect();
        let mut total = 0;
        for t in sweepers {
            total += t.await.unwrap();
        }
        assert_eq!(total, 22, "every expired ACTIVE session, once");
        for n in 0..24u128 {
            let expired = events_of(&w, APP_A, sid(100 + n))
                .await
                .into_iter()
                .filter(|(t, _)| *t == EventType::SessionExpired)
                .count();
            assert_eq!(expired, usize::from(n >= 2), "session {n}");
        }
        assert_eq!(s.sweep_expired(at(400), &[evt()]).await.unwrap(), 0);
        // A launch or cancel judged by a clock still before the expiry is refused now.
        let late = s
            .launch(APP_A, sid(102), at(299), true, evt())
            .await
            .unwrap();
        assert!(matches!(late, LaunchResult::Ended(_)), "{late:?}");
        let late = s.cancel(APP_A, sid(103), at(299), evt()).await.unwrap();
        assert!(matches!(late, StoreCancel::NotActive(_)), "{late:?}");
        assert_eq!(events_of(&w, APP_A, sid(102)).await.len(), 2);
    }

    /// Concurrent claims never hand out the same delivery while its lease lasts; a lapsed
    /// lease makes it claimable again, and the old owner's attempt is then not recorded.
    pub async fn deliveries_are_claimed_by_one_worker_at_a_time((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[])).await;
        for n in 0..20u128 {
            mint(&s, APP_A, sid(n + 1), &request(n + 1, false), t0()).await;
        }
        let claims: Vec<_> = (0..4u128)
            .map(|owner| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.claim_deliveries(&claim_query(at(1), owner, 8))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut first_owner = None;
        for (owner, c) in claims.into_iter().enumerate() {
            for d in c.await.unwrap() {
                assert!(seen.insert(d.key), "{:?} claimed twice", d.key);
                assert_eq!(d.attempts, 0);
                assert_eq!(d.event.kind, EventType::SessionCreated);
                assert_eq!(d.secret, sealed(1));
                first_owner.get_or_insert((owner as u128, d.key));
            }
        }
        assert_eq!(seen.len(), 20);
        assert!(
            w.claim_deliveries(&claim_query(at(2), 9, 100))
                .await
                .unwrap()
                .is_empty()
        );
        // After the leases (30 s) another worker takes them over.
        let again = w
            .claim_deliveries(&claim_query(at(32), 9, 100))
            .await
            .unwrap();
        assert_eq!(again.len(), 20);
        let (old_owner, key) = first_owner.unwrap();
        let stale = Attempt {
            key,
            owner: Uuid::from_u128(old_owner),
            at: at(33),
            status_code: Some(200),
            error: None,
            outcome: AttemptOutcome::Delivered,
        };
        assert!(
            !w.record_attempt(&stale).await.unwrap(),
            "not the owner any more"
        );
        let fresh = Attempt {
            owner: Uuid::from_u128(9),
            ..stale
        };
        assert!(w.record_attempt(&fresh).await.unwrap());
        assert!(!w.record_attempt(&fresh).await.unwrap(), "recorded once");
    }

    /// Attempts are counted; a retry becomes due at its time; delivered and failed are final;
    /// a failed delivery can be made pending again; release makes a claim due at once.
    pub async fn attempts_retries_and_final_states((s, w): Stores) {
        let e = endpoint(APP_A, 1, &[]);
        register(&w, &e).await;
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        let owner = 7;
        let d = w
            .claim_deliveries(&claim_query(at(1), owner, 10))
            .await
            .unwrap();
        assert_eq!(d.len(), 1);
        let key = d[0].key;
        let attempt = |at_s: i64, code: Option<u16>, outcome| Attempt {
            key,
            owner: Uuid::from_u128(owner),
            at: at(at_s),
            status_code: code,
            error: code.is_none().then(|| "could not connect".to_string()),
            outcome,
        };
        assert!(
            w.record_attempt(&attempt(1, Some(500), AttemptOutcome::RetryAt(at(6))))
                .await
                .unwrap()
        );
        assert_eq!(w.due_deliveries(at(5)).await.unwrap(), 0);
        assert!(
            w.claim_deliveries(&claim_query(at(5), owner, 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(w.due_deliveries(at(6)).await.unwrap(), 1);
        let d = w
            .claim_deliveries(&claim_query(at(6), owner, 10))
            .await
            .unwrap();
        assert_eq!(d[0].attempts, 1);
        // Released (a shutdown): due again at once, for anyone.
        w.release_deliveries(Uuid::from_u128(owner), &[key])
            .await
            .unwrap();
        let d = w
            .claim_deliveries(&claim_query(at(7), owner, 10))
            .await
            .unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            w.record_attempt(&attempt(8, None, AttemptOutcome::Failed))
                .await
                .unwrap()
        );
        let records = w.session_events(APP_A, sid(1)).await.unwrap();
        let view = &records[0].deliveries[0];
        assert_eq!(
            (
                view.status,
                view.attempts,
                view.last_status_code,
                view.last_attempt_at,
                view.next_attempt_at
            ),
            (DeliveryStatus::Failed, 2, None, Some(at(8)), None)
        );
        assert!(
            w.claim_deliveries(&claim_query(at(100), owner, 10))
                .await
                .unwrap()
                .is_empty()
        );
        // Redelivered: pending again with a fresh count.
        assert_eq!(
            w.redeliver(key.event, Some(e.id), at(200)).await.unwrap(),
            1
        );
        assert_eq!(
            w.redeliver(key.event, None, at(200)).await.unwrap(),
            0,
            "only failed ones"
        );
        let d = w
            .claim_deliveries(&claim_query(at(200), owner, 10))
            .await
            .unwrap();
        assert_eq!(d[0].attempts, 0);
        assert!(
            w.record_attempt(&attempt(201, Some(204), AttemptOutcome::Delivered))
                .await
                .unwrap()
        );
        let view = &w.session_events(APP_A, sid(1)).await.unwrap()[0].deliveries[0];
        assert_eq!(
            (view.status, view.last_status_code),
            (DeliveryStatus::Delivered, Some(204))
        );
        assert_eq!(w.due_deliveries(at(1000)).await.unwrap(), 0);
    }

    /// A claim takes at most `per_endpoint` per endpoint and leaves out skipped endpoints.
    pub async fn claims_respect_per_endpoint_limits_and_skips((s, w): Stores) {
        let e1 = endpoint(APP_A, 1, &[]);
        let e2 = endpoint(APP_A, 2, &[]);
        register(&w, &e1).await;
        register(&w, &e2).await;
        for n in 0..5u128 {
            mint(&s, APP_A, sid(n + 1), &request(n + 1, false), t0()).await;
        }
        let mut q = claim_query(at(1), 1, 100);
        q.per_endpoint = 2;
        let got = w.claim_deliveries(&q).await.unwrap();
        let count = |id| got.iter().filter(|d| d.key.endpoint == id).count();
        assert_eq!((count(e1.id), count(e2.id)), (2, 2));
        let mut q = claim_query(at(1), 2, 100);
        q.skip_endpoints = vec![e1.id];
        let got = w.claim_deliveries(&q).await.unwrap();
        assert!(!got.is_empty() && got.iter().all(|d| d.key.endpoint == e2.id));
    }

    /// Deleting an endpoint fails its pending deliveries and hides it; another application
    /// cannot delete it; the limit holds under concurrent registrations.
    pub async fn endpoints_are_scoped_limited_and_deletable((s, w): Stores) {
        let e = endpoint(APP_A, 1, &[]);
        register(&w, &e).await;
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        assert!(!w.delete_endpoint(APP_B, e.id).await.unwrap());
        assert_eq!(w.list_endpoints(APP_A).await.unwrap(), vec![e.clone()]);
        assert!(w.list_endpoints(APP_B).await.unwrap().is_empty());
        assert!(w.delete_endpoint(APP_A, e.id).await.unwrap());
        assert!(!w.delete_endpoint(APP_A, e.id).await.unwrap());
        assert!(w.list_endpoints(APP_A).await.unwrap().is_empty());
        let view = &w.session_events(APP_A, sid(1)).await.unwrap()[0].deliveries[0];
        assert_eq!(view.status, DeliveryStatus::Failed);
        assert!(
            w.claim_deliveries(&claim_query(at(1), 1, 10))
                .await
                .unwrap()
                .is_empty()
        );

        let attempts: Vec<_> = (0..16u128)
            .map(|n| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.create_endpoint(&endpoint(APP_B, 100 + n, &[]), sealed(2), 10)
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for a in attempts {
            match a.await.unwrap() {
                Ok(()) => ok += 1,
                Err(EndpointError::TooMany(10)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(ok, 10);
        assert_eq!(w.list_endpoints(APP_B).await.unwrap().len(), 10);
    }

    /// After a rotation, claims carry the previous secret until its time, then only the new.
    pub async fn rotation_keeps_the_previous_secret_for_a_while((s, w): Stores) {
        let e = endpoint(APP_A, 1, &[]);
        register(&w, &e).await;
        let rotated = w
            .rotate_secret(APP_A, e.id, sealed(2), t0(), at(100))
            .await
            .unwrap();
        assert_eq!(rotated, Some(e.clone()));
        assert_eq!(
            w.rotate_secret(APP_B, e.id, sealed(3), t0(), at(100))
                .await
                .unwrap(),
            None
        );
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        let d = w
            .claim_deliveries(&claim_query(at(1), 1, 10))
            .await
            .unwrap();
        assert_eq!(d[0].secret, sealed(2));
        assert_eq!(d[0].previous_secret, Some(sealed(1)));
        let d = w
            .claim_deliveries(&claim_query(at(101), 2, 10))
            .await
            .unwrap();
        assert_eq!(d[0].previous_secret, None);

        // Rotated twice within the overlap (the first answer lost): the secret the partner
        // had before keeps signing, not the one it never saw.
        let e2 = endpoint(APP_A, 2, &[]);
        register(&w, &e2).await;
        w.rotate_secret(APP_A, e2.id, sealed(5), t0(), at(100))
            .await
            .unwrap();
        w.rotate_secret(APP_A, e2.id, sealed(6), at(10), at(110))
            .await
            .unwrap();
        mint(&s, APP_A, sid(3), &request(3, false), at(40)).await;
        let d = w
            .claim_deliveries(&claim_query(at(50), 4, 10))
            .await
            .unwrap();
        let mine = d.iter().find(|d| d.key.endpoint == e2.id).unwrap();
        assert_eq!(mine.secret, sealed(6));
        assert_eq!(
            mine.previous_secret,
            Some(sealed(1)),
            "the original secret, kept"
        );
    }

    /// Retention takes a session's events and deliveries with it.
    pub async fn purge_takes_events_and_deliveries((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[])).await;
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        s.cancel(APP_A, sid(1), at(1), evt()).await.unwrap();
        assert_eq!(w.session_events(APP_A, sid(1)).await.unwrap().len(), 2);
        assert_eq!(s.purge(at(1000), 10).await.unwrap(), 1);
        assert!(w.session_events(APP_A, sid(1)).await.unwrap().is_empty());
        assert_eq!(w.due_deliveries(at(2000)).await.unwrap(), 0);
    }

    fn order_update(
        order: &str,
        event: &str,
        status: &str,
        session: Option<domain::SessionId>,
        received: DateTime<Utc>,
    ) -> OrderUpdate {
        OrderUpdate {
            order_id: order.into(),
            event_id: event.into(),
            status: status.into(),
            partner_order_id: session.map(|s| s.to_string()),
            session,
            received_at: received,
            event: evt(),
        }
    }

    /// An order event is recorded once per (order, event): the first sets the session's
    /// order and writes one `session.order_updated` (with the session as updated, for the
    /// session's own application); a repeat changes nothing and writes nothing; an event of
    /// no session, or of a session whose link was never opened, is recorded as unmatched,
    /// once; a later event of the order moves it on, unless it is a late non-final status
    /// after a final one.
    pub async fn order_events_are_recorded_once((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[EventType::SessionOrderUpdated])).await;
        register(&w, &endpoint(APP_B, 2, &[])).await;
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        // Before its link was opened a session cannot have an order: unmatched.
        let early = order_update("ord-0", "ORDER_COMPLETED", "COMPLETED", Some(sid(1)), at(1));
        assert_eq!(
            s.record_order(&early).await.unwrap(),
            OrderOutcome::Unmatched
        );
        assert_eq!(s.get(APP_A, sid(1)).await.unwrap().unwrap().order, None);
        s.launch(APP_A, sid(1), at(2), true, evt()).await.unwrap();
        let first = order_update("ord-1", "ORDER_COMPLETED", "COMPLETED", Some(sid(1)), at(5));
        let OrderOutcome::Updated(updated) = s.record_order(&first).await.unwrap() else {
            panic!("the first event updates the session");
        };
        let expected = SessionOrder {
            id: "ord-1".into(),
            status: "COMPLETED".into(),
            event_id: "ORDER_COMPLETED".into(),
            updated_at: at(5),
        };
        assert_eq!(updated.order.as_ref(), Some(&expected));
        assert_eq!(updated.session.id(), sid(1));
        let stored = s.get(APP_A, sid(1)).await.unwrap().unwrap();
        assert_eq!(stored.order, Some(expected.clone()));
        let events = events_of(&w, APP_A, sid(1)).await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[2].0, EventType::SessionOrderUpdated);
        assert_eq!(
            events[2].1.len(),
            1,
            "one delivery, to the application's endpoint"
        );
        let records = w.session_events(APP_A, sid(1)).await.unwrap();
        assert_eq!(records[2].event.session.order, Some(expected.clone()));

        // The same (order, event) again, even with another status or time: nothing changes.
        let again = order_update("ord-1", "ORDER_COMPLETED", "REFUNDED", Some(sid(1)), at(9));
        assert_eq!(
            s.record_order(&again).await.unwrap(),
            OrderOutcome::Duplicate
        );
        assert_eq!(
            s.get(APP_A, sid(1)).await.unwrap().unwrap().order,
            Some(expected)
        );
        assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 3);

        // A later event of the order, final too: it applies.
        let failed = order_update("ord-1", "ORDER_FAILED", "FAILED", Some(sid(1)), at(7));
        assert!(matches!(
            s.record_order(&failed).await.unwrap(),
            OrderOutcome::Updated(_)
        ));
        let order = s.get(APP_A, sid(1)).await.unwrap().unwrap().order.unwrap();
        assert_eq!((order.status.as_str(), order.updated_at), ("FAILED", at(7)));
        assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 4);
        // A late non-final one: recorded (a repeat is a duplicate), nothing else.
        let late = order_update(
            "ord-1",
            "ORDER_PROCESSING",
            "PROCESSING",
            Some(sid(1)),
            at(8),
        );
        assert_eq!(s.record_order(&late).await.unwrap(), OrderOutcome::Stale);
        assert_eq!(
            s.record_order(&late).await.unwrap(),
            OrderOutcome::Duplicate
        );
        let order = s.get(APP_A, sid(1)).await.unwrap().unwrap().order.unwrap();
        assert_eq!(order.status, "FAILED");
        assert_eq!(events_of(&w, APP_A, sid(1)).await.len(), 4);

        // No such session (or no session id at all): unmatched, once.
        for session in [Some(sid(99)), None] {
            let name = format!("ord-{session:?}");
            let stray = order_update(&name, "ORDER_COMPLETED", "COMPLETED", session, at(5));
            assert_eq!(
                s.record_order(&stray).await.unwrap(),
                OrderOutcome::Unmatched
            );
            assert_eq!(
                s.record_order(&stray).await.unwrap(),
                OrderOutcome::Duplicate
            );
        }
        // Operators see the unmatched ones, newest first.
        let unmatched = s.unmatched_orders(10).await.unwrap();
        let mut ids: Vec<&str> = unmatched.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{unmatched:?}");
        assert_eq!(ids.pop(), Some("ord-0"), "the oldest last: {unmatched:?}");
        assert_eq!(unmatched[2].partner_order_id, Some(sid(1).to_string()));
        assert_eq!(unmatched[2].received_at, at(1));
        assert_eq!(s.unmatched_orders(1).await.unwrap().len(), 1);
        // Two deliveries, both of the order events: none to the other application.
        assert_eq!(w.due_deliveries(at(100)).await.unwrap(), 2);
    }

    /// Retention takes order events by age, matched or not, with the sessions.
    pub async fn purge_takes_order_events((s, _w): Stores) {
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        s.launch(APP_A, sid(1), at(1), true, evt()).await.unwrap();
        let matched = order_update("ord-1", "ORDER_FAILED", "FAILED", Some(sid(1)), at(2));
        s.record_order(&matched).await.unwrap();
        let stray = order_update("ord-2", "ORDER_FAILED", "FAILED", Some(sid(99)), at(2));
        assert_eq!(
            s.record_order(&stray).await.unwrap(),
            OrderOutcome::Unmatched
        );
        // Not yet old enough: kept (a repeat is still a duplicate).
        assert_eq!(s.purge(at(1), 10).await.unwrap(), 0);
        assert_eq!(
            s.record_order(&stray).await.unwrap(),
            OrderOutcome::Duplicate
        );
        assert_eq!(s.unmatched_orders(10).await.unwrap().len(), 1);
        assert_eq!(s.purge(at(1000), 10).await.unwrap(), 1);
        assert!(s.unmatched_orders(10).await.unwrap().is_empty());
        // Both forgotten: the same events are new again (the unmatched one still unmatched).
        assert_eq!(
            s.record_order(&stray).await.unwrap(),
            OrderOutcome::Unmatched
        );
        assert_eq!(
            s.record_order(&matched).await.unwrap(),
            OrderOutcome::Unmatched
        );
    }

    /// A worker waiting for deliveries wakes when one is written (not only at its timeout).
    pub async fn waiting_workers_wake_on_new_deliveries((s, w): Stores) {
        register(&w, &endpoint(APP_A, 1, &[])).await;
        // Let the store set up its wake-up channel (Postgres: LISTEN).
        w.wait_for_deliveries(Duration::from_millis(50)).await;
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                w.wait_for_deliveries(Duration::from_secs(20)).await;
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        mint(&s, APP_A, sid(1), &request(1, false), t0()).await;
        let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken within 10 s")
            .unwrap();
        assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
    }
}
