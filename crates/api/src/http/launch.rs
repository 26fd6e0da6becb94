//! `/w/{token}`: the public launch link, opened by the end user's browser.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use domain::SessionStatus;
use ports::LaunchOutcome;

use crate::http::error::ApiError;
use crate::http::hosted;
use crate::observability;
use crate::state::AppState;

/// Open a launch link. `GET` consumes the session (once) and redirects to the Transak widget;
/// `HEAD` never consumes and never reveals the upstream URL.
#[utoipa::path(
    get,
    path = "/w/{token}",
    tag = "launch",
    params(("token" = String, Path, description = "The launch token from `widgetUrl`")),
    responses(
        (status = 303, description = "First open: the session is now CONSUMED; follow Location to the Transak widget",
            headers(("Location" = String, description = "The Transak widget URL"))),
        (status = 200, description = "The hosted travel-rule page (its application runs the step and the record is not COMPLETE): nothing consumed; or, for HEAD, a valid link", content_type = "text/html"),
        (status = 404, description = "Unknown link (HTML page)", content_type = "text/html"),
        (status = 410, description = "Already used, cancelled or expired (HTML page)", content_type = "text/html"),
        (status = 503, description = "The database is unavailable (HTML page)", content_type = "text/html"),
    )
)]
pub async fn launch(
    State(state): State<AppState>,
    method: Method,
    token: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    // A token that is not even text (bad percent-encoding) is just an unknown link.
    let Ok(Path(token)) = token else {
        return not_found();
    };
    let consume = method != Method::HEAD;
    let outcome = match state.0.sessions.launch(&token, consume).await {
        Ok(o) => o,
        Err(ports::LaunchError::Store(e)) => return unavailable(e),
    };
    match outcome {
        LaunchOutcome::Redirect(url) if consume => redirect(url.expose(), query.as_deref()),
        // HEAD: the link is valid; say so without consuming it or revealing the upstream URL
        // (link previewers send HEAD, and the upstream URL opens only once).
        LaunchOutcome::Redirect(_) => no_store(StatusCode::OK.into_response()),
        // The hosted travel-rule step: the page, nothing consumed (`GET` and `HEAD` alike).
        LaunchOutcome::TravelRuleStep(view) => {
            hosted::step_page(&state, &token, query.as_deref(), &view).await
        }
        LaunchOutcome::Gone(status) => gone(status),
        LaunchOutcome::Withheld => withheld(),
        LaunchOutcome::Unknown => not_found(),
    }
}

/// `303` to the widget (the session was just consumed), with the SDK's parameters forwarded.
pub(crate) fn redirect(widget_url: &str, query: Option<&str>) -> Response {
    observability::session_consumed();
    let mut r = StatusCode::SEE_OTHER.into_response();
    let target = with_sdk_parameters(widget_url, query);
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    no_store(r)
}

