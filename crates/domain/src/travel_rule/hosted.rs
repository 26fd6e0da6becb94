//! The hosted travel-rule step (contract §11): whether an application has the service ask
//! its customers the declaration questions (and for the ownership proof) in the launch link,
//! and which origins may frame that page.

use std::fmt;

/// The most origins an application may list in `frameAncestors`.
pub const MAX_FRAME_ANCESTORS: usize = 16;

/// One origin allowed to frame the hosted page: `https://host[:port]` or `http://host[:port]`,
/// lower case, the host a DNS name (optionally `*.` for its subdomains) or `localhost`; no
/// path, query or fragment. Exactly what a CSP `frame-ancestors` source list can hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameAncestor(String);

/// A frame ancestor that is not an origin of that shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a frame ancestor is an origin such as https://partner.example or https://*.partner.example:8443 (http or https, no path), at most {MAX_FRAME_ANCESTORS} of them"
)]
pub struct InvalidFrameAncestor;

impl FrameAncestor {
    /// Parses one origin (surrounding white space ignored, lower-cased).
    ///
    /// ```
    /// use domain::FrameAncestor;
    /// assert_eq!(FrameAncestor::parse("https://Partner.Example").unwrap().as_str(), "https://partner.example");
    /// assert!(FrameAncestor::parse("https://*.partner.example:8443").is_ok());
    /// assert!(FrameAncestor::parse("http://localhost:3000").is_ok());
    /// for bad in ["*", "partner.example", "https://partner.example/", "https://a b", "ftp://x.example",
    ///             "https://x.example;script-src", "https://", "https://x.example:", "https://x.example:99999"] {
    ///     assert!(FrameAncestor::parse(bad).is_err(), "{bad}");
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidFrameAncestor`] for anything else.
    pub fn parse(s: &str) -> Result<Self, InvalidFrameAncestor> {
        let s = s.trim().to_ascii_lowercase();
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or(InvalidFrameAncestor)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if let Some(port) = port {
            let ok = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
            if !ok {
                return Err(InvalidFrameAncestor);
            }
        }
        let name = host.strip_prefix("*.").unwrap_or(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(InvalidFrameAncestor);
        }
        Ok(Self(s))
    }

    /// The origin, as a CSP source expression.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FrameAncestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The origins allowed to frame the hosted page; empty means any origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FrameAncestors(Vec<FrameAncestor>);

impl FrameAncestors {
    /// Any origin may frame the page.
    pub fn any() -> Self {
        Self(Vec::new())
    }

    /// Parses a list of origins separated by commas or white space (an empty text is any
    /// origin); duplicates are dropped.
    ///
    /// ```
    /// use domain::FrameAncestors;
    /// let f = FrameAncestors::parse("https://a.example, https://b.example https://a.example").unwrap();
    /// assert_eq!(f.to_stored(), "https://a.example https://b.example");
    /// assert!(FrameAncestors::parse("").unwrap().is_any());
    /// assert!(FrameAncestors::parse("https://a.example, nope").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidFrameAncestor`] when one is not an origin, or there are more than
    /// [`MAX_FRAME_ANCESTORS`].
    pub fn parse(s: &str) -> Result<Self, InvalidFrameAncestor> {
        let mut out: Vec<FrameAncestor> = Vec::new();
        for part in s.split(|c: char| c == ',' || c.is_whitespace()) {
            if part.is_empty() {
                continue;
            }
            let origin = FrameAncestor::parse(part)?;
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
        if out.len() > MAX_FRAME_ANCESTORS {
            return Err(InvalidFrameAncestor);
        }
        Ok(Self(out))
    }

    /// Whether any origin may frame the page.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// The origins (empty for any).
    pub fn origins(&self) -> &[FrameAncestor] {
        &self.0
    }

    /// The stored form: the origins separated by one space (empty for any).
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(FrameAncestor::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The CSP `frame-ancestors` source list: the origins, or `*`.
    pub fn csp_sources(&self) -> String {
        if self.is_any() {
            "*".to_string()
        } else {
            self.to_stored()
        }
    }
}

/// Whether an application runs the hosted travel-rule step, and who may frame it; snapshotted
/// on each session when it is created (like the proof policy).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HostedStep {
    /// Whether the launch link asks the customer for the travel-rule record before it opens
    /// the widget.
    pub enabled: bool,
    /// The origins allowed to frame the page.
    pub frame_ancestors: FrameAncestors,
}

impl HostedStep {
    /// The step off (the launch link opens the widget at once).
    pub fn off() -> Self {
        Self::default()
    }
}
