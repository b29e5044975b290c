//! Every `$jwt_error` reason word (docs/DIRECTIVES.md: Variables), produced by real tokens
//! through nginx (docs/SECURITY.md: What a token must pass).

mod common;
use common::*;

/// HS256 with SECRET; extra location-level directives; `$jwt_error` as `X-Jwt-Error`.
fn start(extra: &str) -> Nginx {
    Nginx::start(&format!(
        "large_client_header_buffers 4 64k;\n{}",
        server(&format!(
            "add_header X-Jwt-Error $jwt_error always;\nauth_jwt_key \"{}\";\n\
             location / {{ {extra} {PROXY} }}",
            secret_hex()
        ))
    ))
}

/// (status, $jwt_error) for a request with this token in `Authorization: Bearer`.
fn verdict(n: &Nginx, token: &str) -> (u16, String) {
    let r = n.get("/", &[("Authorization", &format!("Bearer {token}"))]);
    (r.status, r.header("x-jwt-error").unwrap_or("").to_string())
}

fn refused(word: &str) -> (u16, String) {
    (401, word.to_string())
}

fn accepted() -> (u16, String) {
    (200, String::new())
}

fn exp() -> i64 {
    now() + 3600
}

#[test]
fn missing() {
    let n = start("");
    let r = n.get("/", &[]);
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("missing")));
    let r = n.get("/", &[("X-Other", "Bearer x.y.z")]);
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("missing")));
}

#[test]
fn malformed_structure_and_base64() {
    let n = start("");
    let good = hs256(SECRET, claims("a"));
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        "abc".to_string(),
        "abc.def".to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("!!!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.***", parts[0], parts[1]),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        // Padded (standard) base64 is not base64url.
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
    ];
    for t in &cases {
        assert_eq!(verdict(&n, t), refused("malformed"), "{t}");
    }
    // Bad base64url in the payload, under a valid signature of exactly those bytes.
    let t = sign_segments(
        &format!("{}.@@@@@@", parts[0]),
        hmac(Algorithm::HS256, SECRET),
    );
    assert_eq!(verdict(&n, &t), refused("malformed"), "{t}");
    let t = sign_segments(
        &format!("{}.{}*", parts[0], parts[1]),
        hmac(Algorithm::HS256, SECRET),
    );
    assert_eq!(verdict(&n, &t), refused("malformed"), "{t}");
}

