//! Configuration of the Transak gateway: which environment, the partner credentials, the
//! upstream bases, per-deployment widget extras and the timing policy.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

/// Per-attempt timeout of every upstream call, unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt on connection errors, timeouts and `5xx`, unless configured.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// The first backoff step; each retry doubles it (with jitter), unless configured.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest single backoff step, unless configured.
pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// Refresh the access token when less than this is left before it expires, unless configured.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);
/// How long one instance holds the refresh lease, unless configured.
pub const DEFAULT_REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How often an instance waiting for another one's refresh re-reads the token store.
pub const DEFAULT_TOKEN_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The `retry_after` of [`ports::GatewayError::Unavailable`] when the upstream sent no
/// `Retry-After` header.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The widget parameters this gateway always sets itself; configured extras may not name any
/// of them (compared case-insensitively).
pub const MANDATORY_WIDGET_PARAMS: [&str; 7] = [
    "apiKey",
    "referrerDomain",
    "cryptoCurrencyCode",
    "network",
    "walletAddress",
    "partnerOrderId",
    "partnerCustomerId",
];

const MAX_RETRIES_LIMIT: u32 = 10;
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_REFRESH_LEASE: Duration = Duration::from_secs(3600);
/// Transak's access tokens live 7 days; a margin of more than a day would refresh (and so
/// invalidate) them far too often.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

/// Which Transak deployment the gateway talks to.
///
/// ```
/// use transak::Environment;
/// assert_eq!("Staging".parse::<Environment>().unwrap(), Environment::Staging);
/// assert_eq!(Environment::Production.to_string(), "production");
/// assert!("prod-eu".parse::<Environment>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Transak's staging deployment (test money).
    Staging,
    /// Transak's production deployment.
    Production,
    /// The Transak emulator (local runs and tests); its URLs must be configured.
    Emulator,
}

