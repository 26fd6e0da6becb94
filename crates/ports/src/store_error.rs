//! What every store method may fail with.

use std::fmt;
use std::sync::Arc;

/// The underlying failure behind a [`StoreError`], kept for logs and for callers that
/// inspect it (the Postgres adapter's carries the SQLSTATE); never shown to API clients.
///
/// Cheap to clone. Two causes are equal when they say the same thing (tests compare
/// errors).
#[derive(Clone)]
pub struct StoreCause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl StoreCause {
    /// Wraps an adapter's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a sentence (an adapter with no error value of its own, such as
    /// the in-memory store, or a row that does not read back).
    pub fn message(text: impl Into<String>) -> Self {
        Self(Arc::new(Message(text.into())))
    }

    /// The adapter's error, to downcast (e.g. to the Postgres adapter's error type).
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for StoreCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StoreCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StoreCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StoreCause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for StoreCause {}

impl From<&str> for StoreCause {
    fn from(text: &str) -> Self {
        Self::message(text)
    }
}

impl From<String> for StoreCause {
    fn from(text: String) -> Self {
        Self::message(text)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// Store failures every method may return. The message names the kind of failure and its
/// cause (which is also the error's `source`), so a log line of the error says both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or timed out; trying again later may work.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] StoreCause),
    /// A uniqueness or precondition clash the method documents.
    #[error("store conflict: {0}")]
    Conflict(#[source] StoreCause),
    /// Anything else (corrupt row, bug).
    #[error("store failure: {0}")]
    Unexpected(#[source] StoreCause),
}

impl StoreError {
    /// [`StoreError::Unavailable`] with a sentence as its cause.
    pub fn unavailable(text: impl Into<String>) -> Self {
        Self::Unavailable(StoreCause::message(text))
    }

    /// [`StoreError::Conflict`] with a sentence as its cause.
    pub fn conflict(text: impl Into<String>) -> Self {
        Self::Conflict(StoreCause::message(text))
    }

    /// [`StoreError::Unexpected`] with a sentence as its cause.
    pub fn unexpected(text: impl Into<String>) -> Self {
        Self::Unexpected(StoreCause::message(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("SQLSTATE 08006: connection lost")]
    struct Adapter;

    #[test]
    fn the_cause_is_kept_as_the_source_and_in_the_message() {
        use std::error::Error as _;
        let e = StoreError::Unavailable(StoreCause::new(Adapter));
        assert_eq!(
            e.to_string(),
            "store unavailable: SQLSTATE 08006: connection lost"
        );
        let source = e.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("SQLSTATE 08006: connection lost"));
        let StoreError::Unavailable(cause) = &e else {
            unreachable!()
        };
        assert!(cause.inner().downcast_ref::<Adapter>().is_some());
        assert_eq!(
            e,
            StoreError::unavailable("SQLSTATE 08006: connection lost")
        );
    }
}
