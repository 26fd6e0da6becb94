//! The Postgres adapters pass the same conformance suites as the in-memory ones, each test on
//! its own fresh, migrated database (see `testkit::pg`).

use std::sync::Arc;

testkit::store_conformance!(async {
    let db = testkit::pg::fresh_database().await;
    // The token store seals the access token: a fresh key.
    let sealer: Arc<dyn ports::SecretSealer> = Arc::new(keyring::Keyring::generate());
    (postgres::stores(db.pool.clone(), sealer), db)
});