impl Environment {
    /// The lowercase name: `staging`, `production` or `emulator`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Staging => "staging",
            Environment::Production => "production",
            Environment::Emulator => "emulator",
        }
    }

    /// The default base of the *Create Widget URL* API; `None` for the emulator.
    pub fn default_gateway_url(self) -> Option<Url> {
        match self {
            Environment::Staging => Url::parse("https://api-gateway-stg.transak.com").ok(),
            Environment::Production => Url::parse("https://api-gateway.transak.com").ok(),
            Environment::Emulator => None,
        }
    }

    /// The default base of the partner API (access-token refresh); `None` for the emulator.
    pub fn default_api_url(self) -> Option<Url> {
        match self {
            Environment::Staging => Url::parse("https://api-stg.transak.com").ok(),
            Environment::Production => Url::parse("https://api.transak.com").ok(),
            Environment::Emulator => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Environment`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Transak environment {0:?}: expected staging, production or emulator")]
pub struct UnknownEnvironment(String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    /// Parses `staging`, `production` or `emulator`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        [
            Environment::Staging,
            Environment::Production,
            Environment::Emulator,
        ]
        .into_iter()
        .find(|e| e.as_str().eq_ignore_ascii_case(trimmed))
        .ok_or_else(|| UnknownEnvironment(trimmed.chars().take(32).collect()))
    }
}

/// Why a [`TransakConfig`] (or the gateway built from it) could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required value is empty.
    #[error("Transak {field} must not be empty")]
    Empty {
        /// Which value.
        field: &'static str,
    },
    /// A value has characters it cannot carry (the secret's value is never shown).
    #[error("Transak {field} is invalid: {reason}")]
    InvalidValue {
        /// Which value.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The environment has no default for this URL, and none was configured.
    #[error("Transak {field} must be configured for the {environment} environment")]
    MissingUrl {
        /// `gateway_url` or `api_url`.
        field: &'static str,
        /// The environment.
        environment: Environment,
    },
    /// A configured URL cannot be used as an upstream base.
    #[error("Transak {field} is not usable: {reason}")]
    InvalidUrl {
        /// `gateway_url` or `api_url`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An extra widget parameter tries to set one the gateway sets itself.
    #[error(
        "extra widget parameter {key:?} would override a parameter the gateway sets itself \
         (apiKey, referrerDomain, cryptoCurrencyCode, network, walletAddress, partnerOrderId, \
         partnerCustomerId); remove it from the configuration"
    )]
    ReservedWidgetParam {
        /// The offending key.
        key: String,
    },
    /// A timing or retry setting is out of range.
    #[error("Transak setting {setting} is out of range: {reason}")]
    InvalidSetting {
        /// Which setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built (TLS initialisation).
    #[error("could not build the HTTP client for Transak: {0}")]
    HttpClient(String),
}

/// Everything the gateway needs to know about its upstream. Built with
/// [`TransakConfig::builder`], which checks every rule, so a `TransakConfig` is always usable.
///
/// `Debug` shows the API secret as `[REDACTED]`.
///
/// ```
/// use secrecy::SecretString;
/// use transak::{Environment, TransakConfig};
///
/// let config = TransakConfig::builder(
///     Environment::Staging,
///     "my-api-key",
///     SecretString::from("my-api-secret"),
///     "partner.example.com",
/// )
/// .extra_widget_param("productsAvailed", "SELL")
/// .build()
/// .unwrap();
/// assert_eq!(config.gateway_url().as_str(), "https://api-gateway-stg.transak.com/");
/// assert_eq!(config.max_retries(), 2);
/// assert!(!format!("{config:?}").contains("my-api-secret"));
///
/// // Extras cannot override what the gateway sets itself.
/// let err = TransakConfig::builder(
///     Environment::Staging, "k", SecretString::from("s"), "partner.example.com",
/// )
/// .extra_widget_param("walletAddress", "0xabc")
/// .build()
/// .unwrap_err();
/// assert!(err.to_string().contains("walletAddress"));
/// ```
#[derive(Clone, Debug)]
pub struct TransakConfig {
    environment: Environment,
    api_key: String,
    api_secret: SecretString,
    referrer_domain: String,
    gateway_url: Url,
    api_url: Url,
    extra_widget_params: Map<String, Value>,
    request_timeout: Duration,
    max_retries: u32,
    retry_base_delay: Duration,
    retry_max_delay: Duration,
    refresh_margin: Duration,
    refresh_lease: Duration,
    token_poll_interval: Duration,
}

impl TransakConfig {
    /// Starts a configuration with the mandatory values; everything else has a default.
    pub fn builder(
        environment: Environment,
        api_key: impl Into<String>,
        api_secret: SecretString,
        referrer_domain: impl Into<String>,
    ) -> TransakConfigBuilder {
        TransakConfigBuilder {
            environment,
            api_key: api_key.into(),
            api_secret,
            referrer_domain: referrer_domain.into(),
            gateway_url: None,
            api_url: None,
            extra_widget_params: Map::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            retry_max_delay: DEFAULT_RETRY_MAX_DELAY,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            refresh_lease: DEFAULT_REFRESH_LEASE,
            token_poll_interval: DEFAULT_TOKEN_POLL_INTERVAL,
        }
    }

    /// The environment.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The partner API key (public: it is part of every widget URL).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The partner API secret.
    pub fn api_secret(&self) -> &SecretString {
        &self.api_secret
    }

    /// The `referrerDomain` widget parameter.
    pub fn referrer_domain(&self) -> &str {
        &self.referrer_domain
    }

    /// The base of the *Create Widget URL* API.
    pub fn gateway_url(&self) -> &Url {
        &self.gateway_url
    }

    /// The base of the partner API (access-token refresh).
    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    /// Per-deployment widget parameters sent with every request (never a mandatory one).
    pub fn extra_widget_params(&self) -> &Map<String, Value> {
        &self.extra_widget_params
    }

    /// The timeout of each attempt of each upstream call.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Retries after the first attempt on connection errors, timeouts and `5xx`.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The first backoff step (doubled at every retry, jittered, capped).
    pub fn retry_base_delay(&self) -> Duration {
        self.retry_base_delay
    }

    /// The cap of one backoff step.
    pub fn retry_max_delay(&self) -> Duration {
        self.retry_max_delay
    }

    /// The access token is refreshed when less than this is left before it expires.
    pub fn refresh_margin(&self) -> Duration {
        self.refresh_margin
    }

    /// How long one instance holds the shared refresh lease.
    pub fn refresh_lease(&self) -> Duration {
        self.refresh_lease
    }

    /// How often an instance waiting for another one's refresh re-reads the token store.
    pub fn token_poll_interval(&self) -> Duration {
        self.token_poll_interval
    }

    /// The key of this upstream account in the shared access-token store:
    /// `"{environment}:{api_key}"`.
    pub fn token_account(&self) -> String {
        format!("{}:{}", self.environment, self.api_key)
    }

    /// The longest one upstream call can take: every attempt timing out, plus the backoff
    /// between them.
    pub fn worst_case_call(&self) -> Duration {
        worst_case_call(
            self.request_timeout,
            self.max_retries,
            self.retry_base_delay,
            self.retry_max_delay,
        )
    }

    /// [`TransakConfig::worst_case_call`] of a configuration with this per-attempt timeout,
    /// these retries and the default backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// use transak::TransakConfig;
    ///
    /// // 3 attempts of 5 s, plus backoff of 100 ms and 200 ms.
    /// assert_eq!(
    ///     TransakConfig::worst_case_call_with(Duration::from_secs(5), 2),
    ///     Duration::from_millis(15_300)
    /// );
    /// ```
    pub fn worst_case_call_with(request_timeout: Duration, max_retries: u32) -> Duration {
        worst_case_call(
            request_timeout,
            max_retries,
            DEFAULT_RETRY_BASE_DELAY,
            DEFAULT_RETRY_MAX_DELAY,
        )
    }

    /// The rule [`TransakConfigBuilder::build`] applies to the per-attempt timeout: more
    /// than zero and at most 5 minutes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] for `request_timeout`.
    pub fn check_request_timeout(timeout: Duration) -> Result<(), ConfigError> {
        if timeout.is_zero() || timeout > MAX_REQUEST_TIMEOUT {
            return Err(ConfigError::InvalidSetting {
                setting: "request_timeout",
                reason: format!(
                    "{timeout:?} must be more than zero and at most {MAX_REQUEST_TIMEOUT:?}"
                ),
            });
        }
        Ok(())
    }

    /// The rule [`TransakConfigBuilder::build`] applies to the retries: at most 10.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] for `max_retries`.
    pub fn check_max_retries(retries: u32) -> Result<(), ConfigError> {
        if retries > MAX_RETRIES_LIMIT {
            return Err(ConfigError::InvalidSetting {
                setting: "max_retries",
                reason: format!("{retries} is more than {MAX_RETRIES_LIMIT}"),
            });
        }
        Ok(())
    }

    /// The rules [`TransakConfigBuilder::build`] applies to the timing of a configuration
    /// with this per-attempt timeout and these retries, everything else at its default
    /// (among them: the refresh lease must outlast the worst-case call).
    ///
    /// ```
    /// use std::time::Duration;
    /// use transak::TransakConfig;
    ///
    /// assert!(TransakConfig::check_call_timing(Duration::from_secs(5), 2).is_ok());
    /// // 3 attempts of 10 s outlast the 30 s refresh lease.
    /// assert!(TransakConfig::check_call_timing(Duration::from_secs(10), 2).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`], as [`TransakConfigBuilder::build`] would return it.
    pub fn check_call_timing(
        request_timeout: Duration,
        max_retries: u32,
    ) -> Result<(), ConfigError> {
        Timing {
            request_timeout,
            max_retries,
            ..Timing::default()
        }
        .check()
    }

    /// The rule [`TransakConfigBuilder::build`] applies to the extra widget parameters: none
    /// may name a parameter the gateway sets itself ([`MANDATORY_WIDGET_PARAMS`], compared
    /// case-insensitively).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReservedWidgetParam`] naming the first such parameter.
    pub fn check_extra_widget_params(params: &Map<String, Value>) -> Result<(), ConfigError> {
        match params.keys().find(|key| {
            MANDATORY_WIDGET_PARAMS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(key.trim()))
        }) {
            Some(key) => Err(ConfigError::ReservedWidgetParam { key: key.clone() }),
            None => Ok(()),
        }
    }
}

/// The timing settings, checked together.
struct Timing {
    request_timeout: Duration,
    max_retries: u32,
    retry_base_delay: Duration,
    retry_max_delay: Duration,
    refresh_margin: Duration,
    refresh_lease: Duration,
    token_poll_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            retry_max_delay: DEFAULT_RETRY_MAX_DELAY,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            refresh_lease: DEFAULT_REFRESH_LEASE,
            token_poll_interval: DEFAULT_TOKEN_POLL_INTERVAL,
        }
    }
}

