//! Fault proofs, each against real `widget-sessions` processes on a fresh Postgres database
//! with the Transak emulator (in this process) as their upstream:
//!
//! - upstream down (failing, or stopped and back) → `503 upstream_unavailable` with
//!   `Retry-After`, nothing stored, success once it is back;
//! - upstream restarted with fresh state → the next create succeeds after exactly one
//!   refresh;
//! - upstream slower than our timeout → a quick `503`, and the claim is released;
//! - Postgres unavailable under load and back → `503` (never `500`), and the same instance
//!   recovers;
//! - an instance killed mid-mint blocks its key no longer than the claim lease.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use process_support::{Deployment, Instance, Resp, SESSIONS, create_body, eventually};
use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection};
use transak_emulator::{EmulatorConfig, FaultsUpdate};

/// Asserts a `503 upstream_unavailable` with a whole-seconds `Retry-After`.
#[track_caller]
fn assert_upstream_unavailable(r: &Resp) {
    r.expect(503);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(
        r.problem_code().as_deref(),
        Some("upstream_unavailable"),
        "{}",
        r.text
    );
    let retry_after = r.header("retry-after").expect("a Retry-After header");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "Retry-After: {retry_after}"
    );
}

/// `user` has no session at all on `instance`.
async fn assert_nothing_stored_for(instance: &Instance, user: uuid::Uuid) {
    let list = instance.list_for(user).await;
    list.expect(200);
    assert_eq!(list.json()["data"], Value::Array(vec![]), "{}", list.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failing_answers_503_stores_nothing_and_recovers() {
    let deployment = Deployment::new().await;
    let api = deployment.start("api", &[]).await;
    deployment
        .emulator
        .set_faults(FaultsUpdate {
            fail_next: Some(1000),
            fail_status: Some(500),
            ..FaultsUpdate::default()
        })
        .unwrap();

    let user = uuid::Uuid::new_v4();
    // Twice: a failed mint released its claim, so the second request is not left waiting
    // behind it (it would answer `session_busy` after the claim wait).
    for _ in 0..2 {
        let started = Instant::now();
        let r = api.create(&create_body(user)).await;
        assert_upstream_unavailable(&r);
        assert!(started.elapsed() < Duration::from_secs(10), "{r:?}");
    }
    let stats = deployment.emulator.stats();
    assert!(stats.injected_failures >= 2, "{stats:?}");
    assert_eq!(stats.sessions_minted, 0, "{stats:?}");
    assert_nothing_stored_for(&api, user).await;
    assert_eq!(deployment.count("sessions").await, 0);

    deployment.emulator.clear_faults();
    let started = Instant::now();
    let r = api.create(&create_body(user)).await;
    r.expect(201);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the key was not blocked"
    );
    assert_eq!(deployment.emulator.stats().sessions_minted, 1);
    let list = api.list_for(user).await;
    assert_eq!(list.json()["data"][0]["id"], r.json()["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_stopped_answers_503_and_recovers_when_it_is_back() {
    let mut deployment = Deployment::new().await;
    let api = deployment.start("api", &[]).await;

    // Stop the upstream (a placeholder takes the handle's place, on another port).
    let addr = deployment.emulator.addr();
    let placeholder = transak_emulator::spawn(EmulatorConfig::default())
        .await
        .unwrap();
    std::mem::replace(&mut deployment.emulator, placeholder)
        .shutdown()
        .await;

    let user = uuid::Uuid::new_v4();
    let r = api.create(&create_body(user)).await;
    assert_upstream_unavailable(&r);
    assert_nothing_stored_for(&api, user).await;

    // Back on the same address, as a fresh process: our stored token is unknown there.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    deployment.emulator = transak_emulator::serve(listener, EmulatorConfig::default()).unwrap();
    let r = api.create(&create_body(user)).await;
    r.expect(201);
    let stats = deployment.emulator.stats();
    assert_eq!(
        (stats.refreshes, stats.sessions_minted, stats.unauthorized),
        (1, 1, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_restarted_with_fresh_state_costs_exactly_one_refresh() {
    let deployment = Deployment::new().await;
    let api = deployment.start("api", &[]).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let before = deployment.emulator.stats();
    assert_eq!(
        (before.refreshes, before.sessions_minted),
        (1, 1),
        "{before:?}"
    );

    // Upstream restarts and forgets every token: ours is now unknown there.
    deployment.emulator.reset();
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let after = deployment.emulator.stats();
    assert_eq!(
        after.unauthorized, 1,
        "one 401 on the stale token: {after:?}"
    );
    assert_eq!(after.refreshes, 1, "exactly one refresh: {after:?}");
    assert_eq!(after.sessions_minted, 1, "{after:?}");

    // The new token is used from then on.
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let last = deployment.emulator.stats();
    assert_eq!(
        (last.refreshes, last.unauthorized, last.sessions_minted),
        (1, 1, 2),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_slower_than_our_timeout_answers_503_quickly_and_releases_the_claim() {
    let deployment = Deployment::new().await;
    let api = deployment
        .start(
            "api",
            &[
                ("TRANSAK_TIMEOUT_MS", "500"),
                ("TRANSAK_MAX_RETRIES", "0"),
                ("WIDGET_SESSIONS_CLAIM_LEASE_SECS", "3"),
            ],
        )
        .await;
    deployment
        .emulator
        .set_faults(FaultsUpdate {
            hang_next: Some(1),
            ..FaultsUpdate::default()
        })
        .unwrap();

    let user = uuid::Uuid::new_v4();
    let started = Instant::now();
    let r = api.create(&create_body(user)).await;
    let took = started.elapsed();
    assert_upstream_unavailable(&r);
    assert!(took < Duration::from_secs(5), "the 503 took {took:?}");
    assert_eq!(deployment.emulator.stats().injected_hangs, 1);
    assert_nothing_stored_for(&api, user).await;

    // The claim was released: the same key mints at once, long before the 3 s lease ends.
    deployment.emulator.clear_faults();
    let started = Instant::now();
    let r = api.create(&create_body(user)).await;
    let took = started.elapsed();
    r.expect(201);
    assert!(
        took < Duration::from_millis(1500),
        "the second create waited {took:?}: was the claim left to lapse?"
    );
    assert_eq!(deployment.emulator.stats().sessions_minted, 1);
}

/// Runs `statements` on the maintenance database of the test database's server.
async fn on_server(deployment: &Deployment, statements: &[String]) {
    let mut admin = PgConnection::connect(&deployment.maintenance_url())
        .await
        .unwrap();
    for statement in statements {
        admin.execute(statement.as_str()).await.unwrap();
    }
    admin.close().await.unwrap();
}

/// What a load task saw.
#[derive(Debug, Default)]
struct Seen {
    /// status → problem code (or "") → count.
    outcomes: BTreeMap<(u16, String), usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_unavailable_under_load_answers_503_and_the_instance_recovers() {
    let deployment = Deployment::new().await;
    let api = Arc::new(deployment.start("api", &[]).await);
    let name = deployment.db.name().to_string();
    let before = api.create(&create_body(uuid::Uuid::new_v4())).await;
    before.expect(201);
    let link = process_support::launch_path(before.json()["widgetUrl"].as_str().unwrap());

    // Steady load: distinct users, so no request waits on another's claim.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..6 {
        let api = Arc::clone(&api);
        let stop = Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let r = api.create(&create_body(uuid::Uuid::new_v4())).await;
                let key = (r.code(), r.problem_code().unwrap_or_default());
                *seen.outcomes.entry(key).or_default() += 1;
                if r.code() == 503 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // "Restart" the database: refuse new connections, drop every existing one.
    on_server(
        &deployment,
        &[
            format!(r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
        ],
    )
    .await;
    let down = Instant::now();

    // While it is down: not ready, and creates answer 503 database_unavailable.
    let mut ready = api.get("/readyz").await;
    while ready.code() == 200 && down.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = api.get("/readyz").await;
    }
    assert_eq!(
        ready.code(),
        503,
        "readyz while the database is down: {ready:?}"
    );
    assert_eq!(ready.json()["checks"]["upstream"], "ok", "{}", ready.text);
    let r = api.create(&create_body(uuid::Uuid::new_v4())).await;
    assert_eq!(r.code(), 503, "create while the database is down: {r:?}");
    assert_eq!(
        r.problem_code().as_deref(),
        Some("database_unavailable"),
        "{}",
        r.text
    );
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let list = api.list_for(uuid::Uuid::new_v4()).await;
    assert_eq!(
        list.code(),
        503,
        "list while the database is down: {list:?}"
    );
    assert_eq!(list.problem_code().as_deref(), Some("database_unavailable"));
    let launch = api.get(&link).await;
    assert_eq!(
        launch.code(),
        503,
        "launch while the database is down: {launch:?}"
    );
    // Transak's order webhook, correctly signed: 503 (Transak retries), and the answer does
    // not tell an unauthenticated caller why.
    let token = deployment.emulator.current_access_token().unwrap();
    let claims = serde_json::json!({"eventID": "ORDER_COMPLETED", "webhookData": {
        "id": "ord-down", "status": "COMPLETED", "partnerOrderId": before.json()["id"]}});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(token.as_bytes()),
    )
    .unwrap();
    let order = api
        .send(
            api.client
                .post(format!("{}/webhooks/transak", api.base))
                .header("content-type", "application/json")
                .body(serde_json::json!({ "data": jwt }).to_string()),
        )
        .await;
    assert_eq!(
        order.code(),
        503,
        "order webhook while the database is down: {order:?}"
    );
    assert_eq!(
        order.problem_code().as_deref(),
        Some("database_unavailable")
    );
    assert_eq!(
        order.json()["detail"],
        "the service cannot record the event right now; retry later",
        "{}",
        order.text
    );
    // Stay down a little longer under load.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Back up, without touching the API process.
    on_server(
        &deployment,
        &[format!(
            r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true"#
        )],
    )
    .await;
    let up = Instant::now();
    let mut ready = api.get("/readyz").await;
    while ready.code() != 200 && up.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = api.get("/readyz").await;
    }
    assert_eq!(ready.code(), 200, "readyz after recovery: {ready:?}");
    let ready_after = up.elapsed();
    let user = uuid::Uuid::new_v4();
    let r = api.create(&create_body(user)).await;
    r.expect(201);
    let list = api.list_for(user).await;
    list.expect(200);
    assert_eq!(list.json()["data"][0]["id"], r.json()["id"]);
    eprintln!("ready again {ready_after:?} after the database came back");
    // The launch link was not consumed by the failed attempt.
    api.get(&link).await.expect(303);
    assert!(ready_after < Duration::from_secs(5), "{ready_after:?}");

    // Let the load run on the recovered database a moment, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for task in load {
        for (k, n) in task.await.unwrap().outcomes {
            *outcomes.entry(k).or_default() += n;
        }
    }
    eprintln!("load outcomes: {outcomes:?}");
    for ((status, code), n) in &outcomes {
        assert!(
            *status == 201 || (*status == 503 && code == "database_unavailable"),
            "{n} × {status} {code:?} under load (every outcome: {outcomes:?})\n{}",
            api.log_tail()
        );
    }
    assert!(outcomes.contains_key(&(503, "database_unavailable".into())));
    assert!(outcomes.contains_key(&(201, String::new())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_mint_blocks_its_key_no_longer_than_the_lease() {
    const LEASE: Duration = Duration::from_secs(3);
    let deployment = Deployment::new().await;
    let settings = [
        ("WIDGET_SESSIONS_CLAIM_LEASE_SECS", "3"),
        ("TRANSAK_TIMEOUT_MS", "2000"),
        ("TRANSAK_MAX_RETRIES", "0"),
    ];
    let mut first = deployment.start("instance-1", &settings).await;
    let second = deployment.start("instance-2", &settings).await;

    // Instance 1 claims the key and is left hanging upstream…
    deployment
        .emulator
        .set_faults(FaultsUpdate {
            hang_next: Some(1),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let user = uuid::Uuid::new_v4();
    let in_flight = first.signed("POST", SESSIONS, &create_body(user).to_string());
    let claimed = Instant::now();
    let doomed = tokio::spawn(in_flight.send());
    eventually("instance 1 to be mid-mint", Duration::from_secs(10), || {
        deployment.emulator.stats().injected_hangs == 1
    })
    .await;
    // …and dies.
    first.kill().await;
    assert!(
        doomed.await.unwrap().is_err(),
        "the killed instance answered"
    );

    // The same key on instance 2: it waits for the dead claim's lease, then takes over.
    let r = second.create(&create_body(user)).await;
    let since_claim = claimed.elapsed();
    r.expect(201);
    eprintln!("instance 2 minted {since_claim:?} after instance 1 claimed the key");
    assert!(
        since_claim <= LEASE + Duration::from_secs(2),
        "the key was blocked for {since_claim:?} (lease {LEASE:?})"
    );
    assert!(
        since_claim >= LEASE - Duration::from_millis(500),
        "instance 2 minted after {since_claim:?}, before the dead claim's lease ran out"
    );
    let list = second.list_for(user).await;
    list.expect(200);
    let data = list.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "{}", list.text);
    assert_eq!(data[0]["id"], r.json()["id"]);
    assert_eq!(deployment.count("sessions").await, 1);
    assert_eq!(deployment.emulator.stats().sessions_minted, 1);

    // And it is an ordinary session from then on: the next request reuses it.
    second.create(&create_body(user)).await.expect(200);
}

/// On SIGTERM readiness turns 503 at once while the instance keeps serving for the shutdown
/// delay; a request in flight finishes; then the process exits cleanly within the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_and_finishes_in_flight_requests() {
    let deployment = Deployment::new().await;
    let mut api = deployment
        .start(
            "api",
            &[
                ("WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS", "2"),
                ("WIDGET_SESSIONS_SHUTDOWN_GRACE_SECS", "10"),
            ],
        )
        .await;
    assert_eq!(api.ready_status().await, 200);
    deployment
        .emulator
        .set_faults(FaultsUpdate {
            latency_ms: Some(1500),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let in_flight = api.signed(
        "POST",
        SESSIONS,
        &create_body(uuid::Uuid::new_v4()).to_string(),
    );
    let in_flight = tokio::spawn(in_flight.send());
    eventually(
        "the create to reach upstream",
        Duration::from_secs(5),
        || deployment.emulator.stats().session_calls > 0,
    )
    .await;

    api.terminate();
    let started = Instant::now();
    let mut ready = api.get("/readyz").await;
    while ready.code() == 200 && started.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = api.get("/readyz").await;
    }
    assert_eq!(ready.code(), 503, "{ready:?}");
    assert_eq!(ready.json()["status"], "shutting_down");
    // Still serving during the delay.
    api.get("/healthz").await.expect(200);

    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(
        answer.status().as_u16(),
        201,
        "the in-flight create finished"
    );
    let status = api.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}\n{}", api.log_tail());
    assert!(
        api.logs().contains("in-flight requests finished"),
        "{}",
        api.log_tail()
    );
}

/// `/metrics` on its own listener (and not on the public one), with the operator's metrics:
/// build, process, database pool, upstream state and latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener_tell_an_operator_what_runs() {
    let deployment = Deployment::new().await;
    let port = process_support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let api = deployment
        .start(
            "api",
            &[("WIDGET_SESSIONS_METRICS_LISTEN", listen.as_str())],
        )
        .await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    assert_eq!(
        api.get("/metrics").await.code(),
        404,
        "not on the public listener"
    );
    let url = format!("http://{listen}/metrics");
    let started = Instant::now();
    let text = loop {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if text.contains("widget_sessions_db_pool_connections") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no pool metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for name in [
        "widget_sessions_build_info{version=",
        "widget_sessions_process_cpu_seconds_total",
        "widget_sessions_process_resident_memory_bytes",
        "widget_sessions_db_pool_connections{state=\"idle\"}",
        "widget_sessions_db_pool_max_connections",
        "widget_sessions_upstream_up 1",
        "widget_sessions_upstream_call_duration_seconds_bucket{call=\"create_widget_url\",outcome=\"ok\"",
        "widget_sessions_http_requests_total{",
        "widget_sessions_created_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

/// A signed request captured before a Postgres crash cannot be replayed after it. The
/// request log of creates and reads is an unlogged table, which crash recovery empties: the
/// first request after the crash finds the log's memory gone, and from then on every request
/// signed before is refused (`401 replayed_request`) — the one replayed, and one signed
/// before the crash but never sent. A request signed afterwards is served; so are durable
/// records' and sessions' uses (the link minted before the crash still opens once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_captured_before_a_postgres_crash_is_refused_after_it() {
    let cluster = testkit::pg::OwnedCluster::start().await;
    let deployment = Deployment::on(cluster.fresh_database().await).await;
    let api = deployment.start("api", &[]).await;

    let user = uuid::Uuid::new_v4();
    let body = create_body(user).to_string();
    let captured = api.signed("POST", SESSIONS, &body);
    let first = api.send(captured.try_clone().unwrap()).await;
    first.expect(201);
    let link = process_support::launch_path(first.json()["widgetUrl"].as_str().unwrap());
    let replayed = api.send(captured.try_clone().unwrap()).await;
    assert_eq!(replayed.problem_code().as_deref(), Some("replayed_request"));
    let never_sent = api.signed(
        "POST",
        SESSIONS,
        &create_body(uuid::Uuid::new_v4()).to_string(),
    );
    let read = api.signed("GET", &format!("{SESSIONS}?userId={user}"), "");
    api.send(read.try_clone().unwrap()).await.expect(200);

    cluster.crash().await;
    cluster.restart().await;
    let up = Instant::now();
    while api.ready_status().await != 200 && up.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.ready_status().await, 200, "{}", api.log_tail());
    assert_eq!(
        deployment.count("request_nonces").await,
        0,
        "crash recovery emptied the unlogged request log"
    );

    for (what, request) in [
        ("the create replayed", captured),
        ("a create signed before the crash", never_sent),
        ("a read replayed", read),
    ] {
        // Pooled connections from before the crash fail once each (`503`) and are replaced.
        let mut r = api.send(request.try_clone().unwrap()).await;
        while r.code() == 503 && up.elapsed() < Duration::from_secs(20) {
            r = api.send(request.try_clone().unwrap()).await;
        }
        assert_eq!(r.code(), 401, "{what}: {}", r.text);
        assert_eq!(
            r.problem_code().as_deref(),
            Some("replayed_request"),
            "{what}: {}",
            r.text
        );
    }
    assert!(
        api.logs().contains("the request log had lost its memory"),
        "{}",
        api.log_tail()
    );
    // The log remembers since the time it noticed, plus a signature's window and its lead:
    // a request signed once that lead has passed (here by a client clock ahead, to keep the
    // test short) is served.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let fresh = api
        .send(api.signed_ahead(
            "POST",
            SESSIONS,
            &create_body(uuid::Uuid::new_v4()).to_string(),
            29_000,
        ))
        .await;
    fresh.expect(201);
    // Nothing was minted for the refused creates.
    let list = api
        .send(api.signed_ahead("GET", &format!("{SESSIONS}?userId={user}"), "", 29_000))
        .await;
    list.expect(200);
    assert_eq!(
        list.json()["data"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    // The session minted before the crash is intact: its link opens once.
    api.get(&link).await.expect(303);
}
