//! Every token the suite sends, and the secrets and keys they are signed with. Test files mint
//! no token themselves; they call one of these:
//!
//! - well-formed tokens, minted by `jsonwebtoken`: [`hs256`], [`hs`] and [`hs_kid`] with a
//!   secret; [`signed`] and [`signed_kid`] with a private key of `testdata/keys`; [`signed_pem`]
//!   with any PKCS#8 PEM private key (e.g. one from [`fresh_key`]);
//! - hostile tokens, byte for byte as given: [`raw_token`] (any header and payload JSON, any
//!   signer: [`hmac`], [`openssl_rs256`], or a closure), [`raw_hs256`] (the same signed HS256
//!   with [`SECRET`]), [`sign_segments`] (segments that need not be base64url), [`with_payload`]
//!   (another payload under a token's signature);
//! - tokens minted by PyJWT, the independent issuer the deployment's login service uses:
//!   [`pyjwt`] and [`pyjwt_kid`] (PyJWT must be installed).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

pub use jsonwebtoken::Algorithm;

// ---------------------------------------------------------------------------------------------
// Secrets and keys
// ---------------------------------------------------------------------------------------------

/// A 64-character ASCII secret, as the deployment's login service uses.
pub const SECRET64: &str = "Zq3tX9vLw2pR7sK1mN8bC4dF6gH0jY5uA2eI7oP3rT9yW1xV6zQ8nM4kL0sD5fGh";

/// The test HS secret used across the suite, and its hex form for `auth_jwt_key`.
pub const SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";

pub fn secret_hex() -> String {
    hex(SECRET)
}

/// base64url without padding, as in tokens and JWKs.
pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Standard (padded) base64, as `auth_jwt_key … base64` takes it.
pub fn b64_std(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys")
}

/// Contents of a file in testdata/keys.
pub fn key(name: &str) -> String {
    fs::read_to_string(keys_dir().join(name))
        .unwrap_or_else(|e| panic!("testdata/keys/{name}: {e}"))
}

/// The DER inside a PEM file of testdata/keys.
pub fn pem_der(name: &str) -> Vec<u8> {
    let body: String = key(name)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

/// Runs the `openssl` CLI and returns its standard output.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is required");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A freshly generated PKCS#8 private key (PEM): `openssl genpkey -algorithm <alg> [opts]`.
pub fn fresh_key(args: &[&str]) -> String {
    let mut all = vec!["genpkey"];
    all.extend_from_slice(args);
    String::from_utf8(openssl(&all)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard claims valid for an hour, with `sub`.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iat": now(), "exp": now() + 3600})
}

// ---------------------------------------------------------------------------------------------
// Well-formed tokens (jsonwebtoken)
// ---------------------------------------------------------------------------------------------

pub fn hs256(secret: &[u8], claims: Value) -> String {
    hs(Algorithm::HS256, secret, &claims)
}

pub fn hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    hs_kid(alg, secret, None, claims)
}

/// An HMAC token whose header names `kid` (when given).
pub fn hs_kid(alg: Algorithm, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A token signed with the private key `testdata/keys/<stem>.pk8.pem`.
pub fn signed(alg: Algorithm, stem: &str, claims: &Value) -> String {
    signed_kid(alg, stem, None, claims)
}

pub fn signed_kid(alg: Algorithm, stem: &str, kid: Option<&str>, claims: &Value) -> String {
    signed_pem(alg, &key(&format!("{stem}.pk8.pem")), kid, claims)
}

/// A token signed with a PKCS#8 PEM private key, its header naming `kid` (when given).
pub fn signed_pem(alg: Algorithm, pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    let k = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()),
        Algorithm::ES256 | Algorithm::ES384 => {
            jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes())
        }
        Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => panic!("{alg:?} is not an asymmetric algorithm"),
    }
    .unwrap();
    jsonwebtoken::encode(&header, claims, &k).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Hostile tokens, byte for byte
// ---------------------------------------------------------------------------------------------

/// `b64(header).b64(payload).b64(sign(signing input))`, for hostile tokens.
pub fn raw_token(header_json: &str, payload_json: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(payload_json.as_bytes())
    );
    sign_segments(&input, sign)
}

/// [`raw_token`] signed HS256 with [`SECRET`].
pub fn raw_hs256(header_json: &str, payload_json: &str) -> String {
    raw_token(header_json, payload_json, hmac(Algorithm::HS256, SECRET))
}

/// `input.b64(sign(input))`: `input` stands as the header and payload segments exactly as
/// given, base64url or not, under a valid signature of those bytes.
pub fn sign_segments(input: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// `token` with its payload replaced by `payload`, header and signature kept: a signature that
/// no longer matches.
pub fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    )
}

