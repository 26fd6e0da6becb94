//! The operator's commands, run as the real binary against a fresh Postgres database:
//! migrating, applications (create from standard input, list for scripts, rotate, disable),
//! rotating the at-rest key (reseal every sealed value), `doctor`, and refusing to start with
//! keys that cannot open what is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

mod process_support;

use base64::Engine as _;
use process_support::{APP_NAME, Deployment, Instance, Receiver, SESSIONS, create_body};
use serde_json::{Value, json};

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

/// The hosted travel-rule step is an application setting: set at creation, changed by
/// `update`, listed; frame ancestors must be origins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosted_step_is_set_per_application() {
    let d = Deployment::new().await;
    let (ok, out, err) = d
        .run(
            &[
                "apps",
                "create",
                "hosted",
                "--hosted-travel-rule",
                "on",
                "--frame-ancestors",
                "https://partner.example, https://*.partner.example:8443",
            ],
            &[],
            "",
        )
        .await;
    assert!(ok, "{out}{err}");
    let listed = |out: &str| -> Value {
        let list: Value = serde_json::from_str(out).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "hosted")
            .unwrap()
            .clone()
    };
    let (_, out, _) = d.run(&["apps", "list", "--json"], &[], "").await;
    let app = listed(&out);
    assert_eq!(app["hostedTravelRule"], true, "{app}");
    assert_eq!(
        app["frameAncestors"],
        serde_json::json!(["https://partner.example", "https://*.partner.example:8443"])
    );
    let (_, table, _) = d.run(&["apps", "list"], &[], "").await;
    assert!(
        table.lines().next().unwrap().contains(" hosted "),
        "{table}"
    );

    let (ok, out, err) = d
        .run(
            &[
                "apps",
                "update",
                "hosted",
                "--hosted-travel-rule",
                "off",
                "--frame-ancestors",
                "",
            ],
            &[],
            "",
        )
        .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("hosted travel-rule step off, framed by *"),
        "{out}"
    );
    let (_, out, _) = d.run(&["apps", "list", "--json"], &[], "").await;
    let app = listed(&out);
    assert_eq!(app["hostedTravelRule"], false, "{app}");
    assert_eq!(app["frameAncestors"], serde_json::json!([]));

    let (ok, _, err) = d
        .run(
            &[
                "apps",
                "update",
                "hosted",
                "--frame-ancestors",
                "partner.example/x",
            ],
            &[],
            "",
        )
        .await;
    assert!(!ok);
    assert!(err.contains("a frame ancestor is an origin"), "{err}");
}

/// The `secret_key_id` of every sealed value in the database, in a stable order.
async fn stored_key_ids(d: &Deployment) -> Vec<String> {
    sqlx::query_scalar(
        "select * from (
             select 'application ' || name || ' ' || secret_key_id from applications
             union all
             select 'endpoint ' || id || ' ' || secret_key_id from webhook_endpoints
             union all
             select 'previous endpoint ' || id || ' ' || previous_secret_key_id
                 from webhook_endpoints where previous_secret_key_id is not null
             union all
             select 'token ' || account || ' ' || token_key_id
                 from upstream_tokens where token_key_id is not null
             union all
             select 'previous token ' || account || ' ' || previous_key_id
                 from upstream_tokens where previous_key_id is not null
         ) s order by 1",
    )
    .fetch_all(&d.db.pool)
    .await
    .unwrap()
}

