//! Every branch of the use cases, with mockall mocks of every port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::{ClaimSettings, Dependencies, Sessions};
use chrono::{DateTime, TimeDelta, Utc};
use domain::{ApplicationId, ReusePolicy, Session, SessionId, SessionStatus, ValidRequest};
use ports::*;
use uuid::Uuid;

const APP: ApplicationId = ApplicationId::from_uuid(Uuid::from_u128(0xA));
const CLAIM: ClaimToken = ClaimToken(Uuid::from_u128(0xC));

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn sid(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(n))
}

fn request(flag: bool) -> ValidRequest {
    testkit::fixtures::request(0x7f0c2a52_8f7e_4c3e_9a61_2f1d7e1b9c44, flag)
}

fn request_nonce() -> RequestNonce {
    RequestNonce {
        application: APP,
        signature: [5; 32],
        expires_at: t0() + TimeDelta::seconds(300),
        durable: false,
    }
}

fn stored(id: SessionId, flag: bool, created: DateTime<Utc>) -> StoredSession {
    StoredSession {
        session: Session::new(id, APP, request(flag), created, &ReusePolicy::default()),
        widget_url: Some(WidgetUrl::new(format!(
            "https://widget.test/?apiKey=k&sessionId=upstream-{id}"
        ))),
        order: None,
    }
}

/// The MAC of every token the mocked [`LaunchLinks`] issues and accepts.
const MAC: [u8; 16] = [7; 16];

/// The launch token of session 6.
fn token() -> LaunchToken {
    LaunchToken::from_parts(APP, sid(6), MAC)
}

struct Mocks {
    store: MockSessionStore,
    requests: MockRequestLog,
    gateway: MockWidgetGateway,
    clock: MockClock,
    ids: MockRandomness,
    links: MockLaunchLinks,
}

impl Mocks {
    fn new() -> Self {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(t0());
        let mut ids = MockRandomness::new();
        ids.expect_session_id().return_const(sid(1));
        ids.expect_claim_token().return_const(CLAIM);
        // The travel-rule challenge's nonce.
        ids.expect_secret_bytes().return_const([7u8; 32]);
        ids.expect_event_id()
            .returning(|| domain::EventId::from_uuid(uuid::Uuid::now_v7()));
        let mut links = MockLaunchLinks::new();
        links
            .expect_issue()
            .returning(|app, session| LaunchToken::from_parts(app, session, MAC));
        links.expect_verify().returning(|text| {
            LaunchToken::split(text)
                .filter(|(_, _, mac)| *mac == MAC)
                .map(|(app, session, _)| (app, session))
        });
        Self {
            store: MockSessionStore::new(),
            requests: MockRequestLog::new(),
            gateway: MockWidgetGateway::new(),
            clock,
            ids,
            links,
        }
    }

    fn build(self) -> Sessions {
        self.build_with(ReusePolicy::default())
    }

    fn build_with(self, policy: ReusePolicy) -> Sessions {
        Sessions::new(
            Dependencies {
                store: Arc::new(self.store),
                requests: Arc::new(self.requests),
                gateway: Arc::new(self.gateway),
                clock: Arc::new(self.clock),
                random: Arc::new(self.ids),
                links: Arc::new(self.links),
            },
            policy,
            ClaimSettings {
                lease: Duration::from_secs(30),
                wait: Duration::from_secs(2),
                poll_interval: Duration::from_millis(20),
            },
        )
    }

    /// The store's fulfil stores what it is given.
    fn fulfil_ok(&mut self) {
        self.store.expect_fulfil().times(1).returning(|_, _, new| {
            Ok(StoredSession {
                session: new.session,
                widget_url: Some(new.widget_url),
                order: None,
            })
        });
    }

    fn gateway_ok(&mut self) {
        self.gateway
            .expect_create_widget_url()
            .times(1)
            .returning(|r| {
                Ok(WidgetUrl::new(format!(
                    "https://widget.test/?sessionId=u-{}",
                    r.session_id
                )))
            });
    }
}

// ---- create-or-reuse ----------------------------------------------------------------------

#[tokio::test]
async fn reuse_returns_the_bound_session_in_one_store_call() {
    let mut m = Mocks::new();
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .withf(|q| {
            q.application == APP
                && q.key == request(false).reuse_key().digest()
                && q.now == t0()
                && q.policy == ReusePolicy::default()
                && !q.force_verify_ownership
                && q.nonce == Some(request_nonce())
                && q.claim == CLAIM
                && q.lease_until == t0() + TimeDelta::seconds(30)
        })
        .returning(|_| {
            Ok(ReuseOutcome::Reused(Box::new(stored(
                sid(9),
                false,
                t0() - TimeDelta::seconds(10),
            ))))
        });
    m.store.expect_fulfil().never();
    m.store.expect_release().never();
    m.gateway.expect_create_widget_url().never();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert!(out.reused);
    assert_eq!(out.session.session.id(), sid(9));
    assert_eq!(out.session.status, SessionStatus::Active);
    assert_eq!(
        out.launch_token.expose(),
        LaunchToken::from_parts(APP, sid(9), MAC).expose(),
        "the session's own link"
    );
}

