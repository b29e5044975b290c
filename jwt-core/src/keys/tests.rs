use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/../testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn pem_body(name: &str) -> Vec<u8> {
    let text = String::from_utf8(key_file(name)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn load(name: &str, alg: Algorithm) -> Result<KeySet, KeyError> {
    let (set, warnings) = KeySet::from_material(&key_file(name), Some(alg))?;
    assert!(warnings.is_empty());
    Ok(set)
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// (n, e) of a PEM RSA key, base64url, as a JWK would carry them.
fn rsa_jwk_parts(name: &str) -> (String, String) {
    // Walked by hand so that keys the loader refuses can be turned into JWKs too.
    let der = pem_body(name);
    let mut outer = Reader::new(&der);
    let mut spki = Reader::new(outer.read(der::TAG_SEQUENCE).unwrap());
    spki.read(der::TAG_SEQUENCE).unwrap();
    let pkcs1 = &spki.read(der::TAG_BIT_STRING).unwrap()[1..];
    let mut outer = Reader::new(pkcs1);
    let mut seq = Reader::new(outer.read(der::TAG_SEQUENCE).unwrap());
    let n = der::positive_integer(seq.read(der::TAG_INTEGER).unwrap()).unwrap();
    let e = der::positive_integer(seq.read(der::TAG_INTEGER).unwrap()).unwrap();
    (b64url(n), b64url(e))
}

fn rsa_jwk(name: &str, kid: &str) -> Value {
    let (n, e) = rsa_jwk_parts(name);
    json!({"kty": "RSA", "kid": kid, "n": n, "e": e})
}

/// (x, y) of a PEM EC key, base64url.
fn ec_jwk_parts(name: &str) -> (String, String) {
    let key = parse_spki(&pem_body(name)).unwrap();
    let coords = &key.bytes[1..];
    let (x, y) = coords.split_at(coords.len() / 2);
    (b64url(x), b64url(y))
}

fn from_json_value(value: &Value, alg: Algorithm) -> Result<(KeySet, Vec<String>), KeyError> {
    KeySet::from_material(value.to_string().as_bytes(), Some(alg))
}

fn err(result: Result<impl fmt::Debug, KeyError>) -> String {
    result.unwrap_err().0
}

#[test]
fn keyset_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<KeySet>();
}

#[test]
fn pem_keys_serve_their_algorithm() {
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        for file in ["rsa2048.pub", "rsa2048-b.pub", "rsa2048.pkcs1.pub"] {
            let set = load(file, alg).unwrap();
            assert_eq!(set.len(), 1);
            assert!(!set.is_empty());
            assert_eq!(set.algorithms().collect::<Vec<_>>(), [alg]);
            assert_eq!(set.keys[0].kid, None);
        }
    }
    load("ec256.pub", Algorithm::ES256).unwrap();
    load("ec384.pub", Algorithm::ES384).unwrap();
    load("ed25519.pub", Algorithm::EdDSA).unwrap();
}

#[test]
fn pkcs1_and_spki_give_the_same_rsa_key() {
    let spki = parse_spki(&pem_body("rsa2048.pub")).unwrap();
    let pkcs1 = parse_pkcs1(&pem_body("rsa2048.pkcs1.pub")).unwrap();
    assert_eq!(spki.bytes, pkcs1.bytes);
    assert_eq!(spki.bytes, pem_body("rsa2048.pkcs1.pub"));
}

#[test]
fn der_keys() {
    for (file, alg) in [
        ("rsa2048.pub", Algorithm::RS256),
        ("rsa2048.pkcs1.pub", Algorithm::PS256),
        ("ec256.pub", Algorithm::ES256),
        ("ec384.pub", Algorithm::ES384),
        ("ed25519.pub", Algorithm::EdDSA),
    ] {
        let (set, _) = KeySet::from_material(&pem_body(file), Some(alg)).unwrap();
        assert_eq!(set.len(), 1, "{file}");
    }
    assert_eq!(
        err(KeySet::from_material(
            &pem_body("rsa2048.pub"),
            Some(Algorithm::HS256)
        )),
        "RSA key cannot be used with HS256; give the secret, or configure the key's algorithm"
    );
}

#[test]
fn key_and_algorithm_must_agree() {
    let cases = [
        (
            "rsa2048.pub",
            Algorithm::ES256,
            "RSA key cannot be used with ES256",
        ),
        (
            "rsa2048.pub",
            Algorithm::EdDSA,
            "RSA key cannot be used with EdDSA",
        ),
        (
            "ec256.pub",
            Algorithm::RS256,
            "EC P-256 key cannot be used with RS256",
        ),
        (
            "ec256.pub",
            Algorithm::ES384,
            "EC P-256 key cannot be used with ES384",
        ),
        (
            "ec384.pub",
            Algorithm::ES256,
            "EC P-384 key cannot be used with ES256",
        ),
        (
            "ed25519.pub",
            Algorithm::ES256,
            "Ed25519 key cannot be used with ES256",
        ),
        (
            "ed25519.pub",
            Algorithm::PS256,
            "Ed25519 key cannot be used with PS256",
        ),
        (
            "rsa2048.pub",
            Algorithm::HS256,
            "RSA key cannot be used with HS256; give the secret, or configure the key's algorithm",
        ),
        (
            "ec256.pub",
            Algorithm::HS512,
            "EC P-256 key cannot be used with HS512; give the secret, or configure the key's \
             algorithm",
        ),
    ];
    for (file, alg, message) in cases {
        assert_eq!(err(load(file, alg)), message, "{file} {alg}");
    }
}

#[test]
fn short_rsa_keys_are_refused() {
    assert_eq!(
        err(load("rsa1024.pub", Algorithm::RS256)),
        "RSA key of 1024 bits is too short, 2048 bits at least"
    );
    let (n, e) = rsa_jwk_parts("rsa1024.pub");
    let jwk = json!({"kty": "RSA", "n": n, "e": e});
    assert_eq!(
        err(from_json_value(&jwk, Algorithm::RS256)),
        "unusable JWK: RSA key of 1024 bits is too short, 2048 bits at least"
    );
}

#[test]
fn rsa_key_checks() {
    let n = [0xc1u8; 256];
    assert!(rsa(&n, &[1, 0, 1]).is_ok());
    assert!(rsa(&n, &[3]).is_ok());
    assert!(rsa(&n, &[1]).is_err());
    assert!(rsa(&n, &[2]).is_err());
    assert!(rsa(&n, &[1, 0, 0, 0, 0, 1]).is_err());
    assert!(rsa(&[0xc0; 256], &[3]).is_err());
    assert_eq!(
        err(rsa(&[0xc1; 1025], &[3]).map(|_| ())),
        "RSA key of 8200 bits is too long, 8192 bits at most"
    );
    assert!(rsa(&[0xc1; 1024], &[3]).is_ok());
}

#[test]
fn pem_variants() {
    let pem = String::from_utf8(key_file("rsa2048.pub")).unwrap();
    let crlf = pem.replace('\n', "\r\n");
    let padded = format!("\u{feff}\n\n  {pem}\n\n");
    for text in [&crlf, &padded] {
        KeySet::from_material(text.as_bytes(), Some(Algorithm::RS256)).unwrap();
    }
    let cases: Vec<(String, &str)> = vec![
        (
            String::from_utf8(key_file("rsa2048.pk8.pem")).unwrap(),
            "PEM holds a private key; give the public key",
        ),
        (
            String::from_utf8(key_file("ec256.key")).unwrap(),
            "PEM holds a private key; give the public key",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            "PEM certificates are not supported; give the public key",
        ),
        (
            "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n".into(),
            "unsupported PEM type \"FOO\", expected PUBLIC KEY or RSA PUBLIC KEY",
        ),
        (
            pem.replace("-----END PUBLIC KEY-----", ""),
            "PEM key has no end line",
        ),
        (
            pem.replace("-----END PUBLIC KEY-----", "-----END RSA PUBLIC KEY-----"),
            "PEM key has no end line",
        ),
        (format!("{pem}junk\n"), "unexpected data after the PEM key"),
        (pem.replacen("MII", "M*I", 1), "invalid base64 in PEM key"),
        (
            pem.replacen('\n', "\nProc-Type: 4,ENCRYPTED\n", 1),
            "PEM headers are not supported",
        ),
        ("-----BEGIN PUBLIC KEY\n".into(), "invalid PEM begin line"),
        (
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n".into(),
            "invalid public key: truncated DER",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(
            err(KeySet::from_material(
                text.as_bytes(),
                Some(Algorithm::RS256)
            )),
            message,
            "{text}"
        );
    }
    let mut bytes = pem.into_bytes();
    bytes.push(0xff);
    assert_eq!(
        err(KeySet::from_material(&bytes, Some(Algorithm::RS256))),
        "PEM key is not text"
    );
}

#[test]
fn unrecognised_material() {
    for data in [
        &b""[..],
        b"   ",
        b"secret",
        b"\x01\x02",
        b"[1,2]",
        b"ssh-rsa AAAA",
    ] {
        assert_eq!(
            err(KeySet::from_material(data, Some(Algorithm::RS256))),
            "key file is neither PEM, DER nor JSON (JWK/JWKS)"
        );
    }
}

#[test]
fn malformed_der_never_panics() {
    for file in [
        "rsa2048.pub",
        "ec256.pub",
        "ec384.pub",
        "ed25519.pub",
        "rsa2048.pkcs1.pub",
    ] {
        let der = pem_body(file);
        for len in 0..der.len() {
            assert!(parse_der(&der[..len]).is_err(), "{file} cut at {len}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert!(parse_der(&longer).is_err());
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = KeySet::from_material(&bad, Some(Algorithm::RS256));
                let _ = parse_der(&bad);
            }
        }
    }
}

#[test]
fn spki_details() {
    // An SPKI with an unknown algorithm OID (1.2.3.4).
    let unknown = [
        0x30, 0x0b, 0x30, 0x05, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x03, 0x02, 0x00, 0x00,
    ];
    assert_eq!(
        err(parse_spki(&unknown).map(|_| ())),
        "unsupported public key type (OID 1.2.3.4)"
    );
    // EC key on secp256k1 (1.3.132.0.10).
    let mut k1 = vec![0x30, 0x56, 0x30, 0x10, 0x06, 0x07];
    k1.extend_from_slice(OID_EC_PUBLIC_KEY);
    k1.extend_from_slice(&[
        0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04,
    ]);
    k1.extend_from_slice(&[1u8; 64]);
    assert_eq!(
        err(parse_spki(&k1).map(|_| ())),
        "unsupported EC curve (OID 1.3.132.0.10), expected P-256, P-384 or P-521"
    );
    // A compressed P-256 point.
    let mut compressed = vec![0x30, 0x39, 0x30, 0x13, 0x06, 0x07];
    compressed.extend_from_slice(OID_EC_PUBLIC_KEY);
    compressed.extend_from_slice(&[0x06, 0x08]);
    compressed.extend_from_slice(OID_PRIME256V1);
    compressed.extend_from_slice(&[0x03, 0x22, 0x00, 0x02]);
    compressed.extend_from_slice(&[1u8; 32]);
    assert_eq!(
        err(parse_spki(&compressed).map(|_| ())),
        "compressed EC points are not supported"
    );
    // Unused bits in the BIT STRING.
    let mut ed = pem_body("ed25519.pub");
    let pos = ed.len() - 33;
    ed[pos] = 1;
    assert_eq!(
        err(parse_spki(&ed).map(|_| ())),
        "invalid public key: bad bit string"
    );
}

#[test]
fn secrets() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let (set, _) = KeySet::from_secret(b"k", alg).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.algorithms().next(), Some(alg));
    }
    assert_eq!(
        err(KeySet::from_secret(b"k", Algorithm::RS256)),
        "a secret key cannot be used with RS256; give the public key"
    );
    assert_eq!(
        err(KeySet::from_secret(b"k", Algorithm::EdDSA)),
        "a secret key cannot be used with EdDSA; give the public key"
    );
    assert_eq!(
        err(KeySet::from_secret(b"", Algorithm::HS256)),
        "empty secret key"
    );
}

