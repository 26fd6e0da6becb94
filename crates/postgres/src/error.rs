//! sqlx errors → the ports' documented variants.

use ports::StoreError;

/// Postgres SQLSTATE classes/codes that mean "the database is not there right now".
fn is_unavailable_code(code: &str) -> bool {
    // 08: connection exception; 57P01..57P03: admin/crash shutdown, cannot connect now;
    // 53300: too many connections; 55000: refused at connection time because the database
    // does not accept connections (`ALLOW_CONNECTIONS false`, e.g. during maintenance) — no
    // statement of ours raises 55000 otherwise; 40001/40P01 are retryable too but callers
    // retry anyway.
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "55000")
}

/// Maps a sqlx error: connection trouble → `Unavailable`, a unique violation → `Conflict`,
/// anything else → `Unexpected`. Messages carry no row data.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if is_unavailable_code(&code) {
                StoreError::Unavailable(db.message().to_string())
            } else if code == "23505" {
                StoreError::Conflict(format!(
                    "unique constraint {} violated",
                    db.constraint().unwrap_or("?")
                ))
            } else {
                StoreError::Unexpected(format!("database error {code}: {}", db.message()))
            }
        }
        _ => StoreError::Unexpected(e.to_string()),
    }
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
        assert!(matches!(
            store_error(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(is_unavailable_code("08006"));
        assert!(is_unavailable_code("57P01"));
        assert!(is_unavailable_code("55000"));
        assert!(!is_unavailable_code("23505"));
    }
}
