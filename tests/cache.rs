//! The per-worker cache of verified tokens (docs/DIRECTIVES.md: auth_jwt_cache; docs/SECURITY.md:
//! The verified-token cache), observed through `$jwt_cache_status` on a real nginx: what is a
//! hit, what is never cached, what an entry is scoped to, and that it never outlives `exp` or a
//! reload with other keys.

mod common;

use common::*;
use std::fs;
use std::thread;
use std::time::Duration;

const STATUS: &str = "add_header X-Cache $jwt_cache_status always;\n\
                      add_header X-Jwt-Error $jwt_error always;";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// (status, X-Cache, X-Jwt-Error) for a GET with the token.
fn ask(n: &Nginx, path: &str, token: &str) -> (u16, String, String) {
    let r = n.get(path, &[("Authorization", &bearer(token))]);
    let cache = r.header("X-Cache").unwrap_or("").to_string();
    let error = r.header("X-Jwt-Error").unwrap_or("").to_string();
    (r.status, cache, error)
}

fn hs_server(extra: &str) -> String {
    server(&format!(
        "auth_jwt_key \"{}\";\n{STATUS}\n{extra}\nlocation / {{ {PROXY} }}",
        secret_hex()
    ))
}

#[test]
fn a_repeated_token_is_a_hit() {
    let n = Nginx::start(&hs_server(""));
    let t = hs256(SECRET, claims("alice"));
    // The first verification only marks the token seen; the second stores it.
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "HIT".into(), String::new()));
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.header("X-Cache"), Some("HIT"));
    // A hit carries the claims as a full verification does.
    let n2 = Nginx::start(&server(&format!(
        "auth_jwt_key \"{}\";\n{STATUS}\nauth_jwt_extract_request_claims sub;\n\
         location / {{ proxy_set_header X-User $jwt_sub; {PROXY} }}",
        secret_hex()
    )));
    for expected in ["MISS", "MISS", "HIT"] {
        let r = n2.get("/", &[("Authorization", &bearer(&t))]);
        assert_eq!(r.header("X-Cache"), Some(expected));
        assert_eq!(r.upstream_one("x-user").as_deref(), Some("alice"));
        assert_eq!(r.upstream_one("jwt-sub").as_deref(), Some("alice"));
    }
}

#[test]
fn claims_are_read_from_an_entry_made_where_none_were() {
    // /plain verifies and caches the token without reading a claim; /vars, under the same
    // keys and policy, is then a hit and is the first to read claims and header fields.
    let n = Nginx::start(&server(&format!(
        "auth_jwt_key \"{}\";\n\
         location /plain {{ {STATUS} {PROXY} }}\n\
         location /vars {{ {STATUS} add_header X-Sub $jwt_claim_sub always;\n\
         add_header X-Alg $jwt_header_alg always; {PROXY} }}",
        secret_hex()
    )));
    let t = hs256(SECRET, claims("alice"));
    assert_eq!(ask(&n, "/plain", &t).1, "MISS");
    assert_eq!(ask(&n, "/plain", &t).1, "MISS");
    for _ in 0..2 {
        let r = n.get("/vars", &[("Authorization", &bearer(&t))]);
        assert_eq!(r.header("X-Cache"), Some("HIT"));
        assert_eq!(r.header("X-Sub"), Some("alice"));
        assert_eq!(r.header("X-Alg"), Some("HS256"));
    }
}

#[test]
fn failures_are_never_cached() {
    let n = Nginx::start(&hs_server(""));
    let forged = hs256(b"not the secret", claims("mallory"));
    for _ in 0..3 {
        assert_eq!(
            ask(&n, "/", &forged),
            (401, "MISS".into(), "signature".into())
        );
    }
    let missing = n.get("/", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("X-Cache"),
        None,
        "no token, nothing verified"
    );
}

#[test]
fn entries_are_scoped_to_the_keys_and_policy_that_verified_them() {
    let other = b"another secret for another location";
    let body = server(&format!(
        "{STATUS}\n\
         location /a/ {{ auth_jwt_key \"{a}\"; {PROXY} }}\n\
         location /b/ {{ auth_jwt_key \"{b}\"; {PROXY} }}\n\
         location /c/ {{ auth_jwt_key \"{a}\"; auth_jwt_issuer https://issuer.example; {PROXY} }}",
        a = secret_hex(),
        b = hex(other)
    ));
    let n = Nginx::start(&body);
    let t = hs256(SECRET, claims("alice"));
    assert_eq!(ask(&n, "/a/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/a/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/a/", &t), (200, "HIT".into(), String::new()));
    // The same bytes under another key: verified again, and refused.
    assert_eq!(ask(&n, "/b/", &t), (401, "MISS".into(), "signature".into()));
    // Same key, stricter policy: refused too, never a hit from /a/.
    assert_eq!(ask(&n, "/c/", &t), (401, "MISS".into(), "issuer".into()));
    assert_eq!(ask(&n, "/a/", &t), (200, "HIT".into(), String::new()));
}

