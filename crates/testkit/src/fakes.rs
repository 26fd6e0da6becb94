//! Fake adapters for tests that drive the use cases end to end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ports::{
    GatewayError, OrderEvent, OrderEventError, UpstreamStatus, WidgetGateway, WidgetRequest,
    WidgetUrl,
};

/// A gateway that takes `delay` per mint, counts calls and mints, and fails (upstream
/// unavailable) or hangs (for an hour) its first `fail_first` / `hang_first` calls.
pub struct FakeGateway {
    /// Time per call.
    pub delay: Duration,
    /// Successful mints so far.
    pub mints: AtomicUsize,
    /// Calls so far.
    pub calls: AtomicUsize,
    /// How many first calls fail.
    pub fail_first: usize,
    /// How many first calls hang.
    pub hang_first: usize,
}

impl FakeGateway {
    /// A gateway that succeeds after `delay`.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            mints: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            fail_first: 0,
            hang_first: 0,
        }
    }

    /// Successful mints so far.
    pub fn mints(&self) -> usize {
        self.mints.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl WidgetGateway for FakeGateway {
    async fn create_widget_url(&self, r: &WidgetRequest) -> Result<WidgetUrl, GatewayError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.hang_first {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        tokio::time::sleep(self.delay).await;
        if call < self.fail_first {
            return Err(GatewayError::Unavailable {
                retry_after: Duration::from_secs(1),
                reason: "down".into(),
            });
        }
        self.mints.fetch_add(1, Ordering::SeqCst);
        Ok(WidgetUrl::new(format!(
            "https://widget.test/?sessionId=u-{}",
            r.session_id
        )))
    }

    async fn check_credentials(&self) -> Result<(), GatewayError> {
        Ok(())
    }

    fn status(&self) -> UpstreamStatus {
        UpstreamStatus::Ready
    }

    /// Takes the body as `{"signed": true, "eventID", "orderId", "status", "partnerOrderId"}`
    /// in plain JSON: `signed: false` (or absent) stands for a bad signature.
    async fn verify_order_event(&self, body: &[u8]) -> Result<OrderEvent, OrderEventError> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| OrderEventError::Malformed(e.to_string()))?;
        if v["signed"] != serde_json::Value::Bool(true) {
            return Err(OrderEventError::Unauthenticated);
        }
        let field = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| OrderEventError::Malformed(format!("{k} is missing")))
        };
        Ok(OrderEvent {
            event_id: field("eventID")?,
            order_id: field("orderId")?,
            status: domain::OrderStatus::parse(&field("status")?),
            partner_order_id: v["partnerOrderId"].as_str().map(str::to_owned),
        })
    }
}
