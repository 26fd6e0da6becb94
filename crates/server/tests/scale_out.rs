//! Scale-out proof: three `widget-sessions` processes on one Postgres database, one Transak
//! emulator as their upstream.
//!
//! - 300 identical creates at once, spread round-robin over the three instances, mint
//!   exactly one upstream session (one `201`, one session id, one token refresh);
//! - 200 distinct keys mint 200 sessions and still share that one access token;
//! - a launch link minted through one instance opens once on another, and is gone on the
//!   third.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use process_support::{Deployment, SESSIONS, create_body, launch_path};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinSet;
use transak_emulator::FaultsUpdate;

/// Sends every `(instance index, body)` create at once and returns `(instance, status,
/// body)` per request, in no particular order.
async fn burst(
    instances: &[&process_support::Instance],
    bodies: Vec<(usize, Value)>,
) -> Vec<(usize, StatusCode, Value)> {
    let mut set = JoinSet::new();
    for (i, body) in bodies {
        let request = instances[i].signed("POST", SESSIONS, &body.to_string());
        set.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("instance {i}: {status} with a non-JSON body ({e}): {text}")
            });
            (i, status, json)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.push(joined.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_one_database_one_upstream_token_and_mint_once_per_key() {
    let started = Instant::now();
    let deployment = Deployment::new().await;
    // One after the other, to keep this test about requests; starting at the same moment is
    // the next test.
    let a = deployment.start("instance-1", &[]).await;
    let b = deployment.start("instance-2", &[]).await;
    let c = deployment.start("instance-3", &[]).await;
    let instances = [&a, &b, &c];
    eprintln!("three instances ready after {:?}", started.elapsed());
    // Readiness needs a usable token; the three share the one stored in the database.
    assert_eq!(deployment.emulator.stats().refreshes, 1, "start-up");

    // (a) 300 identical requests at once, round-robin over the three instances. The
    // upstream is slowed down so that every request arrives while the one mint is in flight:
    // all of them race for the claim or wait on it, none finds a finished session.
    deployment
        .emulator
        .set_faults(FaultsUpdate {
            latency_ms: Some(500),
            ..FaultsUpdate::default()
        })
        .unwrap();
    let phase = Instant::now();
    let user = uuid::Uuid::new_v4();
    let answers = burst(
        &instances,
        (0..300).map(|n| (n % 3, create_body(user))).collect(),
    )
    .await;
    eprintln!("300 identical creates answered in {:?}", phase.elapsed());
    deployment.emulator.clear_faults();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    for (i, status, json) in &answers {
        *by_status.entry(status.as_u16()).or_default() += 1;
        assert!(
            status.as_u16() == 200 || status.as_u16() == 201,
            "instance {}: {status}: {json}",
            i + 1
        );
        assert_eq!(
            json["reused"],
            Value::Bool(status.as_u16() == 200),
            "{json}"
        );
        ids.insert(json["id"].as_str().unwrap().to_string());
        tokens.insert(launch_path(json["widgetUrl"].as_str().unwrap()));
    }
    assert_eq!(by_status.get(&201), Some(&1), "statuses: {by_status:?}");
    assert_eq!(by_status.get(&200), Some(&299), "statuses: {by_status:?}");
    assert_eq!(ids.len(), 1, "one session id across all answers: {ids:?}");
    assert_eq!(
        tokens.len(),
        1,
        "every answer, from every instance, carries the session's one launch link"
    );
    let stats = deployment.emulator.stats();
    assert_eq!(stats.sessions_minted, 1, "{stats:?}");
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(deployment.count("sessions").await, 1);
    assert_eq!(
        deployment.count("launch_tokens").await,
        0,
        "launch links are not stored"
    );
    assert_eq!(
        deployment.count("request_nonces").await,
        300,
        "each signed request was recorded once"
    );

    // (b) 200 distinct keys (different users), round-robin.
    let phase = Instant::now();
    let users: Vec<uuid::Uuid> = (0..200).map(|_| uuid::Uuid::new_v4()).collect();
    let answers = burst(
        &instances,
        users
            .iter()
            .enumerate()
            .map(|(n, u)| (n % 3, create_body(*u)))
            .collect(),
    )
    .await;
    eprintln!("200 distinct creates answered in {:?}", phase.elapsed());
    let mut distinct = HashSet::new();
    for (i, status, json) in &answers {
        assert_eq!(status.as_u16(), 201, "instance {}: {json}", i + 1);
        assert_eq!(json["reused"], false);
        distinct.insert(json["id"].as_str().unwrap().to_string());
    }
    assert_eq!(distinct.len(), 200);
    assert!(distinct.is_disjoint(&ids));
    let stats = deployment.emulator.stats();
    assert_eq!(stats.sessions_minted, 201, "{stats:?}");
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(deployment.count("sessions").await, 201);

    // (c) A launch link minted through instance 1 opens once, on any instance.
    let minted = a.create(&create_body(uuid::Uuid::new_v4())).await;
    minted.expect(201);
    let path = launch_path(minted.json()["widgetUrl"].as_str().unwrap());
    let opened = b.get(&path).await;
    opened.expect(303);
    let location = opened.header("location").unwrap();
    assert!(
        location.starts_with(&deployment.emulator.widget_base_url()),
        "{location}"
    );
    assert_eq!(opened.header("cache-control"), Some("no-store"));
    c.get(&path).await.expect(410);
    a.get(&path).await.expect(410);

    // Nothing went wrong on any instance.
    for instance in instances {
        let logs = instance.logs();
        assert!(
            !logs.contains("\"level\":\"ERROR\""),
            "{} logged an error:\n{}",
            instance.name,
            instance.log_tail()
        );
    }
    eprintln!("scale-out proof took {:?}", started.elapsed());
}

/// Replicas of one deployment start at the same moment with the same apps file. Each of them
/// must come up (regression: the ones that lost the race to create the application used to
/// exit with "an application named … already exists").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_started_at_once_with_one_apps_file_all_become_ready() {
    // The window is narrow (sqlx's migrator serialises the instances on its advisory lock);
    // before the fix, three rounds of four replicas hit it most of the time.
    for _ in 0..3 {
        let deployment = Deployment::new().await;
        let _instances = tokio::join!(
            deployment.start("instance-1", &[]),
            deployment.start("instance-2", &[]),
            deployment.start("instance-3", &[]),
            deployment.start("instance-4", &[]),
        );
    }
}
