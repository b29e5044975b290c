//! Keys through a real nginx (docs/SECURITY.md: Which key a location verifies with, Key
//! families, Key files; docs/DIRECTIVES.md: auth_jwt_keyfile_path, Variables, Responses and
//! logs): JWK sets selected by `kid`, key rotation with `nginx -s reload`, unusable JWKS entries,
//! JWK `alg` pinning and `use`, single JWK files (EC, OKP, oct), PEM forms, interoperability with
//! other issuers (PyJWT, jsonwebtoken), RFC 6750 challenges, `$jwt_error` in `error_page` and
//! `log_format`, header/claim variables, leeway, issuer and audience.
//!
//! JWKs are built at test time from `testdata/keys/*.pub` with the `openssl` CLI.

mod common;
use common::*;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Adds fields to a JWK object.
fn with(mut jwk: Value, fields: Value) -> Value {
    let obj = jwk.as_object_mut().unwrap();
    for (k, v) in fields.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    jwk
}

/// Claims valid for an hour with an extra set of fields.
fn claims_with(sub: &str, extra: Value) -> Value {
    with(claims(sub), extra)
}

/// A server whose directives are `directives`, with `location /` reporting `$jwt_error` in
/// `X-Jwt-Error` and serving from the echo upstream (content phase).
fn guarded(directives: &str) -> String {
    server(&format!(
        "{directives}\nlocation / {{\nadd_header X-Jwt-Error $jwt_error always;\n{PROXY}\n}}"
    ))
}

/// `GET path` with the token as `Authorization: Bearer`, asserting the status and `$jwt_error`
/// (as reported in `X-Jwt-Error`, `""` when absent).
#[track_caller]
fn check(n: &Nginx, path: &str, token: Option<&str>, status: u16, error: &str) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = n.get(path, &headers);
    assert_eq!(
        r.status,
        status,
        "GET {path}: expected {status} ({error:?}), got {r:?}\nerror log:\n{}",
        n.error_log()
    );
    assert_eq!(
        r.header("X-Jwt-Error").unwrap_or(""),
        error,
        "GET {path}: $jwt_error, response {r:?}\nerror log:\n{}",
        n.error_log()
    );
    r
}

/// The status of `GET /` with the token as `Authorization: Bearer`.
fn status_of(n: &Nginx, token: &str) -> u16 {
    n.get("/", &[("Authorization", &format!("Bearer {token}"))])
        .status
}

const JWKS_DIRECTIVES: &str = "auth_jwt_algorithm RS256;\n\
    auth_jwt_use_keyfile on;\n\
    auth_jwt_keyfile_path conf/jwks.json;";

// ---------------------------------------------------------------------------------------------
// JWKS key selection
// ---------------------------------------------------------------------------------------------

/// An nginx whose key file is a JWK set of two RSA keys, `k1` (rsa2048) and `k2` (rsa2048-b).
fn two_key_nginx() -> Nginx {
    let set = jwks(&[rsa_jwk("rsa2048", "k1"), rsa_jwk("rsa2048-b", "k2")]);
    Nginx::start_full("", &guarded(JWKS_DIRECTIVES), &[("conf/jwks.json", &set)])
}

#[test]
fn jwks_selects_key_by_kid() {
    let n = two_key_nginx();
    let c = claims("alice");

    let k1 = signed_kid(Algorithm::RS256, "rsa2048", Some("k1"), &c);
    let k2 = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k2"), &c);
    check(&n, "/", Some(&k1), 200, "");
    check(&n, "/", Some(&k2), 200, "");

    // Unknown kid.
    let k3 = signed_kid(Algorithm::RS256, "rsa2048", Some("k3"), &c);
    check(&n, "/", Some(&k3), 401, "key");

    // No kid while the set holds two keys: keys are never tried in turn.
    let nokid = signed_kid(Algorithm::RS256, "rsa2048", None, &c);
    check(&n, "/", Some(&nokid), 401, "key");

    // kid k1, but signed with k2's private key.
    let forged = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k1"), &c);
    check(&n, "/", Some(&forged), 401, "signature");
}

