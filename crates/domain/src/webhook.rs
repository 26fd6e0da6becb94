//! Webhook rules: which URLs a partner may register ([`WebhookUrl`]), which addresses count
//! as public ([`is_public_address`]), when a failed delivery is tried again
//! ([`RetrySchedule`]), and how long a rotated-out secret keeps signing
//! ([`PreviousSecretLifetime`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use url::{Host, Url};

/// Why a webhook URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Not a usable URL at all: malformed, another scheme, credentials in it, too long.
    #[error("the webhook URL {0}")]
    Invalid(&'static str),
    /// It points at a loopback, private, link-local or otherwise non-public address (an IP
    /// address, or `localhost`, named in the URL itself).
    #[error("the webhook URL points at {0}, which is not a public address")]
    NotPublic(String),
    /// Its host name does not resolve to public addresses only: it resolves to a non-public
    /// address, or does not resolve at all. One refusal for both, with no detail, so that
    /// registering URLs cannot be used to learn which internal names exist.
    #[error("the webhook URL's host does not resolve to public addresses only")]
    HostNotPublic,
}

/// A webhook endpoint's URL that passed the rules a URL can be checked against without
/// resolving its host: `https` (or `http` where private networks are allowed), a host, no
/// credentials, port 443 or a port from 1024 up (also 80 where private networks, and so
/// `http`, are allowed), and — for an IP address or `localhost` — a public address unless
/// private networks are allowed. Whether a *name* resolves to public addresses is checked by the
/// sender, at registration and at every delivery.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl(Url);

/// Only the origin: a URL's path or query may carry the partner's own token.
impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/…)", self.origin())
    }
}

impl WebhookUrl {
    /// The longest URL accepted.
    pub const MAX_LEN: usize = 2048;