impl Timing {
    fn check(&self) -> Result<(), ConfigError> {
        TransakConfig::check_request_timeout(self.request_timeout)?;
        TransakConfig::check_max_retries(self.max_retries)?;
        let setting = |setting, reason: String| ConfigError::InvalidSetting { setting, reason };
        if self.retry_base_delay.is_zero() || self.retry_base_delay > self.retry_max_delay {
            return Err(setting(
                "retry_backoff",
                format!(
                    "the base ({:?}) must be positive and at most the cap ({:?})",
                    self.retry_base_delay, self.retry_max_delay
                ),
            ));
        }
        if self.refresh_margin > MAX_REFRESH_MARGIN {
            return Err(setting(
                "refresh_margin",
                format!(
                    "{:?} is more than {MAX_REFRESH_MARGIN:?} (tokens live 7 days, and every \
                     refresh invalidates the previous token)",
                    self.refresh_margin
                ),
            ));
        }
        let worst = worst_case_call(
            self.request_timeout,
            self.max_retries,
            self.retry_base_delay,
            self.retry_max_delay,
        );
        if self.refresh_lease > MAX_REFRESH_LEASE {
            return Err(setting(
                "refresh_lease",
                format!(
                    "{:?} is more than {MAX_REFRESH_LEASE:?} (a dead holder blocks refreshes \
                     that long)",
                    self.refresh_lease
                ),
            ));
        }
        if self.refresh_lease <= worst {
            return Err(setting(
                "refresh_lease",
                format!(
                    "{:?} must be longer than the worst-case refresh call ({worst:?}: every \
                     attempt timing out, plus backoff), or another instance could refresh \
                     while this one still is",
                    self.refresh_lease
                ),
            ));
        }
        if self.token_poll_interval.is_zero() || self.token_poll_interval >= self.refresh_lease {
            return Err(setting(
                "token_poll_interval",
                format!(
                    "{:?} must be positive and shorter than the refresh lease",
                    self.token_poll_interval
                ),
            ));
        }
        Ok(())
    }
}

