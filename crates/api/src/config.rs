//! Configuration: environment variables (and optionally a `KEY=VALUE` file), validated at
//! start-up. Every problem is reported at once, each with what to set.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::{BitcoinNetwork, LedgerTable, ReusePolicy, Rules};
use secrecy::SecretString;
use url::Url;

use crate::observability::LogFormat;

/// Where the upstream is.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Start a Transak emulator inside this process (zero-configuration runs).
    InProcessEmulator,
    /// A Transak environment (or an external emulator) over HTTP.
    Remote(Box<RemoteUpstream>),
}

/// A Transak environment reached over HTTP.
#[derive(Debug, Clone)]
pub struct RemoteUpstream {
    /// staging, production or emulator.
    pub environment: transak::Environment,
    /// Partner API key.
    pub api_key: String,
    /// Partner API secret.
    pub api_secret: SecretString,
    /// `referrerDomain` sent with every widget.
    pub referrer_domain: String,
    /// Override of the Create Widget URL base.
    pub gateway_url: Option<Url>,
    /// Override of the Refresh Token base.
    pub api_url: Option<Url>,
    /// Extra widget params (`TRANSAK_WIDGET_PARAMS`, a JSON object).
    pub extra_widget_params: serde_json::Map<String, serde_json::Value>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Base of launch links (`{public_url}/w/{token}`), without a trailing slash.
    pub public_url: Url,
    /// Postgres; `None` runs on the in-memory store.
    pub database_url: Option<SecretString>,
    /// The upstream.
    pub upstream: Upstream,
    /// Applications to create (or keep) at start-up.
    pub apps_file: Option<PathBuf>,
    /// The at-rest key (base64 of 32 bytes); `None` only for in-memory runs (a key is
    /// generated).
    pub secret_key: Option<SecretString>,
    /// TTL and least remaining life for reuse.
    pub policy: ReusePolicy,
    /// Requests per second per application per instance (burst twice that); 0 disables.
    pub rate_limit: u32,
    /// Ended sessions older than this are purged.
    pub retention: Duration,
    /// Ledger table and bitcoin network.
    pub rules: Rules,
    /// Log format.
    pub log_format: LogFormat,
    /// Most database connections per instance.
    pub db_max_connections: u32,
    /// Claim protocol tuning (lease, wait).
    pub claims: app::ClaimSettings,
    /// Per-attempt upstream timeout.
    pub upstream_timeout: Duration,
    /// Upstream retries after the first attempt.
    pub upstream_retries: u32,
}

/// Every configuration problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// The variables this service reads, for `--help` and the docs.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("WIDGET_SESSIONS_LISTEN", "listen address", "127.0.0.1:8080"),
    (
        "WIDGET_SESSIONS_PUBLIC_URL",
        "base of launch links",
        "http:// + listen address",
    ),
    (
        "DATABASE_URL",
        "Postgres; migrations run at start-up",
        "unset: in-memory store",
    ),
    (
        "TRANSAK_ENVIRONMENT",
        "staging, production or emulator",
        "emulator when no credentials are set",
    ),
    ("TRANSAK_API_KEY", "partner API key", "-"),
    ("TRANSAK_API_SECRET", "partner API secret", "-"),
    (
        "TRANSAK_REFERRER_DOMAIN",
        "referrerDomain sent upstream",
        "-",
    ),
    (
        "TRANSAK_GATEWAY_URL",
        "Create Widget URL base",
        "per environment",
    ),
    ("TRANSAK_API_URL", "Refresh Token base", "per environment"),
    (
        "TRANSAK_WIDGET_PARAMS",
        "extra widgetParams, a JSON object",
        "{}",
    ),
    (
        "WIDGET_SESSIONS_APPS_FILE",
        "JSON array of {name, apiKey, apiSecret} to create or keep",
        "unset",
    ),
    (
        "WIDGET_SESSIONS_SECRET_KEY",
        "32 random bytes, base64: seals application secrets",
        "generated in memory; required with Postgres",
    ),
    (
        "WIDGET_SESSIONS_SESSION_TTL_SECS",
        "session lifetime, 1..=300",
        "300",
    ),
    (
        "WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS",
        "least remaining life for reuse",
        "60",
    ),
    (
        "WIDGET_SESSIONS_RATE_LIMIT",
        "requests/s per application per instance; 0 disables",
        "100",
    ),
    (
        "WIDGET_SESSIONS_RETENTION_DAYS",
        "ended sessions older than this are purged",
        "90",
    ),
    (
        "WIDGET_SESSIONS_BITCOIN_NETWORK",
        "mainnet, testnet, signet or regtest",
        "mainnet",
    ),
    (
        "WIDGET_SESSIONS_LEDGER",
        "override of the ledger table, CURRENCY:NETWORK,…",
        "SPEC table",
    ),
    (
        "WIDGET_SESSIONS_LOG_FORMAT",
        "json, pretty or auto (json when not a terminal)",
        "auto",
    ),
    (
        "WIDGET_SESSIONS_DB_MAX_CONNECTIONS",
        "database connections per instance",
        "16",
    ),
    (
        "WIDGET_SESSIONS_CONFIG_FILE",
        "optional KEY=VALUE file; the environment wins",
        "unset",
    ),
];

