use domain::ApplicationId;
use ports::{LaunchLinks, LaunchToken};
use uuid::Uuid;

use super::*;

/// 32 bytes 0x00..=0x1f in standard base64.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// 32 bytes 0x20..=0x3f in standard base64.
const KEY2_B64: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn app(n: u128) -> SealContext {
    SealContext::Application(ApplicationId::from_uuid(Uuid::from_u128(n)))
}

fn keyring() -> Keyring {
    Keyring::from_base64(KEY_B64, &[]).unwrap()
}

#[test]
fn sealer_round_trip() {
    let k = keyring();
    let secret = SecretString::from("wss_some-secret-value");
    let sealed = k.seal(&secret, app(1));
    assert_eq!(sealed.key_id, k.key_ids()[0]);
    assert_eq!(sealed.sealed.len(), 12 + "wss_some-secret-value".len() + 16);
    assert!(
        !sealed.sealed.windows(6).any(|w| w == b"secret"),
        "plaintext must not appear in the sealed bytes"
    );
    assert_eq!(
        k.open(&sealed, app(1)).unwrap().expose_secret(),
        "wss_some-secret-value"
    );
    let empty = k.seal(&SecretString::from(""), app(1));
    assert_eq!(k.open(&empty, app(1)).unwrap().expose_secret(), "");
    assert!(k.is_current(&sealed));
}

#[test]
fn a_secret_copied_to_another_record_does_not_open() {
    let k = keyring();
    let sealed = k.seal(&SecretString::from("wss_a"), app(1));
    assert_eq!(k.open(&sealed, app(2)).unwrap_err(), SealError::Corrupt);
    let endpoint = SealContext::WebhookEndpoint {
        application: ApplicationId::from_uuid(Uuid::from_u128(1)),
        endpoint: Uuid::from_u128(1),
    };
    assert_eq!(k.open(&sealed, endpoint).unwrap_err(), SealError::Corrupt);
    assert_eq!(
        k.open(&sealed, SealContext::UpstreamAccessToken)
            .unwrap_err(),
        SealError::Corrupt
    );
}

#[test]
fn sealing_twice_uses_fresh_nonces() {
    let k = Keyring::generate();
    let secret = SecretString::from("same");
    let a = k.seal(&secret, app(1));
    let b = k.seal(&secret, app(1));
    assert_ne!(a.sealed, b.sealed);
    assert_ne!(a.sealed[..12], b.sealed[..12]);
}

#[test]
fn key_id_is_derived_from_the_key() {
    let k = keyring();
    let key: Vec<u8> = (0u8..32).collect();
    let expected = format!("k2-{}", &hex::encode(Sha256::digest(&key))[..8]);
    assert_eq!(k.key_ids(), vec![expected]);
    assert_ne!(Keyring::generate().key_ids(), k.key_ids());
}

#[test]
fn from_base64_accepts_with_or_without_padding_and_whitespace() {
    let padded = Keyring::from_base64(KEY_B64, &[]).unwrap();
    let unpadded = Keyring::from_base64(KEY_B64.trim_end_matches('='), &[]).unwrap();
    let newline = Keyring::from_base64(&format!("{KEY_B64}\n"), &[]).unwrap();
    assert_eq!(padded.key_ids(), unpadded.key_ids());
    assert_eq!(padded.key_ids(), newline.key_ids());
    let sealed = padded.seal(&SecretString::from("x"), app(1));
    assert_eq!(unpadded.open(&sealed, app(1)).unwrap().expose_secret(), "x");
}

#[test]
fn from_base64_rejects_wrong_lengths() {
    for (value, found) in [
        ("", 0),
        ("c2hvcnQ=", 5),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 31),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 33),
    ] {
        let (at, err) = Keyring::from_base64(value, &[]).unwrap_err();
        assert_eq!(
            (at, err.clone()),
            (0, KeyError::WrongLength { found }),
            "{value:?}"
        );
        assert!(
            err.to_string()
                .contains("must be 32 bytes, base64-encoded, e.g. from `openssl rand -base64 32`"),
            "{err}"
        );
    }
    let (at, _) = Keyring::from_base64(KEY_B64, &[KEY2_B64, "c2hvcnQ="]).unwrap_err();
    assert_eq!(at, 2, "the position of the bad old key");
}

