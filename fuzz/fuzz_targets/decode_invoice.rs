//! Arbitrary text as a bolt11 invoice: `domain::Invoice::decode` must never panic, with or
//! without a `lightning:` prefix (which must not change the outcome), and an accepted
//! invoice's payment hash must round-trip through `PaymentHash::parse`.

#![no_main]

use domain::{BitcoinNetwork, Invoice, PaymentHash};
use libfuzzer_sys::{Corpus, fuzz_target};

fn check(s: &str) -> Result<Invoice, domain::InvoiceError> {
    let decoded = Invoice::decode(s, BitcoinNetwork::Mainnet);
    if let Ok(invoice) = &decoded {
        let hash = invoice.payment_hash();
        let text = hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(PaymentHash::parse(&text).ok(), Some(hash));
        let details = invoice.details();
        assert!(details.created_at <= details.expires_at, "{details:?}");
    }
    decoded
}

fuzz_target!(|data: &[u8]| -> Corpus {
    let Ok(s) = std::str::from_utf8(data) else {
        return Corpus::Reject;
    };
    let bare = check(s);
    for prefix in ["lightning:", "LIGHTNING:"] {
        let prefixed = check(&format!("{prefix}{s}"));
        // The prefix is stripped once; an input that already carries one is a different
        // string after the second prefix.
        let already_prefixed = s
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
        if !already_prefixed {
            assert_eq!(bare, prefixed, "prefix {prefix:?} changed the outcome");
        }
    }
    Corpus::Keep
});
