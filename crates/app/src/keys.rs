//! The at-rest keys over everything they seal: applications' secrets, webhook endpoints'
//! signing secrets (the current one, and the previous one while it still signs) and the
//! shared Transak access token (the current one, and the previous one while it still
//! verifies order webhooks).
//!
//! [`AtRestKeys::check`] says whether the configured keys open every sealed value still in
//! use, and names those they do not open (start-up, readiness, `widget-sessions doctor`);
//! [`AtRestKeys::reseal`] seals every value anew under the current key (after a key
//! rotation), so that the previous key can be removed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{ApplicationId, WebhookEndpointId};
use ports::{
    AccessTokenStore, ApplicationStore, Clock, EncryptedSecret, EndpointStore, SealContext,
    SealError, SecretSealer, SecretSlot, StoreError, Stores, TokenSlot,
};
use tracing::{info, instrument, warn};

/// A kind of sealed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedKind {
    /// An application's HMAC secret.
    ApplicationSecret,
    /// A webhook endpoint's signing secret.
    EndpointSecret,
    /// The secret a webhook endpoint's rotation replaced, while it still signs deliveries.
    PreviousEndpointSecret,
    /// The shared Transak access token.
    UpstreamToken,
    /// The access token the last refresh replaced, while it still verifies order webhooks.
    PreviousUpstreamToken,
}

impl SealedKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [SealedKind; 5] = [
        SealedKind::ApplicationSecret,
        SealedKind::EndpointSecret,
        SealedKind::PreviousEndpointSecret,
        SealedKind::UpstreamToken,
        SealedKind::PreviousUpstreamToken,
    ];

    /// What the values of this kind are, in the plural.
    pub const fn describe(self) -> &'static str {
        match self {
            SealedKind::ApplicationSecret => "application secrets",
            SealedKind::EndpointSecret => "webhook endpoint secrets",
            SealedKind::PreviousEndpointSecret => "previous webhook endpoint secrets",
            SealedKind::UpstreamToken => "Transak access tokens",
            SealedKind::PreviousUpstreamToken => "previous Transak access tokens",
        }
    }
}

/// A sealed value the configured keys do not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unopenable {
    /// What it is.
    pub kind: SealedKind,
    /// Which record holds it: the application's name, the endpoint's id, the Transak account.
    pub record: String,
    /// Why it does not open (key ids only, never a key).
    pub error: SealError,
}

/// What [`AtRestKeys::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// The ids of the configured keys, current first.
    pub configured: Vec<String>,
    /// How many values of each kind are in use (and were checked).
    pub checked: Vec<(SealedKind, usize)>,
    /// The values in use that did not open.
    pub unopenable: Vec<Unopenable>,
    /// Values no longer in use (a previous secret or token past its time) that do not open:
    /// never read again, so they do not fail the check.
    pub retired_unopenable: usize,
}

impl KeyReport {
    /// Whether every sealed value in use opened.
    pub fn ok(&self) -> bool {
        self.unopenable.is_empty()
    }

    /// How many values of `kind` were checked.
    pub fn checked(&self, kind: SealedKind) -> usize {
        self.checked
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// The values of `kind` that did not open.
    pub fn unopenable(&self, kind: SealedKind) -> impl Iterator<Item = &Unopenable> {
        self.unopenable.iter().filter(move |u| u.kind == kind)
    }

    /// Sentences for operators (logs, errors, `doctor`), naming the records and the key ids
    /// involved (never a key or a secret).
    pub fn describe(&self) -> String {
        if self.ok() {
            return format!(
                "the configured keys ({}) open every sealed value in use",
                self.configured.join(", ")
            );
        }
        let mut parts = Vec::new();
        for kind in SealedKind::ALL {
            let failing: Vec<&Unopenable> = self.unopenable(kind).collect();
            if failing.is_empty() {
                continue;
            }
            let records: Vec<&str> = failing.iter().map(|u| u.record.as_str()).collect();
            parts.push(format!(
                "{} of {} {} cannot be opened with the configured keys ({})",
                failing.len(),
                self.checked(kind),
                kind.describe(),
                records.join(", ")
            ));
        }
        let mut text = parts.join("; ");
        let mut found: Vec<&str> = Vec::new();
        let mut corrupt = 0;
        for u in &self.unopenable {
            match &u.error {
                SealError::UnknownKey { found: f, .. } => {
                    if !found.contains(&f.as_str()) {
                        found.push(f);
                    }
                }
                SealError::Corrupt => corrupt += 1,
            }
        }
        if !found.is_empty() {
            text.push_str(&format!(
                "; they were sealed with key {} but the configured keys are {}: set WIDGET_SESSIONS_SECRET_KEY (or WIDGET_SESSIONS_OLD_SECRET_KEYS) to the key that sealed them",
                found.join(", "),
                self.configured.join(", ")
            ));
        }
        if corrupt > 0 {
            text.push_str(&format!(
                "; {corrupt} failed authentication (altered, or copied from another record)"
            ));
        }
        text
    }
}

/// What [`AtRestKeys::reseal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealReport {
    /// The id of the key everything is now sealed under.
    pub key_id: String,
    /// For each kind: how many values were resealed, and how many there are.
    pub resealed: Vec<(SealedKind, usize, usize)>,
    /// Values no longer in use that no configured key opens, left as they are.
    pub retired_unopenable: usize,
}

