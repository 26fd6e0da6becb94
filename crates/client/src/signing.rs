//! Request signing (the `Authorization` header every `/api/v1` call carries): the pure
//! primitives of the `widget-sessions-signing` crate (which the service verifies with), and
//! [`fresh_unix_ms`], the one clock read, to sign with the current time.

pub use ::signing::request::*;

use sha2::Sha256;

/// A timestamp to sign `method`, `path_and_query` and `body` with: the system clock in
/// milliseconds since the Unix epoch, unless this process already signed the very same
/// request (same method, path and body) at that millisecond or later — then the next
/// millisecond after that one. The server accepts a signature once, so identical requests
/// need different timestamps; different requests may share one, so a busy process never
/// runs ahead of the clock (the server refuses timestamps more than 30 s ahead).
///
/// This is the module's one clock read. The record is per process: two processes sending
/// the same request in the same millisecond with the same credentials still collide, and
/// the second is refused as `replayed_request`.
pub fn fresh_unix_ms(method: &str, path_and_query: &str, body: &[u8]) -> i64 {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    /// Entries kept before the ones at or behind the clock are dropped.
    const PRUNE_AT: usize = 4096;
    static LAST: OnceLock<Mutex<HashMap<[u8; 32], i64>>> = OnceLock::new();
    // What the signature covers besides the time: the same request is the same message,
    // whichever way the path was written (with or without `/api/v1`) and whether an empty
    // body was sent as nothing or as `{}`.
    let request: [u8; 32] = {
        let mut h = <Sha256 as sha2::Digest>::new();
        let method = method.to_ascii_uppercase();
        let md5 = body_md5_hex(body);
        for part in [
            method.as_bytes(),
            signed_path(path_and_query).as_bytes(),
            md5.as_bytes(),
        ] {
            sha2::Digest::update(&mut h, (part.len() as u64).to_le_bytes());
            sha2::Digest::update(&mut h, part);
        }
        sha2::Digest::finalize(h).into()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let mut last = LAST
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.len() >= PRUNE_AT {
        // A request last signed before this millisecond cannot collide any more.
        last.retain(|_, ms| *ms >= now);
    }
    let ms = match last.get(&request) {
        Some(&previous) if previous >= now => previous.saturating_add(1),
        _ => now,
    };
    last.insert(request, ms);
    ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_never_gets_the_same_timestamp_even_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..1000)
                        .map(|_| fresh_unix_ms("POST", "/same", b"{}"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn the_same_message_written_differently_still_gets_its_own_timestamp() {
        // An empty body signs as `{}`, and `/api/v1` is not part of the signed path.
        let a = fresh_unix_ms("post", "/api/v1/same-message", b"");
        let b = fresh_unix_ms("POST", "/same-message", b"{}");
        assert_ne!(a, b);
    }

    #[test]
    fn different_requests_do_not_push_timestamps_ahead_of_the_clock() {
        // 20 000 distinct requests signed as fast as possible: each gets the clock's time,
        // so none is ahead of it (with one shared counter they would be ~20 s ahead).
        let latest = (0..20_000)
            .map(|i| fresh_unix_ms("POST", &format!("/distinct/{i}"), b"{}"))
            .max()
            .unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        assert!(latest <= now, "{latest} is ahead of {now}");
    }
}
