//! The at-rest keys over every sealed value: what the check covers, and reseal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic; that is how they fail

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::{AtRestKeys, KeyError, SealedKind};
use chrono::{DateTime, Utc};
use domain::{WebhookEndpointId, WebhookUrl};
use ports::*;
use secrecy::{ExposeSecret as _, SecretString};
use testkit::fixtures::{APP_A, at, t0};
use uuid::Uuid;

/// A sealer for these tests: the "key" is only a name, the sealed bytes are the context then
/// the secret, so that a test can tell which key sealed what and for which record. Not
/// cryptography: the keyring crate's own tests cover that.
struct NamedKeys {
    current: &'static str,
    old: Vec<&'static str>,
}

impl NamedKeys {
    fn new(current: &'static str, old: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            current,
            old: old.to_vec(),
        })
    }
}

impl SecretSealer for NamedKeys {
    fn seal(&self, secret: &SecretString, context: SealContext) -> EncryptedSecret {
        let mut sealed = context.associated_data();
        sealed.push(0xFF);
        sealed.extend_from_slice(secret.expose_secret().as_bytes());
        EncryptedSecret {
            key_id: self.current.to_string(),
            sealed,
        }
    }

    fn open(
        &self,
        sealed: &EncryptedSecret,
        context: SealContext,
    ) -> Result<SecretString, SealError> {
        if !self.key_ids().contains(&sealed.key_id) {
            return Err(SealError::UnknownKey {
                found: sealed.key_id.clone(),
                configured: self.key_ids(),
            });
        }
        let mut prefix = context.associated_data();
        prefix.push(0xFF);
        let rest = sealed
            .sealed
            .strip_prefix(prefix.as_slice())
            .ok_or(SealError::Corrupt)?;
        Ok(SecretString::from(
            String::from_utf8(rest.to_vec()).unwrap(),
        ))
    }

    fn is_current(&self, sealed: &EncryptedSecret) -> bool {
        sealed.key_id == self.current
    }

    fn key_ids(&self) -> Vec<String> {
        std::iter::once(self.current)
            .chain(self.old.iter().copied())
            .map(str::to_string)
            .collect()
    }
}

/// A clock stopped at `at(1000)`.
struct Stopped;

impl Clock for Stopped {
    fn now(&self) -> DateTime<Utc> {
        at(1000)
    }
}

/// A token store that holds sealed tokens as they are, like the Postgres adapter's rows.
#[derive(Default)]
struct SealedTokens(Mutex<Vec<SealedAccessToken>>);