#[test]
fn from_base64_rejects_non_base64() {
    for value in [
        "not base64 at all!",
        // The same key in base64url (`-`/`_` instead of `+`/`/`) is not standard base64.
        "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-=",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",
    ] {
        let (_, err) = Keyring::from_base64(value, &[]).unwrap_err();
        assert_eq!(err, KeyError::NotBase64, "{value:?}");
        assert!(err.to_string().contains("must be 32 bytes, base64-encoded"));
        assert!(!err.to_string().contains(value));
    }
}

#[test]
fn tampering_any_byte_is_corrupt() {
    let k = Keyring::generate();
    let sealed = k.seal(&SecretString::from("wss_secret"), app(1));
    for i in 0..sealed.sealed.len() {
        let mut tampered = sealed.clone();
        tampered.sealed[i] ^= 0x01;
        assert_eq!(
            k.open(&tampered, app(1)).unwrap_err(),
            SealError::Corrupt,
            "byte {i}"
        );
    }
}

#[test]
fn truncated_blobs_are_corrupt() {
    let k = Keyring::generate();
    let sealed = k.seal(&SecretString::from("wss_secret"), app(1));
    for len in [0, 1, 11, 12, 27, 28, sealed.sealed.len() - 1] {
        let truncated = EncryptedSecret {
            key_id: sealed.key_id.clone(),
            sealed: sealed.sealed[..len].to_vec(),
        };
        assert_eq!(
            k.open(&truncated, app(1)).unwrap_err(),
            SealError::Corrupt,
            "len {len}"
        );
    }
}

#[test]
fn another_key_is_an_unknown_key_named_in_the_error() {
    let original = keyring();
    let other = Keyring::generate();
    let sealed = original.seal(&SecretString::from("wss_secret"), app(1));
    let err = other.open(&sealed, app(1)).unwrap_err();
    assert_eq!(
        err,
        SealError::UnknownKey {
            found: original.key_ids()[0].clone(),
            configured: other.key_ids(),
        }
    );
    let message = err.to_string();
    assert!(message.contains(&other.key_ids()[0]), "{message}");
    assert!(message.contains(&original.key_ids()[0]), "{message}");
    assert!(
        message.contains("WIDGET_SESSIONS_SECRET_KEY differs from the key that sealed it"),
        "{message}"
    );
}

#[test]
fn relabelled_key_id_is_corrupt_not_opened() {
    // Editing the stored key id to the current one does not get another key's blob
    // opened: it fails authentication instead of decrypting to garbage.
    let k = Keyring::generate();
    let other = Keyring::generate();
    let mut sealed = other.seal(&SecretString::from("wss_secret"), app(1));
    sealed.key_id = k.key_ids()[0].clone();
    assert_eq!(k.open(&sealed, app(1)).unwrap_err(), SealError::Corrupt);
}

#[test]
fn old_keys_open_and_the_current_key_seals() {
    let before = Keyring::from_base64(KEY_B64, &[]).unwrap();
    let sealed = before.seal(&SecretString::from("wss_x"), app(7));
    let rotated = Keyring::from_base64(KEY2_B64, &[KEY_B64]).unwrap();
    assert_eq!(
        rotated.open(&sealed, app(7)).unwrap().expose_secret(),
        "wss_x"
    );
    assert!(
        !rotated.is_current(&sealed),
        "sealed under an old key: reseal"
    );
    let resealed = rotated.seal(&SecretString::from("wss_x"), app(7));
    assert!(rotated.is_current(&resealed));
    assert_eq!(resealed.key_id, rotated.key_ids()[0]);
    let after = Keyring::from_base64(KEY2_B64, &[]).unwrap();
    assert!(after.open(&resealed, app(7)).is_ok());
    assert!(matches!(
        after.open(&sealed, app(7)),
        Err(SealError::UnknownKey { .. })
    ));
}

