//! The in-memory adapters pass the same conformance suites as the Postgres ones.

use std::sync::Arc;

use memory::{MemoryApplicationStore, MemorySessionStore, MemoryTokenStore};
use ports::{AccessTokenStore, ApplicationStore, SessionStore};

mod session_store {
    use super::*;
    testkit::session_store_conformance!(async {
        (
            Arc::new(MemorySessionStore::new()) as Arc<dyn SessionStore>,
            (),
        )
    });
}

mod token_store {
    use super::*;
    testkit::token_store_conformance!(async {
        (
            Arc::new(MemoryTokenStore::new()) as Arc<dyn AccessTokenStore>,
            (),
        )
    });
}

mod application_store {
    use super::*;
    testkit::application_store_conformance!(async {
        (
            Arc::new(MemoryApplicationStore::new()) as Arc<dyn ApplicationStore>,
            (),
        )
    });
}

mod webhook_store {
    use super::*;
    use ports::WebhookStore;
    testkit::webhook_store_conformance!(async {
        let store = Arc::new(MemorySessionStore::new());
        (
            (
                store.clone() as Arc<dyn SessionStore>,
                store as Arc<dyn WebhookStore>,
            ),
            (),
        )
    });
}
