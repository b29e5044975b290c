//! Keys over HTTP (docs/DIRECTIVES.md: auth_jwt_key_request, auth_jwt_key_cache; docs/KEYS.md):
//! a real nginx fetching a JWK set from a provider on 127.0.0.1, whose answers each test sets
//! and whose requests it counts.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// A JWK set of HS256 `oct` keys, one per kid, each secret being `secret_of(kid)`.
fn oct_set(kids: &[&str]) -> String {
    let keys: Vec<_> = kids
        .iter()
        .map(|kid| json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": b64(&secret_of(kid))}))
        .collect();
    jwks(&keys)
}

fn secret_of(kid: &str) -> Vec<u8> {
    format!("{kid}-{}", String::from_utf8_lossy(SECRET)).into_bytes()
}

/// A token of `sub` signed with the key `kid` of `oct_set`.
fn token(kid: &str, sub: &str) -> String {
    hs_kid(Algorithm::HS256, &secret_of(kid), Some(kid), &claims(sub))
}

fn get(n: &Nginx, token: &str) -> Response {
    n.get("/", &[("Authorization", &format!("Bearer {token}"))])
}

/// nginx whose `/` is checked with the keys of `provider`, fetched through `/jwks`; `extra`
/// goes in the server (`auth_jwt_key_cache`, say).
fn start(provider: &Provider, main: &str, extra: &str) -> Nginx {
    let http = server(&format!(
        "auth_jwt \"api\";\n\
         auth_jwt_key_request /jwks;\n\
         {extra}\n\
         location = /jwks {{ internal; proxy_pass http://127.0.0.1:{}/keys; }}\n\
         location / {{ add_header X-Jwt-Error $jwt_error always; add_header X-Sub $jwt_claim_sub; {PROXY} }}",
        provider.port
    ));
    Nginx::start_full(main, &http, &[])
}

#[test]
fn keys_come_from_the_provider_and_are_cached() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1h;");
    assert_eq!(
        p.fetches(),
        0,
        "nothing is fetched before a request needs keys"
    );
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert_eq!(r.header("x-sub"), Some("alice"));
    for sub in ["bob", "carol", "dave"] {
        let r = get(&n, &token("k1", sub));
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(
        p.fetches(),
        1,
        "one fetch serves every request while cached"
    );
    let r = get(&n, &token("k2", "eve"));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("x-jwt-error"), Some("key"));
}