impl ResealReport {
    /// How many values were resealed in all.
    pub fn total_resealed(&self) -> usize {
        self.resealed.iter().map(|(_, n, _)| n).sum()
    }

    /// How many sealed values there are in all.
    pub fn total(&self) -> usize {
        self.resealed.iter().map(|(_, _, n)| n).sum()
    }
}

/// Why the keys could not be checked or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Values in use that the configured keys cannot open: nothing was changed.
    #[error("{}", .0.describe())]
    Unopenable(KeyReport),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a sealed value lives.
#[derive(Debug, Clone)]
enum Holder {
    Application(ApplicationId),
    Endpoint {
        application: ApplicationId,
        id: WebhookEndpointId,
        slot: SecretSlot,
    },
    Token {
        account: String,
        slot: TokenSlot,
    },
}

/// One sealed value as stored.
#[derive(Debug, Clone)]
struct Sealed {
    kind: SealedKind,
    record: String,
    holder: Holder,
    secret: EncryptedSecret,
    /// Whether it is still read (a previous secret or token past its time is not).
    in_use: bool,
}

impl Sealed {
    fn context(&self) -> SealContext {
        match &self.holder {
            Holder::Application(id) => SealContext::Application(*id),
            Holder::Endpoint {
                application, id, ..
            } => SealContext::WebhookEndpoint {
                application: *application,
                endpoint: id.as_uuid(),
            },
            Holder::Token { .. } => SealContext::UpstreamAccessToken,
        }
    }
}

/// The at-rest keys over every sealed value.
#[derive(Clone)]
pub struct AtRestKeys {
    applications: Arc<dyn ApplicationStore>,
    endpoints: Arc<dyn EndpointStore>,
    tokens: Arc<dyn AccessTokenStore>,
    sealer: Arc<dyn SecretSealer>,
    clock: Arc<dyn Clock>,
    previous_token_grace: Duration,
}

impl AtRestKeys {
    /// The use cases over a backend's stores; a previous access token counts as in use for
    /// `previous_token_grace` after its refresh (how long it verifies order webhooks).
    pub fn new(
        stores: &Stores,
        sealer: Arc<dyn SecretSealer>,
        clock: Arc<dyn Clock>,
        previous_token_grace: Duration,
    ) -> Self {
        Self {
            applications: stores.applications.clone(),
            endpoints: stores.endpoints.clone(),
            tokens: stores.tokens.clone(),
            sealer,
            clock,
            previous_token_grace,
        }
    }

    /// The ids of the configured keys, current first.
    pub fn key_ids(&self) -> Vec<String> {
        self.sealer.key_ids()
    }

    async fn sealed(&self) -> Result<Vec<Sealed>, StoreError> {
        let now = self.clock.now();
        let grace = TimeDelta::from_std(self.previous_token_grace).unwrap_or(TimeDelta::MAX);
        let mut all = Vec::new();
        for record in self.applications.list_records().await? {
            all.push(Sealed {
                kind: SealedKind::ApplicationSecret,
                record: record.application.name.clone(),
                holder: Holder::Application(record.application.id),
                secret: record.secret,
                in_use: true,
            });
        }
        for s in self.endpoints.sealed_secrets().await? {
            let (kind, in_use) = match s.slot {
                SecretSlot::Current => (SealedKind::EndpointSecret, true),
                SecretSlot::Previous => (
                    SealedKind::PreviousEndpointSecret,
                    s.signs_until.is_some_and(|until| until > now),
                ),
            };
            all.push(Sealed {
                kind,
                record: s.endpoint.to_string(),
                holder: Holder::Endpoint {
                    application: s.application,
                    id: s.endpoint,
                    slot: s.slot,
                },
                secret: s.secret,
                in_use,
            });
        }
        for t in self.tokens.sealed_tokens().await? {
            let (kind, in_use) = match t.slot {
                TokenSlot::Current => (SealedKind::UpstreamToken, true),
                TokenSlot::Previous => (
                    SealedKind::PreviousUpstreamToken,
                    t.replaced_at.is_some_and(|at| in_grace(at, grace, now)),
                ),
            };
            all.push(Sealed {
                kind,
                record: t.account.clone(),
                holder: Holder::Token {
                    account: t.account,
                    slot: t.slot,
                },
                secret: t.token,
                in_use,
            });
        }
        Ok(all)
    }

