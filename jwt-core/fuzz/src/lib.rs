//! Helpers shared by the fuzz targets: embedded test keys, token minting and
//! the policy / clock a fuzz input selects.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_core::{header_safe, json_for_header, render, Claims, Jwt, Policy};

pub const HMAC_SECRET: &[u8] = b"fuzz-secret-for-hs256-0123456789";

pub const RSA2048_PUB: &[u8] = include_bytes!("../../../testdata/keys/rsa2048.pub");
pub const RSA2048_PKCS1_PUB: &[u8] = include_bytes!("../../../testdata/keys/rsa2048.pkcs1.pub");
pub const EC256_PUB: &[u8] = include_bytes!("../../../testdata/keys/ec256.pub");
pub const EC384_PUB: &[u8] = include_bytes!("../../../testdata/keys/ec384.pub");
pub const ED25519_PUB: &[u8] = include_bytes!("../../../testdata/keys/ed25519.pub");
pub const ED25519_PK8: &[u8] = include_bytes!("../../../testdata/keys/ed25519.pk8.pem");

/// The "now" of most inputs: before the seeds' `exp` (2100-01-01), after their `nbf`.
pub const NOW: i64 = 1_700_000_000;

/// The DER inside a PEM document (test keys only: panics on bad input).
pub fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is text");
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// One DER TLV at the start of `der`: (tag, content, rest). Test keys only.
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, start) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        0x82 => (usize::from(der[2]) << 8 | usize::from(der[3]), 4),
        other => panic!("unexpected DER length byte {other:#x}"),
    };
    (tag, &der[start..start + len], &der[start + len..])
}

/// (n, e) of an RSA PKCS#1 `RSA PUBLIC KEY` PEM, base64url, without sign bytes.
pub fn rsa_jwk_parts(pkcs1_pem: &[u8]) -> (String, String) {
    let der = pem_der(pkcs1_pem);
    let (_, seq, _) = tlv(&der);
    let (_, n, rest) = tlv(seq);
    let (_, e, _) = tlv(rest);
    let strip = |v: &[u8]| -> Vec<u8> {
        let zeros = v.iter().take_while(|&&b| b == 0).count();
        v[zeros..].to_vec()
    };
    (
        URL_SAFE_NO_PAD.encode(strip(n)),
        URL_SAFE_NO_PAD.encode(strip(e)),
    )
}

/// The raw 32-byte Ed25519 public key of an SPKI PEM (the last 32 bytes).
pub fn ed25519_raw(spki_pem: &[u8]) -> Vec<u8> {
    let der = pem_der(spki_pem);
    der[der.len() - 32..].to_vec()
}

/// A JWKS with two keys: RSA (kid "rsa-1", RS256) and Ed25519 (kid "ed-1", EdDSA).
pub fn two_key_jwks() -> String {
    let (n, e) = rsa_jwk_parts(RSA2048_PKCS1_PUB);
    let x = URL_SAFE_NO_PAD.encode(ed25519_raw(ED25519_PUB));
    format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"rsa-1","alg":"RS256","use":"sig","n":"{n}","e":"{e}"}},{{"kty":"OKP","kid":"ed-1","alg":"EdDSA","crv":"Ed25519","x":"{x}"}}]}}"#
    )
}

/// `b64url(header).b64url(payload)`, the JWS signing input.
pub fn signing_input(header: &[u8], payload: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// Appends `.b64url(signature)` to a signing input.
pub fn with_signature(input: String, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Splits structured input at its first NUL into (header, payload); without a
/// NUL the whole input is the payload under `default_header`.
pub fn header_and_payload<'a>(data: &'a [u8], default_header: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (default_header, data),
    }
}

/// A policy and clock chosen by the bits of one selector byte:
/// bit 0 issuers, bit 1 audiences, bit 2 require_sub, bits 3-4 leeway, bits 5-6 now.
pub fn policy_and_now(bits: u8) -> (Policy, i64) {
    let policy = Policy {
        leeway: [0, 60, u64::MAX / 2, u64::MAX][usize::from(bits >> 3 & 3)],
        issuers: if bits & 1 != 0 {
            vec!["https://issuer.example".to_owned()]
        } else {
            Vec::new()
        },
        audiences: if bits & 2 != 0 {
            vec!["api".to_owned(), "web".to_owned()]
        } else {
            Vec::new()
        },
        require_sub: bits & 4 != 0,
        exp_optional: false,
    };
    let now = [NOW, 0, i64::MIN, i64::MAX][usize::from(bits >> 5 & 3)];
    (policy, now)
}

/// What every accepted token must satisfy, whatever the input was.
pub fn check_accepted(jwt: Jwt, policy: &Policy) {
    let jwt = Claims::new(std::rc::Rc::new(jwt));
    let payload: serde_json::Value =
        serde_json::from_str(jwt.payload_json()).expect("payload_json of a valid token is JSON");
    // What `$jwt_payload` hands nginx: one header-safe line, the same JSON.
    let safe = json_for_header(jwt.payload_json());
    assert!(header_safe(&safe) && !safe.contains('\t'));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&safe).expect("still JSON"),
        payload
    );
    assert_eq!(
        jwt.sub(),
        jwt.claim_exact("sub").and_then(|v| v.as_str()),
        "$jwt_sub and the JWT-sub header agree"
    );
    let object = payload.as_object().expect("payload is an object");
    assert!(jwt.header("alg").is_some(), "accepted token without alg");
    assert!(jwt.claim("exp").is_some_and(|exp| exp.is_number()));
    for (name, value) in object {
        let _ = render(value);
        assert!(jwt.claim(name).is_some());
        assert!(jwt.claim(&name.to_ascii_uppercase()).is_some());
    }
    if policy.require_sub {
        assert!(jwt.sub().is_some_and(|sub| !sub.is_empty()));
    }
    if !policy.issuers.is_empty() {
        let iss = jwt.claim("iss").and_then(|v| v.as_str());
        assert!(iss.is_some_and(|iss| policy.issuers.iter().any(|a| a == iss)));
    }
}