    /// Checks `s`. `allow_private` also allows `http` and non-public addresses.
    ///
    /// ```
    /// use domain::{WebhookUrl, WebhookUrlError};
    /// assert!(WebhookUrl::parse("https://hooks.example.com/widget", false).is_ok());
    /// assert!(matches!(WebhookUrl::parse("http://hooks.example.com/", false), Err(WebhookUrlError::Invalid(_))));
    /// assert!(matches!(WebhookUrl::parse("https://10.0.0.7/", false), Err(WebhookUrlError::NotPublic(_))));
    /// assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
    /// assert!(matches!(WebhookUrl::parse("https://hooks.example.com:22/", false), Err(WebhookUrlError::Invalid(_))));
    /// ```
    pub fn parse(s: &str, allow_private: bool) -> Result<Self, WebhookUrlError> {
        if s.len() > Self::MAX_LEN {
            return Err(WebhookUrlError::Invalid("is longer than 2048 characters"));
        }
        let url = Url::parse(s).map_err(|_| WebhookUrlError::Invalid("is not a valid URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            "http" => return Err(WebhookUrlError::Invalid("must use https")),
            _ => return Err(WebhookUrlError::Invalid("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Invalid("must not contain credentials"));
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Invalid("must not have a fragment"));
        }
        // Ports below 1024 are other services' (ssh, smtp, …): a webhook must not be a way
        // to talk to them.
        let port = url.port_or_known_default().unwrap_or(0);
        if port < 1024 && port != 443 && !(port == 80 && allow_private) {
            return Err(WebhookUrlError::Invalid(if allow_private {
                "must use port 443, port 80 or a port from 1024 up"
            } else {
                "must use port 443 or a port from 1024 up"
            }));
        }
        match url.host() {
            None => return Err(WebhookUrlError::Invalid("has no host")),
            Some(_) if allow_private => {}
            Some(Host::Ipv4(ip)) => public(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => public(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(WebhookUrlError::NotPublic(name));
                }
            }
        }
        Ok(Self(url))
    }

    /// A URL a store kept: it passed [`WebhookUrl::parse`] when it was registered, so it is
    /// read back as it is, without the registration rules again — a rule added later (the
    /// port rule, say) must not make an endpoint registered before it unreadable, which
    /// would fail every claim of deliveries that includes one of its. Delivery still checks
    /// every address it connects to.
    ///
    /// ```
    /// use domain::WebhookUrl;
    /// assert!(WebhookUrl::parse("https://hooks.example.com:444/", true).is_err());
    /// assert!(WebhookUrl::stored("https://hooks.example.com:444/").is_ok());
    /// assert!(WebhookUrl::stored("not a url").is_err());
    /// ```
    pub fn stored(s: &str) -> Result<Self, WebhookUrlError> {
        if s.len() > Self::MAX_LEN {
            return Err(WebhookUrlError::Invalid("is longer than 2048 characters"));
        }
        let url = Url::parse(s).map_err(|_| WebhookUrlError::Invalid("is not a valid URL"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(WebhookUrlError::Invalid("must be an https URL"));
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Scheme, host and port only, for logs: a path or query may carry a partner's token
    /// (many webhook URLs do).
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn public(ip: IpAddr) -> Result<(), WebhookUrlError> {
    if is_public_address(ip) {
        Ok(())
    } else {
        Err(WebhookUrlError::NotPublic(ip.to_string()))
    }
}

/// Whether `ip` is a public unicast address a webhook may be delivered to: not loopback,
/// private, shared (CGNAT), link-local, unspecified, broadcast, multicast, documentation,
/// benchmarking or reserved; IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses
/// are judged by the IPv4 address they carry. (Written out here because the standard
/// library's `is_global` is not stable.)
///
/// ```
/// use domain::is_public_address;
/// assert!(is_public_address("93.184.216.34".parse().unwrap()));
/// assert!(!is_public_address("127.0.0.1".parse().unwrap()));
/// assert!(!is_public_address("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(!is_public_address("fd00::1".parse().unwrap()));
/// ```
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", unspecified
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) — also covers :: and ::1.
    if s[..6] == [0; 6] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return s[6] != 0 && is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96): the IPv4 address it reaches.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    // 6to4 (2002::/16): the IPv4 address it embeds.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return is_public_v4(v4);
    }
    !((s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID, …)
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only
        || s[0] < 0x2000 // not in global unicast 2000::/3 …
        || s[0] >= 0x4000) // … either side
}

/// How long the secret an endpoint rotation replaces keeps signing deliveries alongside the
/// new one: 0 (it stops at once) to 24 hours, 24 hours by default.
///
/// ```
/// use domain::PreviousSecretLifetime;
/// assert_eq!(PreviousSecretLifetime::default().as_secs(), 86_400);
/// assert_eq!(PreviousSecretLifetime::from_secs(0).unwrap().as_secs(), 0);
/// assert!(PreviousSecretLifetime::from_secs(86_401).is_err());
/// assert!(PreviousSecretLifetime::from_secs(-1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreviousSecretLifetime(u32);

/// A previous secret's lifetime outside 0–86,400 seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("previousSecretExpiresInSecs must be a whole number of seconds from 0 to 86400")]
pub struct InvalidPreviousSecretLifetime;

impl crate::RuleViolation for InvalidPreviousSecretLifetime {
    fn code(&self) -> crate::ErrorCode {
        crate::ErrorCode::OutOfRange
    }
}

impl PreviousSecretLifetime {
    /// The longest (and default) lifetime, in seconds: 24 hours.
    pub const MAX_SECS: u32 = 86_400;
    /// The replaced secret stops signing at once.
    pub const NONE: Self = Self(0);

    /// `secs` seconds, if within 0–[`Self::MAX_SECS`].
    pub fn from_secs(secs: i64) -> Result<Self, InvalidPreviousSecretLifetime> {
        u32::try_from(secs)
            .ok()
            .filter(|s| *s <= Self::MAX_SECS)
            .map(Self)
            .ok_or(InvalidPreviousSecretLifetime)
    }

    /// In seconds.
    pub fn as_secs(self) -> u32 {
        self.0
    }

    /// As a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl Default for PreviousSecretLifetime {
    fn default() -> Self {
        Self(Self::MAX_SECS)
    }
}

/// When a failed delivery is tried again.
///
/// The default: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h after each failed attempt, then every
/// 2 h, until 24 h after the event; then the delivery has failed. A configured list is the
/// whole schedule: one retry after each delay, then failed. Each delay is varied by up to
/// ±10 % (jitter), so that deliveries that failed together do not retry together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// After the listed delays: retry every `.0`, while within `.1` of the event.
    then_every: Option<(Duration, Duration)>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: [5, 30, 120, 600, 1800, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            then_every: Some((Duration::from_secs(7200), Duration::from_secs(24 * 3600))),
        }
    }
}