/// The worker keeps the last header it read (`jwt-core/src/header.rs`): a token whose header is,
/// byte for byte, the one just admitted still has its key chosen and its signature checked.
#[test]
fn a_kept_header_chooses_its_key_afresh() {
    let n = two_key_nginx();
    let c = claims("alice");
    let k1 = signed_kid(Algorithm::RS256, "rsa2048", Some("k1"), &c);
    let forged = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k1"), &c);
    let k2 = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k2"), &c);
    assert_eq!(k1.split('.').next(), forged.split('.').next());
    for _ in 0..2 {
        check(&n, "/", Some(&k1), 200, "");
        check(&n, "/", Some(&forged), 401, "signature");
        check(&n, "/", Some(&k1), 200, "");
        check(&n, "/", Some(&k2), 200, "");
    }
}

// ---------------------------------------------------------------------------------------------
// Key rotation with reload
// ---------------------------------------------------------------------------------------------

#[test]
fn jwks_rotation_with_reload() {
    let j1 = rsa_jwk("rsa2048", "k1");
    let j2 = rsa_jwk("rsa2048-b", "k2");
    let n = Nginx::start_full(
        "",
        &guarded(JWKS_DIRECTIVES),
        &[("conf/jwks.json", &jwks(std::slice::from_ref(&j1)))],
    );
    let c = claims("alice");
    let k1 = signed_kid(Algorithm::RS256, "rsa2048", Some("k1"), &c);
    let k2 = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k2"), &c);
    let file = n.prefix.join("conf/jwks.json");

    check(&n, "/", Some(&k1), 200, "");
    check(&n, "/", Some(&k2), 401, "key");

    // {k1, k2}: k1 keeps working during the reload (no dropped or refused request).
    fs::write(&file, jwks(&[j1.clone(), j2.clone()])).unwrap();
    // The old worker keeps the keys it loaded until the reload.
    check(&n, "/", Some(&k2), 401, "key");
    let done = AtomicBool::new(false);
    let failures = thread::scope(|s| {
        let client = s.spawn(|| {
            let mut failures = Vec::new();
            let mut count = 0;
            while !done.load(Ordering::SeqCst) || count < 20 {
                let r = n.get("/", &[("Authorization", &format!("Bearer {k1}"))]);
                if r.status != 200 {
                    failures.push(r);
                }
                count += 1;
            }
            failures
        });
        n.reload();
        n.wait_for("the reloaded worker to accept k2", || {
            status_of(&n, &k2) == 200
        });
        done.store(true, Ordering::SeqCst);
        client.join().unwrap()
    });
    assert!(
        failures.is_empty(),
        "requests with k1 failed during the reload: {failures:?}"
    );
    check(&n, "/", Some(&k1), 200, "");
    check(&n, "/", Some(&k2), 200, "");

    // {k2} only.
    fs::write(&file, jwks(std::slice::from_ref(&j2))).unwrap();
    n.reload();
    n.wait_for("the reloaded worker to refuse k1", || {
        status_of(&n, &k1) == 401
    });
    check(&n, "/", Some(&k1), 401, "key");
    check(&n, "/", Some(&k2), 200, "");

    n.assert_clean_log();
}

// ---------------------------------------------------------------------------------------------
// Unusable JWKS entries
// ---------------------------------------------------------------------------------------------

fn bad_entries() -> Vec<Value> {
    vec![
        json!({"kty": "foo", "kid": "bad-kty"}),
        rsa_jwk("rsa1024", "small"),
        json!({"kty": "RSA", "kid": "bad-n", "n": "!!!not*base64!!!", "e": "AQAB"}),
    ]
}

