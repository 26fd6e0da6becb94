//! The Postgres adapters pass the same conformance suites as the in-memory ones, each test on
//! its own fresh, migrated database (see `testkit::pg`).

use std::sync::Arc;

use ports::{AccessTokenStore, ApplicationStore, SessionStore};
use postgres::{PgApplicationStore, PgSessionStore, PgTokenStore};
use testkit::pg::fresh_database;

mod session_store {
    use super::*;
    testkit::session_store_conformance!(async {
        let db = fresh_database().await;
        (
            Arc::new(PgSessionStore::new(db.pool.clone())) as Arc<dyn SessionStore>,
            db,
        )
    });
}

mod token_store {
    use super::*;
    testkit::token_store_conformance!(async {
        let db = fresh_database().await;
        (
            Arc::new(PgTokenStore::new(db.pool.clone(), sealer())) as Arc<dyn AccessTokenStore>,
            db,
        )
    });
}

mod application_store {
    use super::*;
    testkit::application_store_conformance!(async {
        let db = fresh_database().await;
        (
            Arc::new(PgApplicationStore::new(db.pool.clone())) as Arc<dyn ApplicationStore>,
            db,
        )
    });
}

/// A sealer with a fresh key (the token store seals the access token).
fn sealer() -> Arc<dyn ports::SecretSealer> {
    Arc::new(keyring::Keyring::generate())
}