fn worst_case_call(timeout: Duration, retries: u32, base: Duration, cap: Duration) -> Duration {
    let attempts = timeout.saturating_mul(retries.saturating_add(1));
    (0..retries).fold(attempts, |total, retry| {
        total.saturating_add(backoff_cap(base, cap, retry))
    })
}

/// The un-jittered backoff before retry number `retry` (0-based): `base · 2^retry`, capped.
pub(crate) fn backoff_cap(base: Duration, cap: Duration, retry: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(retry)).min(cap)
}

/// Builds a [`TransakConfig`]; see there.
#[derive(Clone, Debug)]
pub struct TransakConfigBuilder {
    environment: Environment,
    api_key: String,
    api_secret: SecretString,
    referrer_domain: String,
    gateway_url: Option<Url>,
    api_url: Option<Url>,
    extra_widget_params: Map<String, Value>,
    request_timeout: Duration,
    max_retries: u32,
    retry_base_delay: Duration,
    retry_max_delay: Duration,
    refresh_margin: Duration,
    refresh_lease: Duration,
    token_poll_interval: Duration,
}

impl TransakConfigBuilder {
    /// Overrides the *Create Widget URL* base (required for the emulator).
    pub fn gateway_url(mut self, url: Url) -> Self {
        self.gateway_url = Some(url);
        self
    }

