//! Transak's JSON, private to this crate. Unknown fields are ignored; nothing here ever
//! echoes a response body (it may hold a widget URL with its `sessionId`, or a token) into
//! an error message.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST {gateway}/api/v2/auth/session` body.
#[derive(Debug, Serialize)]
pub(crate) struct CreateWidgetUrlBody<'a> {
    #[serde(rename = "widgetParams")]
    pub widget_params: &'a Value,
}

/// `POST {api}/partners/api/v2/refresh-token` body.
#[derive(Debug, Serialize)]
pub(crate) struct RefreshTokenBody<'a> {
    #[serde(rename = "apiKey")]
    pub api_key: &'a str,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct WidgetUrlData {
    #[serde(rename = "widgetUrl")]
    widget_url: String,
}

#[derive(Deserialize)]
struct RefreshData {
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(rename = "expiresAt")]
    expires_at: Value,
}

/// A token fresh from the refresh endpoint (`Debug` redacts it).
#[derive(Debug)]
pub(crate) struct RefreshedToken {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// What is wrong with an upstream answer, described without quoting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MalformedResponse(pub String);

fn describe(err: &serde_json::Error) -> MalformedResponse {
    // serde_json's own messages can quote values (`invalid type: string "…"`), which could be a
    // token or a widget URL: report only the category and position.
    let what = match err.classify() {
        serde_json::error::Category::Io | serde_json::error::Category::Eof => "is truncated",
        serde_json::error::Category::Syntax => "is not JSON",
        serde_json::error::Category::Data => "does not have the expected shape",
    };
    MalformedResponse(format!(
        "the response {what} (line {}, column {})",
        err.line(),
        err.column()
    ))
}

/// `{"data": {"widgetUrl": "…"}}` → the URL, checked to be an absolute `http(s)` URL.
pub(crate) fn parse_widget_url(body: &[u8]) -> Result<String, MalformedResponse> {
    let envelope: Envelope<WidgetUrlData> =
        serde_json::from_slice(body).map_err(|e| describe(&e))?;
    let url = envelope.data.widget_url;
    match url::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.has_host() => Ok(url),
        _ => Err(MalformedResponse(
            "data.widgetUrl is not an absolute http(s) URL".to_string(),
        )),
    }
}

/// `{"data": {"accessToken": "…", "expiresAt": …}}` → the token and its expiry.
pub(crate) fn parse_refresh(body: &[u8]) -> Result<RefreshedToken, MalformedResponse> {
    let envelope: Envelope<RefreshData> = serde_json::from_slice(body).map_err(|e| describe(&e))?;
    let RefreshData {
        access_token,
        expires_at,
    } = envelope.data;
    if access_token.is_empty() || !access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MalformedResponse(
            "data.accessToken is empty or not a header-safe string".to_string(),
        ));
    }
    let expires_at = parse_expires_at(&expires_at)?;
    Ok(RefreshedToken {
        token: SecretString::from(access_token),
        expires_at,
    })
}

/// Unix timestamps above this are taken as milliseconds (10^11 s is the year 5138; 10^11 ms
/// is 1973).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// `expiresAt` as Transak sends it: unix seconds per the docs, but milliseconds are accepted
/// too (values above 10^11), as are numeric strings and RFC 3339 strings.
pub(crate) fn parse_expires_at(value: &Value) -> Result<DateTime<Utc>, MalformedResponse> {
    let bad = || MalformedResponse("data.expiresAt is not a timestamp".to_string());
    let number = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
                return Ok(dt.with_timezone(&Utc));
            }
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
        }
        _ => None,
    }
    .ok_or_else(bad)?;
    if number <= 0 {
        return Err(bad());
    }
    let parsed = if number > MILLIS_THRESHOLD {
        DateTime::from_timestamp_millis(number)
    } else {
        DateTime::from_timestamp(number, 0)
    };
    parsed.ok_or_else(bad)
}

const MAX_MESSAGE_CHARS: usize = 300;

/// Transak's message from an error body: `{"error": {"message": …}}`, `{"message": …}`,
/// `{"error": "…"}`, `{"errors": [{"message": …}]}` or `{"msg": …}`; control characters
/// dropped and the length capped. `None` when the body has none of these.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let candidates = [
        value.pointer("/error/message"),
        value.get("message"),
        value.get("error").filter(|e| e.is_string()),
        value.pointer("/errors/0/message"),
        value.get("msg"),
    ];
    candidates
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(sanitise)
        .find(|m| !m.is_empty())
}