#[test]
fn malformed_json() {
    let n = start("");
    let payload = json!({"sub": "a", "exp": exp()}).to_string();
    let cases = [
        raw_hs256("[\"HS256\"]", &payload),
        raw_hs256("\"HS256\"", &payload),
        raw_hs256("{\"alg\":\"HS256\"", &payload),
        raw_hs256(r#"{"alg":"HS256","typ":"JWT"}"#, "[1,2,3]"),
        raw_hs256(r#"{"alg":"HS256","typ":"JWT"}"#, "42"),
        raw_hs256(r#"{"alg":"HS256","typ":"JWT"}"#, "not json"),
        raw_hs256(r#"{"alg":"HS256","typ":"JWT"}"#, "{\"sub\":\"a\","),
    ];
    for t in &cases {
        assert_eq!(verdict(&n, t), refused("malformed"), "{t}");
    }
}

#[test]
fn malformed_duplicate_keys() {
    let n = start("");
    let payload = json!({"sub": "a", "exp": exp()}).to_string();
    let dup_alg = raw_hs256(r#"{"alg":"HS256","alg":"none"}"#, &payload);
    assert_eq!(verdict(&n, &dup_alg), refused("malformed"));
    let dup_alg2 = raw_hs256(r#"{"alg":"none","alg":"HS256"}"#, &payload);
    assert_eq!(verdict(&n, &dup_alg2), refused("malformed"));
    let dup_sub = raw_hs256(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(r#"{{"sub":"alice","sub":"root","exp":{}}}"#, exp()),
    );
    assert_eq!(verdict(&n, &dup_sub), refused("malformed"));
    // The same, without the duplicate, is fine: the signer works.
    let single = raw_hs256(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(r#"{{"sub":"alice","exp":{}}}"#, exp()),
    );
    assert_eq!(verdict(&n, &single), accepted());
}

#[test]
fn too_large() {
    let n = start("");
    let big = |len: usize| {
        hs256(
            SECRET,
            json!({"sub": "a", "exp": exp(), "pad": "x".repeat(len)}),
        )
    };
    let just_under = big(11_000);
    assert!(just_under.len() < 16 * 1024, "{}", just_under.len());
    assert_eq!(verdict(&n, &just_under), accepted());
    let over = big(13_000);
    assert!(over.len() > 16 * 1024, "{}", over.len());
    assert_eq!(verdict(&n, &over), refused("too_large"));
    // Size is checked first: a huge garbage token is too_large, not malformed.
    assert_eq!(verdict(&n, &"A".repeat(20_000)), refused("too_large"));
}

#[test]
fn algorithm() {
    let n = start("");
    let payload = json!({"sub": "a", "exp": exp()}).to_string();
    let none = raw_token(r#"{"alg":"none","typ":"JWT"}"#, &payload, |_| Vec::new());
    assert_eq!(verdict(&n, &none), refused("algorithm"));
    let none_signed = raw_hs256(r#"{"alg":"none","typ":"JWT"}"#, &payload);
    assert_eq!(verdict(&n, &none_signed), refused("algorithm"));
    let none_case = raw_token(r#"{"alg":"None"}"#, &payload, |_| Vec::new());
    assert_eq!(verdict(&n, &none_case), refused("algorithm"));
    let lower = raw_hs256(r#"{"alg":"hs256"}"#, &payload);
    assert_eq!(verdict(&n, &lower), refused("algorithm"));
    // A header without alg: refused (which of the two words is a matter of taste).
    let no_alg = raw_hs256(r#"{"typ":"JWT"}"#, &payload);
    let (status, word) = verdict(&n, &no_alg);
    assert_eq!(status, 401);
    assert!(word == "algorithm" || word == "malformed", "{word}");
    let hs384 = hs(Algorithm::HS384, SECRET, &claims("a"));
    assert_eq!(verdict(&n, &hs384), refused("algorithm"));
    let rs = signed(Algorithm::RS256, "rsa2048", &claims("a"));
    assert_eq!(verdict(&n, &rs), refused("algorithm"));
}

#[test]
fn key() {
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "k1", "k": b64(SECRET)},
        {"kty": "oct", "kid": "k2", "k": b64(b"second secret for the second kid!!")},
    ]})
    .to_string();
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "add_header X-Jwt-Error $jwt_error always;\n\
             auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/jwks.json;\nlocation / {{ {PROXY} }}"
        )),
        &[("conf/jwks.json", &jwks)],
    );
    let tok = |kid: Option<&str>| hs_kid(Algorithm::HS256, SECRET, kid, &claims("a"));
    assert_eq!(verdict(&n, &tok(Some("k1"))), accepted());
    assert_eq!(verdict(&n, &tok(Some("k3"))), refused("key"));
    assert_eq!(verdict(&n, &tok(None)), refused("key"));
    assert_eq!(verdict(&n, &tok(Some("k2"))), refused("signature"));
}

#[test]
fn signature() {
    let n = start("");
    let wrong = hs256(b"not the configured secret, not at all", claims("a"));
    assert_eq!(verdict(&n, &wrong), refused("signature"));
    let good = hs256(SECRET, claims("a"));
    let (body, sig) = good.rsplit_once('.').unwrap();
    let (status, _) = verdict(&n, &format!("{body}."));
    assert_eq!(status, 401, "an empty signature");
    assert_eq!(
        verdict(&n, &format!("{body}.{}", &sig[..sig.len() - 3])),
        refused("signature")
    );
    // Another payload under the original signature.
    let forged = with_payload(&good, &json!({"sub": "root", "exp": exp()}));
    assert_eq!(verdict(&n, &forged), refused("signature"));
    assert_eq!(verdict(&n, &good), accepted());
}

#[test]
fn expired() {
    let n = start("");
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": now() - 5}))),
        refused("expired")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": 1}))),
        refused("expired")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": now() + 60}))),
        accepted()
    );
}

#[test]
fn not_yet_valid_and_leeway() {
    let n = start("");
    let early = hs256(SECRET, json!({"sub": "a", "nbf": now() + 60, "exp": exp()}));
    assert_eq!(verdict(&n, &early), refused("not_yet_valid"));
    let past = hs256(SECRET, json!({"sub": "a", "nbf": now() - 60, "exp": exp()}));
    assert_eq!(verdict(&n, &past), accepted());
    let n = start("auth_jwt_leeway 120s;");
    assert_eq!(verdict(&n, &early), accepted());
    let far = hs256(
        SECRET,
        json!({"sub": "a", "nbf": now() + 600, "exp": exp()}),
    );
    assert_eq!(verdict(&n, &far), refused("not_yet_valid"));
}

#[test]
fn issuer() {
    let n = start("auth_jwt_issuer https://issuer.example.com;");
    let t = |iss: serde_json::Value| hs256(SECRET, json!({"sub": "a", "iss": iss, "exp": exp()}));
    assert_eq!(
        verdict(&n, &t(json!("https://issuer.example.com"))),
        accepted()
    );
    assert_eq!(
        verdict(&n, &t(json!("https://other.example.com"))),
        refused("issuer")
    );
    assert_eq!(
        verdict(&n, &t(json!(["https://issuer.example.com"]))),
        refused("issuer")
    );
    assert_eq!(verdict(&n, &hs256(SECRET, claims("a"))), refused("issuer"));
}

#[test]
fn audience() {
    let n = start("auth_jwt_audience wiki;");
    let t = |aud: serde_json::Value| hs256(SECRET, json!({"sub": "a", "aud": aud, "exp": exp()}));
    assert_eq!(verdict(&n, &t(json!("wiki"))), accepted());
    assert_eq!(verdict(&n, &t(json!(["crm", "wiki"]))), accepted());
    assert_eq!(verdict(&n, &t(json!("crm"))), refused("audience"));
    assert_eq!(verdict(&n, &t(json!(["crm"]))), refused("audience"));
    assert_eq!(verdict(&n, &t(json!("wiki2"))), refused("audience"));
    assert_eq!(
        verdict(&n, &hs256(SECRET, claims("a"))),
        refused("audience")
    );
}

#[test]
fn subject() {
    let n = start("auth_jwt_validate_sub on;");
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"exp": exp()}))),
        refused("subject")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "", "exp": exp()}))),
        refused("subject")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": null, "exp": exp()}))),
        refused("subject")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "x", "exp": exp()}))),
        accepted()
    );
}

