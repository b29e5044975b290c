//! Which key a location verifies with, and every way of getting it wrong, refused or warned
//! about at `nginx -t` (docs/SECURITY.md: Which key a location verifies with, Key files;
//! docs/DIRECTIVES.md: auth_jwt_key, auth_jwt_keyfile_path).

mod common;
use std::time::Duration;

use common::*;

/// A server whose body has the directives under test on their own lines.
fn conf(body: &str) -> String {
    format!("server {{\nlisten 127.0.0.1:{{{{PORT}}}};\n{body}\nlocation / {{ return 204; }}\n}}\n")
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn a_public_key_given_as_a_secret_fails_nginx_t() {
    let der = pem_der("rsa2048.pub");
    let b64 = b64_std(&der);
    let pem = key("rsa2048.pub");
    let jwk = r#"{"kty":"RSA","n":"x","e":"AQAB"}"#.replace('"', "\\\"");
    let cases = [
        format!("auth_jwt_key \"{}\";", hex(&der)),
        format!("auth_jwt_key \"{}\" hex;", hex(&der)),
        format!("auth_jwt_key \"{b64}\" base64;"),
        format!("auth_jwt_key \"{b64}\" utf8;"),
        format!("auth_jwt_key \"{}\" utf8;", pem.trim()),
        format!("auth_jwt_key \"{}\" utf8;", hex(&der)),
        format!("auth_jwt_key \"{}\" utf8;", jwk),
        format!(
            "auth_jwt_algorithm HS512;\nauth_jwt_key \"{}\";",
            hex(&pem_der("ec256.pub"))
        ),
    ];
    for directive in cases {
        let (ok, out) = nginx_t(&conf(&directive));
        assert!(!ok && out.contains("[emerg]"), "{directive}\n{out}");
        assert!(out.contains("the secret is"), "{directive}\n{out}");
    }
}

#[test]
fn an_hmac_key_in_a_jwks_of_an_rs256_location_is_skipped_with_a_warning() {
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "h", "alg": "HS256", "k": b64(SECRET)},
        {"kty": "oct", "kid": "h2", "k": b64(SECRET)},
    ]})
    .to_string();
    let mut full = serde_json::from_str::<serde_json::Value>(&jwks).unwrap();
    // The RSA key as a JWK, from the PEM body (n and e of the SPKI).
    let der = pem_der("rsa2048.pub");
    let (n, e) = rsa_parts(&der);
    full["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "RSA", "kid": "r", "n": b64(&n), "e": b64(&e)}));
    let body = conf(&format!(
        "add_header X-Jwt-Error $jwt_error always;\nauth_jwt_algorithm RS256;\n\
         auth_jwt_use_keyfile on;\nauth_jwt_keyfile_path conf/jwks.json;\n\
         location /x {{ {PROXY} }}"
    ));
    let (ok, out) = nginx_t_full("", &body, &[("conf/jwks.json", &full.to_string())]);
    assert!(ok, "{out}");
    for kid in ["h", "h2"] {
        assert!(
            out.contains("[warn]")
                && out.contains(&format!("(kid \"{kid}\"): secret key"))
                && out.contains("cannot serve the configured RS256"),
            "{out}"
        );
    }
    let n = Nginx::start_full("", &body, &[("conf/jwks.json", &full.to_string())]);
    let hs = raw_hs256(
        r#"{"alg":"HS256","kid":"h"}"#,
        &json!({"sub": "x", "exp": now() + 60}).to_string(),
    );
    let r = n.get("/x", &[("Authorization", &bearer(&hs))]);
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("key")));
    let rs = signed_kid(Algorithm::RS256, "rsa2048", Some("r"), &claims("ok"));
    assert_eq!(n.get("/x", &[("Authorization", &bearer(&rs))]).status, 200);
}