#[test]
fn a_hit_rechecks_exp_and_the_entry_dies_at_exp() {
    let n = Nginx::start(&hs_server(""));
    let exp = now() + 2;
    let t = hs256(SECRET, json!({"sub": "short", "exp": exp}));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "HIT".into(), String::new()));
    while now() < exp + 1 {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ask(&n, "/", &t), (401, "HIT".into(), "expired".into()));
    // The expired entry was dropped: the next request verifies in full (and still refuses).
    assert_eq!(ask(&n, "/", &t), (401, "MISS".into(), "expired".into()));
}

#[test]
fn a_reload_with_another_key_never_accepts_through_a_stale_entry() {
    let jwk = |secret: &[u8]| json!({"kty": "oct", "k": b64(secret)}).to_string();
    let body = server(&format!(
        "auth_jwt_use_keyfile on;\nauth_jwt_keyfile_path conf/key.jwk;\n{STATUS}\n\
         location / {{ {PROXY} }}"
    ));
    let n = Nginx::start_full("", &body, &[("conf/key.jwk", &jwk(SECRET))]);
    let t = hs256(SECRET, claims("alice"));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "HIT".into(), String::new()));

    let rotated = b"the rotated secret, 32 bytes at least";
    fs::write(n.prefix.join("conf/key.jwk"), jwk(rotated)).unwrap();
    n.reload();
    assert_eq!(ask(&n, "/", &t), (401, "MISS".into(), "signature".into()));
    let fresh = hs256(rotated, claims("alice"));
    assert_eq!(ask(&n, "/", &fresh), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &fresh), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &fresh), (200, "HIT".into(), String::new()));
}

#[test]
fn cache_off_verifies_every_time() {
    let n = Nginx::start(&format!("auth_jwt_cache off;\n{}", hs_server("")));
    let t = hs256(SECRET, claims("alice"));
    for _ in 0..3 {
        assert_eq!(ask(&n, "/", &t), (200, "BYPASS".into(), String::new()));
    }
}

#[test]
fn the_cache_is_bounded() {
    // 8 KiB holds a handful of these tokens, not 40.
    let n = Nginx::start(&format!("auth_jwt_cache 8k;\n{}", hs_server("")));
    let first = hs256(SECRET, claims("user-first"));
    assert_eq!(ask(&n, "/", &first).1, "MISS");
    assert_eq!(ask(&n, "/", &first).1, "MISS");
    assert_eq!(ask(&n, "/", &first).1, "HIT");
    // Tokens sent once are not stored, so they push nothing out.
    for i in 0..40 {
        let t = hs256(SECRET, claims(&format!("once-{i:03}")));
        assert_eq!(ask(&n, "/", &t).1, "MISS");
    }
    assert_eq!(ask(&n, "/", &first).1, "HIT");
    let mut hits = 0;
    for i in 0..40 {
        let t = hs256(SECRET, claims(&format!("user-{i:03}")));
        assert_eq!(ask(&n, "/", &t).1, "MISS");
        assert_eq!(ask(&n, "/", &t).1, "MISS");
        if ask(&n, "/", &t).1 == "HIT" {
            hits += 1;
        }
    }
    assert_eq!(hits, 40, "a token verified twice is kept");
    assert_eq!(ask(&n, "/", &first), (200, "MISS".into(), String::new()));
}

#[test]
fn every_algorithm_goes_through_the_cache() {
    let body = server(&format!(
        "{STATUS}\nauth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\n\
         auth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pub;\nlocation / {{ {PROXY} }}"
    ));
    let n = Nginx::start(&body);
    let t = signed(Algorithm::RS256, "rsa2048", &claims("rs"));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "HIT".into(), String::new()));
    // An HS256 token made with the public key's bytes is refused, cached sibling or not.
    let confused = hs(
        Algorithm::HS256,
        key("rsa2048.pub").as_bytes(),
        &claims("rs"),
    );
    assert_eq!(
        ask(&n, "/", &confused),
        (401, "MISS".into(), "algorithm".into())
    );
}

#[test]
fn cache_directive_is_checked_at_load() {
    let (ok, out) = nginx_t(&format!("auth_jwt_cache lots;\n{}", hs_server("")));
    assert!(
        !ok && out.contains("[emerg]") && out.contains("auth_jwt_cache"),
        "{out}"
    );
    let (ok, out) = nginx_t(&server("auth_jwt_cache 1m;"));
    assert!(!ok && out.contains("is not allowed here"), "{out}");
    let (ok, out) = nginx_t(&format!(
        "auth_jwt_cache 1m;\nauth_jwt_cache 2m;\n{}",
        hs_server("")
    ));
    assert!(!ok && out.contains("is duplicate"), "{out}");
    expect_valid(&format!("auth_jwt_cache 16m;\n{}", hs_server("")));
}