#[test]
fn jwks_bad_entries_are_skipped_with_warnings() {
    let body = guarded(JWKS_DIRECTIVES);
    let line = conf_line(&body, "auth_jwt_keyfile_path");
    let mut entries = bad_entries();
    entries.insert(1, rsa_jwk("rsa2048", "k1"));
    entries.push(rsa_jwk("rsa2048-b", "k2"));
    let set = jwks(&entries);

    let (ok, out) = nginx_t_full("", &body, &[("conf/jwks.json", &set)]);
    assert!(ok, "nginx -t refused a JWKS with good keys:\n{out}");
    let warns: Vec<&str> = out.lines().filter(|l| l.contains("[warn]")).collect();
    for kid in ["bad-kty", "small", "bad-n"] {
        let w = warns.iter().find(|l| l.contains(&format!("\"{kid}\"")));
        let w = w.unwrap_or_else(|| panic!("no [warn] for kid {kid}:\n{out}"));
        assert!(
            w.contains(&format!("nginx.conf:{line}")),
            "the [warn] for {kid} does not name nginx.conf:{line}: {w}\n{out}"
        );
    }
    assert_eq!(
        warns.len(),
        3,
        "one [warn] per skipped entry expected:\n{out}"
    );
    for kid in ["k1", "k2"] {
        assert!(
            !warns.iter().any(|l| l.contains(&format!("\"{kid}\""))),
            "good key {kid} was warned about:\n{out}"
        );
    }

    let n = Nginx::start_full("", &body, &[("conf/jwks.json", &set)]);
    let c = claims("alice");
    let k1 = signed_kid(Algorithm::RS256, "rsa2048", Some("k1"), &c);
    let k2 = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k2"), &c);
    check(&n, "/", Some(&k1), 200, "");
    check(&n, "/", Some(&k2), 200, "");
    // The skipped 1024-bit key selects nothing.
    // (jsonwebtoken refuses 1024-bit keys; openssl signs it.)
    let small = raw_token(
        r#"{"alg":"RS256","typ":"JWT","kid":"small"}"#,
        &c.to_string(),
        openssl_rs256("rsa1024"),
    );
    check(&n, "/", Some(&small), 401, "key");
}

/// The `[emerg]` line of a failed `nginx -t`, asserted to name nginx.conf:`line`.
#[track_caller]
fn emerg_at(out: &str, line: usize) -> &str {
    let emerg = out
        .lines()
        .find(|l| l.contains("[emerg]"))
        .unwrap_or_else(|| panic!("no [emerg]:\n{out}"));
    assert!(
        emerg.contains(&format!("nginx.conf:{line}")),
        "the [emerg] does not name nginx.conf:{line}:\n{out}"
    );
    emerg
}

#[test]
fn jwks_with_only_bad_entries_fails_nginx_t() {
    let body = guarded(JWKS_DIRECTIVES);
    let line = conf_line(&body, "auth_jwt_keyfile_path");
    let (ok, out) = nginx_t_full("", &body, &[("conf/jwks.json", &jwks(&bad_entries()))]);
    assert!(!ok, "nginx -t accepted a JWKS without a usable key:\n{out}");
    emerg_at(&out, line);
}

// ---------------------------------------------------------------------------------------------
// JWK alg pinning and use
// ---------------------------------------------------------------------------------------------

#[test]
fn jwk_alg_pins_and_use_enc_is_ignored() {
    let set = jwks(&[
        with(rsa_jwk("rsa2048", "p"), json!({"alg": "RS384"})),
        with(rsa_jwk("rsa2048-b", "e"), json!({"use": "enc"})),
        with(rsa_jwk("rsa2048-b", "s"), json!({"use": "sig"})),
    ]);
    let n = Nginx::start_full("", &guarded(JWKS_DIRECTIVES), &[("conf/jwks.json", &set)]);
    let c = claims("alice");

    let rs384 = signed_kid(Algorithm::RS384, "rsa2048", Some("p"), &c);
    check(&n, "/", Some(&rs384), 200, "");
    let rs256 = signed_kid(Algorithm::RS256, "rsa2048", Some("p"), &c);
    check(&n, "/", Some(&rs256), 401, "algorithm");

    let enc = signed_kid(Algorithm::RS256, "rsa2048-b", Some("e"), &c);
    check(&n, "/", Some(&enc), 401, "key");
    // The same key declared for signatures works.
    let sig = signed_kid(Algorithm::RS256, "rsa2048-b", Some("s"), &c);
    check(&n, "/", Some(&sig), 200, "");
}

// ---------------------------------------------------------------------------------------------
// Single JWK files
// ---------------------------------------------------------------------------------------------

