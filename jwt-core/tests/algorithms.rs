//! Every algorithm end to end, with tokens minted by an independent library
//! (jsonwebtoken; aws-lc-rs's signing side for ES512, which jsonwebtoken lacks) from the
//! private keys in testdata/keys.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use jwt_core::{verify, Algorithm, Claims, KeySet, Policy, Reason};
use ring::rand::SystemRandom;
use ring::signature;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/../testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn pem_der(name: &str) -> Vec<u8> {
    let text = String::from_utf8(key_file(name)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn jose(alg: Algorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as J;
    match alg {
        Algorithm::HS256 => J::HS256,
        Algorithm::HS384 => J::HS384,
        Algorithm::HS512 => J::HS512,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
        Algorithm::ES512 => unreachable!("jsonwebtoken has no ES512: see Signer::P521"),
    }
}

/// A private key to mint tokens with.
enum Signer {
    Jose(EncodingKey),
    P521(aws_lc_rs::signature::EcdsaKeyPair),
}

impl From<EncodingKey> for Signer {
    fn from(key: EncodingKey) -> Signer {
        Signer::Jose(key)
    }
}

fn p521(pkcs8: &[u8]) -> Signer {
    Signer::P521(
        aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            pkcs8,
        )
        .unwrap(),
    )
}

fn claims() -> Value {
    json!({"sub": "alice", "exp": NOW + 300, "iat": NOW, "iss": "https://issuer.example", "aud": ["api"]})
}

fn mint(alg: Algorithm, signer: &Signer, kid: Option<&str>) -> String {
    match signer {
        Signer::Jose(key) => {
            let mut header = Header::new(jose(alg));
            header.kid = kid.map(str::to_owned);
            jsonwebtoken::encode(&header, &claims(), key).unwrap()
        }
        Signer::P521(pair) => {
            let mut header = json!({"typ": "JWT", "alg": alg.name()});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims().to_string())
            );
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let sig = pair.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }
}

/// The signing key a test uses for `alg`, from testdata.
fn signing_key(alg: Algorithm) -> Signer {
    match alg {
        a if a.is_hmac() => EncodingKey::from_secret(SECRET).into(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&key_file("ec256.pk8.pem"))
            .unwrap()
            .into(),
        Algorithm::ES384 => EncodingKey::from_ec_pem(&key_file("ec384.pk8.pem"))
            .unwrap()
            .into(),
        Algorithm::ES512 => p521(&pem_der("ec521.pk8.pem")),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&key_file("ed25519.pk8.pem"))
            .unwrap()
            .into(),
        _ => EncodingKey::from_rsa_pem(&key_file("rsa2048.pk8.pem"))
            .unwrap()
            .into(),
    }
}

/// A key of the same kind that does not match the key set.
fn wrong_signing_key(alg: Algorithm) -> Signer {
    let rng = SystemRandom::new();
    let key = match alg {
        a if a.is_hmac() => EncodingKey::from_secret(b"not the configured secret"),
        Algorithm::ES512 => {
            let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
                &aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .unwrap();
            return p521(pkcs8.as_ref());
        }
        Algorithm::ES256 => EncodingKey::from_ec_der(
            signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .unwrap()
            .as_ref(),
        ),
        Algorithm::ES384 => EncodingKey::from_ec_der(
            signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                &rng,
            )
            .unwrap()
            .as_ref(),
        ),
        Algorithm::EdDSA => EncodingKey::from_ed_der(
            signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref(),
        ),
        _ => EncodingKey::from_rsa_pem(&key_file("rsa2048-b.pk8.pem")).unwrap(),
    };
    key.into()
}

/// The key set a deployment would configure for `alg`.
fn key_set(alg: Algorithm) -> KeySet {
    let file = match alg {
        a if a.is_hmac() => return KeySet::from_secret(SECRET, alg).unwrap().0,
        Algorithm::ES256 => "ec256.pub",
        Algorithm::ES384 => "ec384.pub",
        Algorithm::ES512 => "ec521.pub",
        Algorithm::EdDSA => "ed25519.pub",
        _ => "rsa2048.pub",
    };
    let (set, warnings) = KeySet::from_material(&key_file(file), Some(alg)).unwrap();
    assert!(warnings.is_empty());
    set
}