    /// Overrides the partner API base (required for the emulator).
    pub fn api_url(mut self, url: Url) -> Self {
        self.api_url = Some(url);
        self
    }

    /// Adds one per-deployment widget parameter (e.g. `productsAvailed`, `themeColor`,
    /// `redirectURL`). A mandatory one is refused by [`TransakConfigBuilder::build`].
    pub fn extra_widget_param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra_widget_params.insert(key.into(), value.into());
        self
    }

    /// Replaces all per-deployment widget parameters.
    pub fn extra_widget_params(mut self, params: Map<String, Value>) -> Self {
        self.extra_widget_params = params;
        self
    }

    /// Per-attempt timeout (default 5 s; at most 5 minutes).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 2; at most 10).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// First backoff step (default 100 ms) and the cap of one step (default 2 s).
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry_base_delay = base;
        self.retry_max_delay = max;
        self
    }

    /// Refresh margin (default 10 minutes; at most a day).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Refresh lease (default 30 s; at most an hour); must outlast the worst-case refresh
    /// call.
    pub fn refresh_lease(mut self, lease: Duration) -> Self {
        self.refresh_lease = lease;
        self
    }

    /// How often a waiting instance re-reads the token store (default 50 ms).
    pub fn token_poll_interval(mut self, interval: Duration) -> Self {
        self.token_poll_interval = interval;
        self
    }

    /// Checks every rule and builds the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`] / [`ConfigError::InvalidValue`] for an unusable API key, secret
    /// or referrer domain; [`ConfigError::MissingUrl`] when the emulator environment lacks a
    /// URL; [`ConfigError::InvalidUrl`] for a base that is not `http(s)://host[/path]` (or
    /// plain `http` in production); [`ConfigError::ReservedWidgetParam`] when an extra
    /// parameter names a mandatory one; [`ConfigError::InvalidSetting`] for a timing setting
    /// out of range (including a refresh lease shorter than the worst-case refresh call).
    pub fn build(self) -> Result<TransakConfig, ConfigError> {
        let api_key = self.api_key.trim().to_string();
        check_token_like("api_key", &api_key)?;
        let referrer_domain = self.referrer_domain.trim().to_string();
        check_token_like("referrer_domain", &referrer_domain)?;
        let secret = self.api_secret.expose_secret();
        if secret.is_empty() {
            return Err(ConfigError::Empty {
                field: "api_secret",
            });
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidValue {
                field: "api_secret",
                reason: "it must consist of visible ASCII characters only (it is sent as an HTTP header)",
            });
        }

        let gateway_url = base_url(
            "gateway_url",
            self.environment,
            self.gateway_url
                .or_else(|| self.environment.default_gateway_url()),
        )?;
        let api_url = base_url(
            "api_url",
            self.environment,
            self.api_url.or_else(|| self.environment.default_api_url()),
        )?;

        TransakConfig::check_extra_widget_params(&self.extra_widget_params)?;
        Timing {
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            retry_base_delay: self.retry_base_delay,
            retry_max_delay: self.retry_max_delay,
            refresh_margin: self.refresh_margin,
            refresh_lease: self.refresh_lease,
            token_poll_interval: self.token_poll_interval,
        }
        .check()?;

        Ok(TransakConfig {
            environment: self.environment,
            api_key,
            api_secret: self.api_secret,
            referrer_domain,
            gateway_url,
            api_url,
            extra_widget_params: self.extra_widget_params,
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            retry_base_delay: self.retry_base_delay,
            retry_max_delay: self.retry_max_delay,
            refresh_margin: self.refresh_margin,
            refresh_lease: self.refresh_lease,
            token_poll_interval: self.token_poll_interval,
        })
    }
}

