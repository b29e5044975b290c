//! Keys over HTTP (docs/DIRECTIVES.md: auth_jwt_key_request, auth_jwt_key_cache;
//! docs/KEYS-OVER-HTTP.md; docs/SECURITY.md, "Keys over HTTP"):
//! a real nginx fetching a JWK set from a provider on 127.0.0.1, whose answers each test sets
//! and whose requests it counts.

mod common;
use common::*;

use std::thread;
use std::time::{Duration, Instant};

/// A JWK set of HS256 `oct` keys, one per kid, each secret being `secret_of(kid)`.
fn oct_set(kids: &[&str]) -> String {
    let keys: Vec<_> = kids.iter().map(|kid| oct_key(kid)).collect();
    jwks(&keys)
}

fn oct_key(kid: &str) -> serde_json::Value {
    json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": b64(&secret_of(kid))})
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

/// The key location of every test: internal, proxying to the provider, with short timeouts.
fn key_location(p: &Provider) -> String {
    format!(
        "location = /jwks {{ internal; proxy_pass http://127.0.0.1:{}/keys; \
         proxy_connect_timeout 1s; proxy_read_timeout 1s; }}",
        p.port
    )
}

/// nginx whose `/` is checked with the keys of `p`, fetched through `/jwks`; `extra` goes in
/// the server (`auth_jwt_key_cache`, say), `main` in the main context.
fn start(p: &Provider, main: &str, extra: &str) -> Nginx {
    let http = server(&format!(
        "auth_jwt \"api\";\n\
         auth_jwt_key_request /jwks;\n\
         {extra}\n\
         {}\n\
         location / {{ add_header X-Jwt-Error $jwt_error always; add_header X-Sub $jwt_claim_sub; \
         empty_gif; }}",
        key_location(p)
    ));
    Nginx::start_full(main, &http, &[])
}

/// Error-log lines at `[error]` or `[warn]` naming the key fetch.
fn fetch_lines(n: &Nginx) -> Vec<String> {
    n.jwt_log_lines()
        .into_iter()
        .filter(|l| l.contains("auth_jwt: keys:"))
        .collect()
}

#[test]
fn keys_come_from_the_provider_are_cached_and_the_fetch_carries_nothing_of_the_client() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    // The key location inherits headers naming the client: they read empty in the fetch.
    let extra = "auth_jwt_key_cache 1h;\n\
                 proxy_set_header X-Client \"[$jwt_sub][$http_authorization][$cookie_session]\";";
    let n = start(&p, "", extra);
    assert_eq!(
        p.fetches(),
        0,
        "nothing is fetched before a request needs keys"
    );
    let bearer = format!("Bearer {}", token("k1", "alice"));
    let r = n.get(
        "/?secret-arg=1",
        &[
            ("Authorization", &bearer),
            ("Cookie", "session=client-secret"),
            ("Range", "bytes=0-3"),
            ("If-None-Match", "\"x\""),
            ("Accept-Encoding", "gzip"),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert_eq!(r.header("x-sub"), Some("alice"));
    for sub in ["bob", "carol", "dave"] {
        assert_eq!(get(&n, &token("k1", sub)).status, 200);
    }
    let seen = p.seen();
    assert_eq!(seen.len(), 1, "one fetch serves every request while cached");
    assert_eq!(seen[0].line, "GET /keys HTTP/1.0");
    let names: Vec<&str> = seen[0].headers.iter().map(|(k, _)| k.as_str()).collect();
    for client in [
        "authorization",
        "cookie",
        "range",
        "if-none-match",
        "accept-encoding",
    ] {
        assert!(
            !names.contains(&client),
            "{client} reached the provider: {seen:?}"
        );
    }
    assert_eq!(seen[0].header("x-client"), ["[][][]"], "{seen:?}");
    n.assert_clean_log();
}

#[test]
fn a_new_kid_is_accepted_at_once_and_made_up_kids_refetch_once_per_cooldown() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1h;");
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    // The provider rotates: k2 signs from now on. Its first token refetches, with no reload.
    p.set(Answer::ok(&oct_set(&["k1", "k2"])));
    let r = get(&n, &token("k2", "bob"));
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert_eq!(p.fetches(), 2);
    // A flood of made-up kids within the cooldown fetches nothing more.
    for i in 0..200 {
        let r = get(&n, &token(&format!("made-up-{i}"), "mallory"));
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.header("x-jwt-error"), Some("key"));
    }
    assert_eq!(p.fetches(), 2, "the cooldown bounds refetches");
    let log = n.error_log();
    assert!(
        log.contains("auth_jwt: key: no key with kid \"made-up-0\""),
        "{log}"
    );
    // Known kids are unaffected.
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
}

