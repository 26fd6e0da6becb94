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

mod webhook_store {
    use super::*;
    use ports::WebhookStore;
    testkit::webhook_store_conformance!(async {
        let db = fresh_database().await;
        // Endpoints belong to applications.
        for (id, name) in [
            (testkit::fixtures::APP_A, "conformance-a"),
            (testkit::fixtures::APP_B, "conformance-b"),
        ] {
            sqlx::query(
                "insert into applications (id, name, api_key_digest, secret_key_id, secret_sealed, status, created_at, rotated_at)
                 values ($1, $2, sha256($2::bytea), 'k2-test', '\\x00', 'active', now(), now())",
            )
            .bind(id.as_uuid())
            .bind(name)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        let store = Arc::new(PgSessionStore::new(db.pool.clone()));
        (
            (
                store.clone() as Arc<dyn SessionStore>,
                store as Arc<dyn WebhookStore>,
            ),
            db,
        )
    });
}
