//! Webhooks across instances: three `widget-sessions` processes on one Postgres database,
//! one receiver.
//!
//! - 500 sessions driven through their lifecycle (created; then consumed, cancelled or left
//!   to expire), the requests spread over the three instances: the receiver sees every
//!   event id exactly once.
//! - An instance killed (`SIGKILL`) while deliveries are in flight: every event still
//!   arrives (at least once), taken over after the dead instance's lease.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use process_support::{Deployment, Instance, SESSIONS, create_body, launch_path};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Event ids received (with how many times) and the types seen.
#[derive(Clone, Default)]
struct Seen {
    ids: Arc<Mutex<HashMap<String, u32>>>,
    types: Arc<Mutex<HashMap<String, u32>>>,
    delay: Duration,
}

impl Seen {
    fn distinct(&self) -> usize {
        self.ids.lock().unwrap().len()
    }

    fn deliveries(&self) -> u32 {
        self.ids.lock().unwrap().values().sum()
    }
}

async fn receive(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    tokio::time::sleep(seen.delay).await;
    let id = headers["webhook-id"].to_str().unwrap().to_string();
    let kind = serde_json::from_slice::<Value>(&body).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_string();
    let first = {
        let mut ids = seen.ids.lock().unwrap();
        let n = ids.entry(id).or_default();
        *n += 1;
        *n == 1
    };
    if first {
        *seen.types.lock().unwrap().entry(kind).or_default() += 1;
    }
    StatusCode::NO_CONTENT
}

async fn receiver(delay: Duration) -> (Seen, String) {
    let seen = Seen {
        delay,
        ..Seen::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, url)
}

/// Settings of every instance here: webhooks to this machine, a quick sweep, short-lived
/// sessions (so that some expire during the test).
const ENV: &[(&str, &str)] = &[
    ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
    (
        "WIDGET_SESSIONS_WEBHOOK_RETRY_SCHEDULE",
        "1,1,1,1,1,1,1,1,1,1",
    ),
    ("WIDGET_SESSIONS_EXPIRY_SWEEP_SECS", "1"),
    ("WIDGET_SESSIONS_SESSION_TTL_SECS", "6"),
    ("WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS", "1"),
    ("WIDGET_SESSIONS_CLIENT_RATE_LIMIT", "0"),
    ("RUST_LOG", "warn"),
];

/// Creates `n` sessions, round-robin over `instances`, all at once; their bodies.
async fn create_many(instances: &[&Instance], n: usize) -> Vec<Value> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let request = instances[i % instances.len()].signed(
            "POST",
            SESSIONS,
            &create_body(uuid::Uuid::new_v4()).to_string(),
        );
        set.spawn(async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()
        });
    }
    let mut out = Vec::new();
    while let Some(s) = set.join_next().await {
        out.push(s.unwrap());
    }
    out
}

async fn wait_for(seen: &Seen, distinct: usize, within: Duration) {
    let started = Instant::now();
    while seen.distinct() < distinct {
        assert!(
            started.elapsed() < within,
            "only {} of {distinct} events arrived within {within:?}; types: {:?}",
            seen.distinct(),
            seen.types.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_deliver_every_event_exactly_once() {
    let deployment = Deployment::new().await;
    let a = deployment.start("instance-1", ENV).await;
    let b = deployment.start("instance-2", ENV).await;
    let c = deployment.start("instance-3", ENV).await;
    let instances = [&a, &b, &c];
    let (seen, url) = receiver(Duration::ZERO).await;
    let r = a
        .send(a.signed(
            "POST",
            "/webhook-endpoints",
            &json!({"url": url}).to_string(),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let sessions = create_many(&instances, 500).await;
    // A third opened (on any instance), a third cancelled, the rest left to expire.
    let mut set = JoinSet::new();
    for (n, s) in sessions.iter().enumerate() {
        let instance = instances[(n + 1) % 3];
        match n % 3 {
            0 => {
                let request = instance.client.get(format!(
                    "{}{}",
                    instance.base,
                    launch_path(s["widgetUrl"].as_str().unwrap())
                ));
                set.spawn(async move {
                    assert_eq!(request.send().await.unwrap().status(), 303);
                });
            }
            1 => {
                let request = instance.signed(
                    "POST",
                    &format!("{SESSIONS}/{}/cancel", s["id"].as_str().unwrap()),
                    "",
                );
                set.spawn(async move {
                    assert_eq!(request.send().await.unwrap().status(), 200);
                });
            }
            _ => {}
        }
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    // 500 created, 167 consumed, 167 cancelled, 166 expired (sessions live 6 s).
    wait_for(&seen, 1000, Duration::from_secs(60)).await;
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(seen.distinct(), 1000);
    assert_eq!(seen.deliveries(), 1000, "every event id exactly once");
    let types = seen.types.lock().unwrap().clone();
    assert_eq!(types["session.created"], 500);
    assert_eq!(types["session.consumed"], 167);
    assert_eq!(types["session.cancelled"], 167);
    assert_eq!(types["session.expired"], 166);
    // The store agrees: 1000 events, every delivery delivered.
    let events: i64 = sqlx::query_scalar("select count(*) from session_events")
        .fetch_one(&deployment.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 1000);
    let delivered: i64 = sqlx::query_scalar(
        "select count(*) from webhook_deliveries where status = 'DELIVERED' and attempts = 1",
    )
    .fetch_one(&deployment.db.pool)
    .await
    .unwrap();
    assert_eq!(delivered, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_mid_delivery_loses_no_event() {
    let deployment = Deployment::new().await;
    // Short leases: a dead instance's deliveries are taken over after 3 s.
    let env: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([
            ("WIDGET_SESSIONS_WEBHOOK_LEASE_SECS", "3"),
            ("WIDGET_SESSIONS_WEBHOOK_TIMEOUT_MS", "2000"),
            ("WIDGET_SESSIONS_SHUTDOWN_DELAY_SECS", "0"),
        ])
        .collect();
    let mut a = deployment.start("instance-1", &env).await;
    let b = deployment.start("instance-2", &env).await;
    let c = deployment.start("instance-3", &env).await;
    // A slow receiver keeps deliveries in flight.
    let (seen, url) = receiver(Duration::from_millis(400)).await;
    let r = b
        .send(b.signed(
            "POST",
            "/webhook-endpoints",
            &json!({"url": url}).to_string(),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    create_many(&[&a, &b, &c], 90).await;
    // Let deliveries start on every instance, then kill one mid-flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill().await;
    // Every created event arrives (expiries too, later: 90 created + 90 expired).
    wait_for(&seen, 180, Duration::from_secs(90)).await;
    let types = seen.types.lock().unwrap().clone();
    assert_eq!(types["session.created"], 90);
    assert_eq!(types["session.expired"], 90);
    // At least once: a delivery the dead instance had sent may have been sent again.
    assert!(seen.deliveries() >= 180);
    let pending: i64 =
        sqlx::query_scalar("select count(*) from webhook_deliveries where status <> 'DELIVERED'")
            .fetch_one(&deployment.db.pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
}
