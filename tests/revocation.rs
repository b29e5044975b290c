//! Revocation (docs/DIRECTIVES.md: auth_jwt_revocation_zone, auth_jwt_revocation,
//! auth_jwt_revocation_api; docs/REVOCATION.md): a real nginx, real tokens, the list changed
//! through the API while nginx serves.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Checked `/` (401 with `$jwt_error` shown), a redirecting `/page`, and the API at `/revoke`
/// for 127.0.0.1 only; `zone` is the rest of `auth_jwt_revocation_zone`.
fn conf(zone: &str) -> String {
    format!(
        "auth_jwt_revocation_zone zone=logout:64k {zone};\n\
         {}",
        server(&format!(
            "auth_jwt_key {hex};\n\
             auth_jwt_enabled on;\n\
             auth_jwt_revocation logout;\n\
             location / {{ add_header X-Jwt-Error $jwt_error always; add_header X-Sub $jwt_claim_sub; \
             empty_gif; }}\n\
             location /page {{ auth_jwt_redirect on; auth_jwt_loginurl http://login.example/in; \
             empty_gif; }}\n\
             location /open {{ auth_jwt_revocation off; add_header X-Jwt-Error $jwt_error always; \
             empty_gif; }}\n\
             location = /revoke {{ auth_jwt_enabled off; allow 127.0.0.1; deny all; \
             auth_jwt_revocation_api logout; }}",
            hex = secret_hex()
        ))
    )
}

/// Replaces `from` by `to` in the running nginx's configuration file.
fn edit_conf(n: &Nginx, from: &str, to: &str) {
    let path = n.prefix.join("conf/nginx.conf");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in the configuration");
    fs::write(&path, text.replace(from, to)).unwrap();
}