#[test]
fn a_withdrawn_key_is_refused_once_the_cache_time_is_over() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1", "old"])));
    let n = start(&p, "", "auth_jwt_key_cache 2s;");
    assert_eq!(get(&n, &token("old", "alice")).status, 200);
    p.set(Answer::ok(&oct_set(&["k1"])));
    // Still cached: the withdrawn key serves until the cache time is over.
    assert_eq!(get(&n, &token("old", "alice")).status, 200);
    thread::sleep(Duration::from_millis(2300));
    let r = get(&n, &token("old", "alice"));
    assert_eq!(r.status, 401, "{r:?}\n{}", n.error_log());
    assert_eq!(r.header("x-jwt-error"), Some("key"));
    assert_eq!(get(&n, &token("k1", "bob")).status, 200);
}

#[test]
fn cache_zero_fetches_for_each_request_as_plus_does() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "");
    for i in 1..=3 {
        assert_eq!(get(&n, &token("k1", "alice")).status, 200);
        assert_eq!(p.fetches(), i);
    }
    p.set(Answer::ok(&oct_set(&["k2"])));
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 401, "withdrawn at once: {r:?}");
}

/// Each way a provider fails, with no keys cached: 500 (never 401, never a redirect), one
/// log line naming the cause, and the failure not retried by the next requests at once.
#[test]
fn a_failing_provider_without_cached_keys_means_500_and_a_line_naming_why() {
    let big = oct_set(
        &(0..1200)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 64 * 1024);
    let gzip = Answer::Serve {
        status: 200,
        body: oct_set(&["k1"]),
        headers: vec![("Content-Encoding".into(), "gzip".into())],
    };
    let cases: Vec<(&str, Answer, &str, &str)> = vec![
        (
            "500",
            Answer::status(500, "oops"),
            "",
            "\"/jwks\" answered 500, not 200",
        ),
        (
            "garbage",
            Answer::ok("<html>login</html>"),
            "",
            "answered something other than a JWK set",
        ),
        (
            "not a set",
            Answer::ok("{\"keys\": 3}"),
            "",
            "answered an unusable JWK set",
        ),
        (
            "no usable key",
            Answer::ok(&jwks(&[json!({"kty": "oct"})])),
            "",
            "unusable JWK set",
        ),
        ("compressed", gzip, "", "Content-Encoding \"gzip\""),
        (
            "slow",
            Answer::Slow(
                Duration::from_secs(3),
                Box::new(Answer::ok(&oct_set(&["k1"]))),
            ),
            "",
            "answered 504",
        ),
        ("closed", Answer::Hang, "", "answered 502"),
        (
            "over the buffer",
            Answer::ok(&big),
            "",
            "subrequest_output_buffer_size",
        ),
        (
            "over 64 KiB",
            Answer::ok(&big),
            "subrequest_output_buffer_size 1m;",
            "answered more than 65536 bytes",
        ),
    ];
    for (what, answer, extra, cause) in cases {
        if std::env::var("KR_CASE").is_ok_and(|c| c != what) {
            continue;
        }
        let p = Provider::start(answer);
        let n = start(&p, "", &format!("auth_jwt_key_cache 1h; {extra}"));
        let r = get(&n, &token("k1", "alice"));
        assert_eq!(r.status, 500, "{what}: {r:?}\n{}", n.error_log());
        assert_eq!(r.header("x-jwt-error"), Some("keys_unavailable"), "{what}");
        assert_eq!(r.header("www-authenticate"), None, "{what}");
        let lines = fetch_lines(&n);
        assert_eq!(lines.len(), 1, "{what}: {lines:#?}");
        assert!(
            lines[0].contains("[error]") && lines[0].contains(cause),
            "{what}: {lines:#?}"
        );
        assert!(
            lines[0].contains("requests that need them get 500"),
            "{what}: {lines:#?}"
        );
        assert!(
            n.error_log()
                .contains("auth_jwt: keys_unavailable: no keys from \"/jwks\""),
            "{what}: {}",
            n.error_log()
        );
        // The next requests do not hammer the provider: the failure backs off.
        let before = p.fetches();
        for _ in 0..5 {
            assert_eq!(get(&n, &token("k1", "alice")).status, 500, "{what}");
        }
        assert_eq!(p.fetches(), before, "{what}");
    }
}