    fn report(&self, sealed: &[Sealed]) -> KeyReport {
        let mut report = KeyReport {
            configured: self.sealer.key_ids(),
            checked: SealedKind::ALL.iter().map(|k| (*k, 0)).collect(),
            unopenable: Vec::new(),
            retired_unopenable: 0,
        };
        for s in sealed {
            let opened = self.sealer.open(&s.secret, s.context());
            if !s.in_use {
                if opened.is_err() {
                    report.retired_unopenable += 1;
                }
                continue;
            }
            if let Some((_, n)) = report.checked.iter_mut().find(|(k, _)| *k == s.kind) {
                *n += 1;
            }
            if let Err(error) = opened {
                report.unopenable.push(Unopenable {
                    kind: s.kind,
                    record: s.record.clone(),
                    error,
                });
            }
        }
        report
    }

    /// Whether the configured keys open every sealed value in use, and which they do not.
    ///
    /// # Errors
    ///
    /// The store's.
    #[instrument(skip_all)]
    pub async fn check(&self) -> Result<KeyReport, StoreError> {
        let sealed = self.sealed().await?;
        Ok(self.report(&sealed))
    }

    /// Seals every stored value anew under the current key, in the current format, unless it
    /// already is. Refuses, changing nothing, when a value in use does not open with the
    /// configured keys. Each replacement is a compare-and-swap on the value read: a value
    /// changed meanwhile (a rotation, a refresh) is left to whoever changed it, already
    /// sealed under its own current key.
    ///
    /// # Errors
    ///
    /// [`KeyError::Unopenable`] (nothing changed), or the store's.
    #[instrument(skip_all)]
    pub async fn reseal(&self) -> Result<ResealReport, KeyError> {
        let sealed = self.sealed().await?;
        let report = self.report(&sealed);
        if !report.ok() {
            return Err(KeyError::Unopenable(report));
        }
        let mut resealed: Vec<(SealedKind, usize, usize)> =
            SealedKind::ALL.iter().map(|k| (*k, 0, 0)).collect();
        for s in &sealed {
            let entry = resealed
                .iter_mut()
                .find(|(k, _, _)| *k == s.kind)
                .ok_or_else(|| StoreError::unexpected("a kind of sealed value is not listed"))?;
            let context = s.context();
            let Ok(secret) = self.sealer.open(&s.secret, context) else {
                // Retired, and sealed under a key no longer configured: never read again.
                continue;
            };
            entry.2 += 1;
            if self.sealer.is_current(&s.secret) {
                continue;
            }
            let fresh = self.sealer.seal(&secret, context);
            let swapped = match &s.holder {
                Holder::Application(id) => self.applications.reseal(*id, &s.secret, fresh).await?,
                Holder::Endpoint {
                    application,
                    id,
                    slot,
                } => {
                    self.endpoints
                        .reseal_secret(*application, *id, *slot, &s.secret, fresh)
                        .await?
                }
                Holder::Token { account, slot } => {
                    self.tokens
                        .reseal_token(account, *slot, &s.secret, fresh)
                        .await?
                }
            };
            if swapped {
                entry.1 += 1;
            }
        }
        let done = ResealReport {
            key_id: self.sealer.key_ids().into_iter().next().unwrap_or_default(),
            resealed,
            retired_unopenable: report.retired_unopenable,
        };
        info!(
            resealed = done.total_resealed(),
            of = done.total(),
            key_id = %done.key_id,
            "sealed values resealed under the current key"
        );
        Ok(done)
    }

    /// Forgets the stored Transak access tokens that no configured key opens (their key is
    /// lost): the next instance that needs a token obtains a new one. Returns how many were
    /// forgotten. Tokens that open are never touched, and nothing is forgotten unless every
    /// other sealed value in use opens: a mistyped key opens none of them, and forgetting the
    /// token under it would make the next instance refresh over the token every correctly
    /// keyed instance is using.
    ///
    /// # Errors
    ///
    /// [`KeyError::Unopenable`] (nothing forgotten), or the store's.
    #[instrument(skip_all)]
    pub async fn forget_unopenable_tokens(&self) -> Result<usize, KeyError> {
        let report = self.check().await?;
        let not_tokens = |k: &SealedKind| {
            !matches!(
                k,
                SealedKind::UpstreamToken | SealedKind::PreviousUpstreamToken
            )
        };
        // Evidence that the keys are right: another sealed value opened, and none failed.
        let others_open = report.checked.iter().any(|(k, n)| not_tokens(k) && *n > 0);
        if !others_open || report.unopenable.iter().any(|u| not_tokens(&u.kind)) {
            return Err(KeyError::Unopenable(report));
        }
        let mut forgotten = 0;
        for t in self.tokens.sealed_tokens().await? {
            if self
                .sealer
                .open(&t.token, SealContext::UpstreamAccessToken)
                .is_ok()
            {
                continue;
            }
            if self
                .tokens
                .forget_token(&t.account, t.slot, &t.token)
                .await?
            {
                warn!(slot = ?t.slot, "forgot a stored Transak access token that no configured key opens");
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }
}

fn in_grace(replaced_at: DateTime<Utc>, grace: TimeDelta, now: DateTime<Utc>) -> bool {
    replaced_at
        .checked_add_signed(grace)
        .is_none_or(|end| end > now)
}