#[test]
fn single_jwk_files() {
    let secret = b"an oct JWK secret, thirty-two+ bytes long";
    let body = server(&format!(
        // The key file is named where the key file is switched on (as the C module requires).
        "add_header X-Jwt-Error $jwt_error always;\n\
         location /es/ {{ auth_jwt_algorithm ES256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/ec.jwk; {PROXY} }}\n\
         location /ed/ {{ auth_jwt_algorithm EdDSA; auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/ed.jwk; {PROXY} }}\n\
         location /hs/ {{ auth_jwt_algorithm HS256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/oct.jwk; {PROXY} }}"
    ));
    let ec = ec256_jwk("ec256").to_string();
    let ed = ed25519_jwk("ed25519").to_string();
    let oct = json!({"kty": "oct", "k": b64(secret)}).to_string();
    let n = Nginx::start_full(
        "",
        &body,
        &[
            ("conf/ec.jwk", &ec),
            ("conf/ed.jwk", &ed),
            ("conf/oct.jwk", &oct),
        ],
    );
    let c = claims("alice");

    let t = signed(Algorithm::ES256, "ec256", &c);
    check(&n, "/es/", Some(&t), 200, "");
    let other_ec = fresh_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let t = signed_pem(Algorithm::ES256, &other_ec, None, &c);
    check(&n, "/es/", Some(&t), 401, "signature");

    let t = signed(Algorithm::EdDSA, "ed25519", &c);
    check(&n, "/ed/", Some(&t), 200, "");
    let other_ed = fresh_key(&["-algorithm", "ED25519"]);
    let t = signed_pem(Algorithm::EdDSA, &other_ed, None, &c);
    check(&n, "/ed/", Some(&t), 401, "signature");

    let t = hs(Algorithm::HS256, secret, &c);
    check(&n, "/hs/", Some(&t), 200, "");
    let t = hs(
        Algorithm::HS256,
        b"another secret, thirty-two+ bytes long",
        &c,
    );
    check(&n, "/hs/", Some(&t), 401, "signature");
}

