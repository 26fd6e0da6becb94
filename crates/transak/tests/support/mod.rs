//! Shared test helpers: a counting wrapper over the in-memory [`AccessTokenStore`], a settable
//! clock, configurations and requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::{
    Asset, BitcoinNetwork, Counterparty, CounterpartyAddress, LedgerTable, LightningPayment,
    Network, PaymentHash, SessionId, Subject,
};
use ports::{AccessTokenStore, Clock, StoreError, StoredAccessToken, WidgetRequest};
use secrecy::{ExposeSecret, SecretString};
use transak::{Environment, TransakConfig, TransakConfigBuilder};
use url::Url;
use uuid::Uuid;

pub const API_KEY: &str = "test-api-key";
pub const API_SECRET: &str = "test-api-secret-value";

/// The service's own in-memory token store (`memory::MemoryTokenStore`, which passes the
/// same conformance suite as the Postgres one), counting calls so tests can check the hot path
/// does not read the store, with helpers that act as another instance would.
#[derive(Default)]
pub struct MemoryTokenStore {
    inner: memory::MemoryTokenStore,
    pub reads: AtomicUsize,
    pub leases_granted: AtomicUsize,
    pub saves: AtomicUsize,
    pub releases: AtomicUsize,
}

/// The result of a future that never waits (the in-memory store's), without a runtime, so
/// the helpers below can be called from synchronous code and from inside async tasks alike.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

impl MemoryTokenStore {
    /// Saves a token as another instance would after refreshing it (version + 1): it takes
    /// the lease (whoever held it), saves, and so frees the lease.
    pub fn seed(&self, account: &str, token: &str, expires_at: DateTime<Utc>) -> i64 {
        let other = Uuid::new_v4();
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(ready(self.inner.try_lease_refresh(account, other, far, far)).unwrap());
        ready(self.inner.save_refreshed(
            account,
            other,
            SecretString::from(token.to_string()),
            expires_at,
            DateTime::<Utc>::UNIX_EPOCH,
        ))
        .unwrap()
        .version
    }

    /// The stored token's value and version (not counted as a read).
    pub fn stored(&self, account: &str) -> Option<(String, i64)> {
        ready(self.inner.current(account))
            .unwrap()
            .map(|t| (t.token.expose_secret().to_string(), t.version))
    }

    /// Whether anyone holds the lease (expired or not).
    pub fn lease_holder(&self, account: &str) -> Option<Uuid> {
        self.inner.lease(account).map(|(holder, _)| holder)
    }

    /// Takes the lease for someone else (a simulated instance that is refreshing).
    pub fn hold_lease(&self, account: &str, holder: Uuid, until: DateTime<Utc>) {
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(ready(self.inner.try_lease_refresh(account, holder, far, until)).unwrap());
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AccessTokenStore for MemoryTokenStore {
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.current(account).await
    }

    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let granted = self
            .inner
            .try_lease_refresh(account, holder, now, lease_until)
            .await?;
        if granted {
            self.leases_granted.fetch_add(1, Ordering::SeqCst);
        }
        Ok(granted)
    }

    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let saved = self
            .inner
            .save_refreshed(account, holder, token, expires_at, now)
            .await?;
        self.saves.fetch_add(1, Ordering::SeqCst);
        Ok(saved)
    }

    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError> {
        if self.lease_holder(account) == Some(holder) {
            self.releases.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.release_refresh(account, holder).await
    }

    async fn sealed_tokens(&self) -> Result<Vec<ports::SealedAccessToken>, StoreError> {
        self.inner.sealed_tokens().await
    }

    async fn reseal_token(
        &self,
        account: &str,
        slot: ports::TokenSlot,
        current: &ports::EncryptedSecret,
        resealed: ports::EncryptedSecret,
    ) -> Result<bool, StoreError> {
        self.inner
            .reseal_token(account, slot, current, resealed)
            .await
    }

    async fn forget_token(
        &self,
        account: &str,
        slot: ports::TokenSlot,
        current: &ports::EncryptedSecret,
    ) -> Result<bool, StoreError> {
        self.inner.forget_token(account, slot, current).await
    }
}

/// A clock that starts at the system time and moves only when told.
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new() -> Self {
        Self(Mutex::new(ports::SystemClock.now()))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += TimeDelta::from_std(by).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A configuration pointing both bases at `base`, with short timings for tests.
pub fn config_builder(environment: Environment, base: &str) -> TransakConfigBuilder {
    let base = Url::parse(base).unwrap();
    TransakConfig::builder(
        environment,
        API_KEY,
        SecretString::from(API_SECRET),
        "partner.example.com",
    )
    .gateway_url(base.clone())
    .api_url(base)
    .request_timeout(Duration::from_millis(500))
    .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
    .refresh_lease(Duration::from_secs(3))
    .token_poll_interval(Duration::from_millis(20))
}

pub fn account() -> String {
    format!("emulator:{API_KEY}")
}

pub fn on_chain_request() -> WidgetRequest {
    WidgetRequest {
        session_id: SessionId::from_uuid(Uuid::new_v4()),
        subject: Subject::User(Uuid::new_v4()),
        asset: Asset::new("USDC", "ETH", &LedgerTable::default()).unwrap(),
        counterparty: Counterparty::Address(
            CounterpartyAddress::parse(
                Network::Eth,
                "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
                BitcoinNetwork::Mainnet,
            )
            .unwrap(),
        ),
    }
}

pub fn lightning_request() -> WidgetRequest {
    WidgetRequest {
        session_id: SessionId::from_uuid(Uuid::new_v4()),
        subject: Subject::Business(Uuid::new_v4()),
        asset: Asset::new("BTC", "BTC", &LedgerTable::default()).unwrap(),
        counterparty: Counterparty::Lightning(LightningPayment {
            payment_hash: PaymentHash::parse(
                "0001020304050607080900010203040506070809000102030405060708090102",
            )
            .unwrap(),
            invoice: None,
        }),
    }
}

/// Seconds since the epoch, `days` from the system's now.
pub fn unix_in_days(days: i64) -> i64 {
    (Utc::now() + TimeDelta::days(days)).timestamp()
}
