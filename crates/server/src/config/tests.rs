use super::*;
use domain::BitcoinNetwork;
use setting::Scope;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn zero_configuration_is_valid() {
    let c = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_base(c.listen), "http://127.0.0.1:8080");
    assert!(c.database_url.is_none());
    assert!(matches!(c.upstream, Upstream::InProcessEmulator));
    assert_eq!(c.policy, ReusePolicy::default());
    assert_eq!(
        (c.rate_limit, c.retention),
        (100, Duration::from_secs(90 * 86_400))
    );
    assert_eq!(c.rules, Rules::default());
}

#[test]
fn every_problem_is_reported_with_what_to_set() {
    let e = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_LISTEN", "nowhere"),
        ("DATABASE_URL", "mysql://x"),
        ("WIDGET_SESSIONS_SESSION_TTL_SECS", "301"),
        ("WIDGET_SESSIONS_RATE_LIMIT", "fast"),
        ("WIDGET_SESSIONS_BITCOIN_NETWORK", "litecoin"),
        ("TRANSAK_ENVIRONMENT", "production"),
    ]))
    .unwrap_err();
    let text = e.to_string();
    for needle in [
        "WIDGET_SESSIONS_LISTEN",
        "postgres://",
        "WIDGET_SESSIONS_SECRET_KEY is required",
        "300 seconds",
        "WIDGET_SESSIONS_RATE_LIMIT",
        "WIDGET_SESSIONS_BITCOIN_NETWORK",
        "TRANSAK_API_KEY is required",
        "TRANSAK_API_SECRET is required",
        "TRANSAK_REFERRER_DOMAIN is required",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn credentials_without_an_environment_list_every_accepted_value() {
    let e = Config::from_vars(&vars(&[
        ("TRANSAK_API_KEY", "k"),
        ("TRANSAK_API_SECRET", "s"),
    ]))
    .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("TRANSAK_ENVIRONMENT must be set"), "{text}");
    assert!(text.contains("staging, production or emulator"), "{text}");
}

#[test]
fn a_database_without_transak_settings_refuses_to_start() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let e = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://localhost/x"),
        ("WIDGET_SESSIONS_SECRET_KEY", key),
    ]))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("DATABASE_URL is set but Transak is not configured"),
        "{e}"
    );
    // Asking for the emulator on purpose is a Transak setting.
    let c = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://localhost/x"),
        ("WIDGET_SESSIONS_SECRET_KEY", key),
        ("TRANSAK_ENVIRONMENT", "emulator"),
    ]))
    .unwrap();
    assert!(matches!(c.upstream, Upstream::InProcessEmulator));
}

