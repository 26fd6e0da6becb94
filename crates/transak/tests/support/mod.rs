//! Shared test helpers: an in-memory [`AccessTokenStore`] following the trait's documented
//! semantics, a settable clock, configurations and requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

#[derive(Default)]
struct Account {
    token: Option<StoredAccessToken>,
    lease: Option<(Uuid, DateTime<Utc>)>,
}

/// The in-memory token store. Also counts calls, so tests can check the hot path does not
/// read the store.
#[derive(Default)]
pub struct MemoryTokenStore {
    accounts: Mutex<HashMap<String, Account>>,
    pub reads: AtomicUsize,
    pub leases_granted: AtomicUsize,
    pub saves: AtomicUsize,
    pub releases: AtomicUsize,
}

impl MemoryTokenStore {
    /// Puts a token in place as if some instance had refreshed it (version + 1).
    pub fn seed(&self, account: &str, token: &str, expires_at: DateTime<Utc>) -> i64 {
        let mut accounts = self.accounts.lock().unwrap();
        let entry = accounts.entry(account.to_string()).or_default();
        let version = entry.token.as_ref().map_or(1, |t| t.version + 1);
        entry.token = Some(StoredAccessToken {
            token: SecretString::from(token.to_string()),
            expires_at,
            version,
        });
        version
    }

    /// The stored token's value and version.
    pub fn stored(&self, account: &str) -> Option<(String, i64)> {
        let accounts = self.accounts.lock().unwrap();
        accounts
            .get(account)
            .and_then(|a| a.token.as_ref())
            .map(|t| (t.token.expose_secret().to_string(), t.version))
    }

    /// Whether anyone holds the lease (expired or not).
    pub fn lease_holder(&self, account: &str) -> Option<Uuid> {
        let accounts = self.accounts.lock().unwrap();
        accounts.get(account).and_then(|a| a.lease).map(|(h, _)| h)
    }

    /// Takes the lease for someone else (a simulated instance that is refreshing).
    pub fn hold_lease(&self, account: &str, holder: Uuid, until: DateTime<Utc>) {
        let mut accounts = self.accounts.lock().unwrap();
        accounts.entry(account.to_string()).or_default().lease = Some((holder, until));
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AccessTokenStore for MemoryTokenStore {
    async fn current(&self, account: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let accounts = self.accounts.lock().unwrap();
        Ok(accounts.get(account).and_then(|a| a.token.clone()))
    }

    async fn try_lease_refresh(
        &self,
        account: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut accounts = self.accounts.lock().unwrap();
        let entry = accounts.entry(account.to_string()).or_default();
        match entry.lease {
            Some((_, until)) if until > now => Ok(false),
            _ => {
                entry.lease = Some((holder, lease_until));
                self.leases_granted.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }
        }
    }

    async fn save_refreshed(
        &self,
        account: &str,
        holder: Uuid,
        token: SecretString,
        expires_at: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        let mut accounts = self.accounts.lock().unwrap();
        let entry = accounts.entry(account.to_string()).or_default();
        match entry.lease {
            Some((h, _)) if h == holder => {}
            _ => return Err(StoreError::Conflict("the refresh lease is not held".into())),
        }
        let version = entry.token.as_ref().map_or(1, |t| t.version + 1);
        let saved = StoredAccessToken {
            token,
            expires_at,
            version,
        };
        entry.token = Some(saved.clone());
        entry.lease = None;
        self.saves.fetch_add(1, Ordering::SeqCst);
        Ok(saved)
    }

    async fn release_refresh(&self, account: &str, holder: Uuid) -> Result<(), StoreError> {
        let mut accounts = self.accounts.lock().unwrap();
        if let Some(entry) = accounts.get_mut(account) {
            if entry.lease.is_some_and(|(h, _)| h == holder) {
                entry.lease = None;
                self.releases.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
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