impl FromStr for RetrySchedule {
    type Err = InvalidRetrySchedule;

    /// See [`RetrySchedule::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// In words: `5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h until 24 h after the
/// event` for the default.
///
/// ```
/// use domain::RetrySchedule;
/// assert_eq!(
///     RetrySchedule::default().to_string(),
///     "5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h until 24 h after the event"
/// );
/// assert_eq!(RetrySchedule::parse("5,90").unwrap().to_string(), "5 s, 90 s, then failed");
/// ```
impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn words(d: Duration) -> String {
            match d.as_secs() {
                s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
                s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
                s => format!("{s} s"),
            }
        }
        let delays: Vec<String> = self.delays.iter().map(|d| words(*d)).collect();
        f.write_str(&delays.join(", "))?;
        match self.then_every {
            Some((every, window)) => write!(
                f,
                ", then every {} until {} after the event",
                words(every),
                words(window)
            ),
            None => f.write_str(", then failed"),
        }
    }
}

/// A retry schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a retry schedule is a comma-separated list of 1 to 50 delays in seconds, each 1 to 86400, e.g. 5,30,120"
)]
pub struct InvalidRetrySchedule;

impl RetrySchedule {
    /// Exactly these delays: one retry after each, then failed.
    pub fn fixed(delays: Vec<Duration>) -> Result<Self, InvalidRetrySchedule> {
        if delays.is_empty()
            || delays.len() > 50
            || delays
                .iter()
                .any(|d| d.is_zero() || *d > Duration::from_secs(86_400))
        {
            return Err(InvalidRetrySchedule);
        }
        Ok(Self {
            delays,
            then_every: None,
        })
    }

    /// Parses `5,30,120` (seconds); see [`RetrySchedule::fixed`].
    pub fn parse(s: &str) -> Result<Self, InvalidRetrySchedule> {
        let delays = s
            .split(',')
            .map(|part| part.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| InvalidRetrySchedule)?;
        Self::fixed(delays)
    }

    /// After `attempts` failed attempts (1 for the first) of a delivery of an event created
    /// at `event_at`, the last one ending at `now`: when to try again, or `None` when the
    /// delivery has failed for good. `jitter` in `[-1, 1]` (from a random source) varies the
    /// delay by up to ±10 %.
    pub fn next_attempt(
        &self,
        event_at: DateTime<Utc>,
        attempts: u32,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let index = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        let delay = match (self.delays.get(index), self.then_every) {
            (Some(d), _) => *d,
            (None, Some((every, _))) => every,
            (None, None) => return None,
        };
        let factor = 1.0 + 0.1 * jitter.clamp(-1.0, 1.0);
        let delay = Duration::from_secs_f64(delay.as_secs_f64() * factor);
        let next = now + TimeDelta::from_std(delay).ok()?;
        if let Some((_, window)) = self.then_every
            && next > event_at + TimeDelta::from_std(window).ok()?
        {
            return None;
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_and_non_public_addresses() {
        for s in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:2800:220:1:248:1893:25c8:1946",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
        ] {
            assert!(is_public_address(ip(s)), "{s} is public");
        }
        for s in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254", // cloud metadata
            "100.64.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2001:db8::1",
        ] {
            assert!(!is_public_address(ip(s)), "{s} is not public");
        }
    }