#[test]
fn an_external_emulator_needs_both_urls_and_defaults_its_credentials() {
    let c = Config::from_vars(&vars(&[
        ("TRANSAK_ENVIRONMENT", "emulator"),
        ("TRANSAK_GATEWAY_URL", "http://127.0.0.1:8090"),
        ("TRANSAK_API_URL", "http://127.0.0.1:8090"),
    ]))
    .unwrap();
    let Upstream::Remote(r) = c.upstream else {
        panic!()
    };
    assert_eq!(r.api_key, EMULATOR_API_KEY);
    let e = Config::from_vars(&vars(&[
        ("TRANSAK_ENVIRONMENT", "emulator"),
        ("TRANSAK_GATEWAY_URL", "http://127.0.0.1:8090"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("must both be set"));
}

#[cfg(feature = "emulator")]
#[test]
fn the_external_emulator_defaults_are_the_emulators_own() {
    assert_eq!(EMULATOR_API_KEY, transak_emulator::DEFAULT_API_KEY);
    assert_eq!(EMULATOR_API_SECRET, transak_emulator::DEFAULT_API_SECRET);
}

#[test]
fn overrides_apply() {
    let c = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_LISTEN", "0.0.0.0:9000"),
        (
            "WIDGET_SESSIONS_PUBLIC_URL",
            "https://sessions.example.com/",
        ),
        ("WIDGET_SESSIONS_SESSION_TTL_SECS", "120"),
        ("WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS", "30"),
        ("WIDGET_SESSIONS_RATE_LIMIT", "0"),
        ("WIDGET_SESSIONS_BITCOIN_NETWORK", "signet"),
        ("WIDGET_SESSIONS_LEDGER", "BTC:BTC,USDC:POLYGON"),
        ("TRANSAK_WIDGET_PARAMS", r#"{"themeColor":"000000"}"#),
    ]))
    .unwrap();
    assert_eq!(c.public_base(c.listen), "https://sessions.example.com");
    assert_eq!(c.policy.ttl(), Duration::from_secs(120));
    assert_eq!(c.rate_limit, 0);
    assert_eq!(c.rules.bitcoin_network(), BitcoinNetwork::Signet);
    assert_eq!(c.rules.ledger().len(), 2);
}

#[test]
fn the_claim_lease_must_outlast_the_worst_upstream_call() {
    let e = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_CLAIM_LEASE_SECS", "10"),
        ("TRANSAK_TIMEOUT_MS", "5000"),
        ("TRANSAK_MAX_RETRIES", "2"),
    ]))
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "WIDGET_SESSIONS_CLAIM_LEASE_SECS=10 must exceed the worst upstream call (15.3s"
        ),
        "{e}"
    );
    let c = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_CLAIM_LEASE_SECS", "2"),
        ("TRANSAK_TIMEOUT_MS", "500"),
        ("TRANSAK_MAX_RETRIES", "0"),
    ]))
    .unwrap();
    assert_eq!(c.claims.lease, Duration::from_secs(2));
    assert_eq!(
        (c.upstream_timeout, c.upstream_retries),
        (Duration::from_millis(500), 0)
    );
}

#[test]
fn env_files_parse() {
    let m = parse_env_file("# c\n\nexport A=1\nB=\"two words\"\nC='x'\n").unwrap();
    assert_eq!(
        (m["A"].as_str(), m["B"].as_str(), m["C"].as_str()),
        ("1", "two words", "x")
    );
    assert!(parse_env_file("oops").is_err());
}