#[test]
fn debug_shows_no_key_bytes() {
    let set = KeySet::from_secret(b"supersecretvalue", Algorithm::HS256).unwrap();
    let shown = format!("{set:?}");
    assert!(!shown.contains("supersecret"), "{shown}");
    assert!(shown.contains("HS256"));

    let (n, _) = rsa_jwk_parts("rsa2048.pub");
    let jwks = json!({"keys": [rsa_jwk("rsa2048.pub", "one")]});
    let (set, _) = from_json_value(&jwks, Algorithm::RS256).unwrap();
    let shown = format!("{set:?}");
    assert_eq!(shown, "[\"RS256 kid=\\\"one\\\"\"]");
    assert!(!shown.contains(&n[..16]));
    let hex: String = pem_body("rsa2048.pkcs1.pub")[10..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&hex));
}

#[test]
fn single_jwks() {
    let (set, warnings) = from_json_value(&rsa_jwk("rsa2048.pub", "a"), Algorithm::PS384).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(set.keys[0].kid.as_deref(), Some("a"));
    assert_eq!(set.keys[0].alg, Algorithm::PS384);

    let (x, y) = ec_jwk_parts("ec256.pub");
    let ec256 = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig"});
    let (set, _) = from_json_value(&ec256, Algorithm::ES256).unwrap();
    assert_eq!(set.keys[0].alg, Algorithm::ES256);
    assert_eq!(
        err(from_json_value(&ec256, Algorithm::ES384)),
        "unusable JWK: EC P-256 key cannot serve the configured ES384"
    );
    let wrong_crv = json!({"kty": "EC", "crv": "P-384", "x": x, "y": y});
    assert_eq!(
        err(from_json_value(&wrong_crv, Algorithm::ES384)),
        "unusable JWK: x and y of a EC P-384 key must be 48 bytes"
    );

    let (x, y) = ec_jwk_parts("ec384.pub");
    let ec384 = json!({"kty": "EC", "crv": "P-384", "x": x, "y": y, "key_ops": ["verify"]});
    from_json_value(&ec384, Algorithm::ES384).unwrap();

    let ed = parse_spki(&pem_body("ed25519.pub")).unwrap().bytes;
    let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&ed)});
    from_json_value(&okp, Algorithm::EdDSA).unwrap();
    let x448 = json!({"kty": "OKP", "crv": "X25519", "x": b64url(&ed)});
    assert_eq!(
        err(from_json_value(&x448, Algorithm::EdDSA)),
        "unusable JWK: unsupported crv \"X25519\""
    );

    let oct = json!({"kty": "oct", "k": b64url(b"secret"), "kid": "h"});
    let (set, _) = from_json_value(&oct, Algorithm::HS384).unwrap();
    assert_eq!(set.keys[0].alg, Algorithm::HS384);
    assert_eq!(
        err(from_json_value(&oct, Algorithm::RS256)),
        "unusable JWK: secret key cannot serve the configured RS256"
    );
    // Padded base64url is tolerated in key files.
    let padded = json!({"kty": "oct", "k": "c2VjcmV0"});
    from_json_value(&padded, Algorithm::HS256).unwrap();
    let empty = json!({"kty": "oct", "k": ""});
    assert_eq!(
        err(from_json_value(&empty, Algorithm::HS256)),
        "unusable JWK: k is empty"
    );
}