#[tokio::test]
async fn reuse_asks_the_store_to_upgrade_the_flag() {
    let mut m = Mocks::new();
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .withf(|q| q.force_verify_ownership)
        .returning(|_| Ok(ReuseOutcome::Reused(Box::new(stored(sid(9), true, t0())))));
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(true),
            request_nonce(),
        )
        .await
        .unwrap();
    assert!(out.reused);
    assert!(out.session.session.force_verify_ownership());
}

#[tokio::test]
async fn the_configured_policy_is_the_one_the_store_applies() {
    let mut m = Mocks::new();
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .withf(|q| q.policy.must_live_until(q.now) == t0() + TimeDelta::seconds(30))
        .returning(|_| Ok(ReuseOutcome::Reused(Box::new(stored(sid(9), false, t0())))));
    let policy = ReusePolicy::new(Duration::from_secs(120), Duration::from_secs(30)).unwrap();
    assert!(
        m.build_with(policy)
            .create_or_reuse(
                testkit::fixtures::caller(APP),
                request(false),
                request_nonce()
            )
            .await
            .unwrap()
            .reused
    );
}

#[tokio::test]
async fn a_claimed_key_is_minted_and_fulfilled() {
    let mut m = Mocks::new();
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .withf(|q| q.claim == CLAIM && q.lease_until == t0() + TimeDelta::seconds(30))
        .returning(|_| Ok(ReuseOutcome::Claimed));
    m.gateway
        .expect_create_widget_url()
        .times(1)
        .withf(|r| {
            r.session_id == sid(1)
                && r.subject == request(false).scope().subject()
                && r.asset == *request(false).scope().asset()
                && r.counterparty == *request(false).scope().counterparty()
        })
        .returning(|_| Ok(WidgetUrl::new("https://widget.test/?sessionId=u1".into())));
    m.store
        .expect_fulfil()
        .times(1)
        .withf(|app, claim, new| {
            *app == APP
                && *claim == CLAIM
                && new.key == request(false).reuse_key().digest()
                && new.session.id() == sid(1)
                && new.session.created_at() == t0()
                && new.session.expires_at() == t0() + TimeDelta::seconds(300)
                && new.widget_url.expose() == "https://widget.test/?sessionId=u1"
        })
        .returning(|_, _, new| {
            Ok(StoredSession {
                session: new.session,
                widget_url: Some(new.widget_url),
                order: None,
            })
        });
    m.store.expect_release().never();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert!(!out.reused);
    assert_eq!(out.session.session.id(), sid(1));
    assert_eq!(out.session.status, SessionStatus::Active);
}

#[tokio::test]
async fn a_slot_that_changed_under_the_store_is_asked_again_at_once() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_reuse_or_claim()
        .times(2)
        .returning(move |_| {
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                ReuseOutcome::Changed
            } else {
                ReuseOutcome::Reused(Box::new(stored(sid(77), false, t0())))
            })
        });
    m.gateway.expect_create_widget_url().never();
    m.store.expect_fulfil().never();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert_eq!((out.reused, out.session.session.id()), (true, sid(77)));
}

#[tokio::test(start_paused = true)]
async fn a_pending_claim_is_waited_for_and_its_session_returned() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_reuse_or_claim()
        .times(3)
        .returning(move |_| {
            Ok(if c.fetch_add(1, Ordering::SeqCst) < 2 {
                ReuseOutcome::Pending {
                    lease_until: t0() + TimeDelta::seconds(10),
                }
            } else {
                ReuseOutcome::Reused(Box::new(stored(sid(88), false, t0())))
            })
        });
    m.gateway.expect_create_widget_url().never();
    let started = tokio::time::Instant::now();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert_eq!((out.reused, out.session.session.id()), (true, sid(88)));
    // Two polls of 20 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(40));
}

#[tokio::test(start_paused = true)]
async fn waiting_is_bounded() {
    let mut m = Mocks::new();
    m.store.expect_reuse_or_claim().returning(|_| {
        Ok(ReuseOutcome::Pending {
            lease_until: t0() + TimeDelta::seconds(10),
        })
    });
    m.gateway.expect_create_widget_url().never();
    let started = tokio::time::Instant::now();
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CreateError::Busy { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_whose_claimer_died_takes_over_once_the_store_grants_the_claim() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_reuse_or_claim()
        .times(2)
        .returning(move |_| {
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                ReuseOutcome::Pending {
                    lease_until: t0() + TimeDelta::seconds(1),
                }
            } else {
                ReuseOutcome::Claimed
            })
        });
    m.gateway_ok();
    m.fulfil_ok();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert!(!out.reused);
}

