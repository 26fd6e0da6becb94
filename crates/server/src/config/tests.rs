use super::*;

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
        e.to_string()
            .contains("must exceed the worst upstream call (19 s"),
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
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every variable the service reads is listed, and every listed service variable is read
/// (`RUST_LOG` and `WIDGET_SESSIONS_CONFIG_FILE` are read before the configuration).
#[test]
fn the_list_of_variables_is_exactly_what_is_read() {
    let mut all: HashMap<String, String> = HashMap::new();
    for v in VARIABLES {
        all.insert(v.name.to_string(), "x".into());
    }
    for input in [HashMap::new(), all] {
        let (_, read) = Config::read(&input);
        for name in &read {
            assert!(VARIABLES.iter().any(|v| v.name == *name), "{name}");
        }
        for v in VARIABLES.iter().filter(|v| v.scope == Scope::Service) {
            if ["RUST_LOG", "WIDGET_SESSIONS_CONFIG_FILE"].contains(&v.name) {
                continue;
            }
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
fn the_listing_and_the_table_name_every_variable() {
    let listing = listing();
    let table = markdown_table();
    for v in VARIABLES {
        assert!(listing.contains(v.name), "{}", v.name);
        assert!(table.contains(&format!("`{}`", v.name)), "{}", v.name);
        if v.secret {
            assert!(listing.contains(&format!("{}_FILE", v.name)));
        }
    }
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
        "README.md's table is out of date: paste `cargo run -q -- env --markdown` between the markers"
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