/// `nginx -s reload`, without waiting for its outcome (`Nginx::reload` waits for the old
/// workers' exit).
fn signal_reload(n: &Nginx) {
    let status = std::process::Command::new(nginx_bin())
        .arg("-p")
        .arg(format!("{}/", n.prefix.display()))
        .args(["-c", "conf/nginx.conf", "-s", "reload"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A new empty directory for a state file, of `mode` (0o777: the workers, which run as an
/// unprivileged user, may write in it; 0o755: only root may).
fn state_dir(name: &str, mode: u32) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ngx-jwt-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
    dir
}

fn token_of(claims: serde_json::Value) -> String {
    hs256(SECRET, claims)
}

fn get(n: &Nginx, path: &str, token: &str) -> Response {
    n.get(path, &[("Authorization", &format!("Bearer {token}"))])
}

fn api(n: &Nginx, method: &str, body: &str) -> Response {
    n.send(
        method,
        "/revoke",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

#[test]
fn a_subject_cut_off_is_refused_everywhere_a_later_login_is_not() {
    let n = Nginx::start(&conf(""));
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    let bob = token_of(json!({"sub": "bob", "iat": now() - 10, "exp": now() + 3600}));
    // Verified once and cached: the revocation must reach the cached token too.
    assert_eq!(get(&n, "/", &old).status, 200);
    assert_eq!(get(&n, "/", &old).header("X-Sub"), Some("alice"));

    let r = api(&n, "POST", r#"{"sub":"alice"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "{\"stored\":1}\n");
    assert_eq!(r.header("Content-Type"), Some("application/json"));

    let r = get(&n, "/", &old);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("X-Jwt-Error"), Some("revoked"));
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .contains("error_description=\"the token has been revoked\""));
    let r = get(&n, "/page", &old);
    assert_eq!(
        r.status, 302,
        "a page redirects to the login as for any invalid token"
    );
    assert!(r
        .header("Location")
        .unwrap()
        .starts_with("http://login.example/in?return_url="));
    // Other subjects, later tokens of the subject, and locations with revocation off pass.
    assert_eq!(get(&n, "/", &bob).status, 200);
    let later = token_of(json!({"sub": "alice", "iat": now() + 1, "exp": now() + 3600}));
    assert_eq!(get(&n, "/", &later).status, 200);
    let r = get(&n, "/open", &old);
    assert_eq!((r.status, r.header("X-Jwt-Error")), (200, None));
    // A token of the subject without iat cannot show it was issued after the cutoff.
    let no_iat = token_of(json!({"sub": "alice", "exp": now() + 3600}));
    assert_eq!(get(&n, "/", &no_iat).header("X-Jwt-Error"), Some("revoked"));
    let lines = n.jwt_log_lines();
    assert!(
        lines.iter().any(|l| l.contains("[error]")
            && l.contains("auth_jwt: revoked: sub \"alice\" is cut off at")),
        "{lines:?}"
    );
}

#[test]
fn a_token_is_revoked_by_its_jti_until_its_expiry() {
    let n = Nginx::start(&conf(""));
    let exp = now() + 3600;
    let t1 = token_of(json!({"sub": "alice", "jti": "t-1", "iat": now(), "exp": exp}));
    let t2 = token_of(json!({"sub": "alice", "jti": "t-2", "iat": now(), "exp": exp}));
    assert_eq!(get(&n, "/", &t1).status, 200);
    let r = api(&n, "POST", &format!(r#"[{{"jti":"t-1","exp":{exp}}}]"#));
    assert_eq!(r.body, "{\"stored\":1}\n");
    assert_eq!(get(&n, "/", &t1).header("X-Jwt-Error"), Some("revoked"));
    assert_eq!(
        get(&n, "/", &t2).status,
        200,
        "the other session of the user stays"
    );
    // An entry whose time has passed is not in effect and is not stored.
    let r = api(&n, "POST", r#"{"jti":"t-2","exp":1000}"#);
    assert_eq!(r.body, "{\"stored\":0}\n");
    assert_eq!(get(&n, "/", &t2).status, 200);
}

#[test]
fn the_api_lists_deletes_and_refuses_bad_input_changing_nothing() {
    let n = Nginx::start(&conf(""));
    let r = api(&n, "GET", "");
    assert_eq!((r.status, r.body.as_str()), (200, "[]\n"));
    let exp = now() + 600;
    let body = format!(r#"[{{"sub":"alice"}},{{"jti":"x","exp":{exp}}}]"#);
    assert_eq!(api(&n, "POST", &body).status, 200);
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    let mut items = listed.as_array().unwrap().clone();
    items.sort_by_key(|v| v.get("jti").is_none());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], json!({"jti": "x", "exp": exp}));
    assert_eq!(items[1]["sub"], "alice");
    let cutoff = items[1]["cutoff"].as_i64().unwrap();
    assert!((now() - cutoff).abs() <= 2, "cutoff {cutoff} is now");

    // Bad input: 400, one line of JSON, and nothing changed (the good entry before the bad
    // one is not stored either).
    let cases = [
        ("POST", "{", "truncated JSON"),
        (
            "POST",
            r#"[{"sub":"carol"},{"sub":""}]"#,
            "entry 2: \\\"sub\\\" is empty",
        ),
        ("POST", r#"{"sub":"carol","role":"x"}"#, "unexpected member"),
        ("POST", "", "the body is empty"),
        ("POST", "7", "not a JSON object or array"),
        (
            "DELETE",
            r#"{"sub":"carol","cutoff":3}"#,
            "unexpected member",
        ),
    ];
    for (method, body, why) in cases {
        let r = api(&n, method, body);
        assert_eq!(r.status, 400, "{method} {body}: {}", r.body);
        assert!(
            r.body.starts_with("{\"error\":") && r.body.contains(why),
            "{}",
            r.body
        );
        assert_eq!(r.body.matches('\n').count(), 1, "one line: {:?}", r.body);
    }
    let after: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");

    let r = api(&n, "DELETE", r#"{"sub":"alice"}"#);
    assert_eq!((r.status, r.body.as_str()), (200, "{\"deleted\":1}\n"));
    let r = api(&n, "DELETE", r#"{"sub":"alice"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 60}));
    assert_eq!(get(&n, "/", &old).status, 200, "deleted: in effect no more");
    let r = api(&n, "PUT", "{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD, POST, DELETE"));
}

#[test]
fn a_full_zone_refuses_the_whole_request_and_evicts_nothing() {
    let n = Nginx::start(&conf("").replace("zone=logout:64k", "zone=logout:16k"));
    let entries: Vec<String> = (0..200).map(|i| format!(r#"{{"sub":"u{i}"}}"#)).collect();
    let mut stored = 0;
    for chunk in entries.chunks(10) {
        let r = api(&n, "POST", &format!("[{}]", chunk.join(",")));
        if r.status != 200 {
            assert_eq!(r.status, 507, "{}", r.body);
            assert!(r.body.contains("zone \\\"logout\\\" is full"), "{}", r.body);
            break;
        }
        stored += chunk.len();
    }
    assert!((40..200).contains(&stored), "{stored} stored");
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        stored,
        "nothing of the refused batch"
    );
    // Every earlier revocation still holds.
    let first = token_of(json!({"sub": "u0", "iat": now() - 5, "exp": now() + 60}));
    assert_eq!(get(&n, "/", &first).header("X-Jwt-Error"), Some("revoked"));
    assert!(n
        .jwt_log_lines()
        .iter()
        .any(|l| l.contains("auth_jwt_revocation_api: zone \"logout\" is full")));
    // Updating an entry it holds needs no room.
    assert_eq!(api(&n, "POST", r#"{"sub":"u0"}"#).status, 200);
}

#[test]
fn the_state_file_keeps_every_acknowledged_change_across_a_restart() {
    // Workers run as an unprivileged user: the directory is theirs to write in.
    let dir = state_dir("state", 0o777);
    let state = dir.join("revoked.json");
    let zone = format!("state={} ttl=1d", state.display());
    let old =
        token_of(json!({"sub": "alice", "jti": "j1", "iat": now() - 10, "exp": now() + 3600}));
    let exp = now() + 3600;
    {
        let n = Nginx::start(&conf(&zone));
        assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
        assert_eq!(
            api(&n, "POST", &format!(r#"{{"jti":"j9","exp":{exp}}}"#)).status,
            200
        );
        let saved: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(saved.as_array().unwrap().len(), 2, "{saved}");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|f| f.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    // A new nginx (a new zone) reads the list back.
    let n = Nginx::start(&conf(&zone));
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    drop(n);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_state_file_that_cannot_be_used_fails_nginx_t_naming_it() {
    let dir = state_dir("badstate", 0o755);
    let corrupt = dir.join("corrupt.json");
    fs::write(&corrupt, r#"[{"sub":"alice"}]"#).unwrap();
    let (ok, log) = nginx_t(&conf(&format!("state={}", corrupt.display())));
    assert!(!ok);
    assert!(
        log.contains(&format!(
            "state file \"{}\" is corrupt: entry 1: \"cutoff\" is missing",
            corrupt.display()
        )),
        "{log}"
    );
    let unreadable = dir.join("a-directory");
    fs::create_dir_all(&unreadable).unwrap();
    let (ok, log) = nginx_t(&conf(&format!("state={}", unreadable.display())));
    assert!(!ok);
    assert!(
        log.contains(&format!(
            "cannot read state file \"{}\"",
            unreadable.display()
        )),
        "{log}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn configuration_errors_name_the_directive() {
    let cases = [
        ("auth_jwt_revocation_zone zone=a;", "invalid zone \"a\", it must be zone=NAME:SIZE"),
        ("auth_jwt_revocation_zone zone=a:1k;", "zone \"a\" is too small"),
        ("auth_jwt_revocation_zone zone=a:64k ttl=0;", "longer than 0"),
        ("auth_jwt_revocation_zone zone=a:64k bogus=1;", "invalid parameter \"bogus=1\""),
        ("auth_jwt_revocation_zone state=/x;", "needs \"zone=NAME:SIZE\""),
        (
            "auth_jwt_revocation_zone zone=a:64k; auth_jwt_revocation_zone zone=a:64k;",
            "declares zone \"a\" again",
        ),
        (
            "auth_jwt_revocation nope;",
            "\"auth_jwt_revocation\" names \"nope\", which no \"auth_jwt_revocation_zone\" declares",
        ),
    ];
    for (text, want) in cases {
        let (ok, log) = nginx_t(&format!("{text}\n{}", server("location / { empty_gif; }")));
        assert!(!ok, "{text}");
        assert!(log.contains(want), "{text}: {log}");
    }
    let cases = [
        (
            "auth_jwt_revocation_request /list 10s;",
            "\"auth_jwt_revocation_request\" needs \"auth_jwt_revocation\"",
        ),
        (
            "auth_jwt_revocation_request /list$arg_x 10s;",
            "does not support variables",
        ),
        (
            "auth_jwt_revocation_request http://x/ 10s;",
            "it must be a local URI",
        ),
        (
            "auth_jwt_revocation_request /list 0;",
            "needs an interval longer than 0",
        ),
    ];
    for (text, want) in cases {
        let http = format!(
            "auth_jwt_revocation_zone zone=z:64k;\n{}",
            server(&format!(
                "auth_jwt_key {};\n{text}\nlocation / {{ empty_gif; }}",
                secret_hex()
            ))
        );
        let (ok, log) = nginx_t(&http);
        assert!(!ok, "{text}");
        assert!(log.contains(want), "{text}: {log}");
    }
    let (ok, log) = nginx_t(&server("location / { auth_jwt_revocation_api nope; }"));
    assert!(
        !ok && log.contains("no \"auth_jwt_revocation_zone\" declares"),
        "{log}"
    );
    let (ok, log) = nginx_t(&server("auth_jwt_revocation_api x;"));
    assert!(
        !ok && log.contains("\"auth_jwt_revocation_api\" directive is not allowed here"),
        "{log}"
    );
}

/// The lifecycle around one revocation of `alice`: the phases, subrequests and internal
/// redirects that reach a checked location by another way.
fn lifecycle_conf() -> String {
    format!(
        "auth_jwt_revocation_zone zone=logout:64k;\n\
         {}",
        server(&format!(
            "auth_jwt_key {hex};\n\
             auth_jwt_enabled on;\n\
             auth_jwt_revocation logout;\n\
             location / {{ add_header X-Jwt-Error $jwt_error always; empty_gif; }}\n\
             location = /who {{ auth_jwt_enabled off; \
             return 200 \"[$jwt_claim_sub][$jwt_error]\"; }}\n\
             location /via-auth-request {{ auth_jwt_enabled off; auth_request /auth; empty_gif; }}\n\
             location = /auth {{ internal; empty_gif; }}\n\
             location /redirected {{ auth_jwt_revocation off; error_page 404 = /; \
             try_files /nothing-here =404; }}\n\
             location /ssi {{ auth_jwt_enabled off; ssi on; ssi_types *; \
             return 200 '<!--# include virtual=\"/revoke\" -->'; }}\n\
             location /mirrored {{ auth_jwt_enabled off; mirror /revoke; \
             mirror_request_body on; {PROXY} }}\n\
             location = /revoke {{ auth_jwt_enabled off; allow 127.0.0.1; deny all; \
             auth_jwt_revocation_api logout; }}",
            hex = secret_hex()
        ))
    )
}

#[test]
fn a_revoked_token_is_invalid_in_every_phase_subrequest_and_redirect() {
    let n = Nginx::start(&lifecycle_conf());
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    for path in ["/", "/via-auth-request", "/redirected"] {
        assert_eq!(get(&n, path, &old).status, 200, "{path} before");
    }
    assert_eq!(get(&n, "/who", &old).body, "[alice][]");
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
    // The rewrite phase reads the variables before any access check.
    assert_eq!(get(&n, "/who", &old).body, "[][revoked]");
    // auth_request's subrequest, and an internal redirect from an unchecked location.
    assert_eq!(get(&n, "/via-auth-request", &old).status, 401);
    assert_eq!(get(&n, "/redirected", &old).status, 401);
    assert_eq!(get(&n, "/", &old).status, 401);
}

#[test]
fn the_api_answers_no_subrequest_which_would_skip_allow_and_deny() {
    let n = Nginx::start(&lifecycle_conf());
    let exp = now() + 600;
    assert_eq!(
        api(
            &n,
            "POST",
            &format!(r#"{{"jti":"secret-jti","exp":{exp}}}"#)
        )
        .status,
        200
    );
    // An SSI include would show the list to whoever loads the page.
    let r = n.get("/ssi", &[]);
    assert!(!r.body.contains("secret-jti"), "{}", r.body);
    // A mirror replays the client's POST to the API.
    let r = n.send("POST", "/mirrored", &[], br#"{"sub":"victim"}"#);
    assert_eq!(r.status, 200);
    n.wait_for("the mirror's refusal", || {
        n.jwt_log_lines()
            .iter()
            .filter(|l| l.contains("the revocation API does not answer subrequests"))
            .count()
            >= 2
    });
    let listed = api(&n, "GET", "").body;
    assert!(!listed.contains("victim"), "{listed}");
}

#[test]
fn every_worker_sees_a_change_at_once_and_a_reload_keeps_the_list() {
    let n = Nginx::start_full("worker_processes 2;", &conf(""), &[]);
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    // Both workers verify (and cache) the token first.
    for _ in 0..20 {
        assert_eq!(get(&n, "/", &old).status, 200);
    }
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
    for _ in 0..40 {
        assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    }
    n.reload();
    for _ in 0..20 {
        assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    }
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn the_plus_family_checks_the_list_too() {
    let jwks = jwks(&[json!({"kty": "oct", "kid": "k1", "k": b64(SECRET)})]);
    let http = format!(
        "auth_jwt_revocation_zone zone=logout:64k;\n{}",
        server(
            "auth_jwt \"api\";\nauth_jwt_key_file conf/keys.json;\nauth_jwt_revocation logout;\n\
             location / { add_header X-Jwt-Error $jwt_error always; empty_gif; }\n\
             location = /revoke { auth_jwt off; auth_jwt_revocation_api logout; }"
        )
    );
    let n = Nginx::start_full("", &http, &[("conf/keys.json", &jwks)]);
    let exp = now() + 3600;
    let t = hs_kid(
        Algorithm::HS256,
        SECRET,
        Some("k1"),
        &json!({"sub": "alice", "jti": "j-1", "exp": exp}),
    );
    assert_eq!(get(&n, "/", &t).status, 200);
    assert_eq!(
        api(&n, "POST", &format!(r#"{{"jti":"j-1","exp":{exp}}}"#)).status,
        200
    );
    let r = get(&n, "/", &t);
    assert_eq!((r.status, r.header("X-Jwt-Error")), (401, Some("revoked")));
}

/// A server checked against `logout`, which follows the list `p` publishes every second.
fn follower_conf(port: u16, extra: &str) -> String {
    format!(
        "auth_jwt_revocation_zone zone=logout:64k {extra};\n{}",
        server(&format!(
            "auth_jwt_key {hex};\n\
             auth_jwt_enabled on;\n\
             auth_jwt_revocation logout;\n\
             auth_jwt_revocation_request /revocations 1s;\n\
             location / {{ add_header X-Jwt-Error $jwt_error always; empty_gif; }}\n\
             location = /revocations {{ internal; proxy_pass http://127.0.0.1:{port}/revoke; \
             proxy_read_timeout 2s; subrequest_output_buffer_size 1m; }}\n\
             location = /revoke {{ auth_jwt_enabled off; auth_jwt_revocation_api logout; }}",
            hex = secret_hex()
        ))
    )
}

/// How long `/` takes to answer `token`, up to the end of its body: nginx holds the
/// connection of a request until its background subrequests end, but the answer is sent.
fn time_to_answer(n: &Nginx, token: &str) -> std::time::Duration {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let k = s.read(&mut buf).unwrap();
        assert!(
            k > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..k]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            // empty_gif's 43 bytes.
            if got.len() >= end + 4 + 43 {
                return started.elapsed();
            }
        }
    }
}

#[test]
fn a_fleet_follows_one_list_within_its_interval_and_keeps_it_when_the_publisher_fails() {
    let p = Provider::start(Answer::ok("[]"));
    let n = Nginx::start(&follower_conf(p.port, ""));
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    assert_eq!(get(&n, "/", &old).status, 200);
    n.wait_for("the first fetch", || p.fetches() == 1);
    // The request that finds the list due does not wait for the fetch.
    p.set(Answer::Slow(
        std::time::Duration::from_millis(1500),
        Box::new(Answer::ok(&format!(
            r#"[{{"sub":"alice","cutoff":{}}}]"#,
            now()
        ))),
    ));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let waited = time_to_answer(&n, &old);
    assert!(waited.as_millis() < 1000, "{waited:?}");
    n.wait_for("the list merged", || {
        get(&n, "/", &old).header("X-Jwt-Error") == Some("revoked")
    });
    // The publisher fails: what is known stays, the failure is logged, and it is backed off.
    p.set(Answer::status(503, "down"));
    let fetches = p.fetches();
    // Requests drive the fetches.
    n.wait_for("a failed fetch", || {
        get(&n, "/", &old);
        p.fetches() > fetches
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    let lines = n.jwt_log_lines();
    assert!(
        lines.iter().any(|l| l.contains("[error]")
            && l.contains(
                "auth_jwt: revocations: \"/revocations\" answered 503, not 200; \
                           the revocations merged before stay in effect"
            )),
        "{lines:?}"
    );
    // An unusable list merges nothing.
    p.set(Answer::ok(r#"[{"sub":"bob","cutoff":1},{"sub":""}]"#));
    n.wait_for("the bad list", || {
        get(&n, "/", &old);
        n.jwt_log_lines()
            .iter()
            .any(|l| l.contains("answered an unusable revocation list: entry 2"))
    });
    let listed = api(&n, "GET", "").body;
    assert!(
        listed.contains("alice") && !listed.contains("bob"),
        "{listed}"
    );
}

#[test]
fn followers_honour_a_logout_at_the_publisher_within_the_interval() {
    // The publisher: an nginx whose API the login service posts to.
    let publisher = Nginx::start(&conf(""));
    let followers: Vec<Nginx> = (0..2)
        .map(|_| Nginx::start(&follower_conf(publisher.port, "")))
        .collect();
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    for f in &followers {
        assert_eq!(get(f, "/", &old).status, 200);
    }
    assert_eq!(api(&publisher, "POST", r#"{"sub":"alice"}"#).status, 200);
    let posted = std::time::Instant::now();
    for f in &followers {
        f.wait_for("the logout to reach the follower", || {
            get(f, "/", &old).header("X-Jwt-Error") == Some("revoked")
        });
    }
    // One interval (1 s) and the fetch itself; polling adds a little.
    assert!(
        posted.elapsed().as_millis() < 3000,
        "{:?}",
        posted.elapsed()
    );
}

#[test]
fn entries_expire_on_their_own_a_subject_after_ttl_a_token_at_its_exp() {
    let n = Nginx::start(&conf("ttl=2s"));
    let old = token_of(json!({"sub": "alice", "jti": "j", "iat": now() - 10, "exp": now() + 3600}));
    let body = format!(r#"[{{"sub":"alice"}},{{"jti":"k","exp":{}}}]"#, now() + 2);
    assert_eq!(api(&n, "POST", &body).status, 200);
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(get(&n, "/", &old).status, 200, "the cutoff is past its ttl");
    assert_eq!(
        api(&n, "GET", "").body,
        "[]\n",
        "neither entry is listed any more"
    );
}

#[test]
fn a_state_file_the_workers_cannot_write_is_said_at_start_and_a_change_is_not_acknowledged() {
    // Root's, not writable by the workers' user.
    let dir = state_dir("rostate", 0o755);
    let state = dir.join("revoked.json");
    let n = Nginx::start(&conf(&format!("state={}", state.display())));
    n.wait_for("the worker's warning", || {
        n.error_log().contains(&format!(
            "auth_jwt_revocation_zone \"logout\": cannot write \"{}.",
            state.display()
        ))
    });
    let r = api(&n, "POST", r#"{"sub":"alice"}"#);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("the change is in effect but not saved"),
        "{}",
        r.body
    );
    // In effect all the same: refusing more is the safe side.
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 60}));
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    assert!(!state.exists());
    drop(n);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reload_that_resizes_the_zone_carries_every_entry_over_or_fails() {
    let n = Nginx::start(&conf(""));
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    let subs: Vec<String> = (0..80).map(|i| format!(r#"{{"sub":"u{i}"}}"#)).collect();
    assert_eq!(
        api(&n, "POST", &format!("[{}]", subs.join(","))).status,
        200
    );
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
    // Enlarged (a 507 asks for it): a new zone, which takes the entries over.
    edit_conf(&n, "zone=logout:64k", "zone=logout:128k");
    n.reload();
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 81);
    // Shrunk below what it holds: the reload fails, said, and the running list stays.
    edit_conf(&n, "zone=logout:128k", "zone=logout:16k");
    signal_reload(&n);
    n.wait_for("the refused reload", || {
        n.error_log()
            .contains("auth_jwt_revocation_zone \"logout\" holds 42 entries, too few")
    });
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    edit_conf(&n, "zone=logout:16k", "zone=logout:128k");
    // The refusal is meant: the log check at the end must not take it for a failure.
    let log = n.prefix.join("logs/error.log");
    let text = fs::read_to_string(&log)
        .unwrap()
        .replace("[emerg]", "[refused]");
    fs::write(&log, text).unwrap();
}

#[test]
fn a_numeric_sub_or_jti_is_listed_as_its_json_text() {
    let n = Nginx::start(&conf(""));
    let t = token_of(json!({"sub": 12345, "jti": 777, "iat": now() - 10, "exp": now() + 3600}));
    assert_eq!(get(&n, "/", &t).status, 200);
    assert_eq!(api(&n, "POST", r#"{"sub":"12345"}"#).status, 200);
    assert_eq!(get(&n, "/", &t).header("X-Jwt-Error"), Some("revoked"));
    assert_eq!(api(&n, "DELETE", r#"{"sub":"12345"}"#).status, 200);
    let exp = now() + 3600;
    assert_eq!(
        api(&n, "POST", &format!(r#"{{"jti":"777","exp":{exp}}}"#)).status,
        200
    );
    assert_eq!(get(&n, "/", &t).header("X-Jwt-Error"), Some("revoked"));
}

#[test]
fn names_up_to_255_bytes_are_listed() {
    let n = Nginx::start(&conf(""));
    let sub = format!("https://idp.example.com/users/{}", "x".repeat(255 - 30));
    assert_eq!(sub.len(), 255);
    let t = token_of(json!({"sub": sub, "iat": now() - 10, "exp": now() + 3600}));
    let r = api(&n, "POST", &json!({"sub": sub}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&n, "/", &t).header("X-Jwt-Error"), Some("revoked"));
    let r = api(&n, "POST", &json!({"sub": format!("{sub}y")}).to_string());
    assert_eq!(r.status, 400);
    assert!(r.body.contains("longer than 255 bytes"), "{}", r.body);
}

#[test]
fn a_change_the_state_file_missed_is_saved_by_the_next_request() {
    let dir = state_dir("retry", 0o755);
    let state = dir.join("revoked.json");
    let n = Nginx::start(&conf(&format!("state={}", state.display())));
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 500);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    // The same request again changes nothing in the zone, but the file still lacks it.
    let r = api(&n, "POST", r#"{"sub":"alice"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let saved = fs::read_to_string(&state).unwrap();
    assert!(saved.contains("\"alice\""), "{saved}");
    // The file is its owner's only.
    let mode = fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(n);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_large_change_is_linear_and_holds_the_lock_briefly() {
    let n = Nginx::start(&format!(
        "client_body_buffer_size 8m;\n{}",
        conf("").replace("zone=logout:64k", "zone=logout:16m")
    ));
    let body: Vec<String> = (0..30_000)
        .map(|i| format!(r#"{{"sub":"user-{i}"}}"#))
        .collect();
    let started = std::time::Instant::now();
    let r = api(&n, "POST", &format!("[{}]", body.join(",")));
    assert_eq!((r.status, r.body.as_str()), (200, "{\"stored\":30000}\n"));
    assert!(
        started.elapsed().as_secs_f64() < 3.0,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_list_this_server_serves_badly_is_backed_off_like_any_failed_fetch() {
    // The list is a file nginx serves itself (no upstream): its content is still the source's.
    let http = format!(
        "auth_jwt_revocation_zone zone=logout:64k;\n{}",
        server(&format!(
            "auth_jwt_key {};\nauth_jwt_enabled on;\nauth_jwt_revocation logout;\n\
             auth_jwt_revocation_request /revocations 1s;\n\
             location / {{ empty_gif; }}\n\
             location = /revocations {{ internal; alias conf/list.json; \
             subrequest_output_buffer_size 64k; }}",
            secret_hex()
        ))
    );
    let n = Nginx::start_full("", &http, &[("conf/list.json", r#"[{"sub":""}]"#)]);
    let t = token_of(json!({"sub": "bob", "iat": now() - 10, "exp": now() + 3600}));
    for _ in 0..30 {
        assert_eq!(get(&n, "/", &t).status, 200);
    }
    let fetches = n
        .jwt_log_lines()
        .iter()
        .filter(|l| l.contains("answered an unusable revocation list"))
        .count();
    assert_eq!(fetches, 1, "{:?}", n.jwt_log_lines());
}

#[test]
fn a_follower_back_from_an_idle_spell_judges_with_the_list_of_now() {
    let publisher = Nginx::start(&conf(""));
    let follower = Nginx::start(&follower_conf(publisher.port, ""));
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    // A fresh start waits for the first fetch, which lists nothing yet.
    assert_eq!(get(&follower, "/", &old).status, 200);
    // Idle for more than twice the interval, during which the publisher revokes alice.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(api(&publisher, "POST", r#"{"sub":"alice"}"#).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    // The first request waits for the fetch it starts; none of the burst is let through.
    let answers: Vec<Option<String>> = (0..20)
        .map(|_| {
            get(&follower, "/", &old)
                .header("X-Jwt-Error")
                .map(str::to_owned)
        })
        .collect();
    assert!(
        answers.iter().all(|a| a.as_deref() == Some("revoked")),
        "{answers:?}"
    );
}

#[test]
fn a_verdict_judged_before_a_revocation_is_not_reused_after_an_internal_redirect() {
    // The upstream answers 502 slowly; meanwhile alice is revoked; the error page's location
    // judges the token again.
    let p = Provider::start(Answer::Slow(
        std::time::Duration::from_millis(1500),
        Box::new(Answer::status(502, "down")),
    ));
    let http = format!(
        "auth_jwt_revocation_zone zone=logout:64k;\n{}",
        server(&format!(
            "auth_jwt_key {hex};\nauth_jwt_enabled on;\nauth_jwt_revocation logout;\n\
             location / {{ proxy_pass http://127.0.0.1:{port}; proxy_intercept_errors on; \
             error_page 502 = /fallback; }}\n\
             location = /fallback {{ add_header X-Sub $jwt_claim_sub always; \
             add_header X-Jwt-Error $jwt_error always; empty_gif; }}\n\
             location = /revoke {{ auth_jwt_enabled off; auth_jwt_revocation_api logout; }}",
            hex = secret_hex(),
            port = p.port
        ))
    );
    let n = Nginx::start(&http);
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    let slow = std::thread::scope(|s| {
        let slow = s.spawn(|| get(&n, "/", &old));
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
        slow.join().unwrap()
    });
    assert_eq!(
        (slow.status, slow.header("X-Jwt-Error")),
        (401, Some("revoked")),
        "{slow:?}"
    );
}

#[test]
fn a_change_that_reaches_a_replaced_zone_is_refused_not_lost() {
    use std::io::{Read, Write};
    let n = Nginx::start(&conf(""));
    // A POST whose body is still arriving when a reload resizes the zone: the old worker
    // finishes it against the zone the new one has already copied.
    let body = br#"{"sub":"alice"}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port)).unwrap();
    let head = format!(
        "POST /revoke HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..5]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    edit_conf(&n, "zone=logout:64k", "zone=logout:128k");
    // The old worker cannot exit before this request ends: wait for the new one only.
    let workers = n.workers_started().len();
    signal_reload(&n);
    n.wait_for("the new worker", || n.workers_started().len() > workers);
    s.write_all(&body[5..]).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("is being replaced by a reload"), "{answer}");
    // Sent again (the old worker takes new connections for 100 ms more, and refuses the
    // same way), it reaches the new zone.
    n.wait_for("the change accepted", || {
        api(&n, "POST", r#"{"sub":"alice"}"#).status == 200
    });
    // A request the old worker still takes in those 100 ms is judged with the list it handed
    // over (docs/REVOCATION.md, the state file); the new worker's has the change.
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    n.wait_for("the old worker's exit", || {
        n.error_log().lines().any(|l| l.ends_with(": exit"))
    });
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
}

#[test]
fn a_new_ttl_applies_from_the_reload_that_sets_it() {
    let n = Nginx::start(&conf("ttl=1h"));
    let old = token_of(json!({"sub": "alice", "iat": now() - 10, "exp": now() + 3600}));
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(get(&n, "/", &old).header("X-Jwt-Error"), Some("revoked"));
    // A ttl of 1 s: the cutoff, 2 s old, no longer counts.
    edit_conf(&n, "ttl=1h", "ttl=1s");
    n.reload();
    assert_eq!(get(&n, "/", &old).status, 200);
}

#[test]
fn head_lists_nothing_and_a_body_nginx_kept_in_a_file_is_refused() {
    let n = Nginx::start(&format!("client_body_buffer_size 1k;\n{}", conf("")));
    assert_eq!(api(&n, "POST", r#"{"sub":"alice"}"#).status, 200);
    let r = n.request("HEAD", "/revoke", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    // Some 20 KB: more than nginx reads along with the headers, kept in a file past 1k.
    let entries: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"sub":"user-{i}"}}"#))
        .collect();
    let r = api(&n, "POST", &format!("[{}]", entries.join(",")));
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("client_body_buffer_size"), "{}", r.body);
    let listed: serde_json::Value = serde_json::from_str(&api(&n, "GET", "").body).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing of the refused body"
    );
}

#[test]
fn a_reload_merges_what_the_state_file_holds() {
    let dir = state_dir("reloadstate", 0o777);
    let state = dir.join("revoked.json");
    let n = Nginx::start(&conf(&format!("state={}", state.display())));
    let bob = token_of(json!({"sub": "bob", "iat": now() - 10, "exp": now() + 3600}));
    assert_eq!(get(&n, "/", &bob).status, 200);
    // An entry written to the file by hand (another tool, a restore) applies at the reload.
    fs::write(&state, format!(r#"[{{"sub":"bob","cutoff":{}}}]"#, now())).unwrap();
    n.reload();
    assert_eq!(get(&n, "/", &bob).header("X-Jwt-Error"), Some("revoked"));
    drop(n);
    fs::remove_dir_all(&dir).unwrap();
}
