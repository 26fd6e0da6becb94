//! The operator's commands, run as the real binary against a fresh Postgres database:
//! migrating, applications (create from standard input, list for scripts, rotate, disable),
//! rotating the at-rest key (reseal), and refusing to start with keys that cannot open what
//! is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use base64::Engine as _;
use process_support::{APP_NAME, Deployment, SESSIONS, create_body};
use serde_json::Value;

fn new_key() -> String {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_are_managed_from_the_command_line() {
    let d = Deployment::new().await;
    let (ok, out, err) = d
        .run(
            &["apps", "create", "acme", "--api-secret-stdin"],
            &[],
            "wss_from-standard-input-0123456789\n",
        )
        .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("api secret: wss_from-standard-input-0123456789"),
        "{out}"
    );
    assert!(out.contains("api key:    wsk_"), "{out}");

    let (ok, out, err) = d.run(&["apps", "list", "--json"], &[], "").await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"acme"), "{names:?}");
    assert!(list[0]["createdAt"].is_string());

    // The table's columns fit their longest value.
    let long = "an-application-with-a-rather-long-name-for-the-table";
    let (ok, _, err) = d.run(&["apps", "create", long], &[], "").await;
    assert!(ok, "{err}");
    let (ok, out, _) = d.run(&["apps", "list"], &[], "").await;
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    let id_column = lines[0].find(" id ").unwrap() + 1;
    for line in &lines[1..] {
        assert!(
            uuid::Uuid::parse_str(&line[id_column..id_column + 36]).is_ok(),
            "the id column is aligned in:\n{out}"
        );
    }

    let (ok, _, err) = d.run(&["apps", "disable", "acme"], &[], "").await;
    assert!(ok, "{err}");
    let (_, out, _) = d.run(&["apps", "list", "--json"], &[], "").await;
    assert!(out.contains(r#""status":"disabled""#), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_at_rest_key_can_be_rotated_and_a_wrong_key_refuses_to_start() {
    let d = Deployment::new().await;
    let api = d.start("before", &[]).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    drop(api);

    // A different key: refuse to start, naming the key ids (never the keys). (Without the
    // apps file, which would otherwise bring its applications to its credentials.)
    let other = new_key();
    let (ok, log) = d
        .start_expecting_exit(
            "wrong-key",
            &[
                ("WIDGET_SESSIONS_SECRET_KEY", &other),
                ("WIDGET_SESSIONS_APPS_FILE", ""),
            ],
        )
        .await;
    assert!(!ok, "started with a key that opens nothing:\n{log}");
    assert!(
        log.contains("cannot be opened with the configured keys"),
        "{log}"
    );
    assert!(log.contains("sealed with key k2-"), "{log}");
    assert!(
        !log.contains(&other) && !log.contains(&d.secret_key),
        "{log}"
    );

    // Rotation: the new key is current, the old one kept to open; reseal; drop the old one.
    let rotated = [
        ("WIDGET_SESSIONS_SECRET_KEY", other.as_str()),
        ("WIDGET_SESSIONS_OLD_SECRET_KEYS", d.secret_key.as_str()),
    ];
    let (ok, out, err) = d.run(&["apps", "reseal"], &rotated, "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("resealed 1 of 1"), "{out}");
    let (ok, out, err) = d.run(&["apps", "reseal"], &rotated, "").await;
    assert!(ok && out.contains("resealed 0 of 1"), "{out}{err}");
    let api = d
        .start("after", &[("WIDGET_SESSIONS_SECRET_KEY", other.as_str())])
        .await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let list = api
        .send(api.signed("GET", &format!("{SESSIONS}?limit=5"), ""))
        .await;
    list.expect(200);
    let (_, out, _) = d
        .run(
            &["apps", "list", "--json"],
            &[("WIDGET_SESSIONS_SECRET_KEY", other.as_str())],
            "",
        )
        .await;
    assert!(out.contains(APP_NAME), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_on_their_own_and_a_pending_one_refuses_to_start() {
    let mut d = Deployment::new().await;
    d.db = testkit::pg::empty_database().await;
    let no_migrate = [("WIDGET_SESSIONS_MIGRATE_ON_START", "false")];
    let (ok, log) = d.start_expecting_exit("unmigrated", &no_migrate).await;
    assert!(!ok, "{log}");
    assert!(log.contains("run `widget-sessions migrate` first"), "{log}");

    // `migrate` needs nothing but the database: a deploy step can run it on its own.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_widget-sessions"))
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", d.db.url.as_str())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("applied migrations"), "{stdout}");
    let (ok, out, _) = d.run(&["migrate"], &[], "").await;
    assert!(ok && out.contains("up to date"), "{out}");

    let api = d.start("migrated", &no_migrate).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_no_applications_says_how_to_create_one() {
    let d = Deployment::new().await;
    let api = d.start("empty", &[("WIDGET_SESSIONS_APPS_FILE", "")]).await;
    let log = api.logs();
    assert!(
        log.contains("no applications yet: create one with `widget-sessions apps create NAME`"),
        "{log}"
    );
}

/// Operators list the order webhooks from Transak that matched no opened session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_order_events_are_listed_for_operators() {
    let d = Deployment::new().await;
    let (ok, out, err) = d.run(&["webhooks", "unmatched-orders"], &[], "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("no unmatched order events"), "{out}");
    // As the service records them (`SessionStore::record_order`): no session.
    sqlx::query(
        "insert into transak_order_events (order_id, event_id, status, partner_order_id, received_at)
         values ('ord-a', 'ORDER_COMPLETED', 'COMPLETED', 'not-ours', now() - interval '1 minute'),
                ('ord-b', 'ORDER_FAILED', 'FAILED', null, now())",
    )
    .execute(&d.db.pool)
    .await
    .unwrap();
    let (ok, out, err) = d
        .run(&["webhooks", "unmatched-orders", "--limit", "5"], &[], "")
        .await;
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("order ord-b  ORDER_FAILED FAILED  partnerOrderId -"),
        "{out}"
    );
    assert!(
        lines[1].contains("order ord-a  ORDER_COMPLETED COMPLETED  partnerOrderId not-ours"),
        "{out}"
    );
}

/// The compliance team reads a session's travel-rule record: every declaration version, the
/// refused proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_compliance_record_is_printed_for_operators() {
    let d = Deployment::new().await;
    let api = d.start("api", &[]).await;
    let mut body = create_body(uuid::Uuid::new_v4());
    body["forceVerifyOwnership"] = Value::Bool(true);
    let created = api.create(&body).await;
    created.expect(201);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("{SESSIONS}/{id}");
    // The first awaits a proof (the customer's own wallet, forced), so the second replaces it.
    for body in [
        r#"{"custody":"SELF_HOSTED","owner":"CUSTOMER"}"#,
        r#"{"custody":"SELF_HOSTED","owner":"THIRD_PARTY","thirdParty":{"legalPerson":{"name":"Acme Ltd"}}}"#,
    ] {
        api.send(api.signed("PUT", &format!("{path}/declaration"), body))
            .await
            .expect(200);
    }
    api.send(api.signed(
        "POST",
        &format!("{path}/ownership-proof"),
        r#"{"signature":"not a signature"}"#,
    ))
    .await
    .expect(422);

    let (ok, out, err) = d
        .run(&["travel-rule", "record", APP_NAME, &id], &[], "")
        .await;
    assert!(ok, "{out}{err}");
    let record: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["session"], id.as_str());
    let versions = record["declarations"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{out}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["declaration"]["owner"], "CUSTOMER");
    assert_eq!(
        versions[1]["declaration"]["thirdParty"]["legalPerson"]["name"],
        "Acme Ltd"
    );
    assert_eq!(versions[1]["source"], "API");
    assert_eq!(record["ownershipProof"], Value::Null);
    assert_eq!(record["refusedProofs"][0]["code"], "signature_malformed");

    let unknown = uuid::Uuid::now_v7().to_string();
    let (ok, _, err) = d
        .run(&["travel-rule", "record", APP_NAME, &unknown], &[], "")
        .await;
    assert!(!ok);
    assert!(err.contains("has no session"), "{err}");
}
