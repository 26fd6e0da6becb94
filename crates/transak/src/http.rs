//! One upstream call with a per-attempt timeout and bounded, jittered retries.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ports::{Clock, GatewayError};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::config::{DEFAULT_RETRY_AFTER, TransakConfig, backoff_cap};

/// A `Retry-After` longer than this is capped (a misbehaving upstream must not tell callers
/// to go away for a day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A response the retry loop does not retry: anything but `5xx` and `408`.
pub(crate) struct Response {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Sends requests with the configured timeout and retry policy.
pub(crate) struct Transport {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
}

enum AttemptFailure {
    /// A `5xx`/`408` answer.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection error, timeout, broken body.
    Transport(String),
}

impl Transport {
    pub(crate) fn new(
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
        config: &TransakConfig,
    ) -> Self {
        Self {
            client,
            clock,
            timeout: config.request_timeout(),
            max_retries: config.max_retries(),
            base_delay: config.retry_base_delay(),
            max_delay: config.retry_max_delay(),
        }
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `build()` up to `max_retries + 1` times: connection errors, timeouts, `5xx` and
    /// `408` are retried after a jittered exponential backoff. A `5xx` whose `Retry-After`
    /// asks for longer than one backoff step is not retried: the caller gets
    /// [`GatewayError::Unavailable`] with that delay at once.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Unavailable`] when every attempt failed that way;
    /// [`GatewayError::Unexpected`] when the request could not even be built.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, GatewayError> {
        let attempts = self.max_retries.saturating_add(1);
        let mut last_retry_after = None;
        let mut last_reason = String::new();
        for attempt in 0..attempts {
            let failure = match self.attempt(&build).await {
                Ok(response) => return Ok(response),
                Err(Ok(failure)) => failure,
                Err(Err(fatal)) => return Err(fatal),
            };
            let (reason, retry_after) = match failure {
                AttemptFailure::Status {
                    status,
                    retry_after,
                } => (format!("upstream answered {status}"), retry_after),
                AttemptFailure::Transport(reason) => (reason, None),
            };
            last_reason = reason;
            last_retry_after = retry_after;
            if let Some(wait) = retry_after.filter(|wait| *wait > self.max_delay) {
                return Err(GatewayError::Unavailable {
                    retry_after: wait,
                    reason: format!("{operation}: {last_reason}, retry after {wait:?}"),
                });
            }
            if attempt + 1 < attempts {
                let delay = jittered_backoff(self.base_delay, self.max_delay, attempt)
                    .max(retry_after.unwrap_or_default());
                tracing::warn!(
                    operation,
                    attempt = attempt + 1,
                    reason = %last_reason,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "upstream call failed, retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
        tracing::warn!(operation, attempts, reason = %last_reason, "upstream unavailable");
        Err(GatewayError::Unavailable {
            retry_after: last_retry_after
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .max(Duration::from_secs(1)),
            reason: format!("{operation}: {last_reason} ({attempts} attempts)"),
        })
    }

    /// `Ok` for a final answer; `Err(Ok)` for a retryable failure; `Err(Err)` for a fatal one.
    async fn attempt(
        &self,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, Result<AttemptFailure, GatewayError>> {
        let request = build().timeout(self.timeout);
        #[cfg(feature = "otel")]
        let request = request.headers(crate::otel::trace_headers());
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Err(self.classify(&err)),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), self.clock.now());
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            // The body of a failed answer is not needed; dropping it closes the connection.
            return Err(Ok(AttemptFailure::Status {
                status,
                retry_after,
            }));
        }
        match response.bytes().await {
            Ok(body) => Ok(Response {
                status,
                retry_after,
                body: body.into(),
            }),
            Err(err) => Err(self.classify(&err)),
        }
    }

    fn classify(&self, err: &reqwest::Error) -> Result<AttemptFailure, GatewayError> {
        if err.is_builder() {
            return Err(GatewayError::Unexpected(format!(
                "could not build the upstream request: {}",
                root_cause(err)
            )));
        }
        let reason = if err.is_timeout() {
            format!("no answer within {:?}", self.timeout)
        } else if err.is_connect() {
            format!("could not connect: {}", root_cause(err))
        } else if err.is_body() || err.is_decode() {
            format!(
                "the connection broke while reading the answer: {}",
                root_cause(err)
            )
        } else {
            format!("the request failed: {}", root_cause(err))
        };
        Ok(AttemptFailure::Transport(reason))
    }
}

/// Jittered exponential backoff before retry number `retry` (0-based): uniformly between
/// half and all of `base · 2^retry`, capped at `max`.
fn jittered_backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let cap = backoff_cap(base, max, retry);
    let half = cap / 2;
    let jitter_us = u64::try_from((cap - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(rand::rng().random_range(0..=jitter_us))
}

/// The innermost cause of a reqwest error. reqwest's own `Display` names the URL; the causes
/// below it (hyper, io) do not.
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    match innermost {
        Some(c) => c.to_string().chars().take(200).collect(),
        // No cause: name the kind only (reqwest's own message carries the URL).
        None => reqwest_kind(err).to_string(),
    }
}

fn reqwest_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection error"
    } else if err.is_request() {
        "request error"
    } else if err.is_body() {
        "body error"
    } else if err.is_decode() {
        "decode error"
    } else {
        "error"
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, capped at an hour.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("30"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:42 GMT"), now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("999999"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(350);
        for _ in 0..200 {
            let first = jittered_backoff(base, max, 0);
            assert!(
                first >= Duration::from_millis(50) && first <= base,
                "{first:?}"
            );
            let second = jittered_backoff(base, max, 1);
            assert!(
                second >= Duration::from_millis(100) && second <= Duration::from_millis(200),
                "{second:?}"
            );
            let capped = jittered_backoff(base, max, 8);
            assert!(
                capped >= Duration::from_millis(175) && capped <= max,
                "{capped:?}"
            );
        }
    }
}
