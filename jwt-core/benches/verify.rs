//! Cost of one verification per algorithm, and of a cache hit, in ns/op:
//! `cargo bench -p jwt-core --bench verify`.
//!
//! `scripts/bench.sh` compares the RS256 figure with what a unique token costs through nginx.

use std::hint::black_box;
use std::rc::Rc;

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
        let keys = KeySet::from_secret(SECRET, alg).unwrap();
        (alg, keys, token(alg, &EncodingKey::from_secret(SECRET)))
    };
    let asym = |alg, public: &str, private: &str, enc: fn(&[u8]) -> EncodingKey| {
        let (keys, _) = KeySet::from_material(&read(public), alg).unwrap();
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

fn bench_verify(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("verify");
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
    let keys = KeySet::from_secret(SECRET, Algorithm::HS256).unwrap();
    let token = token(Algorithm::HS256, &EncodingKey::from_secret(SECRET));
    let jwt = Rc::new(verify(token.as_bytes(), &keys, &policy, NOW).unwrap());
    let mut cache = TokenCache::new(2 << 20);
    cache.insert(1, token.as_bytes(), jwt);
    c.bench_function("cache/hit", |b| {
        b.iter(|| cache.get(1, black_box(token.as_bytes()), &policy, NOW))
    });
}

criterion_group!(benches, bench_verify, bench_cache);
criterion_main!(benches);
