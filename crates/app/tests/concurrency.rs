//! The claim protocol end to end over the in-memory store: racing requests, failing and
//! dying minters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use app::{ClaimSettings, Dependencies, Sessions};
use domain::ReusePolicy;
use memory::MemoryStore;
use ports::*;
use testkit::fakes::FakeGateway;
use testkit::fixtures::{APP_A, links, nonce, request};

/// The at-rest keys every instance shares.
static LINKS: std::sync::LazyLock<Arc<dyn LaunchLinks>> = std::sync::LazyLock::new(links);

fn service(
    store: Arc<dyn SessionStore>,
    gateway: Arc<dyn WidgetGateway>,
    lease: Duration,
) -> Sessions {
    Sessions::new(
        Dependencies {
            store,
            requests: Arc::new(MemoryStore::new()),
            gateway,
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandomness),
            links: LINKS.clone(),
        },
        ReusePolicy::default(),
        ClaimSettings {
            lease,
            wait: Duration::from_secs(10),
            poll_interval: Duration::from_millis(5),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_identical_requests_on_two_instances_mint_once() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let gateway = Arc::new(FakeGateway::new(Duration::from_millis(50)));
    let instances = [
        service(store.clone(), gateway.clone(), Duration::from_secs(30)),
        service(store.clone(), gateway.clone(), Duration::from_secs(30)),
    ];
    let mut tasks = Vec::new();
    for n in 0..64 {
        let s = instances[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            s.create_or_reuse(
                testkit::fixtures::caller(APP_A),
                request(1, n % 3 == 0),
                nonce(APP_A),
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    let mut tokens = HashSet::new();
    for t in tasks {
        let out = t.await.unwrap();
        ids.insert(out.session.session.id());
        tokens.insert(out.launch_token.expose().to_string());
        if !out.reused {
            created += 1;
        }
    }
    assert_eq!(gateway.mints.load(Ordering::SeqCst), 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    assert_eq!(tokens.len(), 1, "every caller gets the session's one link");
    // Some request asked for the flag: the stored flag is true.
    let id = *ids.iter().next().unwrap();
    assert!(
        instances[0]
            .get(APP_A, id)
            .await
            .unwrap()
            .unwrap()
            .session
            .force_verify_ownership()
    );
}

#[tokio::test]
async fn distinct_keys_mint_separately() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let gateway = Arc::new(FakeGateway::new(Duration::from_millis(1)));
    let s = service(store, gateway.clone(), Duration::from_secs(30));
    let mut ids = HashSet::new();
    for user in 0..20 {
        ids.insert(
            s.create_or_reuse(
                testkit::fixtures::caller(APP_A),
                request(user, false),
                nonce(APP_A),
            )
            .await
            .unwrap()
            .session
            .session
            .id(),
        );
    }
    assert_eq!((ids.len(), gateway.mints.load(Ordering::SeqCst)), (20, 20));
}

#[tokio::test]
async fn an_upstream_failure_stores_nothing_and_the_next_request_mints() {
    let store = Arc::new(MemoryStore::new());
    let gateway = Arc::new(FakeGateway {
        fail_first: 1,
        ..FakeGateway::new(Duration::from_millis(1))
    });
    let s = service(store.clone(), gateway.clone(), Duration::from_secs(30));
    let err = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CreateError::UpstreamUnavailable { .. }),
        "{err:?}"
    );
    assert!(store.is_empty());
    let ok = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    assert!(!ok.reused);
    assert_eq!(store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minter_that_died_blocks_its_key_only_until_its_lease_expires() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let gateway = Arc::new(FakeGateway {
        hang_first: 1,
        ..FakeGateway::new(Duration::from_millis(1))
    });
    let s = service(store.clone(), gateway.clone(), Duration::from_millis(300));
    // The first request claims the key and hangs in the upstream call; then it "dies".
    let doomed = {
        let s = s.clone();
        tokio::spawn(async move {
            s.create_or_reuse(
                testkit::fixtures::caller(APP_A),
                request(1, false),
                nonce(APP_A),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    doomed.abort();
    let started = std::time::Instant::now();
    let out = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(!out.reused);
    assert!(
        waited >= Duration::from_millis(200),
        "took over before the lease expired: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(gateway.mints.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn launch_consumes_once_across_links_and_cancel_stops_links() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = service(
        store,
        Arc::new(FakeGateway::new(Duration::ZERO)),
        Duration::from_secs(30),
    );
    let first = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    let second = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    assert!(second.reused);
    assert_eq!(
        s.launch(second.launch_token.expose(), false).await.unwrap(),
        LaunchOutcome::Redirect(WidgetUrl::new(format!(
            "https://widget.test/?sessionId=u-{}",
            first.session.session.id()
        )))
    );
    assert!(matches!(
        s.launch(first.launch_token.expose(), true).await.unwrap(),
        LaunchOutcome::Redirect(_)
    ));
    assert_eq!(
        s.launch(second.launch_token.expose(), true).await.unwrap(),
        LaunchOutcome::Gone(domain::SessionStatus::Consumed)
    );
    // A consumed session is not reused: the next request mints a new one.
    let third = s
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    assert!(!third.reused);
    assert_ne!(third.session.session.id(), first.session.session.id());
    assert!(matches!(
        s.cancel(APP_A, third.session.session.id()).await.unwrap(),
        CancelOutcome::Cancelled(_)
    ));
    assert_eq!(
        s.launch(third.launch_token.expose(), true).await.unwrap(),
        LaunchOutcome::Gone(domain::SessionStatus::Cancelled)
    );
}

#[tokio::test]
async fn retention_purges_old_ended_sessions_in_batches() {
    use chrono::TimeDelta;
    use testkit::fixtures::{mint, sid, t0};
    struct At(chrono::DateTime<chrono::Utc>);
    impl Clock for At {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            self.0
        }
    }
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn SessionStore> = memory.clone();
    for n in 1..=25u128 {
        mint(&store, APP_A, sid(n), &request(n, false), t0()).await;
    }
    // Created at t0, they expired at t0 + 300 s. One more is still young.
    let young = t0() + TimeDelta::days(91);
    mint(&store, APP_A, sid(100), &request(100, false), young).await;
    let now = t0() + TimeDelta::days(91);
    let retention = app::Retention::new(
        memory.clone(),
        memory.clone(),
        Arc::new(At(now)),
        Duration::from_secs(90 * 86_400),
        10,
    );
    assert_eq!(retention.run_once().await.unwrap(), 25);
    assert_eq!(retention.run_once().await.unwrap(), 0);
    assert!(store.get(APP_A, sid(100)).await.unwrap().is_some());
    assert!(store.get(APP_A, sid(1)).await.unwrap().is_none());
    // A shorter retention does not touch sessions that ended recently.
    let early = app::Retention::new(
        memory.clone(),
        memory,
        Arc::new(At(young + TimeDelta::seconds(10))),
        Duration::from_secs(3600),
        10,
    );
    assert_eq!(early.run_once().await.unwrap(), 0);
}