/// (n, e) of an RSA SubjectPublicKeyInfo, by walking its DER.
fn rsa_parts(spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(data: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = data[0];
        let (len, head) = match data[1] {
            l if l < 0x80 => (l as usize, 2),
            0x81 => (data[2] as usize, 3),
            0x82 => ((data[2] as usize) << 8 | data[3] as usize, 4),
            _ => panic!("length"),
        };
        (tag, &data[head..head + len], &data[head + len..])
    }
    let (_, spki, _) = read(spki);
    let (_, _, rest) = read(spki);
    let (_, bits, _) = read(rest);
    let (_, pkcs1, _) = read(&bits[1..]);
    let (_, n, rest) = read(pkcs1);
    let (_, e, _) = read(rest);
    let n = n.strip_prefix(&[0]).unwrap_or(n).to_vec();
    (n, e.to_vec())
}

#[test]
fn short_hmac_secrets_are_warned_about() {
    let (ok, out) = nginx_t(&conf(&format!(
        "auth_jwt_key \"{}\";\nlocation /384 {{ auth_jwt_algorithm HS384; }}",
        hex(&[7; 32])
    )));
    assert!(ok, "{out}");
    assert!(
        out.contains("[warn]")
            && out.contains("the HS384 secret is 32 bytes long; RFC 7518 asks for at least 48"),
        "{out}"
    );
    assert!(
        !out.contains("HS256 secret"),
        "32 bytes are enough for HS256: {out}"
    );
    let (ok, out) = nginx_t(&conf("auth_jwt_key \"short\" utf8;"));
    assert!(
        ok && out.contains("the HS256 secret is 5 bytes long"),
        "{out}"
    );
}

#[test]
fn es512_keys_verify_through_nginx() {
    let body = conf(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n\
         location /file {{ auth_jwt_algorithm ES512; auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{{{KEYS}}}}/ec521.pub; {PROXY} }}\n\
         location /inline {{ auth_jwt_key \"{}\"; {PROXY} }}\n\
         location /es384 {{ auth_jwt_algorithm ES384; auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{{{KEYS}}}}/ec384.pub; {PROXY} }}",
        key("ec521.pub").trim()
    ));
    let n = Nginx::start(&body);
    let payload = json!({"sub": "p521", "exp": now() + 600}).to_string();
    let good = pyjwt(&key("ec521.pk8.pem"), &payload, "ES512");
    for path in ["/file", "/inline"] {
        let r = n.get(path, &[("Authorization", &bearer(&good))]);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    // Another P-521 key signed it.
    let other = pyjwt(
        &fresh_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]),
        &payload,
        "ES512",
    );
    let r = n.get("/file", &[("Authorization", &bearer(&other))]);
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("signature"))
    );
    // The right key, the wrong algorithm for the location.
    let r = n.get("/es384", &[("Authorization", &bearer(&good))]);
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("algorithm"))
    );
    let es256 = signed(Algorithm::ES256, "ec256", &claims("x"));
    let r = n.get("/file", &[("Authorization", &bearer(&es256))]);
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("algorithm"))
    );
    // A P-521 key cannot serve another curve's algorithm.
    expect_emerg_at(
        &conf("auth_jwt_algorithm ES384;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {{KEYS}}/ec521.pub;"),
        "auth_jwt_keyfile_path",
    );
}

#[test]
fn extract_claims_directives_add_up() {
    let n = Nginx::start(&conf(&format!(
        "{}\n\
         location /x {{\n\
           auth_jwt_extract_request_claims sub;\n\
           auth_jwt_extract_request_claims email;\n\
           auth_jwt_extract_response_claims sub;\n\
           auth_jwt_extract_response_claims email;\n\
           proxy_pass http://127.0.0.1:{{{{UPSTREAM}}}};\n\
         }}",
        key_line()
    )));
    let t = hs256(
        SECRET,
        json!({"sub": "u", "email": "u@example.com", "exp": now() + 60}),
    );
    let r = n.get("/x", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_one("jwt-sub").as_deref(), Some("u"));
    assert_eq!(
        r.upstream_one("jwt-email").as_deref(),
        Some("u@example.com")
    );
    assert_eq!(r.header("jwt-sub"), Some("u"));
    assert_eq!(r.header("jwt-email"), Some("u@example.com"));
    // The same header twice is a mistake.
    let out = expect_emerg_at(
        &conf(&format!(
            "{}\nauth_jwt_extract_request_claims sub;\nauth_jwt_extract_request_claims SUB; # twice",
            key_line()
        )),
        "# twice",
    );
    assert!(out.contains("would be set twice"), "{out}");
}

