//! sqlx errors → the ports' documented variants.

use ports::{StoreCause, StoreError};

/// Postgres SQLSTATE classes/codes that mean "the database is not there right now".
fn is_unavailable_code(code: &str) -> bool {
    // 08: connection exception; 57P01..57P03: admin/crash shutdown, cannot connect now;
    // 53300: too many connections; 55000: refused at connection time because the database
    // does not accept connections (`ALLOW_CONNECTIONS false`, e.g. during maintenance) — no
    // statement of ours raises 55000 otherwise; 40001/40P01 are retryable too but callers
    // retry anyway.
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "55000")
}

/// A failure of the database, kept as the cause of a [`StoreError`]: sqlx's error, with the
/// SQLSTATE Postgres reported (if any) in front of its message, so a log line says both.
/// Postgres puts row data in an error's detail, never in its message, and the detail is not
/// shown.
#[derive(Debug, thiserror::Error)]
pub struct DatabaseError {
    sqlstate: Option<String>,
    #[source]
    source: sqlx::Error,
}

impl DatabaseError {
    /// The SQLSTATE Postgres reported, e.g. `23505`.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.sqlstate, &self.source) {
            (Some(code), sqlx::Error::Database(db)) => {
                write!(f, "SQLSTATE {code}: {}", db.message())
            }
            (_, other) => write!(f, "{other}"),
        }
    }
}

/// Maps a sqlx error: connection trouble → `Unavailable`, a unique violation → `Conflict`,
/// anything else → `Unexpected`; each keeps the sqlx error (and its SQLSTATE) as its cause.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    let sqlstate = match &e {
        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
        _ => None,
    };
    let kind = match (&e, sqlstate.as_deref()) {
        (
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_),
            _,
        ) => StoreError::Unavailable,
        (_, Some(code)) if is_unavailable_code(code) => StoreError::Unavailable,
        (_, Some("23505")) => StoreError::Conflict,
        _ => StoreError::Unexpected,
    };
    kind(StoreCause::new(DatabaseError {
        sqlstate,
        source: e,
    }))
}

/// The constraint a unique violation names, if `e` is one.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or_default().to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_unavailable() {
        let e = store_error(sqlx::Error::PoolTimedOut);
        assert!(matches!(&e, StoreError::Unavailable(_)));
        let StoreError::Unavailable(cause) = &e else {
            unreachable!()
        };
        assert!(cause.inner().downcast_ref::<DatabaseError>().is_some());
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("57P01"));
        assert!(is_unavailable_code("55000"));
        assert!(!is_unavailable_code("23505"));
    }
}