fn sanitise(message: &str) -> String {
    let cleaned: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.chars().count() > MAX_MESSAGE_CHARS {
        let mut short: String = trimmed.chars().take(MAX_MESSAGE_CHARS).collect();
        short.push('…');
        short
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    #[test]
    fn create_body_shape() {
        let params = json!({"apiKey": "k"});
        let body = serde_json::to_value(CreateWidgetUrlBody {
            widget_params: &params,
        })
        .unwrap();
        assert_eq!(body, json!({"widgetParams": {"apiKey": "k"}}));
        let body = serde_json::to_value(RefreshTokenBody { api_key: "k" }).unwrap();
        assert_eq!(body, json!({"apiKey": "k"}));
    }

    #[test]
    fn widget_url_is_read_and_unknown_fields_ignored() {
        let body = br#"{"data": {"widgetUrl": "https://global-stg.transak.com?apiKey=k&sessionId=abc", "extra": 1}, "meta": {}}"#;
        assert_eq!(
            parse_widget_url(body).unwrap(),
            "https://global-stg.transak.com?apiKey=k&sessionId=abc"
        );
    }

    #[test]
    fn widget_url_problems_are_described_without_quoting() {
        let err = parse_widget_url(b"<html>oops</html>").unwrap_err();
        assert!(err.0.contains("not JSON"), "{err:?}");
        let err = parse_widget_url(br#"{"data": {"widgetUrl": 42}}"#).unwrap_err();
        assert!(err.0.contains("expected shape"), "{err:?}");
        let err = parse_widget_url(br#"{"data": {"widgetUrl": "not a url sessionId=s3cr3t"}}"#)
            .unwrap_err();
        assert!(!err.0.contains("s3cr3t"), "{err:?}");
        let err =
            parse_widget_url(br#"{"data": {"widgetUrl": "javascript:alert(1)"}}"#).unwrap_err();
        assert!(err.0.contains("http(s)"), "{err:?}");
        let err = parse_widget_url(br#"{"data": {"#).unwrap_err();
        assert!(err.0.contains("truncated"), "{err:?}");
        // A type error on a string value would normally be quoted by serde_json.
        let err = parse_widget_url(br#"{"data": "sessionId=s3cr3t"}"#).unwrap_err();
        assert!(!err.0.contains("s3cr3t"), "{err:?}");
    }

    #[test]
    fn refresh_response_is_read() {
        let body =
            br#"{"data": {"accessToken": "eyJ.a.b", "expiresAt": 1900000000, "other": true}}"#;
        let t = parse_refresh(body).unwrap();
        assert_eq!(t.token.expose_secret(), "eyJ.a.b");
        assert_eq!(t.expires_at.timestamp(), 1_900_000_000);
    }

    #[test]
    fn refresh_errors_never_show_the_token() {
        let err = parse_refresh(br#"{"data": {"accessToken": "eyJ.secret", "expiresAt": "soon"}}"#)
            .unwrap_err();
        assert!(!err.0.contains("eyJ"), "{err:?}");
        let err = parse_refresh(br#"{"data": {"accessToken": "eyJ secret", "expiresAt": 1}}"#)
            .unwrap_err();
        assert!(!err.0.contains("eyJ"), "{err:?}");
        let err = parse_refresh(br#"{"data": {"accessToken": ["eyJ.secret"]}}"#).unwrap_err();
        assert!(!err.0.contains("eyJ"), "{err:?}");
    }

    #[test]
    fn expires_at_in_seconds_or_milliseconds() {
        let secs = parse_expires_at(&json!(1_900_000_000)).unwrap();
        let millis = parse_expires_at(&json!(1_900_000_000_123_i64)).unwrap();
        assert_eq!(secs.timestamp(), 1_900_000_000);
        assert_eq!(millis.timestamp(), 1_900_000_000);
        assert_eq!(millis.timestamp_subsec_millis(), 123);
        // The threshold: 10^11 is still seconds, just above is milliseconds.
        assert_eq!(
            parse_expires_at(&json!(100_000_000_000_i64))
                .unwrap()
                .timestamp(),
            100_000_000_000
        );
        assert_eq!(
            parse_expires_at(&json!(100_000_000_001_i64))
                .unwrap()
                .timestamp_millis(),
            100_000_000_001
        );
        assert_eq!(
            parse_expires_at(&json!("1900000000")).unwrap().timestamp(),
            1_900_000_000
        );
        assert_eq!(
            parse_expires_at(&json!(1_900_000_000.9))
                .unwrap()
                .timestamp(),
            1_900_000_000
        );
        assert_eq!(
            parse_expires_at(&json!("2030-03-17T17:46:40Z"))
                .unwrap()
                .timestamp(),
            1_900_000_000
        );
        for bad in [
            json!(null),
            json!(0),
            json!(-5),
            json!("x"),
            json!({}),
            json!(i64::MAX),
        ] {
            assert!(parse_expires_at(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_messages_in_known_shapes() {
        let cases: [(&[u8], Option<&str>); 8] = [
            (
                br#"{"error": {"statusCode": 400, "name": "BadRequestError", "message": "Invalid walletAddress"}}"#,
                Some("Invalid walletAddress"),
            ),
            (br#"{"message": "Unauthorized"}"#, Some("Unauthorized")),
            (br#"{"error": "Bad network"}"#, Some("Bad network")),
            (br#"{"errors": [{"message": "first"}, {"message": "second"}]}"#, Some("first")),
            (br#"{"msg": "nope"}"#, Some("nope")),
            (br#"{"error": {"code": 1}}"#, None),
            (b"<html>Bad Gateway</html>", None),
            (br#"{"message": "  "}"#, None),
        ];
        for (body, expected) in cases {
            assert_eq!(
                error_message(body).as_deref(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_messages_are_cleaned_and_capped() {
        let long = "x".repeat(1000);
        let body = serde_json::to_vec(&json!({"message": format!("a\nb\u{7}{long}")})).unwrap();
        let message = error_message(&body).unwrap();
        assert!(message.starts_with("a b "));
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
