//! `verify` against an HS256 key set.
//!
//! Byte 0 selects: bit 7 clear, the rest is a token as received; bit 7 set,
//! the rest is `header NUL payload` (or just a payload under
//! `{"alg":"HS256","typ":"JWT"}`), base64url-encoded and signed with the right
//! secret, so parsing and claim validation are reached. Bits 0-6 choose the
//! policy and clock (see `policy_and_now`).
#![no_main]

use std::sync::OnceLock;

use jwt_core::{verify, Algorithm, KeySet, Reason, MAX_TOKEN_LEN};
use jwt_core_fuzz::{
    check_accepted, header_and_payload, policy_and_now, signing_input, with_signature, HMAC_SECRET,
};
use libfuzzer_sys::fuzz_target;
use ring::hmac;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::from_secret(HMAC_SECRET, Algorithm::HS256)
            .expect("HS256 key")
            .0
    })
}

fn hmac_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, HMAC_SECRET))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (policy, now) = policy_and_now(selector & 0x7f);
    let signed;
    let token: &[u8] = if selector & 0x80 == 0 {
        rest
    } else {
        let (header, payload) = header_and_payload(rest, br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = signing_input(header, payload);
        let tag = hmac::sign(hmac_key(), input.as_bytes());
        signed = with_signature(input, tag.as_ref());
        signed.as_bytes()
    };
    match verify(token, keys(), &policy, now) {
        Ok(jwt) => {
            assert!(token.len() <= MAX_TOKEN_LEN);
            check_accepted(jwt, &policy);
        }
        Err(err) => {
            assert!(!err.detail.is_empty());
            // A correctly signed token can only fail on its content, never on the signature.
            if selector & 0x80 != 0 && token.len() <= MAX_TOKEN_LEN {
                assert_ne!(err.reason, Reason::Signature, "{err}");
            }
        }
    }
});