/// A signer computing an HMAC with `secret` (for `raw_token`).
pub fn hmac(alg: Algorithm, secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    move |input: &[u8]| {
        let sig = jsonwebtoken::crypto::sign(input, &key, alg).unwrap();
        URL_SAFE_NO_PAD.decode(sig).unwrap()
    }
}

/// A signer computing an RS256 (PKCS#1 v1.5, SHA-256) signature by
/// `testdata/keys/<stem>.pk8.pem` with the `openssl` CLI (for `raw_token`; it signs with keys
/// that `jsonwebtoken` refuses, such as 1024-bit RSA).
pub fn openssl_rs256(stem: &str) -> impl Fn(&[u8]) -> Vec<u8> {
    let private = keys_dir().join(format!("{stem}.pk8.pem"));
    move |input: &[u8]| {
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&private)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl CLI is required");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

// ---------------------------------------------------------------------------------------------
// PyJWT
// ---------------------------------------------------------------------------------------------

/// A token minted by PyJWT: `jwt.encode(payload, secret, algorithm=alg)`.
pub fn pyjwt(secret: &str, payload_json: &str, alg: &str) -> String {
    pyjwt_headers(secret, payload_json, alg, None)
}

/// A token minted by PyJWT with a `kid` header: `jwt.encode(payload, key, alg, headers)`.
pub fn pyjwt_kid(key_pem: &str, payload_json: &str, alg: &str, kid: &str) -> String {
    pyjwt_headers(key_pem, payload_json, alg, Some(&json!({ "kid": kid })))
}

/// `jwt.encode(payload, key, algorithm=alg, headers=headers)`; no `headers` is PyJWT's default.
fn pyjwt_headers(key: &str, payload_json: &str, alg: &str, headers: Option<&Value>) -> String {
    let script = "import sys, json\n\
        try:\n    import jwt\nexcept ImportError:\n    sys.exit(3)\n\
        t = jwt.encode(json.loads(sys.argv[2]), sys.argv[1], algorithm=sys.argv[3], \
        headers=json.loads(sys.argv[4]))\n\
        print(t if isinstance(t, str) else t.decode())\n";
    let headers = headers.map_or("null".to_string(), Value::to_string);
    let out = Command::new("python3")
        .args(["-c", script, key, payload_json, alg, &headers])
        .output()
        .expect("python3 is required for the PyJWT tests");
    assert!(
        out.status.code() != Some(3),
        "PyJWT missing: pip install PyJWT (scripts/test.sh installs it)"
    );
    assert!(
        out.status.success(),
        "PyJWT failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// JWKs, built from `testdata/keys/*.pub` with the `openssl` CLI.

/// The path of `testdata/keys/<stem>.pub`.
pub fn pub_file(stem: &str) -> String {
    keys_dir()
        .join(format!("{stem}.pub"))
        .to_str()
        .unwrap()
        .to_string()
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The DER SubjectPublicKeyInfo of `testdata/keys/<stem>.pub`.
pub fn spki_der(stem: &str) -> Vec<u8> {
    openssl(&["pkey", "-pubin", "-in", &pub_file(stem), "-outform", "DER"])
}

/// `{"kty":"RSA","kid":kid,"n":…,"e":"AQAB"}` for `testdata/keys/<stem>.pub`.
pub fn rsa_jwk(stem: &str, kid: &str) -> Value {
    let path = pub_file(stem);
    let text = String::from_utf8(openssl(&[
        "rsa", "-pubin", "-in", &path, "-modulus", "-noout",
    ]))
    .unwrap();
    let modulus = text
        .trim()
        .strip_prefix("Modulus=")
        .unwrap_or_else(|| panic!("unexpected openssl output: {text}"));
    let details =
        String::from_utf8(openssl(&["rsa", "-pubin", "-in", &path, "-text", "-noout"])).unwrap();
    assert!(
        details.contains("Exponent: 65537"),
        "{stem}: exponent is not 65537:\n{details}"
    );
    json!({"kty": "RSA", "kid": kid, "n": b64(&unhex(modulus)), "e": "AQAB"})
}

/// `{"kty":"EC","crv":"P-256","x":…,"y":…}` for `testdata/keys/<stem>.pub` (a P-256 key).
pub fn ec256_jwk(stem: &str) -> Value {
    let der = spki_der(stem);
    // The SPKI ends with the BIT STRING holding the uncompressed point 04 || x || y.
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4, "{stem}: not an uncompressed P-256 point");
    json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

/// `{"kty":"OKP","crv":"Ed25519","x":…}` for `testdata/keys/<stem>.pub`.
pub fn ed25519_jwk(stem: &str) -> Value {
    let der = spki_der(stem);
    assert_eq!(der.len(), 44, "{stem}: not an Ed25519 SPKI");
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&der[12..])})
}

/// A JWK set of `keys`.
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}