/// What earlier versions stored: key id `k1-…`, only the key id as associated data.
fn legacy_seal(key: &[u8; 32], secret: &str) -> EncryptedSecret {
    let key_id = format!("k1-{}", &hex::encode(Sha256::digest(key))[..8]);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let nonce = [9u8; 12];
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: key_id.as_bytes(),
            },
        )
        .unwrap();
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ct);
    EncryptedSecret { key_id, sealed }
}

#[test]
fn secrets_sealed_by_earlier_versions_open_and_ask_to_be_resealed() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let legacy = legacy_seal(&key, "wss_legacy");
    let k = keyring();
    assert_eq!(
        k.open(&legacy, app(3)).unwrap().expose_secret(),
        "wss_legacy"
    );
    assert!(!k.is_current(&legacy));
    let mut garbled = legacy.clone();
    garbled.key_id = "k9-00000000".into();
    assert!(matches!(
        k.open(&garbled, app(3)),
        Err(SealError::UnknownKey { .. })
    ));
}

#[test]
fn debug_shows_only_the_key_ids() {
    let k = keyring();
    let debug = format!("{k:?}");
    assert_eq!(
        debug,
        format!("Keyring {{ key_ids: {:?}, .. }}", k.key_ids())
    );
    assert!(!debug.contains("AAECAw"));
}

fn ids(a: u128, s: u128) -> (ApplicationId, domain::SessionId) {
    (
        ApplicationId::from_uuid(Uuid::from_u128(a)),
        domain::SessionId::from_uuid(Uuid::from_u128(s)),
    )
}

#[test]
fn a_launch_link_is_stable_and_opens_its_session() {
    let k = keyring();
    let (app, session) = ids(1, 2);
    let a = k.issue(app, session);
    let b = k.issue(app, session);
    assert_eq!(a.expose(), b.expose(), "the same session has the same link");
    assert_eq!(a.expose().len(), LaunchToken::TEXT_LEN);
    assert_eq!(k.verify(a.expose()), Some((app, session)));
    let (_, other) = ids(1, 3);
    assert_ne!(k.issue(app, other).expose(), a.expose());
}

#[test]
fn a_forged_or_altered_link_does_not_open() {
    let k = keyring();
    let (app, session) = ids(1, 2);
    let token = k.issue(app, session);
    // Another session's id under the MAC of the first one.
    let (_, mac) = {
        let (_, _, mac) = LaunchToken::split(token.expose()).unwrap();
        (0, mac)
    };
    let (_, victim) = ids(1, 9);
    assert_eq!(
        k.verify(LaunchToken::from_parts(app, victim, mac).expose()),
        None
    );
    // Another application's id.
    let (thief, _) = ids(7, 0);
    assert_eq!(
        k.verify(LaunchToken::from_parts(thief, session, mac).expose()),
        None
    );
    // Every single bit of the MAC matters.
    for byte in 0..16 {
        let mut altered = mac;
        altered[byte] ^= 1;
        assert_eq!(
            k.verify(LaunchToken::from_parts(app, session, altered).expose()),
            None
        );
    }
    // Another key's link.
    assert_eq!(Keyring::generate().verify(token.expose()), None);
    // Garbage.
    for text in ["", "x", &"A".repeat(64), &"!".repeat(64)] {
        assert_eq!(k.verify(text), None);
    }
}

#[test]
fn links_issued_under_an_old_key_open_after_a_rotation() {
    let (app, session) = ids(4, 5);
    let before = Keyring::from_base64(KEY_B64, &[]).unwrap();
    let old_link = before.issue(app, session);
    let rotated = Keyring::from_base64(KEY2_B64, &[KEY_B64]).unwrap();
    assert_eq!(rotated.verify(old_link.expose()), Some((app, session)));
    assert_ne!(rotated.issue(app, session).expose(), old_link.expose());
    let dropped = Keyring::from_base64(KEY2_B64, &[]).unwrap();
    assert_eq!(dropped.verify(old_link.expose()), None);
}