#[test]
fn claim_headers_use_the_exact_claim_name() {
    let n = Nginx::start(&conf(&format!(
        "{}\nlocation /x {{ auth_jwt_extract_request_claims sub; proxy_set_header X-Sub $jwt_sub; proxy_pass http://127.0.0.1:{{{{UPSTREAM}}}}; }}",
        key_line()
    )));
    let t = hs256(SECRET, json!({"SUB": "root", "exp": now() + 60}));
    let r = n.get("/x", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_one("jwt-sub"), None);
    assert_eq!(r.upstream_one("x-sub"), None);
}

// ---------------------------------------------------------------------------------------------
// Which key a location uses
// ---------------------------------------------------------------------------------------------

#[test]
fn a_key_directive_no_level_uses_fails_nginx_t() {
    // A key file without auth_jwt_use_keyfile on: no check at all.
    let body = conf("location /a {\nauth_jwt_keyfile_path {{KEYS}}/rsa2048.pub;\n}");
    let out = expect_emerg_at(&body, "auth_jwt_keyfile_path");
    assert!(
        out.contains("\"auth_jwt_keyfile_path\" is not used anywhere")
            && out.contains("no key is used"),
        "{out}"
    );
    // Under an outer key: the outer key would be used.
    let body = conf(&format!(
        "{}\nlocation /a {{\nauth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pub;\n}}",
        key_line()
    ));
    let out = expect_emerg_at(&body, "auth_jwt_keyfile_path");
    assert!(out.contains("so the key of \"auth_jwt_key\" in"), "{out}");
    // A location's own key under an inherited use_keyfile on: the file would be used.
    let body = conf(&format!(
        "auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pub;\n\
         location /a {{\nauth_jwt_key \"{}\";\n}}",
        key("rsa2048-b.pub").trim()
    ));
    let out = expect_emerg_at(&body, "END PUBLIC KEY");
    assert!(
        out.contains("\"auth_jwt_key\" is not used anywhere")
            && out.contains("\"auth_jwt_use_keyfile\" is on")
            && out.contains("rsa2048.pub"),
        "{out}"
    );
    // TeslaGov's pattern: a key and a key file at server level, each location picks one.
    expect_valid(&conf(&format!(
        "{}\nauth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pub;\n\
         location /rs {{ auth_jwt_use_keyfile on; auth_jwt_algorithm RS256; }}\n\
         location /hs {{ }}",
        key_line()
    )));
}