#[test]
fn a_refused_connection_without_cached_keys_means_500() {
    let p = Provider::start(Answer::ok(""));
    let port = p.port;
    drop(p);
    let http = server(&format!(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks;\n\
         location = /jwks {{ internal; proxy_pass http://127.0.0.1:{port}/keys; }}\n\
         location / {{ empty_gif; }}"
    ));
    let n = Nginx::start(&http);
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        n.error_log().contains("\"/jwks\" answered 502"),
        "{}",
        n.error_log()
    );
}

#[test]
fn a_failing_provider_leaves_cached_keys_in_use_up_to_the_stale_time() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1s stale=3s;");
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    p.set(Answer::status(503, "down"));
    thread::sleep(Duration::from_millis(1200));
    // Expired: the request waits for a fetch, which fails; the keys serve on, stale.
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    let lines = fetch_lines(&n);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("answered 503"), "{lines:#?}");
    assert!(lines[0].contains("stay in use for up to"), "{lines:#?}");
    let fetches = p.fetches();
    for _ in 0..20 {
        assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    }
    assert_eq!(p.fetches(), fetches, "retries back off");
    // Past the stale time, nothing serves.
    thread::sleep(Duration::from_millis(3000));
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 500, "{r:?}\n{}", n.error_log());
    assert_eq!(r.header("x-jwt-error"), Some("keys_unavailable"));
    // The provider comes back: the next attempt after the back-off serves again.
    p.set(Answer::ok(&oct_set(&["k1"])));
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&n, &token("k1", "alice")).status != 200 {
        assert!(Instant::now() < deadline, "{}", n.error_log());
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn stale_zero_fails_closed_at_expiry() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1s stale=0;");
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    p.set(Answer::status(500, "down"));
    thread::sleep(Duration::from_millis(1200));
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        fetch_lines(&n)[0].contains("past their stale time"),
        "{}",
        n.error_log()
    );
}

/// Two workers, a cold cache, a slow provider and 200 requests at once: one fetch.
#[test]
fn concurrent_requests_on_a_cold_cache_share_one_fetch_across_workers() {
    let p = Provider::start(Answer::Slow(
        Duration::from_millis(500),
        Box::new(Answer::ok(&oct_set(&["k1"]))),
    ));
    let http = format!(
        "log_format pids '$pid $status';\n{}",
        server(&format!(
            "access_log {{{{PREFIX}}}}/logs/pids.log pids;\n\
             auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n{}\n\
             location / {{ empty_gif; }}",
            key_location(&p).replace("proxy_read_timeout 1s", "proxy_read_timeout 5s")
        ))
    );
    let n = Nginx::start_full("worker_processes 2;", &http, &[]);
    let tokens: Vec<String> = (0..200).map(|i| token("k1", &format!("user{i}"))).collect();
    let statuses: Vec<u16> = thread::scope(|s| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|t| s.spawn(|| get(&n, t).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|&s| s == 200),
        "{statuses:?}\n{}",
        n.error_log()
    );
    assert_eq!(p.fetches(), 1, "{:?}", p.seen());
    let log = n.read("logs/pids.log");
    let mut pids: Vec<&str> = log.lines().filter_map(|l| l.split(' ').next()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 2, "both workers answered: {log}");
}

#[test]
fn a_reload_keeps_the_keys_and_refreshes_them_in_the_background() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1h;");
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    assert_eq!(p.fetches(), 1);
    // Under load: a client keeps asking while nginx reloads twice.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let t = token("k1", "alice");
    let failures = thread::scope(|s| {
        let load = s.spawn(|| {
            let mut bad = Vec::new();
            let mut count = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = get(&n, &t);
                count += 1;
                if r.status != 200 {
                    bad.push(r.status);
                }
            }
            (count, bad)
        });
        p.set(Answer::Slow(
            Duration::from_millis(300),
            Box::new(Answer::ok(&oct_set(&["k1"]))),
        ));
        n.reload();
        n.reload();
        thread::sleep(Duration::from_millis(800));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        load.join().unwrap()
    });
    assert!(failures.0 > 10, "{failures:?}");
    assert!(failures.1.is_empty(), "{failures:?}\n{}", n.error_log());
    // Each reload refreshes once, in the background, while the kept keys serve.
    let fetches = p.fetches();
    assert!((2..=3).contains(&fetches), "{fetches}");
}

/// `jku`, `x5u` and `jwk` in a token's header are never followed nor used: only the
/// configured source's keys verify.
#[test]
fn keys_named_by_the_token_are_ignored() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let n = start(&p, "", "auth_jwt_key_cache 1h;");
    let attacker = b"attacker-secret-0123456789-0123456789";
    let header = json!({
        "alg": "HS256", "kid": "k1",
        "jku": format!("http://127.0.0.1:{}/evil", p.port),
        "x5u": format!("http://127.0.0.1:{}/evil", p.port),
        "jwk": {"kty": "oct", "kid": "k1", "k": b64(attacker)},
    });
    let forged = raw_token(
        &header.to_string(),
        &claims("mallory").to_string(),
        hmac(Algorithm::HS256, attacker),
    );
    let r = get(&n, &forged);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("x-jwt-error"), Some("signature"));
    assert!(
        p.seen().iter().all(|s| s.line == "GET /keys HTTP/1.0"),
        "{:?}",
        p.seen()
    );
}