impl Config {
    /// Reads the process environment (and `WIDGET_SESSIONS_CONFIG_FILE`, if set).
    ///
    /// # Errors
    ///
    /// Every problem, with what to set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(path) = std::env::var("WIDGET_SESSIONS_CONFIG_FILE") {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(vec![format!(
                    "WIDGET_SESSIONS_CONFIG_FILE={path} cannot be read: {e}"
                )])
            })?;
            vars.extend(
                parse_env_file(&text).map_err(|e| ConfigError(vec![format!("{path}: {e}")]))?,
            );
        }
        vars.extend(std::env::vars());
        Self::from_vars(&vars)
    }

    /// Builds the configuration from a map of variables.
    ///
    /// # Errors
    ///
    /// Every problem, with what to set.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();

        let listen = match get("WIDGET_SESSIONS_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "WIDGET_SESSIONS_LISTEN={v:?} is not an address; use HOST:PORT, e.g. 0.0.0.0:8080"
                ));
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }),
        };
        let public_url = match get("WIDGET_SESSIONS_PUBLIC_URL") {
            None => Url::parse(&format!("http://{listen}")).ok(),
            Some(v) => match Url::parse(&v) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.query().is_none() =>
                {
                    Some(u)
                }
                _ => {
                    problems.push(format!(
                        "WIDGET_SESSIONS_PUBLIC_URL={v:?} must be an http(s) URL without a query, e.g. https://sessions.example.com"
                    ));
                    None
                }
            },
        };

        let database_url = get("DATABASE_URL");
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            problems.push("DATABASE_URL must be a postgres:// or postgresql:// URL".to_string());
        }
        let secret_key = get("WIDGET_SESSIONS_SECRET_KEY");
        if database_url.is_some() && secret_key.is_none() {
            problems.push(
                "WIDGET_SESSIONS_SECRET_KEY is required with DATABASE_URL (application secrets are sealed with it); \
                 generate one with `openssl rand -base64 32` and keep it safe"
                    .to_string(),
            );
        }
        if let Some(key) = &secret_key
            && let Err(e) = crate::security::SecretSealer::from_base64(key)
        {
            problems.push(format!("WIDGET_SESSIONS_SECRET_KEY: {e}"));
        }

        let upstream = upstream(&get, &mut problems);

        let secs = |name: &str, default: u64, problems: &mut Vec<String>| -> u64 {
            match get(name) {
                None => default,
                Some(v) => v.parse().unwrap_or_else(|_| {
                    problems.push(format!("{name}={v:?} must be a whole number"));
                    default
                }),
            }
        };
        let ttl = secs("WIDGET_SESSIONS_SESSION_TTL_SECS", 300, &mut problems);
        let min_remaining = secs(
            "WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS",
            60,
            &mut problems,
        );
        let policy = ReusePolicy::new(Duration::from_secs(ttl), Duration::from_secs(min_remaining))
            .unwrap_or_else(|e| {
                problems.push(format!(
                    "WIDGET_SESSIONS_SESSION_TTL_SECS / WIDGET_SESSIONS_REUSE_MIN_REMAINING_SECS: {e}"
                ));
                ReusePolicy::default()
            });
        let rate_limit = u32::try_from(secs("WIDGET_SESSIONS_RATE_LIMIT", 100, &mut problems))
            .unwrap_or_else(|_| {
                problems.push("WIDGET_SESSIONS_RATE_LIMIT is too large".to_string());
                100
            });
        let retention_days = secs("WIDGET_SESSIONS_RETENTION_DAYS", 90, &mut problems);
        if retention_days == 0 || retention_days > 36_500 {
            problems.push("WIDGET_SESSIONS_RETENTION_DAYS must be between 1 and 36500".to_string());
        }
        let db_max_connections = u32::try_from(secs(
            "WIDGET_SESSIONS_DB_MAX_CONNECTIONS",
            16,
            &mut problems,
        ))
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or_else(|| {
            problems
                .push("WIDGET_SESSIONS_DB_MAX_CONNECTIONS must be between 1 and 1000".to_string());
            16
        });

        let lease = secs("WIDGET_SESSIONS_CLAIM_LEASE_SECS", 30, &mut problems);
        let wait = secs("WIDGET_SESSIONS_CLAIM_WAIT_SECS", 25, &mut problems);
        let timeout_ms = secs("TRANSAK_TIMEOUT_MS", 5000, &mut problems);
        let retries = secs("TRANSAK_MAX_RETRIES", 2, &mut problems);
        if !(100..=300_000).contains(&timeout_ms) {
            problems.push("TRANSAK_TIMEOUT_MS must be between 100 and 300000".to_string());
        }
        if retries > 10 {
            problems.push("TRANSAK_MAX_RETRIES must be at most 10".to_string());
        }
        if wait == 0 || wait > 300 {
            problems.push("WIDGET_SESSIONS_CLAIM_WAIT_SECS must be between 1 and 300".to_string());
        }
        // A live minter must never lose its claim: the lease has to outlast the worst mint
        // (every attempt timing out, plus backoff of at most 2 s per retry).
        let worst_mint_ms = timeout_ms.saturating_mul(retries + 1) + 2_000 * retries;
        if lease.saturating_mul(1000) <= worst_mint_ms || lease > 3600 {
            problems.push(format!(
                "WIDGET_SESSIONS_CLAIM_LEASE_SECS={lease} must exceed the worst upstream call ({} s: TRANSAK_TIMEOUT_MS × (TRANSAK_MAX_RETRIES + 1) + backoff) and be at most 3600",
                worst_mint_ms.div_ceil(1000)
            ));
        }

        let bitcoin = match get("WIDGET_SESSIONS_BITCOIN_NETWORK") {
            None => BitcoinNetwork::Mainnet,
            Some(v) => v.parse().unwrap_or_else(|e| {
                problems.push(format!("WIDGET_SESSIONS_BITCOIN_NETWORK: {e}"));
                BitcoinNetwork::Mainnet
            }),
        };
        let ledger = match get("WIDGET_SESSIONS_LEDGER") {
            None => LedgerTable::default(),
            Some(v) => v.parse().unwrap_or_else(|e| {
                problems.push(format!(
                    "WIDGET_SESSIONS_LEDGER: {e} (expected CURRENCY:NETWORK pairs, e.g. BTC:BTC,USDC:ETH)"
                ));
                LedgerTable::default()
            }),
        };
        let log_format = match get("WIDGET_SESSIONS_LOG_FORMAT").as_deref() {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                problems.push(format!(
                    "WIDGET_SESSIONS_LOG_FORMAT={other:?} must be json, pretty or auto"
                ));
                LogFormat::Auto
            }
        };

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        let Some(public_url) = public_url else {
            return Err(ConfigError(vec![
                "WIDGET_SESSIONS_PUBLIC_URL is invalid".into(),
            ]));
        };
        Ok(Config {
            listen,
            public_url,
            database_url: database_url.map(SecretString::from),
            upstream,
            apps_file: get("WIDGET_SESSIONS_APPS_FILE").map(PathBuf::from),
            secret_key: secret_key.map(SecretString::from),
            policy,
            rate_limit,
            retention: Duration::from_secs(retention_days * 86_400),
            rules: Rules::new(ledger, bitcoin),
            log_format,
            db_max_connections,
            claims: app::ClaimSettings {
                lease: Duration::from_secs(lease),
                wait: Duration::from_secs(wait),
                ..app::ClaimSettings::default()
            },
            upstream_timeout: Duration::from_millis(timeout_ms),
            upstream_retries: u32::try_from(retries).unwrap_or(2),
        })
    }

    /// The public base without a trailing slash.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }
}