#[test]
fn a_verdict_survives_an_internal_redirect() {
    // `index` turns GET / into an internal redirect to /index.html, which clears module
    // contexts; the verdict is found again instead of the token being judged twice.
    let body = server(&format!(
        "auth_jwt_key \"{}\";\n{STATUS}\nroot {{{{PREFIX}}}}/html;\nlocation / {{ index index.html; }}",
        secret_hex()
    ));
    let n = Nginx::start_full("", &body, &[("html/index.html", "home\n")]);
    let t = hs256(SECRET, claims("alice"));
    // Judged twice, the first request would have stored the token, and the second hit it.
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "MISS".into(), String::new()));
    assert_eq!(ask(&n, "/", &t), (200, "HIT".into(), String::new()));
}

#[test]
fn a_rewritten_query_token_is_judged_again() {
    // The rewrite phase reads $jwt_sub for token=A, then `rewrite ... last` swaps the argument
    // for another token (the final `?` drops the old arguments, which would otherwise make two
    // tokens): the access check must judge the new one, not reuse A's verdict.
    let body = server(&format!(
        "auth_jwt_key \"{}\";\nauth_jwt_location QUERY=token;\n{STATUS}\n\
         location /first {{ set $seen $jwt_sub; rewrite ^ /second?token=$arg_next? last; }}\n\
         location /second {{ add_header X-Sub $jwt_sub always; {STATUS} {PROXY} }}",
        secret_hex()
    ));
    let n = Nginx::start(&body);
    let good = hs256(SECRET, claims("alice"));
    let forged = hs256(b"not the secret", claims("mallory"));
    let r = n.get(&format!("/first?token={good}&next={forged}"), &[]);
    assert_eq!(
        r.status, 401,
        "judged the first token instead of the second"
    );
    assert_eq!(r.header("X-Jwt-Error"), Some("signature"));
    let r = n.get(&format!("/first?token={forged}&next={good}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Sub"), Some("alice"));
}

#[test]
fn identical_settings_share_entries_across_locations_and_servers() {
    let site = |name: &str| {
        format!(
            "server {{\nlisten 127.0.0.1:{{{{PORT}}}};\nserver_name {name};\n\
             auth_jwt_key \"{}\";\n{STATUS}\nlocation / {{ {PROXY} }}\nlocation /x/ {{ {PROXY} }}\n}}\n",
            secret_hex()
        )
    };
    let n = Nginx::start(&format!("{}{}", site("a"), site("b")));
    let t = hs256(SECRET, claims("alice"));
    let on = |host: &str, path: &str| {
        let r = n.get(path, &[("Host", host), ("Authorization", &bearer(&t))]);
        (r.status, r.header("X-Cache").unwrap_or("").to_string())
    };
    assert_eq!(on("a", "/"), (200, "MISS".into()));
    // Seen under the same keys and policy, elsewhere: stored at this second sighting.
    assert_eq!(on("b", "/x/"), (200, "MISS".into()));
    for (host, path) in [("a", "/x/"), ("b", "/"), ("a", "/"), ("b", "/x/")] {
        assert_eq!(on(host, path), (200, "HIT".into()), "{host}{path}");
    }
}

#[test]
fn one_token_alternating_between_scopes_pushes_out_nobody() {
    // Room for a few entries only; /lee differs from / by its policy, so each has a scope.
    let n = Nginx::start(&format!(
        "auth_jwt_cache 4k;\n{}",
        hs_server(
            "location /lee/ { auth_jwt_leeway 1s; proxy_pass http://127.0.0.1:{{UPSTREAM}}; }"
        )
    ));
    let victim = hs256(SECRET, claims("victim"));
    for expected in ["MISS", "MISS", "HIT"] {
        assert_eq!(ask(&n, "/", &victim).1, expected);
    }
    // Mallory's token, stored under both scopes. The cache stores a token at its second
    // sighting, remembered by a mark in one of 64 slots here: when the token's two marks share
    // a slot (1 chance in 64, by its bytes), each sighting erases the other's and it is never
    // stored. Another token then makes the pressure this test is about.
    let stored_twice = |mallory: &str| {
        for _ in 0..50 {
            assert_eq!(ask(&n, "/", mallory).0, 200);
            assert_eq!(ask(&n, "/lee/", mallory).0, 200);
        }
        ask(&n, "/", mallory).1 == "HIT" && ask(&n, "/lee/", mallory).1 == "HIT"
    };
    let tries = (0..4).find(|i| stored_twice(&hs256(SECRET, claims(&format!("mallory{i}")))));
    assert!(tries.is_some(), "no token was stored under both scopes");
    assert_eq!(
        ask(&n, "/", &victim).1,
        "HIT",
        "the victim's entry was pushed out"
    );
}