fn claimed(m: &mut Mocks) {
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .returning(|_| Ok(ReuseOutcome::Claimed));
}

#[tokio::test]
async fn an_upstream_rejection_releases_the_claim_and_stores_nothing() {
    let mut m = Mocks::new();
    claimed(&mut m);
    m.gateway
        .expect_create_widget_url()
        .times(1)
        .returning(|_| {
            Err(GatewayError::Rejected {
                status: 400,
                message: "Invalid walletAddress".into(),
            })
        });
    m.store.expect_fulfil().never();
    m.store
        .expect_release()
        .times(1)
        .withf(|app, key, claim| {
            *app == APP && *key == request(false).reuse_key().digest() && *claim == CLAIM
        })
        .returning(|_, _, _| Ok(()));
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CreateError::UpstreamRejected {
            status: 400,
            message: "Invalid walletAddress".into()
        }
    );
}

#[tokio::test]
async fn an_unavailable_upstream_releases_the_claim_and_stores_nothing() {
    let mut m = Mocks::new();
    claimed(&mut m);
    m.gateway
        .expect_create_widget_url()
        .times(1)
        .returning(|_| {
            Err(GatewayError::Unavailable {
                retry_after: Duration::from_secs(7),
                reason: "timed out".into(),
            })
        });
    m.store.expect_fulfil().never();
    m.store
        .expect_release()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CreateError::UpstreamUnavailable {
            retry_after: Duration::from_secs(7),
            reason: "timed out".into()
        }
    );
}

#[tokio::test]
async fn a_release_failure_after_an_upstream_failure_still_reports_the_upstream_failure() {
    let mut m = Mocks::new();
    claimed(&mut m);
    m.gateway
        .expect_create_widget_url()
        .times(1)
        .returning(|_| Err(GatewayError::Unexpected("garbage".into())));
    m.store
        .expect_release()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CreateError::UpstreamInvalid {
            reason: "garbage".into()
        }
    );
}

#[tokio::test]
async fn a_store_failure_after_a_mint_abandons_the_link_and_reports_the_failure() {
    let mut m = Mocks::new();
    claimed(&mut m);
    m.gateway_ok();
    m.store.expect_fulfil().times(1).returning(|_, _, _| {
        Err(FulfilError::Store(StoreError::Unavailable(
            "connection reset".into(),
        )))
    });
    m.store
        .expect_release()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CreateError::Store(StoreError::Unavailable("connection reset".into()))
    );
}

#[tokio::test]
async fn a_claim_lost_during_the_mint_looks_again_and_returns_the_new_owners_session() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_reuse_or_claim()
        .times(2)
        .returning(move |_| {
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                ReuseOutcome::Claimed
            } else {
                ReuseOutcome::Reused(Box::new(stored(sid(99), false, t0())))
            })
        });
    m.gateway_ok();
    m.store
        .expect_fulfil()
        .times(1)
        .returning(|_, _, _| Err(FulfilError::ClaimLost));
    m.store.expect_release().never();
    let out = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap();
    assert_eq!((out.reused, out.session.session.id()), (true, sid(99)));
}