#[test]
fn secrets_can_be_read_from_files() {
    let dir = std::env::temp_dir().join(format!("ws-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret-key");
    std::fs::write(&path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let c = Config::from_vars(&vars(&[(
        "WIDGET_SESSIONS_SECRET_KEY_FILE",
        path.to_str().unwrap(),
    )]))
    .unwrap();
    assert!(c.secret_key.is_some());
    let e = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_SECRET_KEY_FILE", path.to_str().unwrap()),
        (
            "WIDGET_SESSIONS_SECRET_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    let e = Config::from_vars(&vars(&[(
        "TRANSAK_API_SECRET_FILE",
        dir.join("missing").to_str().unwrap(),
    )]))
    .unwrap_err();
    assert!(e.to_string().contains("TRANSAK_API_SECRET_FILE"), "{e}");
    // An empty file is not an unset variable: the service would otherwise start without it.
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = Config::from_vars(&vars(&[
        ("DATABASE_URL_FILE", empty.to_str().unwrap()),
        ("TRANSAK_ENVIRONMENT", "emulator"),
    ]))
    .unwrap_err();
    assert!(
        e.to_string().contains("DATABASE_URL_FILE=") && e.to_string().contains("is empty"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn descriptions() -> Vec<Description> {
    VARIABLES.iter().map(|v| v.describe()).collect()
}

/// Every variable the service reads is listed, and every listed variable of the service's
/// configuration is read (the others are read by the command line, or before the
/// configuration).
#[test]
fn the_list_of_variables_is_exactly_what_is_read() {
    let mut all: HashMap<String, String> = HashMap::new();
    for v in descriptions() {
        all.insert(v.name.to_string(), "x".into());
    }
    for input in [HashMap::new(), all] {
        let (_, read) = Config::read(&input);
        for name in &read {
            assert!(descriptions().iter().any(|v| v.name == *name), "{name}");
        }
        for v in descriptions().iter().filter(|v| v.scope == Scope::Service) {
            assert!(
                read.contains(&v.name),
                "{} is listed but never read",
                v.name
            );
        }
    }
    let (result, _) = Config::read(&vars(&[("WIDGET_SESSIONS_LISTEN", "0.0.0.0:1")]));
    assert!(result.is_ok());
}

#[test]
fn every_variable_is_declared_once_with_a_doc() {
    let all = descriptions();
    for v in &all {
        assert_eq!(
            all.iter().filter(|w| w.name == v.name).count(),
            1,
            "{}",
            v.name
        );
        assert!(
            !v.doc.is_empty() && !v.doc.ends_with('.'),
            "{}: {:?}",
            v.name,
            v.doc
        );
        assert!(!v.default.is_empty(), "{}", v.name);
    }
}

/// The owners' defaults are within the declared ranges and pass the owners' rules.
#[test]
fn every_default_is_valid() {
    for v in VARIABLES {
        assert_eq!(v.check_default(), Ok(()), "{}", v.describe().name);
    }
}

#[test]
fn the_listing_and_the_table_name_every_variable() {
    let listing = listing();
    let table = markdown_table();
    for v in descriptions() {
        assert!(listing.contains(v.name), "{}", v.name);
        assert!(table.contains(&format!("`{}`", v.name)), "{}", v.name);
        if v.secret {
            assert!(listing.contains(&format!("{}_FILE", v.name)));
        }
    }
}

/// Defaults are the owning crates' values, shown as the variable is written.
#[test]
fn the_documented_defaults_are_the_owners_values() {
    let default_of = |name: &str| {
        descriptions()
            .into_iter()
            .find(|v| v.name == name)
            .map(|v| v.default)
            .unwrap()
    };
    assert_eq!(default_of("WIDGET_SESSIONS_SESSION_TTL_SECS"), "`300`");
    assert_eq!(default_of("TRANSAK_TIMEOUT_MS"), "`5000`");
    assert_eq!(default_of("WIDGET_SESSIONS_CLAIM_LEASE_SECS"), "`30`");
    assert_eq!(default_of("WIDGET_SESSIONS_RETENTION_DAYS"), "`90`");
    assert_eq!(default_of("WIDGET_SESSIONS_LISTEN"), "`127.0.0.1:8080`");
    assert_eq!(default_of("WIDGET_SESSIONS_URL"), "`http://127.0.0.1:8080`");
    assert_eq!(default_of("WIDGET_SESSIONS_LOG_FORMAT"), "`auto`");
    // A secret's default is never a value.
    assert_eq!(default_of("WIDGET_SESSIONS_OLD_SECRET_KEYS"), "unset");
    let c = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(c.claims, app::ClaimSettings::default());
    assert_eq!(
        (c.upstream_timeout, c.upstream_retries),
        (
            transak::DEFAULT_REQUEST_TIMEOUT,
            transak::DEFAULT_MAX_RETRIES
        )
    );
    let webhooks = app::WebhookSettings::default();
    assert_eq!(
        (c.webhooks.lease, c.webhooks.tick, c.webhooks.sweep_every),
        (webhooks.lease, webhooks.tick, webhooks.sweep_every)
    );
    assert_eq!(c.webhooks.schedule, webhooks.schedule);
    assert_eq!(c.webhooks.per_application, webhooks.per_application);
    assert_eq!(
        default_of("WIDGET_SESSIONS_WEBHOOK_MAX_IN_FLIGHT_PER_APPLICATION"),
        "`16`"
    );
    assert_eq!(
        c.webhook_timeout,
        webhook_sender::SenderSettings::default().timeout
    );
    assert_eq!(c.travel_rule, app::TravelRuleSettings::default());
    assert_eq!(
        default_of("WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS"),
        "`86400`"
    );
    assert_eq!(
        default_of("WIDGET_SESSIONS_TRAVEL_RULE_RETENTION_DAYS"),
        "`1825`"
    );
}

#[test]
fn the_travel_rule_window_and_retention_are_read() {
    let c = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS", "3600"),
        ("WIDGET_SESSIONS_TRAVEL_RULE_RETENTION_DAYS", "3650"),
    ]))
    .unwrap();
    assert_eq!(
        c.travel_rule,
        app::TravelRuleSettings {
            window: Duration::from_secs(3600),
            retention: Duration::from_secs(3650 * 86_400),
        }
    );
    let e = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS", "86400"),
        ("WIDGET_SESSIONS_RETENTION_DAYS", "1"),
    ]))
    .unwrap_err();
    assert_eq!(
        e.0,
        [
            "WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS=86400 must be shorter than WIDGET_SESSIONS_RETENTION_DAYS=1 days"
        ]
    );
    let e =
        Config::from_vars(&vars(&[("WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS", "10")])).unwrap_err();
    assert!(
        e.to_string().contains(
            "WIDGET_SESSIONS_TRAVEL_RULE_WINDOW_SECS=\"10\": must be between 60 and 2592000 seconds"
        ),
        "{e}"
    );
}

