//! The widget page and the small text helpers it needs.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The exact text Transak shows when a widget URL is reused, unknown or expired.
pub const INVALID_SESSION_TEXT: &str = "Invalid or Expired Session";

/// The parameters shown prominently at the top of the widget page, in this order.
const HIGHLIGHTED: [&str; 6] = [
    "cryptoCurrencyCode",
    "network",
    "walletAddress",
    "partnerOrderId",
    "partnerCustomerId",
    "referrerDomain",
];

/// A self-contained page standing in for the Transak widget, listing the session's params.
pub(crate) fn widget_page(session_id: &str, params: &Map<String, Value>) -> String {
    let mut highlighted = String::new();
    for name in HIGHLIGHTED {
        if let Some(value) = params.get(name) {
            let _ = write!(
                highlighted,
                "<dt>{}</dt><dd id=\"{}\">{}</dd>",
                escape_html(name),
                escape_html(name),
                escape_html(&display_value(value)),
            );
        }
    }
    let mut rows = String::new();
    for (name, value) in params {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape_html(name),
            escape_html(&display_value(value)),
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Transak widget (emulator)</title>\
         <style>body{{font-family:sans-serif;margin:2rem}}dt{{font-weight:bold}}\
         th,td{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd}}</style>\
         </head><body>\
         <h1>Transak widget (emulator)</h1>\
         <p>Session <code id=\"sessionId\">{}</code> opened. This page stands in for the \
         Transak widget; nothing is bought or sold.</p>\
         <dl>{}</dl>\
         <p><button id=\"complete\">Complete order</button> \
         <button id=\"fail\">Fail order</button></p>\
         <p id=\"result\" role=\"status\"></p>\
         <h2>All widget parameters</h2><table>{}</table>\
         <script>{}</script>\
         </body></html>\n",
        escape_html(session_id),
        highlighted,
        rows,
        order_script(session_id),
    )
}

/// The widget page's behaviour: its buttons place the order (`POST /_emulator/orders`, which
/// sends Transak's order webhook) and, as Transak's widget does, tell an embedding page what
/// happened with `postMessage` (`{event_id, data}`: the events Transak's browser SDK relays).
fn order_script(session_id: &str) -> String {
    // The id is the emulator's own uuid; JSON-encoding (with `<` escaped, so no `</script>`)
    // keeps the script well formed whatever it holds.
    let id = serde_json::to_string(session_id)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    format!(
        r#"
const sessionId = {id};
function tell(eventId, data) {{
  if (window.parent !== window) window.parent.postMessage({{event_id: eventId, data: data}}, "*");
}}
async function order(eventID, sdkEvent) {{
  const r = await fetch("/_emulator/orders", {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{sessionId: sessionId, eventID: eventID}})}});
  const body = await r.json();
  const result = document.getElementById("result");
  if (!r.ok) {{ result.textContent = "Order failed to send: " + JSON.stringify(body); return; }}
  result.textContent = "Order " + body.orderId + ": " + body.status;
  tell(sdkEvent, {{id: body.orderId, status: body.status, eventID: eventID}});
}}
document.getElementById("complete").onclick = () => order("ORDER_COMPLETED", "TRANSAK_ORDER_SUCCESSFUL");
document.getElementById("fail").onclick = () => order("ORDER_FAILED", "TRANSAK_ORDER_FAILED");
tell("TRANSAK_WIDGET_INITIALISED", {{sessionId: sessionId}});
"#
    )
}

/// The page shown for a reused, unknown or expired `sessionId`.
pub(crate) fn invalid_session_page() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Transak widget (emulator)</title></head><body>\
         <h1>{INVALID_SESSION_TEXT}</h1>\
         <p>This widget URL has already been used, has expired, or was never issued. \
         Ask for a new one.</p></body></html>\n"
    )
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Escapes text for use in HTML element content and double-quoted attributes.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes text for use as a URL query value (everything but RFC 3986
/// unreserved characters is encoded).
pub(crate) fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(encode_query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn widget_page_shows_params_escaped() {
        let mut params = Map::new();
        params.insert("cryptoCurrencyCode".into(), Value::from("BTC"));
        params.insert("partnerOrderId".into(), Value::from("<script>"));
        params.insert("fiatAmount".into(), Value::from(25));
        let page = widget_page("sid", &params);
        assert!(page.contains("Transak widget (emulator)"));
        assert!(page.contains("BTC"));
        assert!(page.contains("&lt;script&gt;"));
        // The page's own script only: the parameter's text is not markup.
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(page.contains("<td>25</td>"));
        let hostile = widget_page("</script><script>alert(1)</script>", &params);
        assert_eq!(hostile.matches("<script>").count(), 1);
        assert_eq!(hostile.matches("</script>").count(), 1);
    }
}