#[test]
fn claim() {
    let n = start("");
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a"}))),
        refused("claim")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": "9999999999"}))),
        refused("claim")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": null}))),
        refused("claim")
    );
    assert_eq!(
        verdict(&n, &hs256(SECRET, json!({"sub": "a", "exp": true}))),
        refused("claim")
    );
    assert_eq!(
        verdict(
            &n,
            &hs256(SECRET, json!({"sub": "a", "exp": exp(), "nbf": "0"}))
        ),
        refused("claim")
    );
}

#[test]
fn failed_token_exposes_no_claims() {
    let n = Nginx::start(&server(&format!(
        "auth_jwt_key \"{}\";\n\
         add_header X-Sub \"[$jwt_sub]\" always;\n\
         add_header X-Claim \"[$jwt_claim_role]\" always;\n\
         add_header X-Payload \"[$jwt_payload]\" always;\n\
         add_header X-Alg \"[$jwt_header_alg]\" always;\n\
         location / {{ {PROXY} }}",
        secret_hex()
    )));
    let bad = hs256(
        SECRET,
        json!({"sub": "root", "role": "admin", "exp": now() - 10}),
    );
    let r = n.get("/", &[("Authorization", &format!("Bearer {bad}"))]);
    assert_eq!(r.status, 401);
    for h in ["x-sub", "x-claim", "x-payload", "x-alg"] {
        assert_eq!(r.header(h), Some("[]"), "{h}: {r:?}");
    }
}
