use super::*;
use crate::alg::Algorithm;
use crate::keys::KeySet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde_json::json;

const SECRET: &[u8] = b"test-secret-for-hs256-0123456789";
const NOW: i64 = 1_700_000_000;

fn enc(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs arbitrary header and payload text, so malformed JSON can carry a good signature.
fn sign_raw(alg: hmac::Algorithm, secret: &[u8], header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let tag = hmac::sign(&hmac::Key::new(alg, secret), input.as_bytes());
    format!("{input}.{}", enc(tag.as_ref()))
}

fn hs256(header: &str, payload: &str) -> String {
    sign_raw(
        hmac::HMAC_SHA256,
        SECRET,
        &enc(header.as_bytes()),
        &enc(payload.as_bytes()),
    )
}

fn token(payload: &Value) -> String {
    hs256(r#"{"alg":"HS256","typ":"JWT"}"#, &payload.to_string())
}

fn keys() -> KeySet {
    KeySet::from_secret(SECRET, Algorithm::HS256).unwrap().0
}

fn check(token: &str, policy: &Policy) -> Result<Claims, Error> {
    verify(token.as_bytes(), &keys(), policy, NOW).map(|jwt| Claims::new(Rc::new(jwt)))
}

fn fails(token: &str, policy: &Policy) -> Error {
    let err = check(token, policy).unwrap_err();
    // Details never carry token bytes.
    for segment in token.split('.').filter(|s| s.len() >= 8) {
        assert!(!err.detail.contains(segment), "{err}");
    }
    err
}

fn reason(token: &str) -> Reason {
    fails(token, &Policy::default()).reason
}

fn claims_fail(payload: Value, policy: &Policy) -> Error {
    fails(&token(&payload), policy)
}

fn exp_ok() -> Value {
    json!(NOW + 60)
}

#[test]
fn reason_words() {
    let all = [
        (Reason::Missing, "missing"),
        (Reason::Malformed, "malformed"),
        (Reason::TooLarge, "too_large"),
        (Reason::Algorithm, "algorithm"),
        (Reason::Key, "key"),
        (Reason::Signature, "signature"),
        (Reason::Expired, "expired"),
        (Reason::NotYetValid, "not_yet_valid"),
        (Reason::Issuer, "issuer"),
        (Reason::Audience, "audience"),
        (Reason::Subject, "subject"),
        (Reason::Claim, "claim"),
        (Reason::Require, "require"),
        (Reason::KeysUnavailable, "keys_unavailable"),
    ];
    for (reason, word) in all {
        assert_eq!(reason.word(), word);
        assert_eq!(reason.to_string(), word);
    }
    let err = Error::new(Reason::Expired, "exp 1 is 2s in the past");
    assert_eq!(err.to_string(), "expired: exp 1 is 2s in the past");
}

#[test]
fn valid_token_and_lookups() {
    let payload =
        r#"{"sub":"alice","exp":1700000060,"Email":"a@example.com","role":"x","Role":"y","n":1.5}"#;
    let jwt = check(
        &hs256(r#"{"alg":"HS256","typ":"JWT","Kid2":"k"}"#, payload),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(jwt.payload_json(), payload);
    assert_eq!(jwt.sub(), Some("alice"));
    assert_eq!(jwt.claim("email"), Some(&json!("a@example.com")));
    assert_eq!(jwt.claim("role"), Some(&json!("x")));
    assert_eq!(jwt.claim("Role"), Some(&json!("y")));
    assert_eq!(jwt.claim("n"), Some(&json!(1.5)));
    assert_eq!(jwt.claim("missing"), None);
    assert_eq!(jwt.header("alg"), Some(&json!("HS256")));
    assert_eq!(jwt.header("kid2"), Some(&json!("k")));
    assert_eq!(jwt.header("sub"), None);

    let jwt = check(
        &token(&json!({"exp": exp_ok(), "sub": 5})),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(jwt.sub(), None);
}

#[test]
fn size_limits() {
    assert_eq!(reason(""), Reason::Missing);
    let big = "a".repeat(MAX_TOKEN_LEN + 1);
    let err = fails(&big, &Policy::default());
    assert_eq!(err.reason, Reason::TooLarge);
    assert_eq!(err.detail, "token of 16385 bytes exceeds 16384 bytes");
    assert_eq!(reason(&"a".repeat(MAX_TOKEN_LEN)), Reason::Malformed);

    // A valid token right at the limit is accepted.
    let base = json!({"exp": exp_ok(), "pad": ""});
    let overhead = token(&base).len();
    let fill = (MAX_TOKEN_LEN - overhead) * 3 / 4;
    let mut payload = json!({"exp": exp_ok(), "pad": "x".repeat(fill)});
    while token(&payload).len() < MAX_TOKEN_LEN {
        let pad = payload["pad"].as_str().unwrap().to_owned() + "x";
        payload["pad"] = json!(pad);
    }
    while token(&payload).len() > MAX_TOKEN_LEN {
        let mut pad = payload["pad"].as_str().unwrap().to_owned();
        pad.pop();
        payload["pad"] = json!(pad);
    }
    let at_limit = token(&payload);
    assert!(at_limit.len() <= MAX_TOKEN_LEN && at_limit.len() > MAX_TOKEN_LEN - 4);
    check(&at_limit, &Policy::default()).unwrap();
    let over = format!("{at_limit}AAAA");
    assert_eq!(reason(&over), Reason::TooLarge);
}

#[test]
fn segment_structure() {
    let good = token(&json!({"exp": exp_ok()}));
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    for bad in [
        "abc".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
        "..".to_owned(),
        "...".to_owned(),
    ] {
        assert_eq!(reason(&bad), Reason::Malformed, "{bad}");
    }
    assert_eq!(
        fails(&format!("{h}.{p}.{s}.x"), &Policy::default()).detail,
        "token has more than 3 segments"
    );
    let err = fails(&format!("{h}.{p}."), &Policy::default());
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Signature, "empty signature")
    );
}

#[test]
fn strict_base64url() {
    let header = r#"{"alg":"HS256"}"#; // 15 bytes: base64 needs no padding
    let header1 = r#"{"alg":"HS256"} "#; // 16 bytes: one padding char in standard base64
    let payload = json!({"exp": exp_ok()}).to_string();
    let p = enc(payload.as_bytes());
    check(
        &sign_raw(hmac::HMAC_SHA256, SECRET, &enc(header1.as_bytes()), &p),
        &Policy::default(),
    )
    .unwrap();

    let padded = format!("{}==", enc(header1.as_bytes()));
    assert_eq!(
        reason(&sign_raw(hmac::HMAC_SHA256, SECRET, &padded, &p)),
        Reason::Malformed
    );

    // Flip the unused low bits of the last character: same bytes, non-canonical text.
    let canonical = enc(header1.as_bytes());
    let mut chars: Vec<char> = canonical.chars().collect();
    let last = chars.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    chars.push(alphabet.chars().nth(index | 1).unwrap());
    let non_canonical: String = chars.into_iter().collect();
    assert_ne!(non_canonical, canonical);
    let err = fails(
        &sign_raw(hmac::HMAC_SHA256, SECRET, &non_canonical, &p),
        &Policy::default(),
    );
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Malformed, "header is not valid base64url")
    );

    // Standard alphabet characters are refused.
    let std_header = enc(b"{\"alg\":\"HS256\",\"x\":\"\xfb\xff\"}")
        .replace('-', "+")
        .replace('_', "/");
    assert!(std_header.contains('+') || std_header.contains('/'));
    assert_eq!(
        reason(&sign_raw(hmac::HMAC_SHA256, SECRET, &std_header, &p)),
        Reason::Malformed
    );

    // Padding on the signature.
    let good = sign_raw(hmac::HMAC_SHA256, SECRET, &enc(header.as_bytes()), &p);
    let err = fails(&format!("{good}="), &Policy::default());
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Malformed, "signature is not valid base64url")
    );

    // A bad payload encoding carrying a good signature.
    let err = fails(
        &sign_raw(hmac::HMAC_SHA256, SECRET, &enc(header.as_bytes()), "e30="),
        &Policy::default(),
    );
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Malformed, "payload is not valid base64url")
    );
    // Whitespace inside a segment.
    assert_eq!(reason(&good.replacen('.', " .", 1)), Reason::Malformed);
}