#[test]
fn a_key_under_an_inherited_enabled_off_is_warned_about() {
    let (ok, out) = nginx_t(&conf(&format!(
        "{}\nauth_jwt_enabled off;\n\
         location /own {{\nauth_jwt_key \"{}\";\n}}\n\
         location /said {{ auth_jwt_key \"{}\"; auth_jwt_enabled off; }}\n\
         location /on {{ auth_jwt_enabled on; }}",
        key_line(),
        hex(b"another-secret-another-secret-0123456789"),
        hex(b"a-third-secret-a-third-secret-0123456789")
    )));
    assert!(ok, "{out}");
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("tokens are not checked here"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(warnings[0].contains("[warn]") && warnings[0].contains("inherited from"));
}

#[test]
fn keys_take_no_variables_and_leeway_is_bounded() {
    let out = expect_emerg_at(&conf("auth_jwt_key \"$secret\" utf8;"), "auth_jwt_key");
    assert!(out.contains("does not support variables"), "{out}");
    expect_valid(&conf(
        "auth_jwt_key \"pa$$ 1$ 0123456789abcdef0123456789abcdef\" utf8;",
    ));
    for absurd in ["100y", "2d", "25h"] {
        let out = expect_emerg_at(
            &conf(&format!("{}\nauth_jwt_leeway {absurd};", key_line())),
            "auth_jwt_leeway",
        );
        assert!(out.contains("too large"), "{out}");
    }
    expect_valid(&conf(&format!("{}\nauth_jwt_leeway 1d;", key_line())));
}

// ---------------------------------------------------------------------------------------------
// Key files: read safely, once
// ---------------------------------------------------------------------------------------------

#[test]
fn key_files_must_be_regular_files_of_bounded_size() {
    let body = |path: &str| {
        conf(&format!(
            "auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {path};"
        ))
    };
    let out = expect_emerg_at(&body("/dev/zero"), "auth_jwt_keyfile_path");
    assert!(out.contains("is not a regular file"), "{out}");
    let out = expect_emerg_at(&body("/tmp"), "auth_jwt_keyfile_path");
    assert!(out.contains("is not a regular file"), "{out}");

    // A FIFO: refused at once, without waiting for a writer.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("jwt-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("key.fifo");
    let _ = std::fs::remove_file(&fifo);
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path in a directory this test owns.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let conf_text = body(fifo.to_str().unwrap());
    std::thread::spawn(move || {
        let _ = tx.send(nginx_t(&conf_text));
    });
    let (ok, out) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("nginx -t hung on a FIFO key file");
    assert!(!ok && out.contains("is not a regular file"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);

    // Larger than 16 MiB.
    let big = "x".repeat(16 * 1024 * 1024 + 1);
    let (ok, out) = nginx_t_full("", &body("conf/big.json"), &[("conf/big.json", &big)]);
    assert!(!ok && out.contains("is larger than 16 MiB"), "{out}");
}

#[test]
fn a_large_key_set_named_by_many_locations_loads_and_selects_by_kid() {
    // 2,000 keys, named by 50 locations: read and parsed once, each kid found.
    let keys: Vec<serde_json::Value> = (0..2000)
        .map(|i| json!({"kty": "oct", "kid": format!("k{i}"), "k": b64(format!("secret-number-{i:06}-0123456789abcdef").as_bytes())}))
        .collect();
    let jwks = json!({ "keys": keys }).to_string();
    let locations: String = (0..50)
        .map(|i| {
            format!(
                "location /l{i} {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/jwks.json; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n"
            )
        })
        .collect();
    let n = Nginx::start_full(
        "",
        &conf(&format!("auth_jwt_algorithm HS256;\n{locations}")),
        &[("conf/jwks.json", &jwks)],
    );
    for (i, kid) in [(0, 0), (17, 1234), (49, 1999)] {
        let secret = format!("secret-number-{kid:06}-0123456789abcdef");
        let t = raw_token(
            &format!(r#"{{"alg":"HS256","kid":"k{kid}"}}"#),
            &json!({"sub": "s", "exp": now() + 60}).to_string(),
            hmac(Algorithm::HS256, secret.as_bytes()),
        );
        let r = n.get(&format!("/l{i}"), &[("Authorization", &bearer(&t))]);
        assert_eq!(r.status, 200, "/l{i} kid k{kid}: {r:?}");
    }
    let t = raw_token(
        r#"{"alg":"HS256","kid":"k2000"}"#,
        &json!({"exp": now() + 60}).to_string(),
        hmac(Algorithm::HS256, b"x"),
    );
    let r = n.get("/l3", &[("Authorization", &bearer(&t))]);
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("key")));
}

#[test]
fn a_jwk_set_of_more_than_ten_thousand_keys_fails_nginx_t() {
    let keys: Vec<serde_json::Value> = (0..10_001)
        .map(|i| json!({"kty": "oct", "kid": format!("k{i}"), "k": b64(&[7; 32])}))
        .collect();
    let (ok, out) = nginx_t_full(
        "",
        &conf("auth_jwt_use_keyfile on;\nauth_jwt_keyfile_path conf/jwks.json;"),
        &[("conf/jwks.json", &json!({ "keys": keys }).to_string())],
    );
    assert!(
        !ok && out.contains("holds 10001 keys, more than 10000"),
        "{out}"
    );
}