/// The store failed: `503` (or `500`) page.
pub(crate) fn unavailable(e: ports::StoreError) -> Response {
    let status = match ApiError::from(e) {
        ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    page(
        status,
        "Please try again",
        "We could not open this link just now. Please try again in a moment.",
    )
}

/// `410`: the session ended; the page says to ask for a new link.
pub(crate) fn gone(status: SessionStatus) -> Response {
    observability::launch_gone();
    let (title, text) = match status {
        SessionStatus::Consumed => (
            "This link has already been used",
            "Each link opens once. Ask the service that sent it for a new one.",
        ),
        SessionStatus::Cancelled => (
            "This link was cancelled",
            "The service that sent it withdrew it. Ask it for a new one if you still need it.",
        ),
        _ => (
            "This link has expired",
            "Links are valid for a few minutes. Ask the service that sent it for a new one.",
        ),
    };
    page(StatusCode::GONE, title, text)
}

/// `410`: the application is disabled.
pub(crate) fn withheld() -> Response {
    observability::launch_gone();
    page(
        StatusCode::GONE,
        "This link is not available",
        "The service that sent it cannot be reached through it right now. Ask it for a new one.",
    )
}

/// The query parameters Transak's browser SDK appends to the `widgetUrl` it is given, which
/// the widget reads: forwarded from the launch link to the widget URL. Nothing else a browser
/// adds to the link goes upstream.
pub const FORWARDED_PARAMETERS: [&str; 2] = ["sdkName", "sdkVersion"];

/// `widget_url` with the first `sdkName` and `sdkVersion` of `query` appended (short, plain
/// values only), encoded afresh.
pub fn with_sdk_parameters(widget_url: &str, query: Option<&str>) -> String {
    let Some(query) = query else {
        return widget_url.to_string();
    };
    let mut found: Vec<(&str, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let Some(name) = FORWARDED_PARAMETERS.iter().find(|p| **p == name) else {
            continue;
        };
        let plain = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+ @/".contains(c));
        if plain && !found.iter().any(|(n, _)| n == name) {
            found.push((name, value.into_owned()));
        }
    }
    if found.is_empty() {
        return widget_url.to_string();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &found {
        out.append_pair(name, value);
    }
    // Into the query, before any fragment.
    let (base, fragment) = match widget_url.split_once('#') {
        Some((base, fragment)) => (base, format!("#{fragment}")),
        None => (widget_url, String::new()),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}{fragment}", out.finish())
}

pub(crate) fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not found",
        "This link does not exist. Check that it was copied completely.",
    )
}

/// `429` for a browser: the client (or everyone) opened too many links too fast.
pub fn too_many_requests(retry_after: std::time::Duration) -> Response {
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "Please wait a moment and open the link again.",
    );
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// A small self-contained HTML page (no external assets).
pub(crate) fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f6f7f9;color:#1d2330}}
main{{max-width:28rem;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08);text-align:center}}
h1{{font-size:1.25rem;margin:0 0 .75rem}}
p{{margin:0;line-height:1.5;color:#4a5263}}
</style>
</head>
<body><main><h1>{title}</h1><p>{text}</p></main></body>
</html>
"#
    );
    let mut r = (status, Html(html)).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        // Framing allowed on purpose: a partner embeds the launch link in an iframe (Transak's
        // SDK does), and this page is what the iframe shows once the link was used.
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *",
        ),
    );
    no_store(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sdk_parameters_are_forwarded() {
        let w = "https://global.transak.com/?apiKey=k&sessionId=s";
        assert_eq!(with_sdk_parameters(w, None), w);
        assert_eq!(
            with_sdk_parameters(
                w,
                Some("sdkName=transak-sdk&sdkVersion=4.0.1&utm_source=x&apiKey=evil")
            ),
            format!("{w}&sdkName=transak-sdk&sdkVersion=4.0.1")
        );
        // Only the first of each; only plain short values; re-encoded.
        assert_eq!(
            with_sdk_parameters(w, Some("sdkVersion=1&sdkVersion=2&sdkName=%3Cscript%3E")),
            format!("{w}&sdkVersion=1")
        );
        assert_eq!(with_sdk_parameters(w, Some("fbclid=abc")), w);
        assert_eq!(
            with_sdk_parameters("https://w.example/", Some("sdkName=a")),
            "https://w.example/?sdkName=a"
        );
        // What Transak's SDK 4.x sends.
        assert_eq!(
            with_sdk_parameters(w, Some("sdkName=%40transak%2Ftransak-sdk&sdkVersion=4.0.2")),
            format!("{w}&sdkName=%40transak%2Ftransak-sdk&sdkVersion=4.0.2")
        );
        assert_eq!(
            with_sdk_parameters("https://w.example/?a=1#top", Some("sdkVersion=4")),
            "https://w.example/?a=1&sdkVersion=4#top"
        );
        let long = format!("sdkName={}", "a".repeat(65));
        assert_eq!(with_sdk_parameters(w, Some(&long)), w);
    }
}