/// The key family's rules hold for fetched keys: a set's bad entry is skipped (its good ones
/// serve), `auth_jwt_algorithm` pins the algorithm, and a token's `alg` must be its key's.
#[test]
fn fetched_sets_follow_the_rules_of_key_files() {
    let mut keys = vec![json!({"kty": "oct", "kid": "broken"}), oct_key("k1")];
    keys.push(json!({"kty": "RSA", "kid": "bad-rsa", "n": "AQAB", "e": "AQAB"}));
    let p = Provider::start(Answer::ok(&jwks(&keys)));
    let n = start(&p, "", "auth_jwt_key_cache 1h;");
    assert_eq!(
        get(&n, &token("k1", "alice")).status,
        200,
        "{}",
        n.error_log()
    );
    let warns: Vec<String> = fetch_lines(&n)
        .into_iter()
        .filter(|l| l.contains("[warn]"))
        .collect();
    assert!(warns.iter().any(|l| l.contains("skipping")), "{warns:#?}");
    let hs384 = hs_kid(
        Algorithm::HS384,
        &secret_of("k1"),
        Some("k1"),
        &claims("alice"),
    );
    let r = get(&n, &hs384);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-jwt-error"), Some("algorithm"));

    // The C module's family: auth_jwt_algorithm RS256 finds no RS256 key in an oct set.
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = server(&format!(
        "auth_jwt_enabled on; auth_jwt_algorithm RS256; auth_jwt_key_request /jwks;\n{}\n\
         location / {{ add_header X-Jwt-Error $jwt_error always; empty_gif; }}",
        key_location(&p)
    ));
    let n = Nginx::start(&http);
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        n.error_log().contains("unusable JWK set"),
        "{}",
        n.error_log()
    );
}

/// The C module's family with fetched keys: a cookie, a redirect to login for a bad token,
/// and 500 (not the redirect) when no keys can be had.
#[test]
fn the_c_module_family_uses_key_requests_too() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = server(&format!(
        "auth_jwt_enabled on; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n\
         auth_jwt_location COOKIE=auth; auth_jwt_redirect on; auth_jwt_loginurl https://login.example/;\n{}\n\
         location / {{ add_header X-Sub $jwt_claim_sub; empty_gif; }}",
        key_location(&p)
    ));
    let n = Nginx::start(&http);
    let cookie = format!("auth={}", token("k1", "alice"));
    let r = n.get("/", &[("Cookie", &cookie)]);
    assert_eq!((r.status, r.header("x-sub")), (200, Some("alice")), "{r:?}");
    let r = n.get("/", &[("Cookie", "auth=nonsense")]);
    assert_eq!(r.status, 302);
    // A new nginx whose provider is down: 500, never the login page.
    p.set(Answer::status(500, ""));
    drop(n);
    let n = Nginx::start(&http);
    let r = n.get("/", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.header("location"), None);
}

/// A location reached by `auth_request` waits for keys as a main request does; the key
/// location itself sits under the server's `auth_jwt` and is exempt for the fetch.
#[test]
fn an_auth_request_target_fetches_and_waits_too() {
    let p = Provider::start(Answer::Slow(
        Duration::from_millis(200),
        Box::new(Answer::ok(&oct_set(&["k1"]))),
    ));
    let http = server(&format!(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n{}\n\
         location = /check {{ internal; return 204; }}\n\
         location / {{ auth_jwt off; auth_request /check; empty_gif; }}",
        key_location(&p)
    ));
    let n = Nginx::start(&http);
    assert_eq!(
        get(&n, &token("k1", "alice")).status,
        200,
        "{}",
        n.error_log()
    );
    assert_eq!(get(&n, &token("k2", "alice")).status, 401);
    assert_eq!(n.get("/", &[]).status, 401);
    // The key location is internal and checked for a client's own request.
    assert_eq!(n.get("/jwks", &[]).status, 404);
}

#[test]
fn directives_are_checked_at_load() {
    for (conf, needle, error) in [
        (
            "auth_jwt_key_request $uri;",
            "auth_jwt_key_request",
            "does not support variables",
        ),
        (
            "auth_jwt_key_request jwks;",
            "auth_jwt_key_request",
            "must be a local URI",
        ),
        (
            "auth_jwt_key_cache soon;",
            "auth_jwt_key_cache",
            "invalid time",
        ),
        (
            "auth_jwt_key_cache 1h later=1s;",
            "auth_jwt_key_cache",
            "invalid parameter",
        ),
        (
            "auth_jwt_key_cache 1h stale=x;",
            "auth_jwt_key_cache",
            "invalid time",
        ),
        (
            "auth_jwt_key 0011; auth_jwt_key_request /jwks;",
            "auth_jwt_key_request",
            "cannot be mixed",
        ),
    ] {
        let body = server(&format!(
            "auth_jwt \"x\";\n{conf}\nlocation / {{ return 200; }}"
        ));
        let message = expect_emerg_at(&body, needle);
        assert!(message.contains(error), "{conf}: {message}");
    }
    let sixty_five: String = (0..65)
        .map(|i| format!("location /l{i} {{ auth_jwt x; auth_jwt_key_request /jwks{i}; }}\n"))
        .collect();
    let (ok, out) = nginx_t(&server(&sixty_five));
    assert!(
        !ok && out.contains("too many \"auth_jwt_key_request\" sources: 65"),
        "{out}"
    );
}

