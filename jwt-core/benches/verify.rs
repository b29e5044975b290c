//! Per algorithm, in ns/op (`cargo bench -p jwt-core --bench verify`):
//! - `verify/ALG`: the raw signature check alone, straight on `aws-lc-rs` with the key parsed
//!   once as the module holds it, the floor no module can go under;
//! - `verify/RS256-prehashed`: the same check the way the module makes it, the signing input
//!   hashed first and the digest handed over; as fast as `verify/RS256` here, in a warm loop,
//!   and cheaper only in a worker whose caches are cold;
//! - `oneshot/LIB/RS256`: the same check through each library's one-call API, which parses the
//!   key (and, for RSA, derives its Montgomery constants) every time: what a JWT library built on
//!   `ring` (such as `jsonwebtoken`) pays per token;
//! - `validate/ALG`: what the module does with a token it has not seen, `jwt_core::verify`
//!   (split, decode, pinned algorithm, signature, claims);
//! - `cache/hit`: what it does with one it has.
//!
//! `scripts/perf/bench.sh` compares `verify/RS256` with what a unique token costs through nginx.

use std::hint::black_box;
use std::rc::Rc;

use aws_lc_rs::{digest, hmac, signature};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_core::{verify, Algorithm, KeySet, Policy, TokenCache};
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret-bench-secret-0123456789ab";

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap()
}

/// A token as the deployment sees them: sub, iat, exp.
fn token(alg: Algorithm, key: &EncodingKey) -> String {
    let jalg: jsonwebtoken::Algorithm = alg.name().parse().unwrap();
    let claims = json!({"sub": "alice@example.com", "iat": NOW - 60, "exp": NOW + 3600});
    encode(&Header::new(jalg), &claims, key).unwrap()
}

fn cases() -> Vec<(Algorithm, KeySet, String)> {
    let hs = |alg| {
        let keys = KeySet::from_secret(SECRET, alg).unwrap().0;
        (alg, keys, token(alg, &EncodingKey::from_secret(SECRET)))
    };
    let asym = |alg, public: &str, private: &str, enc: fn(&[u8]) -> EncodingKey| {
        let (keys, _) = KeySet::from_material(&read(public), Some(alg)).unwrap();
        (alg, keys, token(alg, &enc(&read(private))))
    };
    let rsa = |k: &[u8]| EncodingKey::from_rsa_pem(k).unwrap();
    let ec = |k: &[u8]| EncodingKey::from_ec_pem(k).unwrap();
    let ed = |k: &[u8]| EncodingKey::from_ed_pem(k).unwrap();
    vec![
        hs(Algorithm::HS256),
        hs(Algorithm::HS512),
        asym(Algorithm::RS256, "rsa2048.pub", "rsa2048.pk8.pem", rsa),
        asym(Algorithm::PS256, "rsa2048.pub", "rsa2048.pk8.pem", rsa),
        asym(Algorithm::ES256, "ec256.pub", "ec256.pk8.pem", ec),
        asym(Algorithm::ES384, "ec384.pub", "ec384.pk8.pem", ec),
        asym(Algorithm::EdDSA, "ed25519.pub", "ed25519.pk8.pem", ed),
    ]
}

/// The DER inside a PEM file.
fn pem_der(name: &str) -> Vec<u8> {
    let text = String::from_utf8(read(name)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// The public key in the form the module parses it, and its verification algorithm.
fn raw_key(alg: Algorithm) -> (&'static dyn signature::VerificationAlgorithm, Vec<u8>) {
    // A P-256 point and an Ed25519 key end their SubjectPublicKeyInfo.
    let tail = |name: &str, len: usize| {
        let der = pem_der(name);
        der[der.len() - len..].to_vec()
    };
    match alg {
        Algorithm::RS256 => (
            &signature::RSA_PKCS1_2048_8192_SHA256,
            pem_der("rsa2048.pkcs1.pub"),
        ),
        Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED, tail("ec256.pub", 65)),
        Algorithm::EdDSA => (&signature::ED25519, tail("ed25519.pub", 32)),
        _ => unreachable!("no raw case for {}", alg.name()),
    }
}

/// A token's signing input and decoded signature.
fn signed_parts(token: &str) -> (&[u8], Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap();
    (&token.as_bytes()[..dot], sig)
}

/// The signature check alone: what verifying costs before any JWT handling.
fn bench_raw(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (alg, _, token) in cases() {
        let (message, sig) = signed_parts(&token);
        if alg == Algorithm::HS256 {
            let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
            assert!(hmac::verify(&key, message, &sig).is_ok());
            group.bench_function(alg.name(), |b| {
                b.iter(|| hmac::verify(&key, black_box(message), &sig))
            });
        } else if matches!(alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA) {
            let (verify_alg, der) = raw_key(alg);
            let key = signature::ParsedPublicKey::new(verify_alg, der).unwrap();
            assert!(key.verify_sig(message, &sig).is_ok());
            group.bench_function(alg.name(), |b| {
                b.iter(|| key.verify_sig(black_box(message), &sig))
            });
            if alg == Algorithm::RS256 {
                let prehashed = |message| {
                    key.verify_digest_sig(&digest::digest(&digest::SHA256, message), &sig)
                };
                assert!(prehashed(message).is_ok());
                group.bench_function("RS256-prehashed", |b| {
                    b.iter(|| prehashed(black_box(message)))
                });
            }
        }
    }
    group.finish();
}

/// RS256 through the one-call APIs, which parse the key on every call.
fn bench_oneshot(c: &mut Criterion) {
    let (_, _, token) = cases()
        .into_iter()
        .find(|(alg, _, _)| *alg == Algorithm::RS256)
        .unwrap();
    let (message, sig) = signed_parts(&token);
    let der = pem_der("rsa2048.pkcs1.pub");
    let mut group = c.benchmark_group("oneshot");
    let aws = signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &der);
    assert!(aws.verify(message, &sig).is_ok());
    group.bench_function("aws-lc-rs/RS256", |b| {
        b.iter(|| aws.verify(black_box(message), &sig))
    });
    let ring =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &der);
    assert!(ring.verify(message, &sig).is_ok());
    group.bench_function("ring/RS256", |b| {
        b.iter(|| ring.verify(black_box(message), &sig))
    });
    group.finish();
}

fn bench_validate(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("validate");
    for (alg, keys, token) in cases() {
        assert!(verify(token.as_bytes(), &keys, &policy, NOW).is_ok());
        group.bench_function(alg.name(), |b| {
            b.iter(|| verify(black_box(token.as_bytes()), &keys, &policy, NOW))
        });
    }
    group.finish();
}

fn bench_cache(c: &mut Criterion) {
    let policy = Policy::default();
    let keys = KeySet::from_secret(SECRET, Algorithm::HS256).unwrap().0;
    let token = token(Algorithm::HS256, &EncodingKey::from_secret(SECRET));
    let jwt = Rc::new(verify(token.as_bytes(), &keys, &policy, NOW).unwrap());
    let mut cache = TokenCache::new(2 << 20);
    // A token is stored at its second verification.
    cache.insert(1, token.as_bytes(), Rc::clone(&jwt));
    cache.insert(1, token.as_bytes(), jwt);
    assert!(cache.get(1, token.as_bytes(), &policy, NOW).is_some());
    c.bench_function("cache/hit", |b| {
        b.iter(|| cache.get(1, black_box(token.as_bytes()), &policy, NOW))
    });
}

criterion_group!(
    benches,
    bench_raw,
    bench_oneshot,
    bench_validate,
    bench_cache
);
criterion_main!(benches);
