//! Key loading: `KeySet::from_material` (PEM, DER, JWK, JWKS) for every
//! algorithm, `decode_secret` for every encoding and `KeySet::from_secret`.
//!
//! Byte 0: bits 0-3 pick the configured algorithm (mod 12), bits 4-5 the
//! secret encoding. The rest is the key file / secret text.
#![no_main]

use jwt_core::{decode_secret, verify, Algorithm, KeySet, Policy, SecretEncoding};
use jwt_core_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

/// A well-formed HS256 token (kid "k1"), so that `select` and `verify` run on
/// every loaded set; it verifies with none of them.
const TOKEN: &[u8] = b"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJleHAiOjQxMDI0NDQ4MDB9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// `pinnable`: the material may be JSON, whose keys can pin their own algorithm.
fn exercise(set: &KeySet, alg: Algorithm, pinnable: bool) {
    assert!(!set.is_empty());
    assert_eq!(set.algorithms().count(), set.len());
    if !pinnable {
        assert!(set.algorithms().all(|a| a == alg), "{set:?} for {alg}");
    }
    let _ = format!("{set:?}");
    let _ = verify(TOKEN, set, &Policy::default(), NOW);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let alg = Algorithm::ALL[usize::from(selector & 0x0f) % Algorithm::ALL.len()];
    // The top bit: no algorithm configured, each key serving its own.
    let configured = (selector & 0x80 == 0).then_some(alg);

    match KeySet::from_material(rest, configured) {
        Ok((set, warnings)) => {
            match configured {
                // Every key of the configured algorithm's family.
                Some(alg) => assert!(set.algorithms().all(|a| a.family() == alg.family())),
                None => assert!(!set.is_empty()),
            }
            exercise(&set, alg, configured.is_none() || rest.contains(&b'{'));
            for warning in &warnings {
                assert!(!warning.is_empty());
            }
        }
        Err(err) => assert!(!err.0.is_empty()),
    }

    let encoding = [
        SecretEncoding::Utf8,
        SecretEncoding::Hex,
        SecretEncoding::Base64,
        SecretEncoding::Utf8,
    ][usize::from(selector >> 4 & 3)];
    match decode_secret(rest, encoding) {
        Ok(secret) => {
            assert!(!secret.is_empty());
            match encoding {
                SecretEncoding::Utf8 => assert_eq!(secret, rest),
                SecretEncoding::Hex => assert_eq!(secret.len() * 2, rest.len()),
                SecretEncoding::Base64 => assert!(secret.len() <= rest.len()),
            }
            let hmac = if alg.is_hmac() { alg } else { Algorithm::HS256 };
            match KeySet::from_secret(&secret, hmac) {
                Ok((set, _)) => exercise(&set, hmac, false),
                // Only a secret that is a public key (or its text) is refused.
                Err(err) => assert!(err.0.starts_with("the secret is"), "{err}"),
            }
        }
        Err(err) => assert!(!err.0.is_empty()),
    }
    if !alg.is_hmac() {
        assert!(KeySet::from_secret(rest, alg).is_err());
    }
});
