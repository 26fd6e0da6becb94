//! The in-memory adapters pass the same conformance suites as the Postgres ones.

testkit::store_conformance!(async { (memory::stores(), ()) });