#[test]
fn ranges_are_checked_and_documented() {
    let e = Config::from_vars(&vars(&[
        ("WIDGET_SESSIONS_RETENTION_DAYS", "0"),
        ("WIDGET_SESSIONS_DB_MAX_CONNECTIONS", "1001"),
        ("WIDGET_SESSIONS_WEBHOOK_POLL_MS", "5"),
        (
            "WIDGET_SESSIONS_WEBHOOK_MAX_IN_FLIGHT_PER_APPLICATION",
            "65",
        ),
    ]))
    .unwrap_err();
    for expected in [
        "WIDGET_SESSIONS_RETENTION_DAYS=\"0\": must be between 1 and 36500 days",
        "WIDGET_SESSIONS_DB_MAX_CONNECTIONS=\"1001\": must be between 1 and 1000",
        "WIDGET_SESSIONS_WEBHOOK_POLL_MS=\"5\": must be between 10 and 3600000 milliseconds",
        "WIDGET_SESSIONS_WEBHOOK_MAX_IN_FLIGHT_PER_APPLICATION=\"65\": must be between 1 and 64",
    ] {
        assert!(e.0.iter().any(|p| p == expected), "{expected} not in:\n{e}");
    }
    assert_eq!(e.0.len(), 4, "{e}");
    assert!(markdown_table().contains("| session lifetime; 1 to 300 seconds | `300` |"));
}

/// The Transak adapter's own rules, reported under the variables' names.
#[test]
fn the_upstream_timing_follows_the_transak_adapters_rules() {
    let e = Config::from_vars(&vars(&[
        ("TRANSAK_TIMEOUT_MS", "0"),
        ("TRANSAK_MAX_RETRIES", "11"),
    ]))
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("TRANSAK_TIMEOUT_MS=\"0\": Transak setting request_timeout"),
        "{text}"
    );
    assert!(
        text.contains("TRANSAK_MAX_RETRIES=\"11\": Transak setting max_retries"),
        "{text}"
    );
    // Together they must also leave the gateway's token refresh its lease.
    let e = Config::from_vars(&vars(&[
        ("TRANSAK_TIMEOUT_MS", "10000"),
        ("WIDGET_SESSIONS_CLAIM_LEASE_SECS", "120"),
        ("WIDGET_SESSIONS_REQUEST_TIMEOUT_SECS", "600"),
    ]))
    .unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(
        e.0[0].starts_with("TRANSAK_TIMEOUT_MS=10000 with TRANSAK_MAX_RETRIES=2: "),
        "{e}"
    );
    assert!(e.0[0].contains("refresh_lease"), "{e}");
    let e = Config::from_vars(&vars(&[(
        "TRANSAK_WIDGET_PARAMS",
        r#"{"walletAddress":"0xabc"}"#,
    )]))
    .unwrap_err();
    assert!(e.to_string().contains("TRANSAK_WIDGET_PARAMS="), "{e}");
    assert!(e.to_string().contains("walletAddress"), "{e}");
}