/// A key set for another algorithm, used to check that a token's alg must match.
fn mismatched_set(alg: Algorithm) -> KeySet {
    let other = match alg {
        Algorithm::HS256 => Algorithm::HS384,
        Algorithm::HS384 => Algorithm::HS512,
        Algorithm::HS512 => Algorithm::HS256,
        Algorithm::RS256 => Algorithm::PS256,
        Algorithm::RS384 => Algorithm::RS256,
        Algorithm::RS512 => Algorithm::PS512,
        Algorithm::PS256 => Algorithm::RS256,
        Algorithm::PS384 => Algorithm::PS256,
        Algorithm::PS512 => Algorithm::RS512,
        Algorithm::ES256 => Algorithm::ES384,
        Algorithm::ES384 => Algorithm::ES512,
        Algorithm::ES512 => Algorithm::ES256,
        Algorithm::EdDSA => Algorithm::RS256,
    };
    key_set(other)
}

fn strict_policy() -> Policy {
    Policy {
        leeway: 0,
        issuers: vec!["https://issuer.example".into()],
        audiences: vec!["api".into()],
        require_sub: true,
        exp_optional: false,
    }
}

#[test]
fn every_algorithm_verifies_its_tokens() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &signing_key(alg), None);
        let jwt = verify(token.as_bytes(), &key_set(alg), &strict_policy(), NOW)
            .unwrap_or_else(|err| panic!("{alg}: {err}"));
        let jwt = Claims::new(std::rc::Rc::new(jwt));
        assert_eq!(jwt.sub(), Some("alice"), "{alg}");
        assert_eq!(jwt.header("alg"), Some(&json!(alg.name())));
        assert_eq!(jwt.claim("aud"), Some(&json!(["api"])));
        assert_eq!(
            serde_json::from_str::<Value>(jwt.payload_json()).unwrap(),
            claims()
        );
    }
}

#[test]
fn every_algorithm_refuses_a_wrong_key() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &wrong_signing_key(alg), None);
        let err = verify(token.as_bytes(), &key_set(alg), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Signature, "{alg}: {err}");
        assert_eq!(err.detail, format!("invalid {alg} signature"));
    }
}

#[test]
fn every_algorithm_refuses_a_mismatched_alg() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &signing_key(alg), None);
        let set = mismatched_set(alg);
        let err = verify(token.as_bytes(), &set, &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Algorithm, "{alg}: {err}");
        let configured = set.algorithms().next().unwrap();
        assert_eq!(
            err.detail,
            format!("token alg \"{alg}\" does not match {configured}")
        );
    }
}

#[test]
fn tampered_tokens_fail_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &signing_key(alg), None);
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 1;
        let bad = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig));
        let err = verify(bad.as_bytes(), &key_set(alg), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Signature, "{alg}");

        let (header, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut forged_claims = claims();
        forged_claims["sub"] = json!("mallory");
        let forged_payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
        let forged = format!("{header}.{forged_payload}.{sig}");
        let err = verify(forged.as_bytes(), &key_set(alg), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Signature, "{alg}");
    }
}

#[test]
fn hmac_with_public_key_bytes_is_refused() {
    // The classic confusion: an HS256 token keyed with the server's public key file.
    let public_pem = key_file("rsa2048.pub");
    let token = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem).into(),
        None,
    );
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let err = verify(token.as_bytes(), &key_set(alg), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.reason, Reason::Algorithm, "{err}");
        assert_eq!(
            err.detail,
            format!("token alg \"HS256\" does not match {alg}")
        );
    }
    // The DER form of the key as the secret.
    let token = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem_der("rsa2048.pub")).into(),
        None,
    );
    let err = verify(
        token.as_bytes(),
        &key_set(Algorithm::RS256),
        &Policy::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.reason, Reason::Algorithm);
    // And a PEM key can never be configured as an HMAC key.
    assert!(KeySet::from_material(&public_pem, Some(Algorithm::HS256)).is_err());
}

#[test]
fn alg_none_is_refused() {
    let token = mint(Algorithm::RS256, &signing_key(Algorithm::RS256), None);
    let (_, rest) = token.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    for sig in ["", "c2ln"] {
        let none = format!("{header}.{payload}.{sig}");
        let err = verify(
            none.as_bytes(),
            &key_set(Algorithm::RS256),
            &Policy::default(),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.reason, Reason::Algorithm);
    }
}

fn rsa_jwk(private_pem: &str, kid: &str) -> Value {
    let pair = signature::RsaKeyPair::from_pkcs8(&pem_der(private_pem)).unwrap();
    let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    json!({
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&parts.n),
        "e": URL_SAFE_NO_PAD.encode(&parts.e),
    })
}