#[test]
fn points_off_the_curve_are_refused_at_load() {
    for (file, crv, alg) in [
        ("ec256.pub", "P-256", Algorithm::ES256),
        ("ec384.pub", "P-384", Algorithm::ES384),
    ] {
        let (x, y) = ec_jwk_parts(file);
        let mut y = URL_SAFE_NO_PAD.decode(y).unwrap();
        if let Some(last) = y.last_mut() {
            *last ^= 1;
        }
        let off = json!({"kty": "EC", "crv": crv, "x": x, "y": b64url(&y)});
        assert_eq!(
            err(from_json_value(&off, alg)),
            format!("unusable JWK: invalid EC {crv} key: not a point on the curve")
        );
    }
}

#[test]
fn jwk_alg_pinning() {
    let mut jwk = rsa_jwk("rsa2048.pub", "p");
    jwk["alg"] = json!("PS256");
    // The JWK's own alg wins over the configured one.
    let (set, _) = from_json_value(&jwk, Algorithm::RS256).unwrap();
    assert_eq!(set.keys[0].alg, Algorithm::PS256);

    let cases = [
        ("ES256", "unusable JWK: RSA key cannot be used with ES256"),
        ("HS256", "unusable JWK: RSA key cannot be used with HS256"),
        ("none", "unusable JWK: alg \"none\" is not allowed"),
        ("RSA-OAEP", "unusable JWK: unsupported alg \"RSA-OAEP\""),
        ("rs256", "unusable JWK: unsupported alg \"rs256\""),
    ];
    for (alg, message) in cases {
        jwk["alg"] = json!(alg);
        assert_eq!(err(from_json_value(&jwk, Algorithm::RS256)), message);
    }
    jwk["alg"] = json!(256);
    assert_eq!(
        err(from_json_value(&jwk, Algorithm::RS256)),
        "unusable JWK: alg is not a string"
    );
}

