//! Postgres-only guarantees: races across separate pools (as separate API instances would
//! have), query plans on a large table, retention.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::{ClaimSettings, Dependencies, Retention, Sessions};
use chrono::{DateTime, TimeDelta, Utc};
use domain::ReusePolicy;
use ports::*;
use postgres::{PgStore, PgTokenStore, PoolSettings};
use secrecy::SecretString;
use sqlx::PgPool;
use testkit::fakes::FakeGateway;
use testkit::fixtures::{APP_A, at, evt, links, mint, nonce, request, sid, t0};
use testkit::pg::fresh_database;
use uuid::Uuid;

fn second_pool(url: &str) -> PgPool {
    postgres::pool(
        url,
        PoolSettings {
            max_connections: 16,
            ..PoolSettings::default()
        },
    )
    .unwrap()
}

fn instance(pool: PgPool, gateway: Arc<FakeGateway>, lease: Duration) -> Sessions {
    Sessions::new(
        Dependencies {
            store: Arc::new(PgStore::new(pool.clone())),
            requests: Arc::new(PgStore::new(pool)),
            gateway,
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandomness),
            links: links(),
        },
        ReusePolicy::default(),
        ClaimSettings {
            lease,
            wait: Duration::from_secs(20),
            poll_interval: Duration::from_millis(10),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_requests_over_two_pools_mint_once() {
    let db = fresh_database().await;
    let gateway = Arc::new(FakeGateway::new(Duration::from_millis(30)));
    let instances = [
        instance(db.pool.clone(), gateway.clone(), Duration::from_secs(30)),
        instance(
            second_pool(&db.url),
            gateway.clone(),
            Duration::from_secs(30),
        ),
    ];
    let mut tasks = Vec::new();
    for n in 0..64 {
        let s = instances[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            s.create_or_reuse(
                testkit::fixtures::caller(APP_A),
                request(1, n % 5 == 0),
                nonce(APP_A),
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let out = t.await.unwrap();
        ids.insert(out.session.session.id());
        created += usize::from(!out.reused);
    }
    assert_eq!(
        (ids.len(), created, gateway.mints.load(Ordering::SeqCst)),
        (1, 1, 1)
    );
    let id = *ids.iter().next().unwrap();
    let stored = instances[1].get(APP_A, id).await.unwrap().unwrap();
    assert!(
        stored.session.force_verify_ownership(),
        "a true request upgraded the flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flag_upgrades_over_two_pools_never_lose_true() {
    let db = fresh_database().await;
    let pools = [db.pool.clone(), second_pool(&db.url)];
    let store: Arc<dyn SessionStore> = Arc::new(PgStore::new(pools[0].clone()));
    mint(&store, APP_A, sid(1), &request(1, false), t0()).await;
    let mut tasks = Vec::new();
    for n in 0..64u8 {
        let store: Arc<dyn SessionStore> =
            Arc::new(PgStore::new(pools[usize::from(n % 2)].clone()));
        tasks.push(tokio::spawn(async move {
            let r = request(1, n % 7 == 3);
            store
                .reuse_or_claim(&testkit::fixtures::reuse_query(APP_A, &r, at(1), 10 + n))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), ReuseOutcome::Reused(_)));
    }
    let s = store.get(APP_A, sid(1)).await.unwrap().unwrap();
    assert!(s.session.force_verify_ownership());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_launches_of_one_session_over_two_pools_open_once() {
    let db = fresh_database().await;
    let a: Arc<dyn SessionStore> = Arc::new(PgStore::new(db.pool.clone()));
    let b: Arc<dyn SessionStore> = Arc::new(PgStore::new(second_pool(&db.url)));
    for round in 0..20u128 {
        mint(&a, APP_A, sid(round + 1), &request(round + 1, false), t0()).await;
        let id = sid(round + 1);
        let (x, y) = tokio::join!(
            a.launch(APP_A, id, at(1), true, evt()),
            b.launch(APP_A, id, at(1), true, evt())
        );
        let opened = [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|r| matches!(r, LaunchResult::Opened(_)))
            .count();
        assert_eq!(opened, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_refreshers_over_two_pools_refresh_once() {
    let db = fresh_database().await;
    // Two instances share the at-rest key.
    let keys = sealer();
    let stores: [Arc<dyn AccessTokenStore>; 2] = [
        Arc::new(PgTokenStore::new(db.pool.clone(), keys.clone())),
        Arc::new(PgTokenStore::new(second_pool(&db.url), keys)),
    ];
    let refreshes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 0..16u128 {
        let store = stores[(n % 2) as usize].clone();
        let refreshes = refreshes.clone();
        tasks.push(tokio::spawn(async move {
            let holder = Uuid::from_u128(n);
            // The gateway's algorithm in miniature: read; if missing, lease-and-refresh or wait.
            for _ in 0..500 {
                if let Some(t) = store.current("acct").await.unwrap() {
                    return t.version;
                }
                let now = Utc::now();
                if store
                    .try_lease_refresh("acct", holder, now, now + TimeDelta::seconds(30))
                    .await
                    .unwrap()
                {
                    // Double-check under the lease: someone may have saved meanwhile.
                    if let Some(t) = store.current("acct").await.unwrap() {
                        store.release_refresh("acct", holder).await.unwrap();
                        return t.version;
                    }
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return store
                        .save_refreshed(
                            "acct",
                            holder,
                            SecretString::from("tok"),
                            now + TimeDelta::days(7),
                            now,
                        )
                        .await
                        .unwrap()
                        .version;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no token appeared");
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1);
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
}

/// A stored access token that the configured keys cannot open is an error, never "no
/// token": the caller would refresh over it, invalidating it upstream for every instance that
/// holds the key that sealed it. A previous token that does not open is only left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_keys_cannot_open_is_an_error_not_a_missing_token() {
    let db = fresh_database().await;
    let theirs = PgTokenStore::new(db.pool.clone(), sealer());
    for (n, token) in [(1u128, "first-token"), (2, "second-token")] {
        let now = Utc::now();
        assert!(
            theirs
                .try_lease_refresh(
                    "acct",
                    Uuid::from_u128(n),
                    now,
                    now + TimeDelta::seconds(30)
                )
                .await
                .unwrap()
        );
        theirs
            .save_refreshed(
                "acct",
                Uuid::from_u128(n),
                SecretString::from(token),
                now + TimeDelta::days(7),
                now,
            )
            .await
            .unwrap();
    }
    let ours = PgTokenStore::new(db.pool.clone(), sealer());
    let e = ours.current("acct").await.unwrap_err();
    assert!(matches!(e, StoreError::Unexpected(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("cannot be opened with the configured at-rest keys")
            && text.contains("not refreshed over"),
        "{text}"
    );
    assert!(!text.contains("-token"), "{text}");

    // The current token resealed under our key (as `reseal` does), the previous one not:
    // the current opens, the previous is left out.
    let current = theirs
        .sealed_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.slot == TokenSlot::Current)
        .unwrap();
    let ours_sealer = sealer();
    let ours = PgTokenStore::new(db.pool.clone(), ours_sealer.clone());
    let opened = theirs.current("acct").await.unwrap().unwrap();
    assert!(
        ours.reseal_token(
            "acct",
            TokenSlot::Current,
            &current.token,
            ours_sealer.seal(&opened.token, SealContext::UpstreamAccessToken),
        )
        .await
        .unwrap()
    );
    let read = ours.current("acct").await.unwrap().unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&read.token),
        "second-token"
    );
    assert!(read.previous.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_claim_owner_is_taken_over_after_its_lease() {
    let db = fresh_database().await;
    let gateway = Arc::new(FakeGateway {
        hang_first: 1,
        ..FakeGateway::new(Duration::from_millis(30))
    });
    let a = instance(db.pool.clone(), gateway.clone(), Duration::from_millis(500));
    let b = instance(
        second_pool(&db.url),
        gateway.clone(),
        Duration::from_millis(500),
    );
    let doomed = tokio::spawn(async move {
        a.create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.abort(); // the instance "dies" mid-mint, holding the claim
    let started = std::time::Instant::now();
    let out = b
        .create_or_reuse(
            testkit::fixtures::caller(APP_A),
            request(1, false),
            nonce(APP_A),
        )
        .await
        .unwrap();
    assert!(!out.reused);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gateway.mints.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retention_purges_in_batches_on_postgres() {
    let db = fresh_database().await;
    let pg = Arc::new(PgStore::new(db.pool.clone()));
    let store: Arc<dyn SessionStore> = pg.clone();
    for n in 1..=25u128 {
        mint(&store, APP_A, sid(n), &request(n, false), t0()).await;
    }
    let later = t0() + TimeDelta::days(91);
    mint(&store, APP_A, sid(100), &request(100, false), later).await;
    struct At(DateTime<Utc>);
    impl Clock for At {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }
    let r = Retention::new(
        pg.clone(),
        pg,
        Arc::new(At(later)),
        Duration::from_secs(90 * 86_400),
        10,
    );
    assert_eq!(r.run_once().await.unwrap(), 25);
    let left: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
    let slots: i64 = sqlx::query_scalar("select count(*) from reuse_slots")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(slots, 1, "purged sessions' slots are vacated");
}

/// The SQL of a query as the adapter sends it, from the committed offline data.
/// Every statement the adapter runs, as compiled into it (sqlx's offline data), with the
/// Postgres types of its parameters.
fn adapter_queries() -> Vec<(String, Vec<String>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/.sqlx");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let params = json["describe"]["parameters"]["Left"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        out.push((json["query"].as_str().unwrap().to_string(), params));
    }
    out
}

fn adapter_query(marker: &str) -> String {
    let mut found: Vec<String> = adapter_queries()
        .into_iter()
        .map(|(q, _)| q)
        .filter(|q| q.contains(marker))
        .collect();
    assert_eq!(found.len(), 1, "exactly one query contains {marker:?}");
    found.remove(0)
}

/// One node of a plan: node type, relation, index.
#[derive(Debug)]
struct Node {
    kind: String,
    relation: String,
    index: String,
    condition: String,
}

fn plan_nodes(plan: &serde_json::Value, out: &mut Vec<Node>) {
    let text = |key: &str| {
        plan.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if plan.get("Node Type").is_some() {
        out.push(Node {
            kind: text("Node Type"),
            relation: text("Relation Name"),
            index: text("Index Name"),
            condition: text("Index Cond"),
        });
    }
    for key in ["Plan", "Plans"] {
        match plan.get(key) {
            Some(serde_json::Value::Array(items)) => items.iter().for_each(|p| plan_nodes(p, out)),
            Some(p @ serde_json::Value::Object(_)) => plan_nodes(p, out),
            _ => {}
        }
    }
}

/// The generic plan of `sql` (what a pooled connection's cached prepared statement ends up
/// using), executed with `params`.
async fn explain(pool: &PgPool, sql: &str, params: &str) -> Vec<Node> {
    explain_planned(pool, sql, params, "force_generic_plan").await
}

/// The plan of `sql` executed with `params` under `plan_cache_mode`.
async fn explain_planned(pool: &PgPool, sql: &str, params: &str, mode: &str) -> Vec<Node> {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(&format!("prepare q as {sql}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(&format!("set plan_cache_mode = {mode}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let call = if params.is_empty() {
        "execute q".to_string()
    } else {
        format!("execute q({params})")
    };
    let plan: serde_json::Value = sqlx::query_scalar(&format!("explain (format json) {call}"))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    sqlx::query("deallocate q")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut nodes = Vec::new();
    plan_nodes(&plan[0], &mut nodes);
    nodes
}

/// A stand-in argument of a Postgres type, for EXPLAIN.
fn placeholder(pg_type: &str) -> &'static str {
    match pg_type {
        "Uuid" => "'00000000-0000-0000-0000-000000000001'",
        "Bytea" => "sha256('x'::bytea)",
        "Timestamptz" => "now()",
        "Bool" => "true",
        "Int8" => "10",
        "Text" => "'ACTIVE'",
        "Int4" => "200",
        "UuidArray" => "array['00000000-0000-0000-0000-000000000001'::uuid]",
        "Int4Array" => "array[1]",
        "TextArray" => "array['session.created']",
        "ByteaArray" => "array[sha256('x'::bytea)]",
        "Jsonb" => "'{}'::jsonb",
        "Float8" => "330.0",
        other => panic!("no placeholder for parameter type {other}"),
    }
}

/// docs/benchmarks.md, "Query plans": a pooled connection keeps the generic plan it made at
/// first use. If that happened while the tables were empty or never analysed, a lookup whose
/// plan depends on statistics may walk every session of an application for as long as the
/// connection lives. So every per-request statement must find its rows by a full key even in
/// a generic plan made on empty, never-analysed tables: sessions by their primary key (by
/// the subject index only when listing one subject), slots and nonces by theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_plans_made_on_empty_tables_look_rows_up_by_full_key() {
    let db = fresh_database().await;
    let mut checked = 0;
    let mut seen_indexes = HashSet::new();
    for (sql, types) in adapter_queries() {
        if sql.contains("with aged as")
            || sql.contains("delete from request_nonces")
            || sql.contains("with due as")
            || sql.contains("with ranked as")
        {
            // The retention purges, the expiry sweep and the delivery claim: batch jobs that
            // look for work by time, not per-request point lookups.
            continue;
        }
        let args: Vec<&str> = types.iter().map(|t| placeholder(t)).collect();
        let nodes = explain(&db.pool, &sql, &args.join(", ")).await;
        for node in &nodes {
            let expected = match node.relation.as_str() {
                "sessions" if sql.contains("subject_id = $3") => "sessions_by_subject",
                "sessions" => "sessions_pkey",
                "reuse_slots" => "reuse_slots_pkey",
                _ => continue,
            };
            if matches!(
                node.kind.as_str(),
                "ModifyTable" | "Insert" | "Update" | "Delete"
            ) {
                continue;
            }
            assert!(
                node.kind.contains("Index"),
                "{} is read with {} in\n{sql}\n{nodes:?}",
                node.relation,
                node.kind
            );
            assert_eq!(node.index, expected, "in\n{sql}\n{nodes:?}");
            // The index condition bounds every key column (a condition on the first column
            // alone is a walk over the application's rows).
            let key: &[&str] = match expected {
                "sessions_pkey" => &["(application_id = ", "(id "],
                "sessions_by_subject" => &["(subject_id = ", "(application_id = ", "(id < "],
                _ => &["(application_id = ", "(reuse_key = "],
            };
            for column in key {
                assert!(
                    node.condition.contains(column),
                    "{expected} is not bounded by {column}: {:?} in\n{sql}",
                    node.condition
                );
            }
            seen_indexes.insert(node.index.clone());
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} statements checked");
    for index in ["sessions_pkey", "sessions_by_subject", "reuse_slots_pkey"] {
        assert!(
            seen_indexes.contains(index),
            "no statement used {index}: {seen_indexes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_lookups_are_index_scans_at_100k_sessions() {
    let db = fresh_database().await;
    // 100k sessions over 10 applications, each with a slot.
    sqlx::query(
        r#"insert into sessions (application_id, id, reuse_key, subject_kind, subject_id, currency,
               network, counterparty_kind, counterparty, force_verify_ownership, widget_url,
               created_at, expires_at)
           select ('00000000-0000-0000-0000-' || lpad(to_hex(g % 10), 12, '0'))::uuid,
                  gen_random_uuid(), sha256(g::text::bytea), 'user', gen_random_uuid(), 'ETH', 'ETH',
                  'address', '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359', false, 'https://w/?sessionId=x',
                  now() - (g % 1000) * interval '1 second', now() - (g % 1000) * interval '1 second' + interval '300 seconds'
           from generate_series(1, 100000) g"#,
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("insert into reuse_slots (application_id, reuse_key, session_id) select application_id, reuse_key, id from sessions")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("analyze").execute(&db.pool).await.unwrap();

    let reuse = adapter_query("left join slot on true left join cand on true");
    let nodes = explain(
        &db.pool,
        &reuse,
        "'00000000-0000-0000-0000-000000000001', sha256('42'::bytea), now(), now() + interval '60 seconds', sha256('n'::bytea), now() + interval '5 minutes', false, gen_random_uuid(), now() + interval '30 seconds', gen_random_uuid(), 'session.travel_rule_reopened'",
    )
    .await;
    assert_index_only(&nodes, &["reuse_slots", "sessions"]);

    let id: uuid::Uuid = sqlx::query_scalar("select id from sessions limit 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let launch = adapter_query("as \"consumed!\"");
    let nodes = explain(
        &db.pool,
        &launch,
        &format!("'00000000-0000-0000-0000-000000000001', '{id}', now(), gen_random_uuid(), 'session.consumed'"),
    )
    .await;
    assert_index_only(&nodes, &["sessions"]);
}

/// docs/operations.md, "Retention": sessions kept for their travel-rule records pile up for
/// years past the sessions' retention; the purge must find its work without walking over
/// them. At 100k kept (and already thinned) sessions, it reads sessions only through the two
/// partial indexes by end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_does_not_walk_over_kept_sessions() {
    let db = fresh_database().await;
    sqlx::query(
        r#"insert into sessions (application_id, id, reuse_key, subject_kind, subject_id, currency,
               network, counterparty_kind, counterparty, force_verify_ownership, widget_url,
               created_at, expires_at, travel_rule_kept, events_purged)
           select ('00000000-0000-0000-0000-' || lpad(to_hex(g % 10), 12, '0'))::uuid,
                  gen_random_uuid(), sha256(g::text::bytea), 'user', gen_random_uuid(), 'ETH', 'ETH',
                  'address', '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359', false, 'https://w/?sessionId=x',
                  now() - interval '400 days', now() - interval '400 days' + interval '300 seconds',
                  true, g > 10
           from generate_series(1, 100000) g"#,
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("analyze").execute(&db.pool).await.unwrap();
    let purge = adapter_query("with aged as");
    let nodes = explain_planned(
        &db.pool,
        &purge,
        "now() - interval '90 days', 500, now() - interval '1825 days'",
        "force_custom_plan",
    )
    .await;
    // An index scan names its index; a bitmap scan names it on its Bitmap Index Scan child
    // (the Bitmap Heap Scan above it names only the table), and the planner picks either.
    let indexes: HashSet<&str> = nodes
        .iter()
        .filter(|n| n.kind.contains("Index") && !n.index.is_empty())
        .map(|n| n.index.as_str())
        .collect();
    assert!(
        indexes.contains("sessions_to_purge_by_end") && indexes.contains("sessions_kept_by_end"),
        "{nodes:?}"
    );
    for node in nodes
        .iter()
        .filter(|n| n.relation == "sessions" && n.kind.contains("Scan"))
    {
        assert!(
            (node.kind.contains("Index") && !node.index.is_empty())
                || node.kind == "Bitmap Heap Scan",
            "sessions read with {node:?}: {nodes:?}"
        );
    }
    // And it does its work: the ten kept sessions not thinned yet are thinned.
    let now = chrono::Utc::now();
    let row = sqlx::query(&purge)
        .bind(now - chrono::TimeDelta::days(90))
        .bind(500_i64)
        .bind(now - chrono::TimeDelta::days(1825))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let n: i64 = sqlx::Row::get(&row, "n!");
    assert_eq!(n, 10);
}

fn assert_index_only(nodes: &[Node], tables: &[&str]) {
    eprintln!("plan nodes: {nodes:?}");
    for table in tables {
        let on_table: Vec<&Node> = nodes.iter().filter(|n| n.relation == *table).collect();
        assert!(
            !on_table.is_empty(),
            "{table} is not read at all: {nodes:?}"
        );
        for node in on_table {
            let kind = node.kind.as_str();
            assert!(
                kind.contains("Index")
                    || kind == "ModifyTable"
                    || kind == "Update"
                    || kind == "Insert",
                "{table} is read with {kind}: {nodes:?}"
            );
        }
    }
    // `request_log_epoch` holds one row by construction, and `applications` a handful (a
    // launch asks whether its application is disabled): reading them whole is the lookup.
    assert!(
        !nodes.iter().any(|n| n.kind == "Seq Scan"
            && !["request_log_epoch", "applications"].contains(&n.relation.as_str())),
        "sequential scan in {nodes:?}"
    );
}

/// The hot statement writes nothing durable on a reuse (the request's nonce goes to an
/// unlogged table, so the commit does not wait for a WAL flush) and commits a claim
/// asynchronously (a lost claim is re-claimed; see `SessionStore::reuse_or_claim`). Checked
/// inside an explicit transaction, where the statement's writes and its transaction-local
/// setting stay visible until the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reuse_writes_nothing_durable_and_a_claim_does_not_wait_for_the_flush() {
    let db = fresh_database().await;
    let store: Arc<dyn SessionStore> = Arc::new(PgStore::new(db.pool.clone()));
    let bound = request(1, false);
    mint(&store, APP_A, sid(1), &bound, t0()).await;
    let sql = adapter_query("left join slot on true left join cand on true");
    let persistence: String = sqlx::query_scalar(
        "select relpersistence::text from pg_class where relname = 'request_nonces'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(persistence, "u", "request_nonces is unlogged");

    // (claimed, synchronous_commit after, logged rows written by this transaction)
    let run = async |r: &domain::ValidRequest, n: u8| -> (bool, String, i64) {
        let q = testkit::fixtures::reuse_query(APP_A, r, at(1), n);
        let nonce = nonce(APP_A);
        let mut tx = db.pool.begin().await.unwrap();
        // The throwaway cluster runs with synchronous_commit off; a server's default is on.
        sqlx::query("set local synchronous_commit = on")
            .execute(&mut *tx)
            .await
            .unwrap();
        let row = sqlx::query(&sql)
            .bind(q.application.as_uuid())
            .bind(q.key.as_bytes().as_slice())
            .bind(q.now)
            .bind(q.policy.must_live_until(q.now))
            .bind(nonce.signature.as_slice())
            .bind(nonce.expires_at)
            .bind(q.force_verify_ownership)
            .bind(q.claim.0)
            .bind(q.lease_until)
            .bind(q.reopened_event.as_uuid())
            .bind("session.travel_rule_reopened")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let claimed: bool = sqlx::Row::get(&row, "claimed!");
        let replayed: bool = sqlx::Row::get(&row, "replayed!");
        assert!(!replayed);
        let setting: String = sqlx::query_scalar("show synchronous_commit")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let logged: i64 = sqlx::query_scalar(
            "select (select count(*) from sessions where xmin::text = pg_current_xact_id()::text)
                  + (select count(*) from reuse_slots where xmin::text = pg_current_xact_id()::text)",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let nonces: i64 = sqlx::query_scalar(
            "select count(*) from request_nonces where xmin::text = pg_current_xact_id()::text",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            nonces, 1,
            "the request's nonce is recorded by the same statement"
        );
        tx.rollback().await.unwrap();
        (claimed, setting, logged)
    };
    let (claimed, _, logged) = run(&bound, 2).await;
    assert!(!claimed, "the bound key is reused");
    assert_eq!(logged, 0, "a reuse writes no logged row");
    let (claimed, claim_setting, logged) = run(&request(2, false), 3).await;
    assert!(claimed, "the vacant key is claimed");
    assert_eq!(claim_setting, "off");
    assert_eq!(logged, 1, "a claim writes its slot");
}

/// A sealer with a fresh key (the token store seals the access token).
fn sealer() -> Arc<dyn ports::SecretSealer> {
    Arc::new(keyring::Keyring::generate())
}

/// The event types are spelled once in SQL (the `session_events` check constraint, the one
/// mapping; statements pass the type as a parameter) and that list is exactly the domain's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_event_types_are_the_domains() {
    let db = fresh_database().await;
    let definition: String = sqlx::query_scalar(
        "select pg_get_constraintdef(oid) from pg_constraint
         where conrelid = 'session_events'::regclass and contype = 'c'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let stored: std::collections::BTreeSet<String> = definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let domain: std::collections::BTreeSet<String> = domain::EventType::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    assert_eq!(stored, domain, "{definition}");
    let adapter: Vec<String> = adapter_queries()
        .into_iter()
        .map(|(q, _)| q)
        .filter(|q| q.contains("'session."))
        .collect();
    assert!(
        adapter.is_empty(),
        "statements spell event types out: {adapter:?}"
    );
}

/// An endpoint registered before a registration rule tightened (here the port rule: below
/// 1024 only 443, and 80 where http is allowed) stays readable: it is listed, its secret
/// rotates, and its deliveries are claimed — one such row must not fail a whole claim.
#[tokio::test]
async fn an_endpoint_stored_before_a_stricter_url_rule_stays_readable() {
    let db = fresh_database().await;
    let store = Arc::new(PgStore::new(db.pool.clone()));
    let sessions: Arc<dyn SessionStore> = store.clone();
    let app = APP_A;
    ApplicationStore::create(
        &postgres::PgApplicationStore::new(db.pool.clone()),
        NewApplication {
            id: app,
            name: "old-endpoint".into(),
            api_key: ApiKeyDigest::of("old-endpoint-key"),
            secret: EncryptedSecret {
                key_id: "k".into(),
                sealed: vec![9; 40],
            },
            settings: ApplicationSettings::default(),
            now: t0(),
        },
    )
    .await
    .unwrap();
    let id = domain::WebhookEndpointId::from_uuid(Uuid::from_u128(0xE1));
    let sealed = |n: u8| EncryptedSecret {
        key_id: "k".into(),
        sealed: vec![n; 40],
    };
    EndpointStore::create(
        store.as_ref(),
        &WebhookEndpoint {
            id,
            application: app,
            url: domain::WebhookUrl::parse("https://hooks.example.com/old", false).unwrap(),
            event_types: Vec::new(),
            created_at: t0(),
        },
        sealed(1),
        10,
    )
    .await
    .unwrap();
    let old = "https://hooks.example.com:444/old";
    assert!(
        domain::WebhookUrl::parse(old, true).is_err(),
        "registration refuses it now"
    );
    sqlx::query("update webhook_endpoints set url = $1")
        .bind(old)
        .execute(&db.pool)
        .await
        .unwrap();
    mint(&sessions, app, sid(1), &request(1, false), t0()).await;

    let listed = EndpointStore::list(store.as_ref(), app).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].url.as_str(), old);
    let claimed = store
        .claim(&ClaimQuery {
            now: at(1),
            owner: Uuid::from_u128(7),
            lease_until: at(31),
            limit: 10,
            per_endpoint: 10,
            endpoint_in_flight: Vec::new(),
            per_application: 10,
            application_in_flight: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].url.as_str(), old);
    let rotated = store
        .rotate_secret(app, id, sealed(2), at(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.url.as_str(), old);
}
