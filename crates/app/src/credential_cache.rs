//! Recently looked-up credentials, so authentication rarely reaches the store.
//!
//! Two bounded LRU maps: one for keys that exist and one, smaller, for keys that do not. A
//! flood of unknown keys only evicts other unknown keys, never the credentials of the
//! applications actually calling. Entries are trusted for [`CredentialCache::TTL`], so a
//! rotation or a disable takes effect within that time on every instance.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use domain::ApplicationId;
use lru::LruCache;
use ports::{ApiKeyDigest, ApplicationStatus};
use secrecy::SecretString;
use tokio::time::Instant;

/// An application's credentials, opened.
#[derive(Clone)]
pub struct Credentials {
    /// The application.
    pub application: ApplicationId,
    /// Its name.
    pub name: String,
    /// Its settings.
    pub settings: ports::ApplicationSettings,
    /// Whether it may call.
    pub status: ApplicationStatus,
    /// Its HMAC secret, opened.
    pub secret: SecretString,
}

/// See the module documentation.
pub struct CredentialCache {
    known: Mutex<LruCache<ApiKeyDigest, (Instant, Credentials)>>,
    unknown: Mutex<LruCache<ApiKeyDigest, Instant>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new(Self::KNOWN_ENTRIES, Self::UNKNOWN_ENTRIES)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a single map operation: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CredentialCache {
    /// How long a lookup (found or not) is trusted.
    pub const TTL: Duration = Duration::from_secs(10);
    /// How many known keys are kept.
    pub const KNOWN_ENTRIES: usize = 10_000;
    /// How many unknown keys are kept.
    pub const UNKNOWN_ENTRIES: usize = 1_000;

    /// A cache of at most `known` and `unknown` entries (each at least 1).
    pub fn new(known: usize, unknown: usize) -> Self {
        let cap = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Self {
            known: Mutex::new(LruCache::new(cap(known))),
            unknown: Mutex::new(LruCache::new(cap(unknown))),
        }
    }

    /// A fresh cached lookup: `Some(Some(_))` known, `Some(None)` known not to exist, `None`
    /// not cached.
    pub fn get(&self, key: &ApiKeyDigest) -> Option<Option<Credentials>> {
        if let Some((at, c)) = lock(&self.known).get(key)
            && at.elapsed() < Self::TTL
        {
            return Some(Some(c.clone()));
        }
        if let Some(at) = lock(&self.unknown).get(key)
            && at.elapsed() < Self::TTL
        {
            return Some(None);
        }
        None
    }

    /// Remembers a lookup.
    pub fn put(&self, key: ApiKeyDigest, value: Option<Credentials>) {
        let now = Instant::now();
        match value {
            Some(c) => {
                lock(&self.unknown).pop(&key);
                lock(&self.known).put(key, (now, c));
            }
            None => {
                lock(&self.known).pop(&key);
                lock(&self.unknown).put(key, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(n: u128) -> Credentials {
        Credentials {
            application: ApplicationId::from_uuid(uuid::Uuid::from_u128(n)),
            name: format!("app-{n}"),
            settings: ports::ApplicationSettings::default(),
            status: ApplicationStatus::Active,
            secret: SecretString::from("s"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_unknown_keys_never_evicts_known_ones() {
        let cache = CredentialCache::new(10, 100);
        let known = ApiKeyDigest::of("known");
        cache.put(known, Some(creds(1)));
        for i in 0..10_000 {
            cache.put(ApiKeyDigest::of(&format!("unknown-{i}")), None);
        }
        assert!(matches!(cache.get(&known), Some(Some(_))));
        assert!(matches!(
            cache.get(&ApiKeyDigest::of("unknown-9999")),
            Some(None)
        ));
        assert!(
            cache.get(&ApiKeyDigest::of("unknown-0")).is_none(),
            "evicted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_known_keys_are_bounded() {
        let cache = CredentialCache::new(2, 2);
        let (a, b, c) = (
            ApiKeyDigest::of("a"),
            ApiKeyDigest::of("b"),
            ApiKeyDigest::of("c"),
        );
        cache.put(a, Some(creds(1)));
        cache.put(b, Some(creds(2)));
        cache.put(c, Some(creds(3)));
        assert!(cache.get(&a).is_none(), "least recently used, evicted");
        assert!(cache.get(&c).is_some());
        tokio::time::advance(CredentialCache::TTL).await;
        assert!(cache.get(&c).is_none(), "expired");
    }
}