#[test]
fn unusable_single_jwk() {
    let base = rsa_jwk("rsa2048.pub", "k");
    let with = |name: &str, value: Value| {
        let mut jwk = base.clone();
        jwk[name] = value;
        jwk
    };
    let without = |name: &str| {
        let mut jwk = base.clone();
        jwk.as_object_mut().unwrap().remove(name);
        jwk
    };
    let cases = [
        (with("use", json!("enc")), "use \"enc\" is not \"sig\""),
        (with("use", json!(1)), "use is not a string"),
        (
            with("key_ops", json!(["encrypt"])),
            "key_ops does not allow \"verify\"",
        ),
        (
            with("key_ops", json!([])),
            "key_ops does not allow \"verify\"",
        ),
        (with("key_ops", json!("verify")), "key_ops is not an array"),
        (with("kid", json!(5)), "kid is not a string"),
        (with("kty", json!("foo")), "unsupported kty \"foo\""),
        (with("kty", json!(1)), "kty is not a string"),
        (without("kty"), "kty is missing"),
        (without("n"), "n is missing"),
        (with("e", json!(65537)), "e is not a string"),
        (with("n", json!("a+b/")), "n is not valid base64url"),
    ];
    for (jwk, message) in cases {
        assert_eq!(
            err(from_json_value(&jwk, Algorithm::RS256)),
            format!("unusable JWK: {message}"),
            "{jwk}"
        );
    }
    from_json_value(
        &with("key_ops", json!(["sign", "verify"])),
        Algorithm::RS256,
    )
    .unwrap();
}