#[async_trait::async_trait]
impl AccessTokenStore for SealedTokens {
    async fn current(&self, _: &str) -> Result<Option<StoredAccessToken>, StoreError> {
        Err(StoreError::unexpected("not used by the key use cases"))
    }
    async fn try_lease_refresh(
        &self,
        _: &str,
        _: Uuid,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(StoreError::unexpected("not used by the key use cases"))
    }
    async fn save_refreshed(
        &self,
        _: &str,
        _: Uuid,
        _: SecretString,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<StoredAccessToken, StoreError> {
        Err(StoreError::unexpected("not used by the key use cases"))
    }
    async fn release_refresh(&self, _: &str, _: Uuid) -> Result<(), StoreError> {
        Err(StoreError::unexpected("not used by the key use cases"))
    }
    async fn sealed_tokens(&self) -> Result<Vec<SealedAccessToken>, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn reseal_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let mut all = self.0.lock().unwrap();
        match all
            .iter_mut()
            .find(|t| t.account == account && t.slot == slot && t.token == *current)
        {
            Some(t) => {
                t.token = resealed;
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn forget_token(
        &self,
        account: &str,
        slot: TokenSlot,
        current: &EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let mut all = self.0.lock().unwrap();
        let before = all.len();
        all.retain(|t| {
            !(t.account == account
                && (t.slot == slot || slot == TokenSlot::Current)
                && (t.slot != slot || t.token == *current))
        });
        Ok(all.len() < before)
    }
}

fn endpoint(n: u128) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(Uuid::from_u128(0xE000 + n)),
        application: APP_A,
        url: WebhookUrl::parse(&format!("https://hooks.example.com/{n}"), false).unwrap(),
        event_types: Vec::new(),
        created_at: t0(),
    }
}

fn endpoint_context(n: u128) -> SealContext {
    SealContext::WebhookEndpoint {
        application: APP_A,
        endpoint: endpoint(n).id.as_uuid(),
    }
}

/// One of every kind, all sealed under key `old` (now `at(1000)`): the application `acme`;
/// endpoint 1 with one secret; endpoint 2 rotated with its previous secret signing until
/// `at(2000)`; endpoint 3 rotated with a previous secret that stopped signing at `at(500)`;
/// a Transak token whose previous one was replaced at `at(900)` (in its 15-minute grace), and
/// another account's whose previous one was replaced at `t0` (past it).
async fn everything_sealed_under_old() -> (Stores, Arc<SealedTokens>) {
    let old = NamedKeys::new("old", &[]);
    let mut stores = memory::stores();
    stores
        .applications
        .create(NewApplication {
            id: APP_A,
            name: "acme".into(),
            api_key: ApiKeyDigest::of("wsk_acme-0123456789"),
            secret: old.seal(
                &SecretString::from("wss_acme-secret"),
                SealContext::Application(APP_A),
            ),
            settings: ApplicationSettings::default(),
            now: t0(),
        })
        .await
        .unwrap();
    for n in 1..=3u128 {
        let secret = |which: &str| {
            old.seal(
                &SecretString::from(format!("whsec_{n}_{which}")),
                endpoint_context(n),
            )
        };
        stores
            .endpoints
            .create(&endpoint(n), secret("first"), 10)
            .await
            .unwrap();
        let until = if n == 2 { at(2000) } else { at(500) };
        if n > 1 {
            stores
                .endpoints
                .rotate_secret(APP_A, endpoint(n).id, secret("second"), until)
                .await
                .unwrap();
        }
    }
    let token = |t: &str| old.seal(&SecretString::from(t), SealContext::UpstreamAccessToken);
    let tokens = Arc::new(SealedTokens::default());
    *tokens.0.lock().unwrap() = vec![
        SealedAccessToken {
            account: "production:key".into(),
            slot: TokenSlot::Current,
            token: token("jwt-current"),
            replaced_at: None,
        },
        SealedAccessToken {
            account: "production:key".into(),
            slot: TokenSlot::Previous,
            token: token("jwt-previous"),
            replaced_at: Some(at(900)),
        },
        SealedAccessToken {
            account: "staging:key".into(),
            slot: TokenSlot::Current,
            token: token("jwt-staging"),
            replaced_at: None,
        },
        SealedAccessToken {
            account: "staging:key".into(),
            slot: TokenSlot::Previous,
            token: token("jwt-staging-previous"),
            replaced_at: Some(t0()),
        },
    ];
    stores.tokens = tokens.clone() as Arc<dyn AccessTokenStore>;
    (stores, tokens)
}

fn keys(stores: &Stores, sealer: Arc<NamedKeys>) -> AtRestKeys {
    AtRestKeys::new(
        stores,
        sealer,
        Arc::new(Stopped),
        Duration::from_secs(15 * 60),
    )
}

#[tokio::test]
async fn the_check_covers_every_sealed_value_in_use() {
    let (stores, _) = everything_sealed_under_old().await;
    let report = keys(&stores, NamedKeys::new("old", &[]))
        .check()
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.describe());
    let counts: Vec<_> = SealedKind::ALL.iter().map(|k| report.checked(*k)).collect();
    assert_eq!(counts, vec![1, 3, 1, 2, 1], "{report:?}");