fn upstream(get: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Upstream {
    let key = get("TRANSAK_API_KEY");
    let secret = get("TRANSAK_API_SECRET");
    let referrer = get("TRANSAK_REFERRER_DOMAIN");
    let gateway_url = get("TRANSAK_GATEWAY_URL");
    let api_url = get("TRANSAK_API_URL");
    let environment = match get("TRANSAK_ENVIRONMENT") {
        Some(v) => match v.parse::<transak::Environment>() {
            Ok(e) => e,
            Err(_) => {
                problems.push(format!(
                    "TRANSAK_ENVIRONMENT={v:?} must be staging, production or emulator"
                ));
                return Upstream::InProcessEmulator;
            }
        },
        None if key.is_none() && secret.is_none() => transak::Environment::Emulator,
        None => {
            problems.push(
                "TRANSAK_ENVIRONMENT must be set (staging or production) when Transak credentials are given".to_string(),
            );
            return Upstream::InProcessEmulator;
        }
    };
    let parse_url = |name: &str, v: Option<String>, problems: &mut Vec<String>| {
        v.and_then(|v| match Url::parse(&v) {
            Ok(u) => Some(u),
            Err(e) => {
                problems.push(format!("{name}={v:?} is not a URL: {e}"));
                None
            }
        })
    };
    let extras = match get("TRANSAK_WIDGET_PARAMS") {
        None => serde_json::Map::new(),
        Some(v) => match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                problems.push(
                    "TRANSAK_WIDGET_PARAMS must be a JSON object, e.g. {\"themeColor\":\"000000\"}"
                        .to_string(),
                );
                serde_json::Map::new()
            }
        },
    };
    if environment == transak::Environment::Emulator && gateway_url.is_none() && api_url.is_none() {
        return Upstream::InProcessEmulator;
    }
    let mut require = |name: &str, v: Option<String>| {
        v.unwrap_or_else(|| {
            problems.push(format!(
                "{name} is required with TRANSAK_ENVIRONMENT={environment}"
            ));
            String::new()
        })
    };
    let (key, secret, referrer) = if environment == transak::Environment::Emulator {
        (
            key.unwrap_or_else(|| transak_emulator::DEFAULT_API_KEY.to_string()),
            secret.unwrap_or_else(|| transak_emulator::DEFAULT_API_SECRET.to_string()),
            referrer.unwrap_or_else(|| "localhost".to_string()),
        )
    } else {
        (
            require("TRANSAK_API_KEY", key),
            require("TRANSAK_API_SECRET", secret),
            require("TRANSAK_REFERRER_DOMAIN", referrer),
        )
    };
    if environment == transak::Environment::Emulator && (gateway_url.is_none() || api_url.is_none())
    {
        problems.push(
            "TRANSAK_GATEWAY_URL and TRANSAK_API_URL must both be set to use an external emulator (or neither, for the in-process one)"
                .to_string(),
        );
    }
    Upstream::Remote(Box::new(RemoteUpstream {
        environment,
        api_key: key,
        api_secret: SecretString::from(secret),
        referrer_domain: referrer,
        gateway_url: parse_url("TRANSAK_GATEWAY_URL", gateway_url, problems),
        api_url: parse_url("TRANSAK_API_URL", api_url, problems),
        extra_widget_params: extras,
    }))
}

/// Parses a `KEY=VALUE` file: blank lines and `#` comments ignored, optional `export `
/// prefix, values optionally in single or double quotes.
fn parse_env_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(c.public_base(), "http://127.0.0.1:8080");
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
    fn credentials_without_an_environment_are_refused() {
        let e = Config::from_vars(&vars(&[
            ("TRANSAK_API_KEY", "k"),
            ("TRANSAK_API_SECRET", "s"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("TRANSAK_ENVIRONMENT must be set"));
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
        assert_eq!(r.api_key, transak_emulator::DEFAULT_API_KEY);
        let e = Config::from_vars(&vars(&[
            ("TRANSAK_ENVIRONMENT", "emulator"),
            ("TRANSAK_GATEWAY_URL", "http://127.0.0.1:8090"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("must both be set"));
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
        assert_eq!(c.public_base(), "https://sessions.example.com");
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
}