#[test]
fn jwks_rotation() {
    let jwks = json!({"keys": [rsa_jwk("rsa2048.pub", "new"), rsa_jwk("rsa2048-b.pub", "old")]});
    let (set, warnings) = from_json_value(&jwks, Algorithm::RS256).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(set.len(), 2);
    assert_eq!(set.select(Some("old")).unwrap().kid.as_deref(), Some("old"));
    assert_eq!(set.select(Some("new")).unwrap().kid.as_deref(), Some("new"));
    assert_eq!(
        set.select(Some("gone")).err().unwrap(),
        "no key with kid \"gone\""
    );
    assert_eq!(
        set.select(None).err().unwrap(),
        "token has no kid and the set holds 2 keys"
    );
}

#[test]
fn jwks_skips_unusable_entries() {
    let jwks = json!({"keys": [
        rsa_jwk("rsa2048.pub", "good"),
        {"kty": "foo", "kid": "old"},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
        "not an object",
        {"kty": "oct", "k": "c2VjcmV0"},
        rsa_jwk("rsa2048-b.pub", "good2"),
    ]});
    let (set, warnings) = from_json_value(&jwks, Algorithm::RS256).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        warnings,
        [
            "skipping key #2 (kid \"old\"): unsupported kty \"foo\"",
            "skipping key #3 (kid \"enc\"): use \"enc\" is not \"sig\"",
            "skipping key #4: not a JSON object",
            "skipping key #5: secret key cannot serve the configured RS256",
        ]
    );
}