/// An EC key whose point is off its curve could never verify a token: `nginx -t` refuses it.
#[test]
fn ec_point_off_the_curve_fails_nginx_t() {
    let body = guarded(
        "auth_jwt_algorithm ES256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path conf/ec.jwk;",
    );
    let line = conf_line(&body, "auth_jwt_keyfile_path");
    let der = spki_der("ec256");
    let mut y = der[der.len() - 32..].to_vec();
    // Of the points with this x only (x, y) and (x, p - y) are on the curve; y with its lowest
    // bit flipped is neither.
    y[31] ^= 1;
    let jwk = with(ec256_jwk("ec256"), json!({"y": b64(&y)}));
    let (ok, out) = nginx_t_full("", &body, &[("conf/ec.jwk", &jwk.to_string())]);
    assert!(!ok, "nginx -t accepted a point off the curve:\n{out}");
    let emerg = emerg_at(&out, line);
    assert!(emerg.contains("not a point on the curve"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// PEM forms
// ---------------------------------------------------------------------------------------------

#[test]
fn pkcs1_key_file_and_inline_pem() {
    let ec_pem = key("ec256.pub");
    assert!(ec_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let body = server(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n\
         location /rs/ {{\n\
         auth_jwt_algorithm RS256;\n\
         auth_jwt_use_keyfile on;\n\
         auth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pkcs1.pub;\n\
         {PROXY}\n}}\n\
         location /es/ {{\n\
         auth_jwt_algorithm ES256;\n\
         auth_jwt_key \"{}\";\n\
         {PROXY}\n}}",
        ec_pem.trim_end()
    ));
    let n = Nginx::start(&body);
    let c = claims("alice");

    let t = signed(Algorithm::RS256, "rsa2048", &c);
    check(&n, "/rs/", Some(&t), 200, "");
    let t = signed(Algorithm::RS256, "rsa2048-b", &c);
    check(&n, "/rs/", Some(&t), 401, "signature");

    let t = signed(Algorithm::ES256, "ec256", &c);
    check(&n, "/es/", Some(&t), 200, "");
    let other = fresh_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let t = signed_pem(Algorithm::ES256, &other, None, &c);
    check(&n, "/es/", Some(&t), 401, "signature");
}

// ---------------------------------------------------------------------------------------------
// Interoperability
// ---------------------------------------------------------------------------------------------

#[test]
fn pyjwt_hs_tokens_hex_and_utf8_secret() {
    let hexkey = hex(SECRET64.as_bytes());
    let mut locs = String::new();
    for alg in ["HS256", "HS384", "HS512"] {
        let l = alg.to_ascii_lowercase();
        locs.push_str(&format!(
            "location /hex/{l}/ {{ auth_jwt_algorithm {alg}; auth_jwt_key \"{hexkey}\"; {PROXY} }}\n\
             location /utf8/{l}/ {{ auth_jwt_algorithm {alg}; auth_jwt_key \"{SECRET64}\" utf8; {PROXY} }}\n"
        ));
    }
    let body = server(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n\
         add_header X-Sub $jwt_sub always;\n{locs}"
    ));
    let n = Nginx::start(&body);
    let payload = json!({"sub": "alice", "iat": now(), "exp": now() + 3600}).to_string();
    for alg in ["HS256", "HS384", "HS512"] {
        let l = alg.to_ascii_lowercase();
        let t = pyjwt(SECRET64, &payload, alg);
        for enc in ["hex", "utf8"] {
            let r = check(&n, &format!("/{enc}/{l}/"), Some(&t), 200, "");
            assert_eq!(r.header("X-Sub"), Some("alice"), "{r:?}");
        }
        // A token signed with another secret, and one of another HS algorithm.
        let wrong = pyjwt(&SECRET64.to_lowercase(), &payload, alg);
        check(&n, &format!("/hex/{l}/"), Some(&wrong), 401, "signature");
        let other = if alg == "HS256" { "HS512" } else { "HS256" };
        let t = pyjwt(SECRET64, &payload, other);
        check(&n, &format!("/utf8/{l}/"), Some(&t), 401, "algorithm");
    }
}

#[test]
fn other_issuers_rs256_es256_with_kid_against_jwks() {
    let set = jwks(&[
        with(
            rsa_jwk("rsa2048", "rsa-1"),
            json!({"alg": "RS256", "use": "sig"}),
        ),
        with(
            ec256_jwk("ec256"),
            json!({"kid": "ec-1", "alg": "ES256", "use": "sig"}),
        ),
    ]);
    let body = server(&format!(
        "auth_jwt_use_keyfile on;\n\
         auth_jwt_keyfile_path conf/jwks.json;\n\
         add_header X-Jwt-Error $jwt_error always;\n\
         add_header X-Sub $jwt_sub always;\n\
         location /any/ {{ {PROXY} }}\n\
         location /rs/ {{ auth_jwt_algorithm RS256; {PROXY} }}\n\
         location /es/ {{ auth_jwt_algorithm ES256; {PROXY} }}"
    ));
    let n = Nginx::start_full("", &body, &[("conf/jwks.json", &set)]);
    let c = claims("svc");

    // jsonwebtoken (a Rust issuer). Without an algorithm configured every key serves its own.
    let rs = signed_kid(Algorithm::RS256, "rsa2048", Some("rsa-1"), &c);
    let es = signed_kid(Algorithm::ES256, "ec256", Some("ec-1"), &c);
    for t in [&rs, &es] {
        let r = check(&n, "/any/", Some(t), 200, "");
        assert_eq!(r.header("X-Sub"), Some("svc"));
    }
    // A configured algorithm keeps the keys of its family only: the other one is skipped, so
    // its kid names no key there.
    check(&n, "/rs/", Some(&rs), 200, "");
    check(&n, "/rs/", Some(&es), 401, "key");
    check(&n, "/es/", Some(&es), 200, "");
    check(&n, "/es/", Some(&rs), 401, "key");
    let warned = |kid: &str, alg: &str| {
        n.error_log().lines().any(|l| {
            l.contains("[warn]")
                && l.contains(&format!("(kid \"{kid}\")"))
                && l.contains(&format!("cannot serve the configured {alg}"))
        })
    };
    assert!(
        warned("ec-1", "RS256") && warned("rsa-1", "ES256"),
        "{}",
        n.error_log()
    );
    // kids crossed: the key's pinned algorithm decides.
    let crossed = signed_kid(Algorithm::ES256, "ec256", Some("rsa-1"), &c);
    check(&n, "/any/", Some(&crossed), 401, "algorithm");

    // PyJWT with the same keys (needs the cryptography package).
    let payload = json!({"sub": "py", "exp": now() + 3600}).to_string();
    let rs = pyjwt_kid(&key("rsa2048.pk8.pem"), &payload, "RS256", "rsa-1");
    let es = pyjwt_kid(&key("ec256.pk8.pem"), &payload, "ES256", "ec-1");
    for t in [&rs, &es] {
        let r = check(&n, "/any/", Some(t), 200, "");
        assert_eq!(r.header("X-Sub"), Some("py"));
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 6750 challenges
// ---------------------------------------------------------------------------------------------

#[test]
fn bearer_challenges() {
    let body = server(&format!(
        "auth_jwt_key \"{}\";\n\
         location / {{ {PROXY} }}\n\
         location /quoted/ {{ auth_jwt_realm 'say \"hi\" \\ there'; {PROXY} }}",
        secret_hex()
    ));
    let n = Nginx::start(&body);

    let r = n.get("/", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.headers_named("WWW-Authenticate"),
        vec!["Bearer realm=\"Restricted\""],
        "{r:?}"
    );

    let expired = hs256(
        SECRET,
        json!({"sub": "alice", "iat": now() - 7200, "exp": now() - 3600}),
    );
    let r = n.get("/", &[("Authorization", &format!("Bearer {expired}"))]);
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.header("WWW-Authenticate").expect("no challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"Restricted\""),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let desc = challenge
        .split_once("error_description=\"")
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("no error_description: {challenge}"));
    assert!(desc.to_ascii_lowercase().contains("expire"), "{challenge}");

    let r = n.get("/quoted/", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Bearer realm="say \"hi\" \\ there""#),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// $jwt_error in error_page and log_format
// ---------------------------------------------------------------------------------------------

#[test]
fn jwt_error_in_error_page_and_log_format() {
    let body = format!(
        "log_format jwtlog 'status=$status jwt_error=$jwt_error sub=$jwt_sub';\n{}",
        server(&format!(
            "access_log {{{{PREFIX}}}}/logs/jwt.log jwtlog;\n\
             auth_jwt_key \"{}\";\n\
             location / {{ error_page 401 = @why; {PROXY} }}\n\
             location @why {{ return 401 \"reason=$jwt_error\\n\"; }}",
            secret_hex()
        ))
    );
    let n = Nginx::start(&body);

    let expired = hs256(
        SECRET,
        json!({"sub": "alice", "iat": now() - 7200, "exp": now() - 3600}),
    );
    let r = n.get("/", &[("Authorization", &format!("Bearer {expired}"))]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body, "reason=expired\n", "{r:?}");

    let r = n.get("/", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body, "reason=missing\n", "{r:?}");

    let good = hs256(SECRET, claims("alice"));
    let r = n.get("/", &[("Authorization", &format!("Bearer {good}"))]);
    assert_eq!(r.status, 200, "{r:?}");

    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = n.read("logs/jwt.log");
        if log.lines().count() >= 3 || Instant::now() > deadline {
            break log;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "access log:\n{log}");
    assert!(
        lines[0].starts_with("status=401 jwt_error=expired sub="),
        "access log:\n{log}"
    );
    assert!(
        lines[1].starts_with("status=401 jwt_error=missing sub="),
        "access log:\n{log}"
    );
    assert!(
        lines[2].starts_with("status=200 jwt_error="),
        "access log:\n{log}"
    );
    assert!(lines[2].ends_with("sub=alice"), "access log:\n{log}");
    assert!(
        !lines[0].contains("alice"),
        "claims of an expired token logged:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Header and claim variables
// ---------------------------------------------------------------------------------------------

#[test]
fn header_and_structured_claim_variables() {
    let set = jwks(&[rsa_jwk("rsa2048", "k1"), rsa_jwk("rsa2048-b", "k2")]);
    let body = server(&format!(
        "{JWKS_DIRECTIVES}\n\
         location / {{\n\
         add_header X-Kid $jwt_header_kid always;\n\
         add_header X-Alg $jwt_header_alg always;\n\
         add_header X-Typ $jwt_header_typ always;\n\
         add_header X-Scope $jwt_claim_scope always;\n\
         add_header X-Meta $jwt_claim_meta always;\n\
         add_header X-Admin $jwt_claim_admin always;\n\
         add_header X-Level $jwt_claim_level always;\n\
         {PROXY}\n}}"
    ));
    let n = Nginx::start_full("", &body, &[("conf/jwks.json", &set)]);
    let c = claims_with(
        "alice",
        json!({
            "scope": ["read", "write"],
            "meta": {"a": 1, "b": ["x", "y"], "c": {"d": true}},
            "admin": false,
            "level": 3
        }),
    );
    let t = signed_kid(Algorithm::RS256, "rsa2048-b", Some("k2"), &c);
    let r = n.get("/", &[("Authorization", &format!("Bearer {t}"))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("X-Kid"), Some("k2"), "{r:?}");
    assert_eq!(r.header("X-Alg"), Some("RS256"), "{r:?}");
    assert_eq!(r.header("X-Typ"), Some("JWT"), "{r:?}");
    assert_eq!(r.header("X-Scope"), Some("read,write"), "{r:?}");
    assert_eq!(
        r.header("X-Meta"),
        Some(r#"{"a":1,"b":["x","y"],"c":{"d":true}}"#),
        "{r:?}"
    );
    assert_eq!(r.header("X-Admin"), Some("false"), "{r:?}");
    assert_eq!(r.header("X-Level"), Some("3"), "{r:?}");

    // A token that fails (unknown kid) exposes nothing, not even its header.
    let bad = signed_kid(Algorithm::RS256, "rsa2048", Some("k9"), &c);
    let r = n.get("/", &[("Authorization", &format!("Bearer {bad}"))]);
    assert_eq!(r.status, 401, "{r:?}");
    for h in ["X-Kid", "X-Alg", "X-Scope", "X-Meta"] {
        assert_eq!(r.header(h), None, "{h} of a refused token: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Leeway, issuer, audience
// ---------------------------------------------------------------------------------------------

#[test]
fn leeway_issuer_audience() {
    let body = server(&format!(
        "auth_jwt_key \"{}\";\n\
         add_header X-Jwt-Error $jwt_error always;\n\
         location /strict/ {{ {PROXY} }}\n\
         location /leeway/ {{ auth_jwt_leeway 60s; {PROXY} }}\n\
         location /iss/ {{ auth_jwt_issuer a b; {PROXY} }}\n\
         location /aud/ {{ auth_jwt_audience api; {PROXY} }}",
        secret_hex()
    ));
    let n = Nginx::start(&body);
    let t = |extra: Value| hs256(SECRET, claims_with("alice", extra));
    let now = now();

    let exp30 = t(json!({"iat": now - 600, "exp": now - 30}));
    let exp120 = t(json!({"iat": now - 600, "exp": now - 120}));
    let nbf30 = t(json!({"nbf": now + 30}));
    check(&n, "/leeway/", Some(&exp30), 200, "");
    check(&n, "/leeway/", Some(&exp120), 401, "expired");
    check(&n, "/leeway/", Some(&nbf30), 200, "");
    check(&n, "/strict/", Some(&exp30), 401, "expired");
    check(&n, "/strict/", Some(&nbf30), 401, "not_yet_valid");

    check(&n, "/iss/", Some(&t(json!({"iss": "a"}))), 200, "");
    check(&n, "/iss/", Some(&t(json!({"iss": "b"}))), 200, "");
    check(&n, "/iss/", Some(&t(json!({"iss": "c"}))), 401, "issuer");
    check(&n, "/iss/", Some(&t(json!({}))), 401, "issuer");

    check(&n, "/aud/", Some(&t(json!({"aud": "api"}))), 200, "");
    check(&n, "/aud/", Some(&t(json!({"aud": ["x", "api"]}))), 200, "");
    check(
        &n,
        "/aud/",
        Some(&t(json!({"aud": ["x"]}))),
        401,
        "audience",
    );
    check(&n, "/aud/", Some(&t(json!({"aud": "x"}))), 401, "audience");
    check(&n, "/aud/", Some(&t(json!({}))), 401, "audience");
}
