# Everyday commands. `just --list` shows them all.

# Everything CI runs, in the same order.
ci:
    bash .ci/run

# The whole test suite (what README.md shows).
test:
    cargo test --workspace

# Lints as CI runs them.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmarks (release build); figures go into docs/benchmarks.md.
bench:
    cargo bench -p widget-sessions-domain --bench domain

# API docs for the domain crate, opened in a browser.
doc:
    cargo doc -p widget-sessions-domain --no-deps --open