#[test]
fn jwks_errors() {
    let one = rsa_jwk("rsa2048.pub", "same");
    let two = rsa_jwk("rsa2048-b.pub", "same");
    assert_eq!(
        err(from_json_value(
            &json!({"keys": [one, two]}),
            Algorithm::RS256
        )),
        "duplicate kid \"same\" in the JWK set"
    );
    assert_eq!(
        err(from_json_value(&json!({"keys": []}), Algorithm::RS256)),
        "no usable key in the JWK set"
    );
    assert_eq!(
        err(from_json_value(
            &json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            Algorithm::RS256
        )),
        "no usable key in the JWK set"
    );
    assert_eq!(
        err(from_json_value(&json!({"keys": {}}), Algorithm::RS256)),
        "\"keys\" of the JWK set is not an array"
    );
    assert_eq!(
        err(KeySet::from_material(
            b"{\"keys\": [",
            Some(Algorithm::RS256)
        )),
        "invalid JSON key: truncated JSON"
    );
    let dup = br#"{"kty":"oct","k":"c2VjcmV0","k":"b3RoZXI"}"#;
    assert!(err(KeySet::from_material(dup, Some(Algorithm::HS256)))
        .starts_with("invalid JSON key: duplicate key \"k\""));
}

#[test]
fn jwks_mixing_algorithms_and_kidless_keys() {
    let mut rsa = rsa_jwk("rsa2048.pub", "r");
    rsa["alg"] = json!("RS512");
    let jwks = json!({"keys": [
        rsa,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"},
        {"kty": "oct", "k": "c2VjcmV0"},
    ]});
    // No algorithm configured: every key serves its own.
    let (set, warnings) = KeySet::from_material(jwks.to_string().as_bytes(), None).unwrap();
    assert_eq!(
        set.algorithms().collect::<Vec<_>>(),
        [Algorithm::RS512, Algorithm::HS256, Algorithm::HS256]
    );
    let short = "the HS256 secret is 6 bytes long; RFC 7518 asks for at least 32 (the size of \
                 its hash)";
    assert_eq!(
        warnings,
        [
            format!("key #2 (kid \"h\"): {short}"),
            format!("key #3: {short}"),
            "1 key(s) of the JWK set have no kid and can never be selected".to_owned()
        ]
    );
    // HS256 configured: the RSA key is of another family, skipped.
    let (set, warnings) = from_json_value(&jwks, Algorithm::HS256).unwrap();
    assert_eq!(
        set.algorithms().collect::<Vec<_>>(),
        [Algorithm::HS256, Algorithm::HS256]
    );
    assert_eq!(
        warnings[0],
        "skipping key #1 (kid \"r\"): RSA key (alg RS512) cannot serve the configured HS256"
    );

    // One kid-less key in a set is selected for any token.
    let (set, _) = from_json_value(
        &json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        Algorithm::HS256,
    )
    .unwrap();
    assert!(set.select(None).is_ok());
    assert!(set.select(Some("x")).is_ok());
    // A lone key with a kid serves a token without kid (unambiguous), but a token naming
    // another kid is refused rather than tried against it.
    let (set, _) = from_json_value(
        &json!({"kty": "oct", "k": "c2VjcmV0", "kid": "a"}),
        Algorithm::HS256,
    )
    .unwrap();
    assert!(set.select(Some("a")).is_ok());
    assert!(set.select(None).is_ok());
    assert_eq!(
        set.select(Some("b")).err().unwrap(),
        "no key with kid \"b\""
    );
}