fn check_token_like(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Empty { field });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::InvalidValue {
            field,
            reason: "it must consist of visible ASCII characters only",
        });
    }
    Ok(())
}

fn base_url(
    field: &'static str,
    environment: Environment,
    url: Option<Url>,
) -> Result<Url, ConfigError> {
    let url = url.ok_or(ConfigError::MissingUrl { field, environment })?;
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        field,
        reason: reason.to_string(),
    };
    match url.scheme() {
        "https" => {}
        "http" if environment == Environment::Production => {
            return Err(invalid(
                "production needs https (the API secret and access tokens travel in headers)",
            ));
        }
        "http" => {}
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err(invalid("it must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment"));
    }
    Ok(url)
}

/// `base` with `path` (segments separated by `/`) appended to its own path, keeping any
/// prefix the base has (`http://proxy/transak` + `api/v2/auth/session`).
pub(crate) fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
        segments.extend(path.split('/'));
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn builder(environment: Environment) -> TransakConfigBuilder {
        TransakConfig::builder(
            environment,
            "key",
            SecretString::from("top-secret-value"),
            "partner.example.com",
        )
    }

    #[test]
    fn defaults_per_environment() {
        let staging = builder(Environment::Staging).build().unwrap();
        assert_eq!(
            staging.gateway_url().as_str(),
            "https://api-gateway-stg.transak.com/"
        );
        assert_eq!(staging.api_url().as_str(), "https://api-stg.transak.com/");
        assert_eq!(staging.request_timeout(), Duration::from_secs(5));
        assert_eq!(staging.max_retries(), 2);
        assert_eq!(staging.refresh_margin(), Duration::from_secs(600));
        assert_eq!(staging.refresh_lease(), Duration::from_secs(30));
        assert_eq!(staging.token_account(), "staging:key");

        let production = builder(Environment::Production).build().unwrap();
        assert_eq!(
            production.gateway_url().as_str(),
            "https://api-gateway.transak.com/"
        );
        assert_eq!(production.api_url().as_str(), "https://api.transak.com/");
    }

    #[test]
    fn emulator_needs_both_urls() {
        let err = builder(Environment::Emulator).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingUrl {
                field: "gateway_url",
                environment: Environment::Emulator
            }
        );
        let err = builder(Environment::Emulator)
            .gateway_url(Url::parse("http://127.0.0.1:9").unwrap())
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::MissingUrl {
                field: "api_url",
                ..
            }
        ));
        let ok = builder(Environment::Emulator)
            .gateway_url(Url::parse("http://127.0.0.1:9").unwrap())
            .api_url(Url::parse("http://127.0.0.1:9").unwrap())
            .build()
            .unwrap();
        assert_eq!(ok.token_account(), "emulator:key");
    }

    #[test]
    fn environment_parses_case_insensitively() {
        for (s, e) in [
            ("staging", Environment::Staging),
            ("PRODUCTION", Environment::Production),
            (" Emulator ", Environment::Emulator),
        ] {
            assert_eq!(s.parse::<Environment>().unwrap(), e);
            assert_eq!(e.to_string().parse::<Environment>().unwrap(), e);
        }
        let err = "prod".parse::<Environment>().unwrap_err();
        assert!(err.to_string().contains("staging, production or emulator"));
    }

    #[test]
    fn extras_cannot_override_mandatory_params() {
        for key in MANDATORY_WIDGET_PARAMS {
            let err = builder(Environment::Staging)
                .extra_widget_param(key, "x")
                .build()
                .unwrap_err();
            assert_eq!(err, ConfigError::ReservedWidgetParam { key: key.into() });
        }
        // Case variants are refused too: they would confuse the upstream.
        let err = builder(Environment::Staging)
            .extra_widget_param("APIKEY", "x")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("\"APIKEY\""));
        let ok = builder(Environment::Staging)
            .extra_widget_param("productsAvailed", "SELL")
            .extra_widget_param("themeColor", "000000")
            .extra_widget_param("redirectURL", "https://partner.example.com/done")
            .build()
            .unwrap();
        assert_eq!(ok.extra_widget_params().len(), 3);
    }

    #[test]
    fn debug_hides_the_secret() {
        let b = builder(Environment::Staging);
        assert!(!format!("{b:?}").contains("top-secret-value"));
        let config = b.build().unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("top-secret-value"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }

    #[test]
    fn bad_urls_are_refused() {
        let cases = [
            ("ftp://example.com", "scheme"),
            ("https://user:pw@example.com", "credentials"),
            ("https://example.com/?a=b", "query"),
            ("mailto:someone@example.com", "scheme"),
        ];
        for (url, reason) in cases {
            let err = builder(Environment::Staging)
                .gateway_url(Url::parse(url).unwrap())
                .build()
                .unwrap_err();
            assert!(err.to_string().contains(reason), "{url}: {err}");
        }
        let err = builder(Environment::Production)
            .api_url(Url::parse("http://api.transak.com").unwrap())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn values_are_checked() {
        let empty_key = TransakConfig::builder(
            Environment::Staging,
            " ",
            SecretString::from("s"),
            "partner.example.com",
        )
        .build()
        .unwrap_err();
        assert_eq!(empty_key, ConfigError::Empty { field: "api_key" });
        let empty_secret = TransakConfig::builder(
            Environment::Staging,
            "k",
            SecretString::from(""),
            "partner.example.com",
        )
        .build()
        .unwrap_err();
        assert_eq!(
            empty_secret,
            ConfigError::Empty {
                field: "api_secret"
            }
        );
        let bad_secret = TransakConfig::builder(
            Environment::Staging,
            "k",
            SecretString::from("line\nbreak-secret"),
            "partner.example.com",
        )
        .build()
        .unwrap_err();
        assert!(!bad_secret.to_string().contains("break-secret"));
    }

    #[test]
    fn timing_settings_are_checked() {
        let err = builder(Environment::Staging)
            .request_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidSetting {
                setting: "request_timeout",
                ..
            }
        ));
        let err = builder(Environment::Staging)
            .max_retries(11)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidSetting {
                setting: "max_retries",
                ..
            }
        ));
        // 3 attempts × 10 s + backoff > 30 s lease.
        let err = builder(Environment::Staging)
            .request_timeout(Duration::from_secs(10))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidSetting {
                setting: "refresh_lease",
                ..
            }
        ));
        let err = builder(Environment::Staging)
            .refresh_lease(Duration::from_secs(u64::MAX))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidSetting {
                setting: "refresh_lease",
                ..
            }
        ));
        let err = builder(Environment::Staging)
            .refresh_margin(Duration::from_secs(2 * 24 * 3600))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidSetting {
                setting: "refresh_margin",
                ..
            }
        ));
    }

    #[test]
    fn worst_case_adds_backoff() {
        let config = builder(Environment::Staging).build().unwrap();
        // 3 × 5 s + 100 ms + 200 ms.
        assert_eq!(config.worst_case_call(), Duration::from_millis(15_300));
        // The associated function is the same formula, for the default backoff.
        let tuned = builder(Environment::Staging)
            .request_timeout(Duration::from_millis(700))
            .max_retries(7)
            .build()
            .unwrap();
        assert_eq!(
            TransakConfig::worst_case_call_with(Duration::from_millis(700), 7),
            tuned.worst_case_call()
        );
        assert_eq!(
            backoff_cap(Duration::from_millis(100), Duration::from_secs(2), 10),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn endpoints_keep_base_paths() {
        let base = Url::parse("https://api-gateway-stg.transak.com").unwrap();
        assert_eq!(
            endpoint(&base, "api/v2/auth/session").as_str(),
            "https://api-gateway-stg.transak.com/api/v2/auth/session"
        );
        let prefixed = Url::parse("http://127.0.0.1:8080/transak/").unwrap();
        assert_eq!(
            endpoint(&prefixed, "partners/api/v2/refresh-token").as_str(),
            "http://127.0.0.1:8080/transak/partners/api/v2/refresh-token"
        );
    }
}