    #[test]
    fn webhook_urls() {
        let ok = WebhookUrl::parse("https://hooks.example.com:8443/T0k3n/a?b=c", false).unwrap();
        assert_eq!(ok.origin(), "https://hooks.example.com:8443");
        assert_eq!(
            format!("{ok:?}"),
            "WebhookUrl(https://hooks.example.com:8443/…)"
        );
        for (s, not_public) in [
            ("ftp://hooks.example.com/", false),
            ("http://hooks.example.com/", false),
            ("https://user:pw@hooks.example.com/", false),
            ("https://hooks.example.com/#x", false),
            ("not a url", false),
            ("https://127.0.0.1/", true),
            ("https://[::1]/", true),
            ("https://[::ffff:127.0.0.1]/", true),
            ("https://[fd12::1]/", true),
            ("https://10.0.0.1/", true),
            ("https://localhost/", true),
            ("https://api.localhost./", true),
            ("https://2130706433/", true), // 127.0.0.1 as a number
            ("https://0x7f.1/", true),
        ] {
            let e = WebhookUrl::parse(s, false).unwrap_err();
            assert_eq!(
                matches!(e, WebhookUrlError::NotPublic(_)),
                not_public,
                "{s}: {e}"
            );
        }
        assert!(WebhookUrl::parse("http://localhost:9000/", true).is_ok());
        // Ports: 443 and 1024 up; 80 only where `http` is allowed.
        for (s, allow_private) in [
            ("https://hooks.example.com/", false),
            ("https://hooks.example.com:443/", false),
            ("https://hooks.example.com:1024/", false),
            ("https://hooks.example.com:8443/", false),
            ("https://hooks.example.com:65535/", false),
            ("http://127.0.0.1/", true),
            ("http://127.0.0.1:80/", true),
            ("https://127.0.0.1:80/", true),
            ("http://127.0.0.1:443/", true),
            ("http://127.0.0.1:8080/", true),
        ] {
            assert!(WebhookUrl::parse(s, allow_private).is_ok(), "{s}");
        }
        for (s, allow_private) in [
            ("https://hooks.example.com:22/", false),
            ("https://hooks.example.com:25/", false),
            ("https://hooks.example.com:80/", false),
            ("https://hooks.example.com:1023/", false),
            ("https://hooks.example.com:1/", false),
            ("https://93.184.216.34:22/", false),
            ("https://127.0.0.1:22/", false),
            ("http://127.0.0.1:22/", true),
            ("http://127.0.0.1:8/", true),
            ("https://127.0.0.1:1023/", true),
        ] {
            let e = WebhookUrl::parse(s, allow_private).unwrap_err();
            assert!(
                matches!(e, WebhookUrlError::Invalid(m) if m.contains("port")),
                "{s}: {e}"
            );
        }
        assert!(WebhookUrl::parse("ftp://localhost/", true).is_err());
        let long = format!("https://example.com/{}", "a".repeat(2100));
        assert!(WebhookUrl::parse(&long, false).is_err());
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_default_schedule_backs_off_then_gives_up_a_day_after_the_event() {
        let s = RetrySchedule::default();
        let expected = [5, 30, 120, 600, 1800, 3600, 7200, 7200];
        let mut now = t(0);
        for (n, delay) in expected.into_iter().enumerate() {
            let next = s.next_attempt(t(0), n as u32 + 1, now, 0.0).unwrap();
            assert_eq!((next - now).num_seconds(), delay, "after attempt {}", n + 1);
            now = next;
        }
        // Jitter stays within ±10 %.
        let early = s.next_attempt(t(0), 4, t(100), -1.0).unwrap();
        let late = s.next_attempt(t(0), 4, t(100), 1.0).unwrap();
        assert_eq!((early - t(100)).num_seconds(), 540);
        assert_eq!((late - t(100)).num_seconds(), 660);
        // Nothing is scheduled beyond 24 h after the event.
        assert_eq!(s.next_attempt(t(0), 20, t(23 * 3600), 0.0), None);
        assert!(s.next_attempt(t(0), 20, t(21 * 3600), 0.0).is_some());
    }

    #[test]
    fn a_configured_schedule_is_the_whole_schedule() {
        let s = RetrySchedule::parse("1, 2,3").unwrap();
        assert_eq!(s.next_attempt(t(0), 1, t(10), 0.0), Some(t(11)));
        assert_eq!(s.next_attempt(t(0), 3, t(10), 0.0), Some(t(13)));
        assert_eq!(s.next_attempt(t(0), 4, t(10), 0.0), None);
        for bad in ["", "0", "5,x", "-1", "90000"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
