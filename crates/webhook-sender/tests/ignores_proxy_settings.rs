//! The sender never goes through a proxy named by the environment (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY`): through one, the partner's host would be resolved by the
//! proxy, past the public-address check.
//!
//! A test target of its own without the test harness (`harness = false`): `main` starts
//! itself again as a child process with the variables set (the process environment cannot
//! be changed safely while other tests run), and the child sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use domain::{EventId, WebhookUrl};
use ports::{OutboundWebhook, SystemClock, WebhookSender as _};
use secrecy::SecretString;
use webhook_sender::{HttpWebhookSender, SenderSettings};

const PROXIES: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// Set in the child process.
const CHILD: &str = "WIDGET_SESSIONS_PROXY_TEST_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(sends_directly_with_proxy_variables_set());
        println!("sent directly");
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child.env(CHILD, "1");
    for name in PROXIES {
        child.env(name, "http://127.0.0.1:9");
    }
    let out = child.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("sent directly"), "the child sent: {text}");
    println!("proxy_variables_are_ignored ... ok");
}

async fn sends_directly_with_proxy_variables_set() {
    assert!(
        PROXIES.iter().all(|n| std::env::var(n).is_ok()),
        "started by main with the proxy variables set"
    );
    let app = Router::new().route("/hook", post(|| async { StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sender = HttpWebhookSender::new(
        SenderSettings {
            timeout: Duration::from_secs(5),
            allow_private_networks: true,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let status = sender
        .send(&OutboundWebhook {
            url: WebhookUrl::parse(&url, true).unwrap(),
            event: "evt_0193a1b2-0000-7000-8000-000000000001"
                .parse::<EventId>()
                .unwrap(),
            body: b"{}".to_vec(),
            secrets: vec![SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")],
        })
        .await;
    assert_eq!(
        status,
        Ok(204),
        "went straight to the receiver, not to the proxy"
    );
}
