//! `request`: sign a request the way the API expects and send it (or print the headers).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::security;

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

/// Signs `method path body` for the instance at `base_url`. `path` is below `/api/v1` (a
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
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let authorization = security::authorization_header(
        api_secret.as_bytes(),
        now_ms,
        &method,
        &path,
        body.as_bytes(),
    );
    SignedRequest {
        url: format!("{}/api/v1{path}", base_url.trim_end_matches('/')),
        method,
        body: body.to_string(),
        api_key: api_key.to_string(),
        authorization,
    }
}

/// Sends a signed request and prints the status, the interesting headers and the body.
/// Returns the process exit code: 0 for 2xx/3xx, 1 otherwise.
///
/// # Errors
///
/// The request could not be sent.
pub async fn send(req: &SignedRequest) -> Result<i32, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = client
        .request(method, &req.url)
        .header("api-key", &req.api_key)
        .header("Authorization", &req.authorization);
    if !req.body.is_empty() {
        builder = builder
            .header("Content-Type", "application/json")
            .body(req.body.clone());
    }
    let response = builder.send().await?;
    let status = response.status();
    println!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for name in ["location", "x-request-id", "retry-after"] {
        if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            println!("{name}: {v}");
        }
    }
    let text = response.text().await?;
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    if !pretty.is_empty() {
        println!("{pretty}");
    }
    Ok(if status.is_success() || status.is_redirection() {
        0
    } else {
        1
    })
}

/// The headers as `curl` arguments, for `--print-headers`.
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
        let parsed = security::parse_authorization(&a.authorization).unwrap();
        assert!(security::verify(
            b"s",
            &parsed,
            "POST",
            "/travel-rule/widget-sessions",
            b"{}"
        ));
    }
}
