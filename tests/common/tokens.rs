//! Every token the suite sends, and the secrets and keys they are signed with: well-formed
//! tokens minted by `jsonwebtoken` from the keys in `testdata/keys`, hostile tokens built byte by
//! byte with `raw_token`, and tokens minted by PyJWT with `pyjwt` (the independent issuer the
//! login service uses; PyJWT must be installed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys")
}

/// Contents of a file in testdata/keys.
pub fn key(name: &str) -> String {
    fs::read_to_string(keys_dir().join(name))
        .unwrap_or_else(|e| panic!("testdata/keys/{name}: {e}"))
}

pub use jsonwebtoken::Algorithm;

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

pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(alg);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

pub fn hs256(secret: &[u8], claims: Value) -> String {
    hs(Algorithm::HS256, secret, &claims)
}

/// A token signed with the private key `testdata/keys/<stem>.pk8.pem`.
pub fn signed(alg: Algorithm, stem: &str, claims: &Value) -> String {
    signed_kid(alg, stem, None, claims)
}

pub fn signed_kid(alg: Algorithm, stem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    let pem = key(&format!("{stem}.pk8.pem"));
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

/// `b64(header).b64(payload).b64(sign(signing input))`, for hostile tokens.
pub fn raw_token(header_json: &str, payload_json: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(payload_json.as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A signer computing an HMAC with `secret` (for `raw_token`).
pub fn hmac(alg: Algorithm, secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    move |input: &[u8]| {
        let sig = jsonwebtoken::crypto::sign(input, &key, alg).unwrap();
        URL_SAFE_NO_PAD.decode(sig).unwrap()
    }
}

/// A token minted by PyJWT: `jwt.encode(payload, secret, algorithm=alg)`.
pub fn pyjwt(secret: &str, payload_json: &str, alg: &str) -> String {
    let script = "import sys, json\n\
        try:\n    import jwt\nexcept ImportError:\n    sys.exit(3)\n\
        t = jwt.encode(json.loads(sys.argv[2]), sys.argv[1], algorithm=sys.argv[3])\n\
        print(t if isinstance(t, str) else t.decode())\n";
    let out = Command::new("python3")
        .args(["-c", script, secret, payload_json, alg])
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

/// A 64-character ASCII secret, as the deployment's login service uses.
pub const SECRET64: &str = "Zq3tX9vLw2pR7sK1mN8bC4dF6gH0jY5uA2eI7oP3rT9yW1xV6zQ8nM4kL0sD5fGh";

/// The test HS secret used across the suite, and its hex form for `auth_jwt_key`.
pub const SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";

pub fn secret_hex() -> String {
    hex(SECRET)
}