/// A refresh started by a request with a valid token: the key location's headers that name
/// the client (inherited `proxy_set_header`s) read empty in the fetch.
#[test]
fn a_background_refresh_carries_nothing_of_the_client() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let extra = "auth_jwt_key_cache 2s;\n\
                 proxy_set_header X-Client \"[$jwt_sub][$jwt_claim_sub][$http_authorization]\";";
    let n = start(&p, "", extra);
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    thread::sleep(Duration::from_millis(1600));
    assert_eq!(get(&n, &token("k1", "alice")).status, 200);
    n.wait_for("the background refresh", || p.fetches() == 2);
    let seen = p.seen();
    for s in &seen {
        let sent = s.header("x-client");
        assert_eq!(sent, ["[][][]"], "{seen:?}");
    }
}

/// Each way a provider fails, with keys cached and expired: they serve on (stale), one line
/// names the cause.
#[test]
fn a_failing_provider_with_cached_keys_leaves_them_in_use_whatever_the_failure() {
    let gzip = Answer::Serve {
        status: 200,
        body: oct_set(&["k1"]),
        headers: vec![("Content-Encoding".into(), "gzip".into())],
    };
    let slow = Answer::Slow(
        Duration::from_secs(3),
        Box::new(Answer::ok(&oct_set(&["k1"]))),
    );
    let cases: Vec<(&str, Answer, &str)> = vec![
        ("500", Answer::status(500, "oops"), "answered 500"),
        (
            "garbage",
            Answer::ok("<html>"),
            "something other than a JWK set",
        ),
        ("compressed", gzip, "Content-Encoding \"gzip\""),
        ("closed", Answer::Hang, "answered 502"),
        ("slow", slow, "answered 504"),
    ];
    for (what, answer, cause) in cases {
        let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
        let n = start(&p, "", "auth_jwt_key_cache 1s;");
        assert_eq!(get(&n, &token("k1", "alice")).status, 200, "{what}");
        p.set(answer);
        thread::sleep(Duration::from_millis(1100));
        let r = get(&n, &token("k1", "alice"));
        assert_eq!(r.status, 200, "{what}: {r:?}\n{}", n.error_log());
        let lines = fetch_lines(&n);
        assert_eq!(lines.len(), 1, "{what}: {lines:#?}");
        assert!(
            lines[0].contains(cause) && lines[0].contains("stay in use for up to"),
            "{what}: {lines:#?}"
        );
    }
}

/// An SSI include kept in a variable is an in-memory subrequest, in which nginx cannot nest
/// another: the fetch it needs hangs off the main request.
#[test]
fn an_in_memory_subrequest_fetches_through_the_main_request() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = server(&format!(
        "auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n{}\n\
         location = /page {{ ssi on; default_type text/html; alias {{{{PREFIX}}}}/html/page.html; }}\n\
         location = /api {{ auth_jwt \"api\"; return 200 \"granted\"; }}",
        key_location(&p)
    ));
    let page = r#"[<!--# include virtual="/api" set="v" --><!--# echo var="v" default="none" -->]"#;
    let n = Nginx::start_full("", &http, &[("html/page.html", page)]);
    let bearer = format!("Bearer {}", token("k1", "alice"));
    let r = n.get("/page", &[("Authorization", &bearer)]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "[granted]"),
        "{r:?}\n{}",
        n.error_log()
    );
    assert_eq!(p.fetches(), 1);
    let r = n.get("/page", &[]);
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("granted"), "{r:?}");
}

/// The host of the fetch is the server's: a client's `Host` reaches the provider neither
/// through `$host` nor through a `$http_host` the client's request cached before the fetch.
#[test]
fn the_clients_host_never_reaches_the_provider() {
    for header in ["$host", "$http_host"] {
        let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
        let http = server(&format!(
            "server_name keys.example;\n\
             auth_jwt \"api\"; auth_jwt_key_request /jwks;\n\
             if ($http_host = forbidden) {{ return 403; }}\n\
             location = /jwks {{ internal; proxy_set_header Host {header}; \
             proxy_pass http://127.0.0.1:{}/keys; }}\n\
             location / {{ empty_gif; }}",
            p.port
        ));
        let n = Nginx::start(&http);
        let bearer = format!("Bearer {}", token("k1", "alice"));
        let r = n.get(
            "/",
            &[("Host", "attacker.example"), ("Authorization", &bearer)],
        );
        assert_eq!(r.status, 200, "{header}: {r:?}");
        let seen = p.seen();
        let hosts: Vec<&str> = seen.iter().flat_map(|s| s.header("host")).collect();
        // `$http_host` is empty in the fetch: nginx leaves the header out.
        let expected: &[&str] = if header == "$host" {
            &["keys.example"]
        } else {
            &[]
        };
        assert_eq!(hosts, expected, "{header}");
    }
}

