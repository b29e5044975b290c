//! `verify` against public-key sets of every kind.
//!
//! Byte 0: bits 0-2 pick the key set and mode, bits 3-7 the policy and clock.
//!   0 RSA SPKI PEM (RS256)      1 RSA PKCS#1 PEM (PS256)
//!   2 EC P-256 PEM (ES256)      3 EC P-384 PEM (ES384)
//!   4 Ed25519 PEM (EdDSA)       5 JWKS rsa-1 (RS256) + ed-1 (EdDSA)
//!   6 / 7: the rest is `header NUL payload` (or a payload under a default
//!   EdDSA header), signed with the Ed25519 test key and verified against the
//!   Ed25519 PEM (6) or the JWKS (7), so claim validation is reached.
//! For 0-5 the rest is a token as received.
#![no_main]

use std::sync::OnceLock;

use jwt_core::{verify, Algorithm, KeySet, Reason};
use jwt_core_fuzz::{
    check_accepted, header_and_payload, pem_der, policy_and_now, signing_input, two_key_jwks,
    with_signature, EC256_PUB, EC384_PUB, ED25519_PK8, ED25519_PUB, RSA2048_PKCS1_PUB, RSA2048_PUB,
};
use libfuzzer_sys::fuzz_target;
use ring::signature::Ed25519KeyPair;

struct Fixture {
    sets: [KeySet; 6],
    signer: Ed25519KeyPair,
}

/// The keys of `material`, for `alg`, or each serving its own with `None`.
fn load(material: &[u8], alg: Option<Algorithm>) -> KeySet {
    let (set, warnings) = KeySet::from_material(material, alg).expect("test key loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    set
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        sets: [
            load(RSA2048_PUB, Some(Algorithm::RS256)),
            load(RSA2048_PKCS1_PUB, Some(Algorithm::PS256)),
            load(EC256_PUB, Some(Algorithm::ES256)),
            load(EC384_PUB, Some(Algorithm::ES384)),
            load(ED25519_PUB, Some(Algorithm::EdDSA)),
            // An RSA and an Ed25519 key: no algorithm configured, each serves its own.
            load(two_key_jwks().as_bytes(), None),
        ],
        signer: Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pem_der(ED25519_PK8))
            .expect("Ed25519 PKCS#8"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let (policy, now) = policy_and_now(selector >> 3);
    let mode = usize::from(selector & 7);
    let signed;
    let (token, keys): (&[u8], &KeySet) = match mode {
        0..=5 => (rest, &fixture.sets[mode]),
        _ => {
            let default_header: &[u8] = if mode == 6 {
                br#"{"alg":"EdDSA","typ":"JWT"}"#
            } else {
                br#"{"alg":"EdDSA","kid":"ed-1"}"#
            };
            let (header, payload) = header_and_payload(rest, default_header);
            let input = signing_input(header, payload);
            let sig = fixture.signer.sign(input.as_bytes());
            signed = with_signature(input, sig.as_ref());
            let keys = if mode == 6 {
                &fixture.sets[4]
            } else {
                &fixture.sets[5]
            };
            (signed.as_bytes(), keys)
        }
    };
    match verify(token, keys, &policy, now) {
        Ok(jwt) => check_accepted(jwt, &policy),
        Err(err) => {
            assert!(!err.detail.is_empty());
            if mode >= 6 && token.len() <= jwt_core::MAX_TOKEN_LEN {
                assert_ne!(err.reason, Reason::Signature, "{err}");
            }
        }
    }
});
