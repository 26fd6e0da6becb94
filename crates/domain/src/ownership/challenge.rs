//! The challenge a counterparty signs: one line of printable ASCII, at most 240 bytes.
//!
//! ```text
//! <app> Travel Rule check: I control <address> (session <session id>, nonce <nonce>, valid until <until>)
//! ```

use std::fmt;

use chrono::{DateTime, Datelike, Utc};

use super::{MAX_MESSAGE_LEN, ProofTarget};
use crate::ids::SessionId;

/// The longest application label in a challenge, in characters.
pub const MAX_APP_LABEL: usize = 32;

/// Ten characters `[a-z2-7]` that make each challenge unique.
///
/// The domain has no random source: the caller supplies 7 random bytes, of which the first
/// 50 bits become the nonce (lower-case RFC 4648 base32).
///
/// ```
/// use domain::ChallengeNonce;
/// let n = ChallengeNonce::from_bytes([0xff, 0, 0x10, 0x20, 0x30, 0x40, 0x50]);
/// assert_eq!(n.as_str(), "74abaibqib");
/// assert_eq!(ChallengeNonce::parse("74abaibqib"), Some(n));
/// assert_eq!(ChallengeNonce::parse("74abaibqi1"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChallengeNonce([u8; 10]);

/// Lower-case RFC 4648 base32.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl ChallengeNonce {
    /// The nonce made of the first 50 bits of `bytes`.
    ///
    /// Hand-written: ten characters from a 56-bit number are a shift and a table lookup each,
    /// less than a base32 dependency's API.
    pub fn from_bytes(bytes: [u8; 7]) -> Self {
        let value = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut out = [b'a'; 10];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 51 - 5 * i; // the 5-bit groups from the top of 56 bits
            let index = usize::try_from((value >> shift) & 31).unwrap_or(0);
            *c = BASE32.get(index).copied().unwrap_or(b'a');
        }
        Self(out)
    }

    /// Parses a stored nonce: exactly ten characters `[a-z2-7]`.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; 10] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| BASE32.contains(b))
            .then_some(Self(bytes))
    }

    /// The ten characters.
    pub fn as_str(&self) -> &str {
        // Only characters of BASE32 are ever stored, all ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for ChallengeNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ChallengeNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChallengeNonce({self})")
    }
}

/// The message a counterparty signs to prove it controls its address.
///
/// Rendered once, when a session is created, and stored: [`Challenge::from_stored`] gives
/// it back unchanged whatever the configuration says later.
///
/// ```
/// use domain::*;
/// use chrono::DateTime;
/// let address = CounterpartyAddress::parse(
///     Network::Eth, "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", BitcoinNetwork::Mainnet).unwrap();
/// let target = ProofTarget::for_address(&address).unwrap();
/// let session = SessionId::from_uuid("0193a1b2-0000-7000-8000-0000000000aa".parse().unwrap());
/// let until = DateTime::from_timestamp(1_796_464_800, 0).unwrap();
/// let c = Challenge::new("Acme Pay ✓", &target, session, ChallengeNonce::from_bytes([0; 7]), until).unwrap();
/// assert_eq!(
///     c.as_str(),
///     "Acme Pay Travel Rule check: I control 0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359 \
///      (session 0193a1b2-0000-7000-8000-0000000000aa, nonce aaaaaaaaaa, valid until 2026-12-05T10:00:00Z)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Challenge(String);

/// Why a challenge could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The end of the window is not a year from 0000 to 9999 (RFC 3339 has four digits).
    #[error("the challenge's end of validity must lie in the years 0000 to 9999")]
    UntilOutOfRange,
    /// The rendered line would be longer than 240 bytes (which no counterparty address
    /// causes: the longest, a node id, leaves room to spare).
    #[error("the challenge would be longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
}

impl Challenge {
    /// Renders the challenge for `target` in `session`, valid until `until` (shown to the
    /// second, in UTC).
    ///
    /// `<app>` is `app_name` reduced to printable ASCII (0x20–0x7E; other characters are
    /// dropped), trimmed, cut to [`MAX_APP_LABEL`] characters and trimmed again. When
    /// nothing is left the line starts directly with `Travel Rule check:`: a made-up name
    /// would tell the signer less than none.
    ///
    /// # Errors
    /// [`ChallengeError::UntilOutOfRange`] for a year outside 0000–9999;
    /// [`ChallengeError::TooLong`] if the line would exceed 240 bytes.
    pub fn new(
        app_name: &str,
        target: &ProofTarget,
        session: SessionId,
        nonce: ChallengeNonce,
        until: DateTime<Utc>,
    ) -> Result<Self, ChallengeError> {
        if !(0..=9999).contains(&until.year()) {
            return Err(ChallengeError::UntilOutOfRange);
        }
        let label = app_label(app_name);
        let lead = if label.is_empty() {
            String::new()
        } else {
            format!("{label} ")
        };
        let text = format!(
            "{lead}Travel Rule check: I control {} (session {session}, nonce {nonce}, valid until {})",
            target.address_text(),
            until.format("%Y-%m-%dT%H:%M:%SZ"),
        );
        if text.len() > MAX_MESSAGE_LEN || !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(ChallengeError::TooLong);
        }
        Ok(Self(text))
    }

    /// A challenge as it was stored when it was rendered.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The exact text to sign.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, for storage.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The application's name as it appears in a challenge (see [`Challenge::new`]).