/// What the fetch computes stays its own: the client's request, whose variables nginx would
/// share with it, still sends its `Host` and cookie upstream.
#[test]
fn the_fetch_leaves_the_clients_variables_alone() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = server(&format!(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks;\n\
         proxy_set_header Host $http_host; proxy_set_header X-Cookie $cookie_sid;\n{}\n\
         location / {{ {PROXY} }}",
        key_location(&p)
    ));
    let n = Nginx::start(&http);
    let bearer = format!("Bearer {}", token("k1", "alice"));
    let r = n.get(
        "/",
        &[
            ("Host", "app.example"),
            ("Cookie", "sid=abc"),
            ("Authorization", &bearer),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.upstream_one("host").as_deref(),
        Some("app.example"),
        "{r:?}"
    );
    assert_eq!(r.upstream_one("x-cookie").as_deref(), Some("abc"), "{r:?}");
}

/// A worker killed while its fetch runs leaves the claim behind: the next request sees its
/// worker gone and fetches at once, instead of waiting for the claim to expire.
#[test]
fn a_fetch_whose_worker_died_is_taken_over() {
    let p = Provider::start(Answer::Slow(
        Duration::from_secs(3),
        Box::new(Answer::ok(&oct_set(&["k1"]))),
    ));
    let http = server(&format!(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n\
         location = /jwks {{ internal; proxy_pass http://127.0.0.1:{}/keys; \
         proxy_read_timeout 5s; }}\n\
         location / {{ empty_gif; }}",
        p.port
    ));
    let n = Nginx::start(&http);
    let t = token("k1", "alice");
    // A request starts the fetch, and its worker is killed while the provider is slow.
    let port = n.port;
    let first = {
        let t = t.clone();
        thread::spawn(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = write!(
                s,
                "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        })
    };
    n.wait_for("the fetch", || p.fetches() == 1);
    let worker: i32 = n.workers_started()[0].parse().unwrap();
    // SAFETY: kill(2) of the worker of the nginx this test started.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    first.join().unwrap();
    n.wait_for("a new worker", || n.workers_started().len() == 2);
    p.set(Answer::ok(&oct_set(&["k1"])));
    let asked = Instant::now();
    let r = get(&n, &t);
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(p.fetches(), 2);
    // The kill is this test's own doing: not a crash for the harness to report.
    let log = n
        .error_log()
        .replace("[alert]", "[killed]")
        .replace(" exited on signal 9", " killed by the test");
    std::fs::write(n.prefix.join("logs/error.log"), log).unwrap();
}

/// Replaces `from` by `to` in the running nginx's configuration file.
fn edit_conf(n: &Nginx, from: &str, to: &str) {
    let path = n.prefix.join("conf/nginx.conf");
    let conf = std::fs::read_to_string(&path).unwrap();
    assert!(conf.contains(from), "{from} not in {conf}");
    std::fs::write(&path, conf.replace(from, to)).unwrap();
}

/// The keys a reload keeps are those of the same server block in an unchanged file: once the
/// key location points at another provider (the first one compromised, say), the first
/// provider's keys never verify again, whether the new one answers or fails.
#[test]
fn a_reload_pointing_the_key_location_elsewhere_drops_the_old_keys() {
    // B's fetches: at once, then for the token's kid it lacks; or the one that fails.
    for (cache, b_answer, status, fetches) in [
        ("1h", Answer::ok(&oct_set(&["b1"])), 401, 2),
        ("0", Answer::status(503, ""), 500, 1),
    ] {
        let a = Provider::start(Answer::ok(&oct_set(&["k1"])));
        let b = Provider::start(b_answer);
        let n = start(&a, "", &format!("auth_jwt_key_cache {cache};"));
        assert_eq!(get(&n, &token("k1", "alice")).status, 200);
        edit_conf(
            &n,
            &format!("127.0.0.1:{}/keys", a.port),
            &format!("127.0.0.1:{}/keys", b.port),
        );
        n.reload();
        let r = get(&n, &token("k1", "alice"));
        assert_eq!(r.status, status, "cache {cache}: {r:?}\n{}", n.error_log());
        assert_eq!(b.fetches(), fetches, "cache {cache}");
    }
}

/// Two server blocks are two sources, even written on one line.
#[test]
fn two_servers_on_one_line_never_share_keys() {
    let a = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let b = Provider::start(Answer::ok(&oct_set(&["b1"])));
    let block = |name: &str, p: &Provider| {
        format!(
            "server {{ listen 127.0.0.1:{{{{PORT}}}}; server_name {name}; auth_jwt \"api\"; \
             auth_jwt_key_request /jwks; auth_jwt_key_cache 1h; {} location / {{ empty_gif; }} }}",
            key_location(p)
        )
    };
    let http = format!("{} {}\n", block("a", &a), block("b", &b));
    let n = Nginx::start(&http);
    let bearer = format!("Bearer {}", token("k1", "alice"));
    let r = n.get("/", &[("Host", "a"), ("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = n.get("/", &[("Host", "b"), ("Authorization", &bearer)]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        (a.fetches(), b.fetches()),
        (1, 2),
        "b's own fetch, and its refetch for k1"
    );
}

/// The rewrite phase reads `$jwt_*` as it does with key files: a deny list by claim holds on
/// a cold cache, with the default cache time (a fetch for each request), and for a token
/// signed by a key the provider just added; server-level `if` and `set` see the claims too.
#[test]
fn the_rewrite_phase_reads_claims_with_fetched_keys() {
    for cache in ["", "auth_jwt_key_cache 1h;"] {
        let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
        let http = format!(
            "map $jwt_claim_sub $blocked {{ mallory 1; default 0; }}\n{}",
            server(&format!(
                "auth_jwt \"api\"; auth_jwt_key_request /jwks; {cache}\n{}\n\
                 set $server_who $jwt_sub;\n\
                 location / {{ if ($blocked) {{ return 403; }} set $who $jwt_claim_sub; \
                 set $err $jwt_error; add_header X-Who \"$server_who/$who/$err\" always; \
                 empty_gif; }}",
                key_location(&p)
            ))
        );
        let n = Nginx::start(&http);
        let r = get(&n, &token("k1", "mallory"));
        assert_eq!(r.status, 403, "{cache}: {r:?}");
        let r = get(&n, &token("k1", "alice"));
        assert_eq!(r.header("x-who"), Some("alice/alice/"), "{cache}: {r:?}");
        // A new key, used at once: the refetch happens before the deny list is read.
        p.set(Answer::ok(&oct_set(&["k1", "k2"])));
        let r = get(&n, &token("k2", "mallory"));
        assert_eq!(r.status, 403, "{cache}: {r:?}");
    }
}

/// Key files and key requests at one level: the keys of both verify; a fetched key that
/// gives a file's `kid` to another key is left out with a `[warn]` (the file's key keeps the
/// kid), and the set's other keys serve.
#[test]
fn key_files_and_key_requests_are_used_together() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = server(&format!(
        "auth_jwt \"api\"; auth_jwt_key_file conf/file.jwks; auth_jwt_key_request /jwks;\n\
         auth_jwt_key_cache 1h;\n{}\n\
         location / {{ add_header X-Jwt-Error $jwt_error always; empty_gif; }}",
        key_location(&p)
    ));
    let n = Nginx::start_full("", &http, &[("conf/file.jwks", &oct_set(&["f1"]))]);
    assert_eq!(
        get(&n, &token("f1", "alice")).status,
        200,
        "{}",
        n.error_log()
    );
    assert_eq!(
        get(&n, &token("k1", "bob")).status,
        200,
        "{}",
        n.error_log()
    );
    // The provider adds k2, and also names "f1", with a key of its own.
    let other = b"the provider's own key named f1";
    let clash = jwks(&[
        oct_key("k1"),
        oct_key("k2"),
        json!({"kty": "oct", "kid": "f1", "alg": "HS256", "k": b64(other)}),
    ]);
    p.set(Answer::ok(&clash));
    assert_eq!(
        get(&n, &token("k2", "carol")).status,
        200,
        "{}",
        n.error_log()
    );
    assert_eq!(get(&n, &token("f1", "alice")).status, 200);
    let forged = hs_kid(Algorithm::HS256, other, Some("f1"), &claims("mallory"));
    let r = get(&n, &forged);
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("signature")),
        "{r:?}"
    );
    assert!(
        n.error_log()
            .contains("skipping the key with kid \"f1\": another key has that kid"),
        "{}",
        n.error_log()
    );
}

/// The fetch's request line and URI as written are its own: a shared `proxy_cache` keyed on
/// `$request_uri` never stores the key set under a client's URI, and no client URI (nor a
/// token in it) reaches the provider.
#[test]
fn the_fetch_has_its_own_request_line_and_uri() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = format!(
        "proxy_cache_path {{{{PREFIX}}}}/cache keys_zone=c:1m;\n{}",
        server(&format!(
            "proxy_cache c; proxy_cache_key \"$scheme$request_method$host$request_uri\";\n\
             proxy_cache_valid 200 10m;\n\
             proxy_set_header X-Original \"$request_uri|$request\";\n\
             auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n{}\n\
             location / {{ {PROXY} }}",
            key_location(&p)
        ))
    );
    let n = Nginx::start(&http);
    let valid = format!("Bearer {}", token("k1", "alice"));
    assert_eq!(n.get("/warm", &[("Authorization", &valid)]).status, 200);
    // A made-up kid refetches the set while the client asks for /steal?1.
    let made_up = format!("Bearer {}", token("made-up", "mallory"));
    assert_eq!(
        n.get("/steal?1", &[("Authorization", &made_up)]).status,
        401
    );
    let r = n.get("/steal?1", &[("Authorization", &valid)]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.body.contains("\"keys\""),
        "the key set under the client's URI: {r:?}"
    );
    // The refetch was answered by nginx's cache, under the fetch's own key.
    let seen = p.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    for s in &seen {
        let original = s.header("x-original");
        assert_eq!(original, ["/jwks|GET /jwks HTTP/1.0"], "{seen:?}");
    }
}