/// Registers a webhook endpoint to `url` for `session.created`; its id and secret.
async fn register(api: &Instance, url: &str) -> (String, String) {
    let r = api
        .send(api.signed(
            "POST",
            "/webhook-endpoints",
            &json!({"url": url, "eventTypes": ["session.created"]}).to_string(),
        ))
        .await;
    r.expect(201);
    let body = r.json();
    (
        body["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

const PRIVATE_WEBHOOKS: (&str, &str) = ("WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true");

/// The documented rotation (docs/operations.md): the new key current and the previous one
/// kept as old, `reseal`, then the previous key removed. Everything sealed under the previous
/// key — the application's secret, the webhook endpoints' secrets (current, and previous
/// while it still signs), the Transak access token — is resealed, so an instance restarted
/// with only the new key opens all of it: a delivery to an endpoint registered before the
/// rotation arrives signed with the endpoint's secret, and the stored Transak token is used
/// as it is rather than refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_at_rest_key_reseals_every_sealed_value() {
    let d = Deployment::new().await;
    let plain = Receiver::start(Some(0)).await;
    let rotated = Receiver::start(Some(0)).await;
    let api = d.start("before", &[PRIVATE_WEBHOOKS]).await;
    let (_, plain_secret) = register(&api, &plain.url).await;
    let (rotated_id, previous_secret) = register(&api, &rotated.url).await;
    let r = api
        .send(api.signed(
            "POST",
            &format!("/webhook-endpoints/{rotated_id}/rotate-secret"),
            "",
        ))
        .await;
    r.expect(200);
    let rotated_secret = r.json()["secret"].as_str().unwrap().to_string();
    drop(api);
    let refreshes = d.emulator.stats().refreshes;
    assert_eq!(refreshes, 1, "the first instance obtained the token");
    let old_id = stored_key_ids(&d).await[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(stored_key_ids(&d).await.len(), 5);

    // Steps 2 and 3: the new key current, the previous one old; reseal.
    let new = new_key();
    let step_two = [
        ("WIDGET_SESSIONS_SECRET_KEY", new.as_str()),
        ("WIDGET_SESSIONS_OLD_SECRET_KEYS", d.secret_key.as_str()),
    ];
    let (ok, out, err) = d.run(&["reseal"], &step_two, "").await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("resealed 5 of 5 sealed values under key k2-"),
        "{out}"
    );
    for line in [
        "application secrets                1 of 1",
        "webhook endpoint secrets           2 of 2",
        "previous webhook endpoint secrets  1 of 1",
        "Transak access tokens              1 of 1",
        "previous Transak access tokens     0 of 0",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    let after = stored_key_ids(&d).await;
    assert!(
        after.iter().all(|row| !row.ends_with(&old_id)),
        "still under {old_id}: {after:?}"
    );
    // The old spelling is the same command; nothing is left to reseal.
    let (ok, out, err) = d.run(&["apps", "reseal"], &step_two, "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("resealed 0 of 5"), "{out}");

    // Step 4: only the new key.
    let only_new = [
        ("WIDGET_SESSIONS_SECRET_KEY", new.as_str()),
        PRIVATE_WEBHOOKS,
    ];
    let (ok, out, err) = d.run(&["doctor"], &only_new, "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("every check passed"), "{out}");
    let api = d.start("after", &only_new).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let got = plain.until("the delivery", |got| !got.is_empty()).await;
    assert!(got[0].verifies(&[&plain_secret]), "{:?}", got[0].headers);
    // Signed with both secrets of the rotated endpoint: each one verifies.
    let got = rotated.until("the delivery", |got| !got.is_empty()).await;
    assert!(got[0].verifies(&[&rotated_secret]), "{:?}", got[0].headers);
    assert!(got[0].verifies(&[&previous_secret]), "{:?}", got[0].headers);
    assert_eq!(
        d.emulator.stats().refreshes,
        refreshes,
        "the stored Transak token opened under the new key, and was not refreshed over"
    );
}

/// A key that cannot open what is stored refuses to start, naming the key ids (never the
/// keys), before anything is written: the apps file would otherwise re-seal its
/// applications under the wrong key and hide the mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_refuses_to_start_before_anything_is_written() {
    let d = Deployment::new().await;
    let api = d.start("before", &[]).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    drop(api);
    let stored = stored_key_ids(&d).await;

    let other = new_key();
    for apps_file in [true, false] {
        let mut extra = vec![("WIDGET_SESSIONS_SECRET_KEY", other.as_str())];
        if !apps_file {
            extra.push(("WIDGET_SESSIONS_APPS_FILE", ""));
        }
        let (ok, log) = d.start_expecting_exit("wrong-key", &extra).await;
        assert!(!ok, "started with a key that opens nothing:\n{log}");
        assert!(
            log.contains(
                "1 of 1 application secrets cannot be opened with the configured keys (proof-app)"
            ),
            "{log}"
        );
        assert!(
            log.contains("1 of 1 Transak access tokens cannot be opened"),
            "{log}"
        );
        assert!(log.contains("sealed with key k2-"), "{log}");
        assert!(
            !log.contains(&other) && !log.contains(&d.secret_key),
            "{log}"
        );
        assert_eq!(stored_key_ids(&d).await, stored, "something was written");
    }
    // The doctor says the same, and fails.
    let (ok, out, _) = d
        .run(
            &["doctor"],
            &[("WIDGET_SESSIONS_SECRET_KEY", other.as_str())],
            "",
        )
        .await;
    assert!(!ok, "{out}");
    assert!(out.contains("keys            FAILING"), "{out}");
    assert!(
        out.contains("does not open: proof-app: sealed with key k2-"),
        "{out}"
    );
    assert!(out.contains("upstream token  FAILING"), "{out}");
}

/// A stored Transak access token that the configured keys cannot open is never refreshed
/// over (a refresh upstream would invalidate it for every instance that holds its key): the
/// instance refuses to start and says why, without the token. If the key is lost, the
/// operator forgets the token explicitly and the next instance obtains a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_under_an_unknown_key_is_not_refreshed_over() {
    let d = Deployment::new().await;
    let api = d.start("before", &[]).await;
    drop(api);
    let token = d.emulator.current_access_token().unwrap();
    // Sealed, as far as this key can tell, by a key it does not have.
    sqlx::query("update upstream_tokens set token_key_id = 'k2-0badc0de'")
        .execute(&d.db.pool)
        .await
        .unwrap();
    let refreshes = d.emulator.stats().refreshes;
    let (ok, log) = d.start_expecting_exit("unknown-token-key", &[]).await;
    assert!(!ok, "started over a token it cannot open:\n{log}");
    assert!(
        log.contains(
            "1 of 1 Transak access tokens cannot be opened with the configured keys (emulator:"
        ),
        "{log}"
    );
    assert!(log.contains("sealed with key k2-0badc0de"), "{log}");
    assert!(!log.contains(&token), "{log}");
    assert_eq!(d.emulator.stats().refreshes, refreshes, "refreshed over it");

    // Nothing else is resealed while something in use does not open.
    let (ok, out, err) = d.run(&["reseal"], &[], "").await;
    assert!(!ok, "{out}");
    assert!(err.contains("nothing was resealed"), "{err}");
    assert!(err.contains("reseal --forget-unopenable-tokens"), "{err}");
    // The key is lost: forget the token; the next instance obtains a new one.
    let (ok, out, err) = d
        .run(&["reseal", "--forget-unopenable-tokens"], &[], "")
        .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("forgot 1 stored Transak access tokens"),
        "{out}"
    );
    let api = d.start("after", &[]).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    assert_eq!(d.emulator.stats().refreshes, refreshes + 1);
}

/// With the key lost, an endpoint's secret gets a new one from the operator, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_secret_under_a_lost_key_is_replaced_by_the_operator() {
    let d = Deployment::new().await;
    let receiver = Receiver::start(Some(0)).await;
    let api = d.start("before", &[PRIVATE_WEBHOOKS]).await;
    let (id, old_secret) = register(&api, &receiver.url).await;
    drop(api);
    sqlx::query("update webhook_endpoints set secret_key_id = 'k2-0badc0de'")
        .execute(&d.db.pool)
        .await
        .unwrap();
    let (ok, log) = d.start_expecting_exit("lost", &[PRIVATE_WEBHOOKS]).await;
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!(
            "1 of 1 webhook endpoint secrets cannot be opened with the configured keys ({id})"
        )),
        "{log}"
    );
    let (ok, out, err) = d
        .run(&["webhooks", "replace-secret", APP_NAME, &id], &[], "")
        .await;
    assert!(ok, "{out}{err}");
    let secret = out
        .lines()
        .find(|l| l.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let api = d.start("after", &[PRIVATE_WEBHOOKS]).await;
    api.create(&create_body(uuid::Uuid::new_v4()))
        .await
        .expect(201);
    let got = receiver.until("the delivery", |got| !got.is_empty()).await;
    assert!(got[0].verifies(&[&secret]), "{:?}", got[0].headers);
    assert!(!got[0].verifies(&[&old_secret]));
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