#[test]
fn header_rules() {
    let p = json!({"exp": exp_ok()}).to_string();
    let cases = [
        ("not json", Reason::Malformed),
        ("[\"HS256\"]", Reason::Malformed),
        (r#"{"alg":"HS256","alg":"none"}"#, Reason::Malformed),
        (r#"{"alg":"none","alg":"HS256"}"#, Reason::Malformed),
        (r#"{"alg":"HS256","x":{"a":1,"a":2}}"#, Reason::Malformed),
        (r#"{"alg":"HS256","x":[{"a":1,"a":1}]}"#, Reason::Malformed),
        (r#"{"typ":"JWT"}"#, Reason::Malformed),
        (r#"{"alg":256}"#, Reason::Malformed),
        (r#"{"alg":null}"#, Reason::Malformed),
        (r#"{"alg":"none"}"#, Reason::Algorithm),
        (r#"{"alg":"None"}"#, Reason::Algorithm),
        (r#"{"alg":"hs256"}"#, Reason::Algorithm),
        (r#"{"alg":"HS256 "}"#, Reason::Algorithm),
        (r#"{"alg":"HS384"}"#, Reason::Algorithm),
        (r#"{"alg":"HS256","crit":["exp"]}"#, Reason::Malformed),
        (r#"{"alg":"HS256","crit":[]}"#, Reason::Malformed),
        (r#"{"alg":"HS256","kid":7}"#, Reason::Malformed),
        (r#"{"alg":"HS256","kid":null}"#, Reason::Malformed),
        ("{\"alg\":\"HS256\"}\n{}", Reason::Malformed),
    ];
    for (header, expected) in cases {
        assert_eq!(reason(&hs256(header, &p)), expected, "{header}");
    }
    let detail = |header: &str| fails(&hs256(header, &p), &Policy::default()).detail;
    assert!(detail(r#"{"alg":"HS256","alg":"none"}"#).starts_with("header: duplicate key \"alg\""));
    assert_eq!(detail(r#"{"alg":"none"}"#), "token alg \"none\" is refused");
    assert_eq!(
        detail(r#"{"alg":"HS384"}"#),
        "token alg \"HS384\" does not match HS256"
    );
    assert_eq!(
        detail(r#"{"alg":"XX\n"}"#),
        "unsupported token alg \"XX\\u{a}\""
    );
    assert_eq!(
        detail(r#"{"alg":"HS256","crit":["b64"]}"#),
        "unsupported crit header"
    );
    assert_eq!(detail(r#"{"typ":"JWT"}"#), "header has no alg");
    assert_eq!(detail("[1]"), "header: not a JSON object");
    // A kid that is a string but matches nothing still finds the lone kid-less key.
    check(
        &hs256(r#"{"alg":"HS256","kid":"any"}"#, &p),
        &Policy::default(),
    )
    .unwrap();
}

#[test]
fn none_token_is_refused() {
    let p = enc(json!({"exp": exp_ok()}).to_string().as_bytes());
    let h = enc(br#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(reason(&format!("{h}.{p}.")), Reason::Algorithm);
    assert_eq!(
        reason(&format!("{h}.{p}.{}", enc(b"sig"))),
        Reason::Algorithm
    );
}

#[test]
fn payload_rules_after_signature() {
    let h = r#"{"alg":"HS256"}"#;
    for payload in [
        r#"{"exp":1700000060,"exp":1}"#,
        r#"{"exp":1700000060,"a":{"b":1,"b":1}}"#,
        r#"{"exp":1700000060,"a":[{"b":1,"b":1}]}"#,
        r#"[{"exp":1700000060}]"#,
        "\"text\"",
        "{\"exp\":1700000060",
        "{\"exp\":1700000060,\"s\":\"\u{0}\"}",
    ] {
        let err = fails(&hs256(h, payload), &Policy::default());
        assert_eq!(err.reason, Reason::Malformed, "{payload}");
        assert!(err.detail.starts_with("payload: "), "{err}");
    }
    let raw = sign_raw(
        hmac::HMAC_SHA256,
        SECRET,
        &enc(h.as_bytes()),
        &enc(b"{\"exp\":1700000060,\"s\":\"\xff\"}"),
    );
    assert_eq!(reason(&raw), Reason::Malformed);
    // With a bad signature the payload is not even looked at.
    let forged = hs256(h, "{\"exp\":1,\"exp\":2}");
    let (rest, _) = forged.rsplit_once('.').unwrap();
    let forged = format!("{rest}.{}", enc(&[0u8; 32]));
    assert_eq!(reason(&forged), Reason::Signature);
}

#[test]
fn signatures() {
    let good = token(&json!({"exp": exp_ok(), "sub": "a"}));
    check(&good, &Policy::default()).unwrap();
    let other = KeySet::from_secret(b"another secret", Algorithm::HS256)
        .unwrap()
        .0;
    let err = verify(good.as_bytes(), &other, &Policy::default(), NOW).unwrap_err();
    assert_eq!(err.reason, Reason::Signature);
    assert_eq!(err.detail, "invalid HS256 signature");

    let (h, rest) = good.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let tampered = format!(
        "{h}.{}.{s}",
        enc(json!({"exp": exp_ok(), "sub": "b"}).to_string().as_bytes())
    );
    assert_eq!(reason(&tampered), Reason::Signature);
    let truncated = &good[..good.len() - 3];
    assert_eq!(reason(truncated), Reason::Signature);

    // An expired token with a bad signature is a signature failure.
    let expired = token(&json!({"exp": NOW - 10}));
    let bad = verify(expired.as_bytes(), &other, &Policy::default(), NOW).unwrap_err();
    assert_eq!(bad.reason, Reason::Signature);

    for (alg, ring_alg) in [
        (Algorithm::HS384, hmac::HMAC_SHA384),
        (Algorithm::HS512, hmac::HMAC_SHA512),
    ] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let t = sign_raw(
            ring_alg,
            SECRET,
            &enc(header.as_bytes()),
            &enc(br#"{"exp":1700000060}"#),
        );
        let set = KeySet::from_secret(SECRET, alg).unwrap().0;
        verify(t.as_bytes(), &set, &Policy::default(), NOW).unwrap();
        let err = verify(t.as_bytes(), &keys(), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Algorithm);
    }
}

/// A JWK set of two HS256 keys: kid "one" (secret "first secret") and "two" ("second secret").
fn two_keys() -> KeySet {
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "one", "k": enc(b"first secret")},
        {"kty": "oct", "kid": "two", "k": enc(b"second secret")},
    ]});
    KeySet::from_material(jwks.to_string().as_bytes(), Some(Algorithm::HS256))
        .unwrap()
        .0
}

#[test]
fn key_selection() {
    let set = two_keys();
    let payload = enc(json!({"exp": exp_ok()}).to_string().as_bytes());
    let make = |kid: &str, secret: &[u8]| {
        let header = json!({"alg": "HS256", "kid": kid}).to_string();
        sign_raw(hmac::HMAC_SHA256, secret, &enc(header.as_bytes()), &payload)
    };
    let run = |t: &str| verify(t.as_bytes(), &set, &Policy::default(), NOW);
    run(&make("one", b"first secret")).unwrap();
    run(&make("two", b"second secret")).unwrap();
    // Never tries another key.
    assert_eq!(
        run(&make("one", b"second secret")).unwrap_err().reason,
        Reason::Signature
    );
    let err = run(&make("three", b"first secret")).unwrap_err();
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Key, "no key with kid \"three\"")
    );
    let no_kid = sign_raw(
        hmac::HMAC_SHA256,
        b"first secret",
        &enc(br#"{"alg":"HS256"}"#),
        &payload,
    );
    let err = run(&no_kid).unwrap_err();
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Key, "token has no kid and the set holds 2 keys")
    );
}

#[test]
fn exp_rules() {
    let p = Policy::default();
    let err = claims_fail(json!({"sub": "a"}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Claim, "exp is missing")
    );
    for bad in [
        json!("1700000060"),
        json!(null),
        json!(true),
        json!([1700000060]),
    ] {
        let err = claims_fail(json!({"exp": bad}), &p);
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (Reason::Claim, "exp is not a number")
        );
    }
    let err = claims_fail(json!({"exp": NOW}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Expired, "exp 1700000000 is 0s in the past")
    );
    let err = claims_fail(json!({"exp": NOW - 63}), &p);
    assert_eq!(err.detail, "exp 1699999937 is 63s in the past");
    check(&token(&json!({"exp": NOW + 1})), &p).unwrap();
    check(&token(&json!({"exp": NOW as f64 + 0.5})), &p).unwrap();
    let err = claims_fail(json!({"exp": NOW as f64 - 0.5}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Expired, "exp 1699999999.5 is 0s in the past")
    );
    check(&token(&json!({"exp": 1e300})), &p).unwrap();
    check(&token(&json!({"exp": u64::MAX})), &p).unwrap();
    assert_eq!(
        claims_fail(json!({"exp": i64::MIN}), &p).reason,
        Reason::Expired
    );
    assert_eq!(
        claims_fail(json!({"exp": -1e300}), &p).reason,
        Reason::Expired
    );
    assert_eq!(claims_fail(json!({"exp": 0}), &p).reason, Reason::Expired);

    let lenient = Policy {
        leeway: 10,
        ..Policy::default()
    };
    check(&token(&json!({"exp": NOW - 9})), &lenient).unwrap();
    let err = claims_fail(json!({"exp": NOW - 10}), &lenient);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Expired, "exp 1699999990 is 10s in the past")
    );
    let huge = Policy {
        leeway: u64::MAX,
        ..Policy::default()
    };
    check(&token(&json!({"exp": i64::MIN})), &huge).unwrap();
}

#[test]
fn nbf_rules() {
    let p = Policy::default();
    check(&token(&json!({"exp": exp_ok(), "nbf": NOW})), &p).unwrap();
    check(&token(&json!({"exp": exp_ok(), "nbf": NOW - 100})), &p).unwrap();
    let err = claims_fail(json!({"exp": exp_ok(), "nbf": NOW + 1}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::NotYetValid, "nbf 1700000001 is 1s in the future")
    );
    let err = claims_fail(json!({"exp": exp_ok(), "nbf": NOW as f64 + 0.5}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::NotYetValid, "nbf 1700000000.5 is 0s in the future")
    );
    let err = claims_fail(json!({"exp": exp_ok(), "nbf": "soon"}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Claim, "nbf is not a number")
    );
    assert_eq!(
        claims_fail(json!({"exp": exp_ok(), "nbf": null}), &p).reason,
        Reason::Claim
    );
    assert_eq!(
        claims_fail(json!({"exp": u64::MAX, "nbf": u64::MAX}), &p).reason,
        Reason::NotYetValid
    );
    assert_eq!(
        claims_fail(json!({"exp": 1e300, "nbf": 1e299}), &p).reason,
        Reason::NotYetValid
    );

    let lenient = Policy {
        leeway: 10,
        ..Policy::default()
    };
    check(&token(&json!({"exp": exp_ok(), "nbf": NOW + 10})), &lenient).unwrap();
    assert_eq!(
        claims_fail(json!({"exp": exp_ok(), "nbf": NOW + 11}), &lenient).reason,
        Reason::NotYetValid
    );
    // exp is checked before nbf.
    assert_eq!(
        claims_fail(json!({"exp": NOW - 1, "nbf": "x"}), &p).reason,
        Reason::Expired
    );
}

#[test]
fn extreme_clocks() {
    let t = token(&json!({"exp": 1e300, "nbf": -1e300}));
    for now in [i64::MIN, i64::MAX, 0] {
        for leeway in [0, u64::MAX] {
            let policy = Policy {
                leeway,
                ..Policy::default()
            };
            let _ = verify(t.as_bytes(), &keys(), &policy, now);
        }
    }
    let t = token(&json!({"exp": i64::MAX, "nbf": i64::MIN}));
    let policy = Policy {
        leeway: u64::MAX,
        ..Policy::default()
    };
    verify(t.as_bytes(), &keys(), &policy, i64::MAX).unwrap();
    let err = verify(t.as_bytes(), &keys(), &Policy::default(), i64::MAX).unwrap_err();
    assert_eq!(err.detail, "exp 9223372036854775807 is 0s in the past");
    let t = token(&json!({"exp": i64::MIN}));
    let err = verify(t.as_bytes(), &keys(), &Policy::default(), i64::MAX).unwrap_err();
    assert_eq!(
        err.detail,
        format!("exp {} is {}s in the past", i64::MIN, u64::MAX)
    );
}

#[test]
fn issuer_rules() {
    let p = Policy {
        issuers: vec!["https://a.example".into(), "https://b.example".into()],
        ..Policy::default()
    };
    check(
        &token(&json!({"exp": exp_ok(), "iss": "https://b.example"})),
        &p,
    )
    .unwrap();
    let err = claims_fail(json!({"exp": exp_ok(), "iss": "https://c.example"}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Issuer, "iss \"https://c.example\" is not accepted")
    );
    let err = claims_fail(json!({"exp": exp_ok()}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Issuer, "iss is missing")
    );
    let err = claims_fail(json!({"exp": exp_ok(), "iss": ["https://a.example"]}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Issuer, "iss is not a string")
    );
    assert_eq!(
        claims_fail(json!({"exp": exp_ok(), "iss": "https://A.example"}), &p).reason,
        Reason::Issuer
    );
    let long = format!("evil\r\nX-Injected: 1{}", "x".repeat(200));
    let err = claims_fail(json!({"exp": exp_ok(), "iss": long}), &p);
    assert!(
        !err.detail.contains('\n') && !err.detail.contains('\r'),
        "{err}"
    );
    assert!(err.detail.len() < 120, "{err}");
    assert!(
        err.detail
            .starts_with("iss \"evil\\u{d}\\u{a}X-Injected: 1xxx"),
        "{err}"
    );
    // Without configured issuers anything goes.
    check(
        &token(&json!({"exp": exp_ok(), "iss": 5})),
        &Policy::default(),
    )
    .unwrap();
}

#[test]
fn audience_rules() {
    let p = Policy {
        audiences: vec!["api".into(), "web".into()],
        ..Policy::default()
    };
    check(&token(&json!({"exp": exp_ok(), "aud": "web"})), &p).unwrap();
    check(
        &token(&json!({"exp": exp_ok(), "aud": ["other", "api"]})),
        &p,
    )
    .unwrap();
    let cases = [
        (json!("other"), "aud \"other\" is not accepted"),
        (json!(["other"]), "aud \"other\" is not accepted"),
        (json!(["x", "y"]), "none of the 2 aud values is accepted"),
        (json!([]), "aud is an empty array"),
        (
            json!(["api", 1]),
            "aud array holds a value that is not a string",
        ),
        (json!(5), "aud is not a string or an array of strings"),
        (
            json!({"api": true}),
            "aud is not a string or an array of strings",
        ),
    ];
    for (aud, message) in cases {
        let err = claims_fail(json!({"exp": exp_ok(), "aud": aud}), &p);
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (Reason::Audience, message)
        );
    }
    let err = claims_fail(json!({"exp": exp_ok()}), &p);
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Audience, "aud is missing")
    );
    check(
        &token(&json!({"exp": exp_ok(), "aud": 5})),
        &Policy::default(),
    )
    .unwrap();
}

#[test]
fn subject_rules() {
    let p = Policy {
        require_sub: true,
        ..Policy::default()
    };
    let jwt = check(&token(&json!({"exp": exp_ok(), "sub": "bob"})), &p).unwrap();
    assert_eq!(jwt.sub(), Some("bob"));
    let cases = [
        (json!({"exp": exp_ok()}), "sub is missing"),
        (json!({"exp": exp_ok(), "sub": ""}), "sub is empty"),
        (json!({"exp": exp_ok(), "sub": 42}), "sub is not a string"),
        (json!({"exp": exp_ok(), "sub": null}), "sub is not a string"),
    ];
    for (payload, message) in cases {
        let err = claims_fail(payload, &p);
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (Reason::Subject, message)
        );
    }
    check(&token(&json!({"exp": exp_ok()})), &Policy::default()).unwrap();
}

#[test]
fn claim_order() {
    // iss is checked before aud, aud before sub.
    let p = Policy {
        issuers: vec!["i".into()],
        audiences: vec!["a".into()],
        require_sub: true,
        ..Policy::default()
    };
    assert_eq!(
        claims_fail(json!({"exp": exp_ok()}), &p).reason,
        Reason::Issuer
    );
    assert_eq!(
        claims_fail(json!({"exp": exp_ok(), "iss": "i"}), &p).reason,
        Reason::Audience
    );
    assert_eq!(
        claims_fail(json!({"exp": exp_ok(), "iss": "i", "aud": "a"}), &p).reason,
        Reason::Subject
    );
    check(
        &token(&json!({"exp": exp_ok(), "iss": "i", "aud": "a", "sub": "s"})),
        &p,
    )
    .unwrap();
}

#[test]
fn rendering() {
    let cases = [
        (json!("text, as-is"), "text, as-is"),
        (json!(""), ""),
        (json!(42), "42"),
        (json!(-1.5), "-1.5"),
        (json!(u64::MAX), "18446744073709551615"),
        (json!(true), "true"),
        (json!(false), "false"),
        (json!(null), ""),
        (json!([]), ""),
        (json!(["a", "b", "c"]), "a,b,c"),
        (json!(["a", 1, true, null, 2.5]), "a,1,true,,2.5"),
        (json!(["a", ["b"]]), r#"["a",["b"]]"#),
        (json!([{"k": "v"}]), r#"[{"k":"v"}]"#),
        (
            json!({"b": [1, 2], "a": "x\"y"}),
            r#"{"a":"x\"y","b":[1,2]}"#,
        ),
        (json!({}), "{}"),
    ];
    for (value, expected) in cases {
        assert_eq!(render(&value), expected, "{value}");
    }
    assert!(matches!(render(&json!("s")), Cow::Borrowed(_)));
    assert!(matches!(render(&json!(null)), Cow::Borrowed(_)));
}

#[test]
fn rechecked_clock_agrees_with_the_first_check() {
    // A cached token's clock check (integer fast path or not) must say exactly what verifying
    // it again at that time would say.
    let payloads = [
        json!({"exp": NOW + 10}),
        json!({"exp": NOW + 10, "nbf": NOW - 5}),
        json!({"exp": NOW + 10, "nbf": NOW + 3}),
        json!({"exp": NOW as f64 + 10.5, "nbf": NOW - 5}),
        json!({"exp": NOW + 10, "nbf": NOW as f64 - 0.5}),
        json!({"exp": i64::MAX, "nbf": i64::MIN}),
        json!({"exp": u64::MAX}),
    ];
    for payload in payloads {
        for leeway in [0, 2, 30] {
            let policy = Policy {
                leeway,
                ..Policy::default()
            };
            let token = token(&payload);
            // As cached: verified at some time it was valid.
            let jwt = (NOW - 40..NOW + 40)
                .find_map(|t| verify(token.as_bytes(), &keys(), &policy, t).ok())
                .unwrap();
            for t in NOW - 40..NOW + 40 {
                let again = verify(token.as_bytes(), &keys(), &policy, t).map(|_| ());
                assert_eq!(
                    jwt.check_time(&policy, t).map_err(|e| e.reason),
                    again.map_err(|e| e.reason),
                    "{payload} leeway {leeway} at NOW{:+}",
                    t - NOW
                );
            }
        }
    }
}

/// The header kept from the previous token (`header::recall`) must read exactly as decoding
/// and scanning it again would: same verdict, same key, same error, same header text.
#[test]
fn a_remembered_header_reads_as_it_did() {
    let set = two_keys();
    let payload = enc(json!({"exp": exp_ok(), "sub": "a"}).to_string().as_bytes());
    let long_kid = "k".repeat(200);
    let headers = [
        r#"{"alg":"HS256","kid":"one"}"#.to_owned(),
        r#"{"alg":"HS256","kid":"two","typ":"JWT"}"#.to_owned(),
        r#"{"kid":"one","alg":"HS256"}"#.to_owned(),
        r#"{"alg":"HS256","kid":"o\u006ee"}"#.to_owned(),
        r#"{"alg":"HS256","kid":"three"}"#.to_owned(),
        format!(r#"{{"alg":"HS256","kid":"{long_kid}"}}"#),
        r#"{"alg":"HS256"}"#.to_owned(),
        r#"{"alg":"HS384","kid":"one"}"#.to_owned(),
        r#"{"alg":"none","kid":"one"}"#.to_owned(),
        r#"{"alg":"HS256","kid":"one","crit":["b64"]}"#.to_owned(),
        r#"{"alg":"HS256","kid":"one","alg":"HS256"}"#.to_owned(),
        r#"{"alg":"HS256","kid":1}"#.to_owned(),
    ];
    let mut tokens = Vec::new();
    for header in &headers {
        for secret in [&b"first secret"[..], b"second secret"] {
            tokens.push(sign_raw(
                hmac::HMAC_SHA256,
                secret,
                &enc(header.as_bytes()),
                &payload,
            ));
        }
    }
    let read =
        |set: &KeySet, token: &str| match verify(token.as_bytes(), set, &Policy::default(), NOW) {
            Ok(jwt) => {
                let jwt = Claims::new(Rc::new(jwt));
                Ok((
                    jwt.header("kid").map(render).map(|kid| kid.into_owned()),
                    jwt.header("alg").map(render).map(|alg| alg.into_owned()),
                    jwt.payload_json().to_owned(),
                ))
            }
            Err(err) => Err(err),
        };
    // Each token read by a thread that has kept no header.
    let fresh: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = tokens.iter().map(|t| s.spawn(|| read(&set, t))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(fresh.iter().filter(|r| r.is_ok()).count() >= 4, "{fresh:?}");
    // Then by one thread: each token twice in a row (the second reuses its header), and the
    // whole list in both directions (each header following another).
    for (token, expected) in tokens.iter().zip(&fresh) {
        assert_eq!(&read(&set, token), expected, "{token}");
        assert_eq!(&read(&set, token), expected, "{token}");
    }
    for (token, expected) in tokens.iter().zip(&fresh).rev() {
        assert_eq!(&read(&set, token), expected, "{token}");
    }
    // A header kept under one key set is checked afresh against another.
    let single = KeySet::from_secret(b"first secret", Algorithm::HS256)
        .unwrap()
        .0;
    let first = &tokens[0];
    read(&set, first).unwrap();
    assert!(read(&single, first).is_ok());
    assert_eq!(read(&keys(), first).unwrap_err().reason, Reason::Signature);
}

#[test]
fn sub_is_read_from_the_text_or_the_map() {
    for (sub, expected) in [
        (json!("alice"), Some("alice")),
        (json!("al\"ice"), Some("al\"ice")),
        (json!("caf\u{e9}"), Some("caf\u{e9}")),
        (json!(""), Some("")),
        (json!(7), None),
    ] {
        let claims = check(
            &token(&json!({"sub": sub, "exp": exp_ok()})),
            &Policy::default(),
        )
        .unwrap();
        assert_eq!(claims.sub(), expected, "{sub}");
        assert_eq!(
            claims.sub(),
            claims.claim_exact("sub").and_then(Value::as_str)
        );
    }
    // `sub` found by exact name only; `$jwt_claim_*` also matches ignoring case.
    let claims = check(
        &token(&json!({"SUB": "root", "exp": exp_ok()})),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(claims.sub(), None);
    assert_eq!(claims.claim_exact("sub"), None);
    assert_eq!(claims.claim("sub"), Some(&json!("root")));
}

#[test]
fn header_safety() {
    assert!(header_safe("alice"));
    assert!(header_safe("a\tb caf\u{e9}"));
    for bad in ["a\rb", "a\nb", "\u{0}", "a\u{7f}", "\u{1b}[31m"] {
        assert!(!header_safe(bad), "{bad:?}");
    }
}

#[test]
fn json_for_header_keeps_the_value() {
    let pretty = "{\n\t\"sub\": \"a\u{7f}b\",\r\n  \"n\": [1,\n2]\n}";
    let safe = json_for_header(pretty);
    assert!(header_safe(&safe) && !safe.contains('\t'), "{safe}");
    assert_eq!(
        serde_json::from_str::<Value>(&safe).unwrap(),
        serde_json::from_str::<Value>(pretty).unwrap()
    );
    let compact = r#"{"sub":"a"}"#;
    assert!(matches!(json_for_header(compact), Cow::Borrowed(_)));
}

#[test]
fn exp_optional_accepts_a_token_without_exp_and_still_checks_one_present() {
    let optional = Policy {
        exp_optional: true,
        ..Policy::default()
    };
    let jwt = check(&token(&json!({"sub": "bob"})), &optional).unwrap();
    assert!(jwt.jwt().check_time(&optional, 4_000_000_000).is_ok());
    assert_eq!(
        check(&token(&json!({"sub": "bob"})), &Policy::default())
            .unwrap_err()
            .reason,
        Reason::Claim
    );
    let expired = check(&token(&json!({"sub": "bob", "exp": 1})), &optional).unwrap_err();
    assert_eq!(expired.reason, Reason::Expired);
    let early = check(
        &token(&json!({"sub": "bob", "nbf": 4_000_000_000_i64})),
        &optional,
    )
    .unwrap_err();
    assert_eq!(early.reason, Reason::NotYetValid);
}

#[test]
fn unknown_kids_are_told_from_other_key_failures() {
    let set = two_keys();
    let payload = enc(json!({"exp": exp_ok()}).to_string().as_bytes());
    let with_header = |header: Value| {
        sign_raw(
            hmac::HMAC_SHA256,
            b"x",
            &enc(header.to_string().as_bytes()),
            &payload,
        )
    };
    let unknown = |t: &str| names_unknown_kid(t.as_bytes(), &set);
    assert!(unknown(&with_header(
        json!({"alg": "HS256", "kid": "three"})
    )));
    assert!(!unknown(&with_header(
        json!({"alg": "HS256", "kid": "one"})
    )));
    // No kid, a kid that is not a string, and no token at all name no unknown key.
    assert!(!unknown(&with_header(json!({"alg": "HS256"}))));
    assert!(!unknown(&with_header(json!({"alg": "HS256", "kid": 3}))));
    assert!(!unknown("not.a.token.at.all"));
    assert!(!unknown(""));
    // A set of one key without kid serves every kid: nothing is unknown to it.
    assert!(!names_unknown_kid(
        with_header(json!({"alg": "HS256", "kid": "any"})).as_bytes(),
        &keys()
    ));
}