    // Only the new key: every value in use fails, each named by its record.
    let report = keys(&stores, NamedKeys::new("new", &[]))
        .check()
        .await
        .unwrap();
    assert!(!report.ok());
    let failing: Vec<(SealedKind, &str)> = report
        .unopenable
        .iter()
        .map(|u| (u.kind, u.record.as_str()))
        .collect();
    let e = |n: u128| endpoint(n).id.to_string();
    let expected = [
        (SealedKind::ApplicationSecret, "acme".to_string()),
        (SealedKind::EndpointSecret, e(1)),
        (SealedKind::EndpointSecret, e(2)),
        (SealedKind::EndpointSecret, e(3)),
        (SealedKind::PreviousEndpointSecret, e(2)),
        (SealedKind::UpstreamToken, "production:key".to_string()),
        (SealedKind::UpstreamToken, "staging:key".to_string()),
        (
            SealedKind::PreviousUpstreamToken,
            "production:key".to_string(),
        ),
    ];
    let mut sorted = failing.clone();
    sorted.sort();
    let mut want: Vec<(SealedKind, &str)> =
        expected.iter().map(|(k, r)| (*k, r.as_str())).collect();
    want.sort();
    assert_eq!(sorted, want);
    // The retired ones (past their time) do not fail the check.
    assert_eq!(report.retired_unopenable, 2);
    let text = report.describe();
    for part in [
        "1 of 1 application secrets cannot be opened with the configured keys (acme)",
        "3 of 3 webhook endpoint secrets cannot be opened",
        "1 of 1 previous webhook endpoint secrets cannot be opened",
        "2 of 2 Transak access tokens cannot be opened with the configured keys (production:key, staging:key)",
        "1 of 1 previous Transak access tokens cannot be opened with the configured keys (production:key)",
        "they were sealed with key old but the configured keys are new",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    for secret in ["wss_acme-secret", "whsec_", "jwt-"] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn reseal_seals_every_value_under_the_current_key() {
    let (stores, tokens) = everything_sealed_under_old().await;
    // Nothing changes while a value in use does not open.
    let refused = keys(&stores, NamedKeys::new("new", &[])).reseal().await;
    assert!(
        matches!(refused, Err(KeyError::Unopenable(_))),
        "{refused:?}"
    );
    assert!(
        tokens
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|t| t.token.key_id == "old")
    );

    let rotation = keys(&stores, NamedKeys::new("new", &["old"]));
    let done = rotation.reseal().await.unwrap();
    assert_eq!(done.key_id, "new");
    assert_eq!(
        done.resealed,
        vec![
            (SealedKind::ApplicationSecret, 1, 1),
            (SealedKind::EndpointSecret, 3, 3),
            (SealedKind::PreviousEndpointSecret, 2, 2),
            (SealedKind::UpstreamToken, 2, 2),
            (SealedKind::PreviousUpstreamToken, 2, 2),
        ]
    );
    assert_eq!(rotation.reseal().await.unwrap().total_resealed(), 0);

    // With the old key gone, everything opens, each value as it was and for its record.
    let new_only = NamedKeys::new("new", &[]);
    let report = keys(&stores, new_only.clone()).check().await.unwrap();
    assert!(report.ok(), "{}", report.describe());
    assert_eq!(report.retired_unopenable, 0);
    let record = stores
        .applications
        .find_by_name("acme")
        .await
        .unwrap()
        .unwrap();
    let secret = new_only
        .open(&record.secret, SealContext::Application(APP_A))
        .unwrap();
    assert_eq!(secret.expose_secret(), "wss_acme-secret");
    let endpoint_secrets = stores.endpoints.sealed_secrets().await.unwrap();
    let two: Vec<String> = endpoint_secrets
        .iter()
        .filter(|s| s.endpoint == endpoint(2).id)
        .map(|s| {
            new_only
                .open(&s.secret, endpoint_context(2))
                .unwrap()
                .expose_secret()
                .to_string()
        })
        .collect();
    assert_eq!(two, vec!["whsec_2_second", "whsec_2_first"]);
    let token = tokens.0.lock().unwrap()[0].token.clone();
    assert_eq!(
        new_only
            .open(&token, SealContext::UpstreamAccessToken)
            .unwrap()
            .expose_secret(),
        "jwt-current"
    );
}

#[tokio::test]
async fn only_tokens_no_key_opens_are_forgotten() {
    let (stores, tokens) = everything_sealed_under_old().await;
    let old = NamedKeys::new("old", &[]);
    // Another account's token, sealed under a key that is lost.
    tokens.0.lock().unwrap().push(SealedAccessToken {
        account: "emulator:key".into(),
        slot: TokenSlot::Current,
        token: NamedKeys::new("lost", &[]).seal(
            &SecretString::from("jwt-lost"),
            SealContext::UpstreamAccessToken,
        ),
        replaced_at: None,
    });
    let forgotten = keys(&stores, old).forget_unopenable_tokens().await.unwrap();
    assert_eq!(forgotten, 1);
    let accounts: Vec<String> = tokens
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.account.clone())
        .collect();
    assert!(
        !accounts.contains(&"emulator:key".to_string()),
        "{accounts:?}"
    );
    assert_eq!(accounts.len(), 4);
}

#[tokio::test]
async fn a_wrong_key_forgets_no_token() {
    let (stores, tokens) = everything_sealed_under_old().await;
    let before = tokens.0.lock().unwrap().len();
    // A mistyped key opens nothing: the tokens it cannot open are not evidence of a lost key.
    let typo = NamedKeys::new("typo", &[]);
    let refused = keys(&stores, typo).forget_unopenable_tokens().await;
    assert!(
        matches!(&refused, Err(KeyError::Unopenable(report)) if report.checked(SealedKind::ApplicationSecret) > 0),
        "{refused:?}"
    );
    assert_eq!(tokens.0.lock().unwrap().len(), before, "nothing forgotten");
}

#[tokio::test]
async fn with_nothing_else_sealed_no_token_is_forgotten() {
    // Only tokens: nothing shows whether the configured key is right, so none is forgotten.
    let (everything, tokens) = everything_sealed_under_old().await;
    let mut stores = memory::stores();
    stores.tokens = everything.tokens.clone();
    let before = tokens.0.lock().unwrap().len();
    let refused = keys(&stores, NamedKeys::new("typo", &[]))
        .forget_unopenable_tokens()
        .await;
    assert!(
        matches!(refused, Err(KeyError::Unopenable(_))),
        "{refused:?}"
    );
    assert_eq!(tokens.0.lock().unwrap().len(), before, "nothing forgotten");
}