#[test]
fn jwks_rotation_selects_by_kid() {
    let jwks = json!({"keys": [
        rsa_jwk("rsa2048.pk8.pem", "2024"),
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        rsa_jwk("rsa2048-b.pk8.pem", "2025"),
    ]});
    let (set, warnings) =
        KeySet::from_material(jwks.to_string().as_bytes(), Some(Algorithm::RS256)).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        warnings,
        ["skipping key #2 (kid \"enc\"): use \"enc\" is not \"sig\""]
    );

    let a = signing_key(Algorithm::RS256);
    let b = EncodingKey::from_rsa_pem(&key_file("rsa2048-b.pk8.pem"))
        .unwrap()
        .into();
    let run = |token: &str| verify(token.as_bytes(), &set, &Policy::default(), NOW);
    run(&mint(Algorithm::RS256, &a, Some("2024"))).unwrap();
    run(&mint(Algorithm::RS256, &b, Some("2025"))).unwrap();
    // Right key, wrong kid: the named key is the only one tried.
    assert_eq!(
        run(&mint(Algorithm::RS256, &a, Some("2025")))
            .unwrap_err()
            .reason,
        Reason::Signature
    );
    let err = run(&mint(Algorithm::RS256, &a, Some("2023"))).unwrap_err();
    assert_eq!(
        (err.reason, err.detail.as_str()),
        (Reason::Key, "no key with kid \"2023\"")
    );
    let err = run(&mint(Algorithm::RS256, &a, None)).unwrap_err();
    assert_eq!(err.reason, Reason::Key);
    // RS384 tokens do not fit RS256 keys even with the right kid.
    assert_eq!(
        run(&mint(Algorithm::RS384, &a, Some("2024")))
            .unwrap_err()
            .reason,
        Reason::Algorithm
    );
}

#[test]
fn jwk_alg_pinning_end_to_end() {
    let mut ps = rsa_jwk("rsa2048.pk8.pem", "ps");
    ps["alg"] = json!("PS512");
    let mut rs = rsa_jwk("rsa2048.pk8.pem", "rs");
    rs["alg"] = json!("RS256");
    let jwks = json!({"keys": [ps, rs]});
    let (set, _) =
        KeySet::from_material(jwks.to_string().as_bytes(), Some(Algorithm::RS256)).unwrap();
    let key = signing_key(Algorithm::RS256);
    let run = |alg, kid| {
        verify(
            mint(alg, &key, Some(kid)).as_bytes(),
            &set,
            &Policy::default(),
            NOW,
        )
    };
    run(Algorithm::PS512, "ps").unwrap();
    run(Algorithm::RS256, "rs").unwrap();
    assert_eq!(
        run(Algorithm::RS256, "ps").unwrap_err().reason,
        Reason::Algorithm
    );
    assert_eq!(
        run(Algorithm::PS512, "rs").unwrap_err().reason,
        Reason::Algorithm
    );
}