#[test]
fn a_public_key_is_never_taken_for_a_secret() {
    let pem = key_file("rsa2048.pub");
    let der = pem_body("rsa2048.pub");
    let pkcs1 = pem_body("rsa2048.pkcs1.pub");
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = STANDARD.encode(&der);
    let (n, e) = rsa_jwk_parts("rsa2048.pub");
    let jwk = json!({"kty": "RSA", "n": n, "e": e}).to_string();
    let jwks = json!({"keys": [{"kty": "RSA", "n": n, "e": e}]}).to_string();
    let pem_b64 = STANDARD.encode(&pem);
    let pem_hex: String = pem.iter().map(|b| format!("{b:02x}")).collect();
    let cases: [(&[u8], &str); 14] = [
        (&pem, "a PEM key"),
        (&der, "a DER public key"),
        (&pkcs1, "a DER public key"),
        (&pem_body("ec521.pub"), "a DER public key"),
        // Keys this crate cannot use are public keys all the same, and a certificate (a
        // JWK's x5c) holds one.
        (&pem_body("rsa1024.pub"), "a DER public key"),
        (&pem_body("secp256k1.pub"), "a DER public key"),
        (&pem_body("x25519.pub"), "a DER public key"),
        (&pem_body("rsa2048.crt.pem"), "a DER public key"),
        (hex.as_bytes(), "the text of a public key"),
        (b64.as_bytes(), "the text of a public key"),
        (pem_b64.as_bytes(), "the text of a public key"),
        (pem_hex.as_bytes(), "the text of a public key"),
        (jwk.as_bytes(), "a JWK"),
        (jwks.as_bytes(), "a JWK"),
    ];
    for (secret, what) in cases {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let message = err(KeySet::from_secret(secret, alg));
            assert!(
                message.starts_with(&format!("the secret is {what}:")),
                "{message}"
            );
        }
    }
    // Other wrappings of the same: a PEM after a label line, a certificate chain, padded DER,
    // an SSH key line, a JWK in an array or with a duplicate member.
    let mut labelled = b"my signing key\n".to_vec();
    labelled.extend_from_slice(&pem);
    let cert = pem_body("rsa2048.crt.pem");
    let chain = [&cert[..], &cert[..]].concat();
    let padded = [&der[..], &[0][..]].concat();
    let ssh = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq6 test@host".to_vec();
    let array = format!("[{jwk}]");
    let dup = r#"{"kty":"RSA","kty":"RSA","n":"x","e":"AQAB"}"#;
    for secret in [
        &labelled[..],
        &chain,
        &padded,
        &ssh,
        array.as_bytes(),
        dup.as_bytes(),
    ] {
        let message = err(KeySet::from_secret(secret, Algorithm::HS256));
        assert!(message.starts_with("the secret is"), "{message}");
    }
    // An oct JWK whose k is a public key is refused as well.
    let oct = json!({"kty": "oct", "k": b64url(&der)});
    assert_eq!(
        err(from_json_value(&oct, Algorithm::HS256)),
        "unusable JWK: k is a DER public key, not a secret"
    );
    // Secrets that merely look like text are fine.
    for secret in [&b"-----not a key-----"[..], b"{\"sub\":1}", b"30820122"] {
        assert!(KeySet::from_secret(secret, Algorithm::HS256).is_ok());
    }
}

#[test]
fn short_secrets_are_warned_about() {
    for (alg, size) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let (_, warnings) = KeySet::from_secret(&vec![7; size], alg).unwrap();
        assert!(warnings.is_empty());
        let (_, warnings) = KeySet::from_secret(&vec![7; size - 1], alg).unwrap();
        assert_eq!(
            warnings,
            [format!(
                "the {alg} secret is {} bytes long; RFC 7518 asks for at least {size} (the size \
                 of its hash)",
                size - 1
            )]
        );
    }
}

#[test]
fn p521_keys() {
    let set = load("ec521.pub", Algorithm::ES512).unwrap();
    assert_eq!(set.algorithms().collect::<Vec<_>>(), [Algorithm::ES512]);
    assert_eq!(
        err(load("ec521.pub", Algorithm::ES384)),
        "EC P-521 key cannot be used with ES384"
    );
    let (x, y) = ec_jwk_parts("ec521.pub");
    let jwk = json!({"kty": "EC", "crv": "P-521", "kid": "p", "x": x, "y": y});
    let (set, _) = from_json_value(&jwk, Algorithm::ES512).unwrap();
    assert_eq!(set.algorithms().collect::<Vec<_>>(), [Algorithm::ES512]);
    let short = json!({"kty": "EC", "crv": "P-521", "x": &x[4..], "y": y});
    assert_eq!(
        err(from_json_value(&short, Algorithm::ES512)),
        "unusable JWK: x and y of a EC P-521 key must be 66 bytes"
    );
}