#[tokio::test]
async fn a_store_failure_on_the_hot_path_is_reported() {
    let mut m = Mocks::new();
    m.store
        .expect_reuse_or_claim()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let err = m
        .build()
        .create_or_reuse(
            testkit::fixtures::caller(APP),
            request(false),
            request_nonce(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CreateError::Store(StoreError::Unavailable("down".into()))
    );
}

// ---- get, list ------------------------------------------------------------------------------

#[tokio::test]
async fn get_shows_the_status_at_the_current_instant() {
    let mut m = Mocks::new();
    m.store
        .expect_get()
        .withf(|app, id| *app == APP && *id == sid(3))
        .returning(|_, _| Ok(Some(stored(sid(3), false, t0() - TimeDelta::seconds(301)))));
    let view = m.build().get(APP, sid(3)).await.unwrap().unwrap();
    assert_eq!(view.status, SessionStatus::Expired);
}

#[tokio::test]
async fn get_of_an_unknown_or_foreign_session_is_none() {
    let mut m = Mocks::new();
    m.store.expect_get().returning(|_, _| Ok(None));
    assert!(m.build().get(APP, sid(3)).await.unwrap().is_none());
}

#[tokio::test]
async fn list_validates_the_limit_and_passes_the_query() {
    let mut m = Mocks::new();
    m.store
        .expect_list()
        .times(1)
        .withf(|q| {
            q.application == APP
                && q.limit == 2
                && q.before == Some(sid(9))
                && q.status == Some(StatusFilter(SessionStatus::Active))
                && q.now == t0()
        })
        .returning(|_| {
            Ok(Page {
                items: vec![
                    stored(sid(8), false, t0()),
                    stored(sid(7), false, t0() - TimeDelta::seconds(400)),
                ],
                next: Some(sid(7)),
            })
        });
    let s = m.build();
    assert_eq!(
        s.list(APP, None, None, 0, None).await,
        Err(ListError::InvalidLimit)
    );
    assert_eq!(
        s.list(APP, None, None, 101, None).await,
        Err(ListError::InvalidLimit)
    );
    let page = s
        .list(APP, None, Some(SessionStatus::Active), 2, Some(sid(9)))
        .await
        .unwrap();
    assert_eq!(page.next, Some(sid(7)));
    let statuses: Vec<SessionStatus> = page.items.iter().map(|v| v.status).collect();
    assert_eq!(
        statuses,
        vec![SessionStatus::Active, SessionStatus::Expired]
    );
}

// ---- cancel -----------------------------------------------------------------------------------

#[tokio::test]
async fn cancel_twice_is_cancelled_then_already_cancelled() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_cancel()
        .times(2)
        .withf(|app, id, now, _| *app == APP && *id == sid(4) && *now == t0())
        .returning(move |_, _, now, _| {
            let mut s = stored(sid(4), false, t0() - TimeDelta::seconds(5));
            s.session = {
                let mut x = s.session.clone();
                x.cancel(now).unwrap();
                x
            };
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                CancelResult::Cancelled(s)
            } else {
                CancelResult::AlreadyCancelled(s)
            })
        });
    let s = m.build();
    match s.cancel(APP, sid(4)).await.unwrap() {
        CancelOutcome::Cancelled(v) => assert_eq!(v.status, SessionStatus::Cancelled),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.cancel(APP, sid(4)).await.unwrap(),
        CancelOutcome::AlreadyCancelled(_)
    ));
}

#[tokio::test]
async fn cancel_of_an_ended_or_unknown_session_fails() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_cancel()
        .times(2)
        .returning(move |_, _, _, _| {
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                CancelResult::NotActive(stored(sid(4), false, t0() - TimeDelta::seconds(600)))
            } else {
                CancelResult::NotFound
            })
        });
    let s = m.build();
    match s.cancel(APP, sid(4)).await.unwrap_err() {
        CancelError::NotActive(v) => assert_eq!(v.status, SessionStatus::Expired),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.cancel(APP, sid(4)).await.unwrap_err(),
        CancelError::NotFound
    );
}

// ---- launch -----------------------------------------------------------------------------------

#[tokio::test]
async fn launching_twice_redirects_once_then_is_gone() {
    let mut m = Mocks::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.store
        .expect_launch()
        .times(2)
        .withf(|app, id, now, consume, _| *app == APP && *id == sid(6) && *now == t0() && *consume)
        .returning(move |_, _, now, _, _| {
            let mut s = stored(sid(6), false, t0() - TimeDelta::seconds(5));
            Ok(if c.fetch_add(1, Ordering::SeqCst) == 0 {
                LaunchResult::Opened(s)
            } else {
                s.session.consume(now).unwrap();
                LaunchResult::Ended(s)
            })
        });
    let s = m.build();
    match s.launch(token().expose(), true).await.unwrap() {
        LaunchOutcome::Redirect(url) => assert!(url.expose().contains("sessionId=upstream-")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.launch(token().expose(), true).await.unwrap(),
        LaunchOutcome::Gone(SessionStatus::Consumed)
    );
}

#[tokio::test]
async fn head_does_not_consume_and_garbage_tokens_never_reach_the_store() {
    let mut m = Mocks::new();
    m.store
        .expect_launch()
        .times(1)
        .withf(|_, _, _, consume, _| !*consume)
        .returning(|_, _, _, _, _| Ok(LaunchResult::Opened(stored(sid(6), false, t0()))));
    let s = m.build();
    assert!(matches!(
        s.launch(token().expose(), false).await.unwrap(),
        LaunchOutcome::Redirect(_)
    ));
    assert_eq!(
        s.launch("not-a-token", true).await.unwrap(),
        LaunchOutcome::Unknown
    );
}

#[tokio::test]
async fn an_unknown_token_is_unknown() {
    let mut m = Mocks::new();
    m.store
        .expect_launch()
        .returning(|_, _, _, _, _| Ok(LaunchResult::Unknown));
    assert_eq!(
        m.build().launch(token().expose(), true).await.unwrap(),
        LaunchOutcome::Unknown
    );
}