fn app_label(name: &str) -> String {
    let printable: String = name.chars().filter(|c| matches!(c, ' '..='~')).collect();
    printable
        .trim()
        .chars()
        .take(MAX_APP_LABEL)
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::CounterpartyAddress;
    use crate::ledger::{BitcoinNetwork, Network};
    use crate::lightning::NodeId;

    fn session() -> SessionId {
        SessionId::from_uuid(uuid::Uuid::from_u128(u128::MAX))
    }

    fn until() -> DateTime<Utc> {
        DateTime::from_timestamp(253_402_300_799, 0).unwrap() // 9999-12-31T23:59:59Z
    }

    #[test]
    fn app_names_are_reduced_to_printable_ascii() {
        assert_eq!(app_label("  Acme\tPay ✓ "), "AcmePay");
        assert_eq!(app_label("é✓\u{7f}\n"), "");
        assert_eq!(app_label(&"x".repeat(40)), "x".repeat(32));
        assert_eq!(
            app_label(&format!("{} tail", "y".repeat(31))),
            "y".repeat(31)
        );
    }

    #[test]
    fn an_empty_label_leaves_no_leading_space() {
        let target = ProofTarget::for_node(
            NodeId::parse("03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
                .unwrap(),
        );
        let c = Challenge::new(
            "✓✓",
            &target,
            session(),
            ChallengeNonce::from_bytes([0; 7]),
            until(),
        )
        .unwrap();
        assert!(
            c.as_str().starts_with("Travel Rule check: I control 03e7"),
            "{c}"
        );
    }

    #[test]
    fn the_worst_case_fits_in_240_bytes() {
        // The longest provable addresses: a node id (66), a regtest Taproot address (64), a
        // mainnet one (62), a Solana key (up to 44).
        let node = ProofTarget::for_node(
            NodeId::parse("03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
                .unwrap(),
        );
        let regtest_p2tr =
            bech32::segwit::encode_v1(bech32::Hrp::parse("bcrt").unwrap(), &[0x79; 32]).unwrap();
        assert_eq!(regtest_p2tr.len(), 64);
        let taproot =
            CounterpartyAddress::parse(Network::Btc, &regtest_p2tr, BitcoinNetwork::Regtest)
                .unwrap();
        let taproot = ProofTarget::for_address(&taproot).unwrap();
        let mut longest = 0;
        for target in [node, taproot] {
            let c = Challenge::new(
                &"W".repeat(60),
                &target,
                session(),
                ChallengeNonce::from_bytes([0xff; 7]),
                until(),
            )
            .unwrap();
            assert!(
                c.as_str().len() <= MAX_MESSAGE_LEN,
                "{} bytes: {c}",
                c.as_str().len()
            );
            assert!(c.as_str().bytes().all(|b| (0x20..=0x7e).contains(&b)));
            assert!(!c.as_str().ends_with('\n'));
            longest = longest.max(c.as_str().len());
        }
        // 32 + 1 + "Travel Rule check: I control " + 66 + " (session " + 36 + ", nonce " + 10
        // + ", valid until " + 20 + ")"
        assert_eq!(longest, 32 + 1 + 29 + 66 + 10 + 36 + 8 + 10 + 14 + 20 + 1);
        assert!(longest <= 240);
    }

    #[test]
    fn years_beyond_four_digits_are_refused() {
        let node = ProofTarget::for_node(
            NodeId::parse("03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
                .unwrap(),
        );
        let late = DateTime::from_timestamp(253_402_300_800, 0).unwrap(); // 10000-01-01
        assert_eq!(
            Challenge::new(
                "A",
                &node,
                session(),
                ChallengeNonce::from_bytes([0; 7]),
                late
            ),
            Err(ChallengeError::UntilOutOfRange)
        );
    }

    #[test]
    fn nonces_use_the_first_fifty_bits() {
        assert_eq!(ChallengeNonce::from_bytes([0; 7]).as_str(), "aaaaaaaaaa");
        assert_eq!(ChallengeNonce::from_bytes([0xff; 7]).as_str(), "7777777777");
        // The last 6 bits do not matter.
        assert_eq!(
            ChallengeNonce::from_bytes([0, 0, 0, 0, 0, 0, 0x3f]),
            ChallengeNonce::from_bytes([0; 7])
        );
        assert_eq!(
            ChallengeNonce::from_bytes([0, 0, 0, 0, 0, 0, 0x40]).as_str(),
            "aaaaaaaaab"
        );
    }
}