#[test]
fn ec_and_okp_jwks_verify() {
    let ec = |file: &str, size: usize| {
        let der = pem_der(file);
        der[der.len() - 2 * size..].to_vec()
    };
    let p256 = ec("ec256.pub", 32);
    let p384 = ec("ec384.pub", 48);
    let p521 = ec("ec521.pub", 66);
    let ed = pem_der("ed25519.pub");
    let ed = &ed[ed.len() - 32..];
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "p256", "x": URL_SAFE_NO_PAD.encode(&p256[..32]), "y": URL_SAFE_NO_PAD.encode(&p256[32..])},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "alg": "ES384", "x": URL_SAFE_NO_PAD.encode(&p384[..48]), "y": URL_SAFE_NO_PAD.encode(&p384[48..])},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": URL_SAFE_NO_PAD.encode(&p521[..66]), "y": URL_SAFE_NO_PAD.encode(&p521[66..])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": URL_SAFE_NO_PAD.encode(ed)},
        {"kty": "oct", "kid": "hs", "alg": "HS512", "k": URL_SAFE_NO_PAD.encode(SECRET)},
    ]});
    // No algorithm configured: each key serves its own `alg`, or its type's.
    let (set, warnings) = KeySet::from_material(jwks.to_string().as_bytes(), None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    for (alg, kid) in [
        (Algorithm::ES256, "p256"),
        (Algorithm::ES384, "p384"),
        (Algorithm::ES512, "p521"),
        (Algorithm::EdDSA, "ed"),
        (Algorithm::HS512, "hs"),
    ] {
        let token = mint(alg, &signing_key(alg), Some(kid));
        verify(token.as_bytes(), &set, &strict_policy(), NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let wrong = mint(alg, &wrong_signing_key(alg), Some(kid));
        assert_eq!(
            verify(wrong.as_bytes(), &set, &Policy::default(), NOW)
                .unwrap_err()
                .reason,
            Reason::Signature
        );
    }
}

#[test]
fn pkcs1_pem_verifies() {
    let (set, _) =
        KeySet::from_material(&key_file("rsa2048.pkcs1.pub"), Some(Algorithm::RS512)).unwrap();
    let token = mint(Algorithm::RS512, &signing_key(Algorithm::RS512), None);
    verify(token.as_bytes(), &set, &Policy::default(), NOW).unwrap();
}

#[test]
fn expiry_of_minted_tokens() {
    let token = mint(Algorithm::ES256, &signing_key(Algorithm::ES256), None);
    let set = key_set(Algorithm::ES256);
    verify(token.as_bytes(), &set, &Policy::default(), NOW + 299).unwrap();
    let err = verify(token.as_bytes(), &set, &Policy::default(), NOW + 300).unwrap_err();
    assert_eq!(err.reason, Reason::Expired);
    assert_eq!(
        err.to_string(),
        format!("expired: exp {} is 0s in the past", NOW + 300)
    );
    let lenient = Policy {
        leeway: 30,
        ..Policy::default()
    };
    verify(token.as_bytes(), &set, &lenient, NOW + 329).unwrap();
    assert_eq!(
        verify(token.as_bytes(), &set, &lenient, NOW + 330)
            .unwrap_err()
            .reason,
        Reason::Expired
    );
}

#[test]
fn a_configured_algorithm_admits_keys_of_its_family_only() {
    let hs =
        json!({"kty": "oct", "kid": "hs", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(SECRET)});
    let jwks = json!({"keys": [rsa_jwk("rsa2048.pk8.pem", "rs"), hs.clone()]});
    let (set, warnings) =
        KeySet::from_material(jwks.to_string().as_bytes(), Some(Algorithm::RS256)).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(
        warnings,
        ["skipping key #2 (kid \"hs\"): secret key (alg HS256) cannot serve the configured RS256"]
    );
    // The HMAC key is not there to be chosen: an HS256 token naming it is refused.
    let token = mint(Algorithm::HS256, &signing_key(Algorithm::HS256), Some("hs"));
    let err = verify(token.as_bytes(), &set, &Policy::default(), NOW).unwrap_err();
    assert_eq!(err.reason, Reason::Key, "{err}");
    // A single JWK of another family is an error, not an empty set.
    let err = KeySet::from_material(hs.to_string().as_bytes(), Some(Algorithm::RS256)).unwrap_err();
    assert_eq!(
        err.0,
        "unusable JWK: secret key (alg HS256) cannot serve the configured RS256"
    );
    // Within the family, a key's own alg pins it.
    let mut ps = rsa_jwk("rsa2048.pk8.pem", "ps");
    ps["alg"] = json!("PS384");
    let (set, _) =
        KeySet::from_material(ps.to_string().as_bytes(), Some(Algorithm::RS256)).unwrap();
    assert_eq!(set.algorithms().collect::<Vec<_>>(), [Algorithm::PS384]);
    // A key's alg of another family than its type is refused whatever is configured.
    let mut liar = rsa_jwk("rsa2048.pk8.pem", "liar");
    liar["alg"] = json!("HS256");
    for configured in [None, Some(Algorithm::HS256), Some(Algorithm::RS256)] {
        assert!(KeySet::from_material(liar.to_string().as_bytes(), configured).is_err());
    }
}

#[test]
fn a_public_key_without_configured_algorithm_serves_its_type() {
    for (file, alg) in [
        ("rsa2048.pub", Algorithm::RS256),
        ("ec256.pub", Algorithm::ES256),
        ("ec384.pub", Algorithm::ES384),
        ("ec521.pub", Algorithm::ES512),
        ("ed25519.pub", Algorithm::EdDSA),
    ] {
        let (set, _) = KeySet::from_material(&key_file(file), None).unwrap();
        assert_eq!(set.algorithms().collect::<Vec<_>>(), [alg], "{file}");
        let token = mint(alg, &signing_key(alg), None);
        verify(token.as_bytes(), &set, &Policy::default(), NOW).unwrap();
    }
}
