//! Properties over arbitrary input: nothing panics, found values are sub-slices.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::{
    find_cookie, find_query_arg, percent_encode_component, quote_param, strip_bearer, verify,
    Algorithm, KeySet, Policy, Source,
};
use proptest::prelude::*;

fn keys() -> KeySet {
    KeySet::from_secret(b"property secret", Algorithm::HS256)
        .unwrap()
        .0
}

fn policy() -> Policy {
    Policy {
        leeway: 5,
        issuers: vec!["i".into()],
        audiences: vec!["a".into()],
        require_sub: true,
        exp_optional: false,
    }
}

fn is_sub_slice(outer: &[u8], inner: &[u8]) -> bool {
    let start = outer.as_ptr() as usize;
    let end = start + outer.len();
    let p = inner.as_ptr() as usize;
    p >= start && p + inner.len() <= end
}

/// JSON-ish text: mostly the characters that matter to a JSON parser.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[{}\[\]":,0-9a-z.eE+\- \\]{0,60}"#).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn verify_never_panics_on_bytes(token in proptest::collection::vec(any::<u8>(), 0..512), now in any::<i64>()) {
        let _ = verify(&token, &keys(), &policy(), now);
    }

    #[test]
    fn verify_never_panics_on_three_parts(
        header in jsonish(),
        payload in jsonish(),
        sig in proptest::collection::vec(any::<u8>(), 0..80),
        now in any::<i64>(),
        leeway in any::<u64>(),
    ) {
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&sig),
        );
        let policy = Policy { leeway, ..policy() };
        let err = verify(token.as_bytes(), &keys(), &policy, now).unwrap_err();
        prop_assert!(!err.detail.contains(&token));
    }

    #[test]
    fn verify_never_panics_on_signed_claims(
        payload in jsonish(),
        exp in prop_oneof![any::<i64>().prop_map(|v| v.to_string()), any::<f64>().prop_map(|v| format!("{v:e}")), jsonish()],
        now in any::<i64>(),
        leeway in any::<u64>(),
    ) {
        // Signed for real so that the claim checks run.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let body = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp},"nbf":{exp},"x":{payload}}}"#));
        let input = format!("{header}.{body}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"property secret");
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        let policy = Policy { leeway, ..Policy::default() };
        let _ = verify(token.as_bytes(), &keys(), &policy, now);
    }

    #[test]
    fn key_material_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), text in jsonish()) {
        let _ = KeySet::from_material(&data, Some(Algorithm::RS256));
        let _ = KeySet::from_material(text.as_bytes(), Some(Algorithm::HS256));
        let mut der = vec![0x30];
        der.extend_from_slice(&data);
        let _ = KeySet::from_material(&der, Some(Algorithm::ES256));
    }

    #[test]
    fn strip_bearer_returns_a_sub_slice(value in proptest::collection::vec(any::<u8>(), 0..64), prefix in "(?i)(bearer)?[ \t]{0,3}") {
        let mut input = prefix.into_bytes();
        input.extend_from_slice(&value);
        let out = strip_bearer(&input);
        prop_assert!(is_sub_slice(&input, out));
        prop_assert!(!out.starts_with(b" ") && !out.ends_with(b"\t"));
    }

    #[test]
    fn find_cookie_returns_a_sub_slice(header in proptest::collection::vec(prop_oneof![Just(b';'), Just(b'='), Just(b' '), Just(b'"'), Just(b'a'), Just(b'b'), any::<u8>()], 0..64), name in "[ab]{1,2}") {
        if let Some(found) = find_cookie(&header, name.as_bytes()) {
            prop_assert!(is_sub_slice(&header, found));
        }
    }

    #[test]
    fn find_query_arg_returns_a_sub_slice(args in proptest::collection::vec(prop_oneof![Just(b'&'), Just(b'='), Just(b'a'), Just(b'b'), any::<u8>()], 0..64), name in "[ab]{1,2}") {
        if let Some(found) = find_query_arg(&args, name.as_bytes()) {
            prop_assert!(is_sub_slice(&args, found));
            prop_assert!(!found.contains(&b'&'));
        }
    }

    #[test]
    fn percent_encoding_is_unreserved_or_escaped(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut out = String::new();
        percent_encode_component(&input, &mut out);
        let bytes = out.as_bytes();
        let mut i = 0;
        let mut decoded = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                let hex = &out[i + 1..i + 3];
                prop_assert!(hex.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                prop_assert!(b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                decoded.push(b);
                i += 1;
            }
        }
        prop_assert_eq!(decoded, input);
    }

    #[test]
    fn quote_param_has_no_controls_or_bare_quotes(input in any::<String>()) {
        let out = quote_param(&input);
        prop_assert!(!out.chars().any(char::is_control));
        let mut escaped = false;
        for c in out.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                prop_assert_ne!(c, '"');
            }
        }
        prop_assert!(!escaped);
    }

    #[test]
    fn source_parse_never_panics(spec in any::<String>()) {
        if let Ok(source) = Source::parse(&spec) {
            prop_assert!(!source.name.is_empty());
        }
    }
}