/// The fetch is the server's own request: the server's rewrite directives and `limit_req`,
/// which judge clients, do not apply to it, and it never spends a client's `limit_req`.
#[test]
fn the_clients_rules_do_not_apply_to_the_fetch() {
    let p = Provider::start(Answer::ok(&oct_set(&["k1"])));
    let http = format!(
        "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;\n{}",
        server(&format!(
            "limit_req zone=one; limit_req_status 429;\n\
             if ($uri = /jwks) {{ return 403; }}\n\
             auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n{}\n\
             location / {{ empty_gif; }}",
            key_location(&p)
        ))
    );
    let n = Nginx::start(&http);
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert_eq!(p.fetches(), 1);
    // The client's second request within the minute is limited, fetch or no fetch.
    let r = get(&n, &token("made-up", "alice"));
    assert_eq!(r.status, 429, "{r:?}");
}

/// Where the server has no rewrite directives of its own, its locations that do not check
/// tokens never wait for keys: a public location, and a provider served by the same server.
#[test]
fn unchecked_locations_never_wait_for_keys() {
    let http = server(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks;\n\
         location = /jwks { internal; proxy_pass http://127.0.0.1:{{PORT}}/idp/keys; }\n\
         location /idp/ { auth_jwt off; alias {{PREFIX}}/idp/; }\n\
         location = /health { auth_jwt off; empty_gif; }\n\
         location / { empty_gif; }",
    );
    let n = Nginx::start_full("", &http, &[("idp/keys", &oct_set(&["k1"]))]);
    let asked = Instant::now();
    for _ in 0..3 {
        assert_eq!(n.get("/health", &[]).status, 200);
    }
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    // The key location proxies to this very server: its request is not held up either.
    let r = get(&n, &token("k1", "alice"));
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
}

/// Several key requests at one level, one with arguments, under an `auth_jwt_key_cache`
/// inherited from `http{}`: the keys of both serve, each source is fetched once, and the
/// arguments reach the provider.
#[test]
fn several_key_requests_at_one_level_are_used_together() {
    let a = Provider::start(Answer::ok(&oct_set(&["a1"])));
    let b = Provider::start(Answer::ok(&oct_set(&["b1"])));
    let http = format!(
        "auth_jwt_key_cache 1h;\n{}",
        server(&format!(
            "auth_jwt \"api\"; auth_jwt_key_request /jwks-a; auth_jwt_key_request /jwks-b?tenant=t1;\n\
             location = /jwks-a {{ internal; proxy_pass http://127.0.0.1:{}/keys; }}\n\
             location = /jwks-b {{ internal; proxy_pass http://127.0.0.1:{}/keys; }}\n\
             location / {{ empty_gif; }}",
            a.port, b.port
        ))
    );
    let n = Nginx::start(&http);
    for _ in 0..3 {
        assert_eq!(
            get(&n, &token("a1", "alice")).status,
            200,
            "{}",
            n.error_log()
        );
        assert_eq!(
            get(&n, &token("b1", "bob")).status,
            200,
            "{}",
            n.error_log()
        );
    }
    assert_eq!((a.fetches(), b.fetches()), (1, 1));
    assert_eq!(b.seen()[0].line, "GET /keys?tenant=t1 HTTP/1.0");
}

/// A fetch this server refuses itself (a rule of the key location) is not the provider's
/// failure: a `[warn]` line says so, and the next request tries again, with no back-off.
#[test]
fn a_fetch_this_server_refuses_is_not_the_providers_failure() {
    let http = server(
        "auth_jwt \"api\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h;\n\
         location = /jwks { internal; return 403; }\n\
         location / { add_header X-Jwt-Error $jwt_error always; empty_gif; }",
    );
    let n = Nginx::start(&http);
    for _ in 0..2 {
        let r = get(&n, &token("k1", "alice"));
        assert_eq!(r.status, 500, "{r:?}");
        assert_eq!(r.header("x-jwt-error"), Some("keys_unavailable"));
    }
    // The first request's fetch, then its refetch for the kid; the second request's fetch:
    // no back-off, and no request starting fetch after fetch while it waits.
    let lines = fetch_lines(&n);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains("[warn]") && line.contains("answered 403, not 200, from this server"),
            "{line}"
        );
    }
}
