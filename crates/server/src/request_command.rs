//! `request`: sign a request the way the API expects and send it (or print it as `curl`),
//! with the partners' client crate.

use std::io::Write;

use client::signing;

/// A signed request to send.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// HTTP method, uppercase.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Body (may be empty).
    pub body: String,
    /// The `api-key` header.
    pub api_key: String,
    /// The `Authorization` header.
    pub authorization: String,
}

/// Signs `method path body` for the instance at `base_url`, now. `path` is below `/api/v1` (a
/// leading `/api/v1` is accepted and stripped), with its query string.
pub fn sign(
    base_url: &str,
    method: &str,
    path: &str,
    body: &str,
    api_key: &str,
    api_secret: &str,
) -> SignedRequest {
    let method = method.to_ascii_uppercase();
    let path = signing::signed_path(path);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let headers = signing::sign(
        api_key,
        api_secret.as_bytes(),
        signing::fresh_unix_ms(&method, &path, body.as_bytes()),
        &method,
        &path,
        body.as_bytes(),
    );
    SignedRequest {
        url: format!("{}/api/v1{path}", base_url.trim_end_matches('/')),
        method,
        body: body.to_string(),
        api_key: headers.api_key,
        authorization: headers.authorization,
    }
}

/// Why `request` failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The service could not be reached.
    #[error("could not reach {url}: {source}. Is the service running (cargo run)?")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Why.
        source: client::Error,
    },
    /// Standard output failed (other than being closed).
    #[error("cannot write the answer: {0}")]
    Output(std::io::Error),
}

/// Sends `method path body` signed with the application's credentials and writes the status,
/// the interesting headers and the (pretty-printed) body to `out`. Returns whether the
/// status was 2xx or 3xx.
///
/// A closed output (`request … | head`) ends the writing quietly.
///
/// # Errors
///
/// See [`RequestError`].
pub async fn send(
    base_url: &str,
    api_key: &str,
    api_secret: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool, RequestError> {
    let unreachable = |source| RequestError::Unreachable {
        url: base_url.to_string(),
        source,
    };
    let http = client::Client::new(base_url, api_key, api_secret).map_err(unreachable)?;
    let raw = http
        .send(
            method,
            path,
            body.filter(|b| !b.is_empty()).map(str::as_bytes),
        )
        .await
        .map_err(unreachable)?;
    let ok = (200..400).contains(&raw.status);
    match write_answer(&raw, out) {
        Ok(()) => Ok(ok),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ok),
        Err(e) => Err(RequestError::Output(e)),
    }
}

fn write_answer(raw: &client::RawResponse, out: &mut dyn Write) -> std::io::Result<()> {
    let reason = reqwest_reason(raw.status);
    writeln!(out, "HTTP {} {reason}", raw.status)?;
    for name in ["location", "x-request-id", "retry-after"] {
        if let Some(v) = raw.headers.get(name).and_then(|v| v.to_str().ok()) {
            writeln!(out, "{name}: {v}")?;
        }
    }
    let text = String::from_utf8_lossy(&raw.body);
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.into_owned());
    if !pretty.is_empty() {
        writeln!(out, "{pretty}")?;
    }
    out.flush()
}

fn reqwest_reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The signed request as a `curl` command, for `--print`.
pub fn curl_command(req: &SignedRequest) -> String {
    let mut s = format!(
        "curl -sS -X {} '{}' -H 'api-key: {}' -H 'Authorization: {}'",
        req.method, req.url, req.api_key, req.authorization
    );
    if !req.body.is_empty() {
        s.push_str(&format!(
            " -H 'Content-Type: application/json' --data '{}'",
            req.body.replace('\'', "'\\''")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_covers_the_path_below_api_v1() {
        let a = sign(
            "http://h:1/",
            "post",
            "/api/v1/travel-rule/widget-sessions",
            "{}",
            "k",
            "s",
        );
        let b = sign(
            "http://h:1",
            "POST",
            "/travel-rule/widget-sessions",
            "{}",
            "k",
            "s",
        );
        assert_eq!(a.url, "http://h:1/api/v1/travel-rule/widget-sessions");
        assert_eq!(a.url, b.url);
        assert!(a.authorization.starts_with("HMAC "));
        let parsed = signing::parse_authorization(&a.authorization).unwrap();
        assert!(signing::verify(
            b"s",
            &parsed,
            "POST",
            "/travel-rule/widget-sessions",
            b"{}"
        ));
    }

    /// A writer that is closed, like standard output piped into `head` after it exited.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_output_is_not_an_error() {
        let raw = client::RawResponse {
            status: 200,
            headers: Default::default(),
            body: br#"{"a":1}"#.to_vec(),
        };
        let e = write_answer(&raw, &mut Closed).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        let mut buf = Vec::new();
        write_answer(&raw, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("HTTP 200 OK\n"), "{text}");
        assert!(text.contains("\"a\": 1"), "{text}");
    }
}