#[test]
fn a_secret_is_never_printed() {
    let e = Config::from_vars(&vars(&[
        ("DATABASE_URL", "mysql://user:hunter2@db/x"),
        ("WIDGET_SESSIONS_SECRET_KEY", "hunter2"),
        ("WIDGET_SESSIONS_OLD_SECRET_KEYS", "hunter2"),
    ]))
    .unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("DATABASE_URL: must be a postgres://"),
        "{text}"
    );
    assert!(
        text.contains("WIDGET_SESSIONS_SECRET_KEY: the key is not valid base64"),
        "{text}"
    );
    assert!(
        text.contains("WIDGET_SESSIONS_OLD_SECRET_KEYS: key 1 "),
        "{text}"
    );
}

#[test]
fn the_callers_api_secret_may_be_a_file() {
    let dir = std::env::temp_dir().join(format!("ws-api-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("api-secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    let secret = api_secret_from_vars(&vars(&[(
        "WIDGET_SESSIONS_API_SECRET_FILE",
        path.to_str().unwrap(),
    )]))
    .unwrap()
    .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&secret), "s3cret");
    assert!(api_secret_from_vars(&vars(&[])).unwrap().is_none());
    assert!(
        api_secret_from_vars(&vars(&[
            ("WIDGET_SESSIONS_API_SECRET", "s3cret"),
            ("WIDGET_SESSIONS_API_SECRET_FILE", path.to_str().unwrap()),
        ]))
        .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// README's table is `widget-sessions env --markdown`, verbatim.
#[test]
fn the_readme_table_is_the_generated_one() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("<!-- variables:begin -->\n")
        .expect("README.md has the variables:begin marker")
        + "<!-- variables:begin -->\n".len();
    let end = readme
        .find("<!-- variables:end -->")
        .expect("README.md has the variables:end marker");
    assert_eq!(
        &readme[start..end],
        markdown_table(),
        "README.md's table is out of date: run `bash scripts/readme-variables.sh`"
    );
}

#[test]
#[cfg(not(feature = "otel"))]
fn a_trace_collector_in_a_build_without_export_is_refused() {
    let e = Config::from_vars(&vars(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://127.0.0.1:4318",
    )]))
    .unwrap_err();
    assert!(
        e.0.iter()
            .any(|p| p.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && p.contains("--features otel")),
        "{e}"
    );
}

#[test]
#[cfg(feature = "otel")]
fn a_trace_collector_is_a_base_url() {
    let c = Config::from_vars(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
        ("OTEL_SERVICE_NAME", "sessions-eu"),
    ]))
    .unwrap();
    let traces = c.traces.unwrap();
    assert_eq!(traces.traces_url(), "http://127.0.0.1:4318/v1/traces");
    assert_eq!(traces.service_name, "sessions-eu");
    assert!(
        Config::from_vars(&vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])).is_err()
    );
}

#[test]
fn the_database_url_alone_is_enough_to_migrate() {
    let url = database_url_from_vars(&vars(&[("DATABASE_URL", "postgres://db/x")])).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&url.unwrap()),
        "postgres://db/x"
    );
    assert!(database_url_from_vars(&vars(&[])).unwrap().is_none());
    assert!(database_url_from_vars(&vars(&[("DATABASE_URL", "mysql://db/x")])).is_err());
}