#[test]
fn a_large_set_finds_each_kid() {
    let keys: Vec<Value> = (0..2000)
        .map(|i| json!({"kty": "oct", "kid": format!("k{i}"), "k": b64url(&[i as u8; 32])}))
        .collect();
    let (set, warnings) = from_json_value(&json!({ "keys": keys }), Algorithm::HS256).unwrap();
    assert!(warnings.is_empty());
    for i in [0, 1, 999, 1999] {
        let key = set.select(Some(&format!("k{i}"))).unwrap();
        assert_eq!(key.kid.as_deref(), Some(format!("k{i}").as_str()));
    }
    assert!(set.select(Some("k2000")).is_err());
    assert!(set.select(None).is_err());
}

#[test]
fn fingerprints_tell_key_sets_apart() {
    let print = |secret: &[u8], alg| KeySet::from_secret(secret, alg).unwrap().0.fingerprint();
    assert_eq!(
        print(b"one", Algorithm::HS256),
        print(b"one", Algorithm::HS256)
    );
    assert_ne!(
        print(b"one", Algorithm::HS256),
        print(b"two", Algorithm::HS256)
    );
    assert_ne!(
        print(b"one", Algorithm::HS256),
        print(b"one", Algorithm::HS384)
    );
    let rs = load("rsa2048.pub", Algorithm::RS256).unwrap().fingerprint();
    assert_eq!(
        rs,
        load("rsa2048.pkcs1.pub", Algorithm::RS256)
            .unwrap()
            .fingerprint()
    );
    assert_ne!(
        rs,
        load("rsa2048.pub", Algorithm::PS256).unwrap().fingerprint()
    );
    assert_ne!(
        rs,
        load("rsa2048-b.pub", Algorithm::RS256)
            .unwrap()
            .fingerprint()
    );
    let with_kid = |kid: &str| {
        let (n, e) = rsa_jwk_parts("rsa2048.pub");
        from_json_value(
            &json!({"kty": "RSA", "kid": kid, "n": n, "e": e}),
            Algorithm::RS256,
        )
        .unwrap()
        .0
        .fingerprint()
    };
    assert_ne!(with_kid("a"), with_kid("b"));
    assert_ne!(with_kid("a"), rs);
}

#[test]
fn a_jwk_set_holds_ten_thousand_keys_at_most() {
    let set = |n: usize| {
        let keys: Vec<Value> = (0..n)
            .map(|i| json!({"kty": "oct", "kid": format!("k{i}"), "k": b64url(&[7; 32])}))
            .collect();
        from_json_value(&json!({ "keys": keys }), Algorithm::HS256)
    };
    assert_eq!(set(MAX_JWKS_KEYS).unwrap().0.len(), MAX_JWKS_KEYS);
    assert_eq!(
        err(set(MAX_JWKS_KEYS + 1)),
        "the JWK set holds 10001 keys, more than 10000"
    );
}

#[test]
fn extra_keys_never_replace_a_kid_of_the_base() {
    let oct = |kid: &str, secret: &[u8]| json!({"kty": "oct", "kid": kid, "k": b64url(secret)});
    let set = |keys: Vec<Value>| {
        from_json_value(&json!({ "keys": keys }), Algorithm::HS256)
            .unwrap()
            .0
    };
    let base = set(vec![oct("a", b"secret of a, the base's")]);
    let extra = set(vec![
        oct("a", b"another key named a"),
        oct("b", b"secret of b, fetched"),
    ]);
    let (both, skipped) = base.with_extra(&extra).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(
        skipped,
        ["skipping the key with kid \"a\": another key has that kid"]
    );
    assert!(both.select(Some("b")).is_ok());
    let a = both.select(Some("a")).unwrap();
    let base_a = base.select(Some("a")).unwrap();
    assert_eq!(a.digest, base_a.digest, "the base's key a stays");
    // The same key under the same kid is no conflict, and is kept once.
    let (same, skipped) = base.with_extra(&base).unwrap();
    assert_eq!((same.len(), skipped.len()), (1, 0));
}
