//! Failure responses (docs/DIRECTIVES.md: Responses and logs; docs/SECURITY.md: Redirects):
//! 401 challenges, 302 redirects, and what is logged.

mod common;
use common::*;

const LOGIN: &str = "https://login.example.com/sso";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn redirecting(loginurl: &str) -> Nginx {
    Nginx::start(&server(&format!(
        "{}\nauth_jwt_redirect on;\nauth_jwt_loginurl \"{loginurl}\";\nlocation / {{ {PROXY} }}",
        key_line()
    )))
}

/// Splits a Location into (base, decoded return_url), checking the encoding is a proper
/// RFC 3986 component encoding (only unreserved characters and %XX escapes).
fn split_location(location: &str, sep: char) -> (&str, String) {
    let marker = format!("{sep}return_url=");
    let at = location
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {location:?}"));
    let enc = &location[at + marker.len()..];
    let b = enc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            assert!(
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(),
                "bad escape in {enc:?}"
            );
            i += 3;
        } else {
            assert!(
                c.is_ascii_alphanumeric() || b"-._~".contains(&c),
                "unencoded {:?} in return_url {enc:?}",
                c as char
            );
            i += 1;
        }
    }
    (&location[..at], percent_decode(enc))
}

#[test]
fn missing_token_gives_401_challenge_without_error() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_realm \"example\";\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let r = n.get("/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers_named("www-authenticate"),
        vec!["Bearer realm=\"example\""]
    );
    assert!(r.header("location").is_none());
}

#[test]
fn presented_token_gives_invalid_token_error() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_realm \"example\";\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let expired = hs256(SECRET, json!({"sub": "a", "exp": now() - 100}));
    for t in ["garbage", expired.as_str()] {
        let r = n.get("/", &[("Authorization", &bearer(t))]);
        assert_eq!(r.status, 401);
        let v = r.headers_named("www-authenticate");
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("Bearer realm=\"example\""), "{v:?}");
        assert!(v[0].contains("error=\"invalid_token\""), "{v:?}");
        assert!(
            !v[0].contains(t),
            "the challenge must not echo the token: {v:?}"
        );
    }
}

#[test]
fn redirect_get_carries_exact_return_url() {
    let n = redirecting(LOGIN);
    let r = n.get("/path?a=1&b=2", &[]);
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("location").unwrap();
    let (base, url) = split_location(loc, '?');
    assert_eq!(base, LOGIN);
    assert_eq!(url, format!("http://127.0.0.1:{}/path?a=1&b=2", n.port));
    assert!(r.header("www-authenticate").is_none());
    // An invalid token redirects too.
    let r = n.get("/x", &[("Authorization", "Bearer not.a.token")]);
    assert_eq!(r.status, 302);
    let (_, url) = split_location(r.header("location").unwrap(), '?');
    assert_eq!(url, format!("http://127.0.0.1:{}/x", n.port));
    // And a valid one passes.
    let t = hs256(SECRET, claims("u"));
    assert_eq!(n.get("/x", &[("Authorization", &bearer(&t))]).status, 200);
}

#[test]
fn redirect_uses_host_header_as_sent() {
    let n = redirecting(LOGIN);
    let r = n.get(
        "/a%20b/c?q=x%26y&z=%C3%A9",
        &[("Host", "app.example.com:8443")],
    );
    assert_eq!(r.status, 302);
    let (_, url) = split_location(r.header("location").unwrap(), '?');
    assert_eq!(url, "http://app.example.com:8443/a%20b/c?q=x%26y&z=%C3%A9");
    let r = n.get("/p", &[("Host", "app.example.com")]);
    let (_, url) = split_location(r.header("location").unwrap(), '?');
    assert_eq!(url, "http://app.example.com/p");
}

#[test]
fn redirect_appends_with_ampersand_when_loginurl_has_query() {
    let n = redirecting("https://login.example.com/sso?app=wiki");
    let r = n.get("/page", &[]);
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    let (base, url) = split_location(loc, '&');
    assert_eq!(base, "https://login.example.com/sso?app=wiki");
    assert_eq!(url, format!("http://127.0.0.1:{}/page", n.port));
    assert_eq!(loc.matches('?').count(), 1, "{loc}");
}

#[test]
fn redirect_post_goes_to_loginurl_alone() {
    let n = redirecting(LOGIN);
    for method in ["POST", "PUT", "DELETE"] {
        let r = n.request(method, "/form?a=1", &[]);
        assert_eq!(r.status, 302, "{method}");
        assert_eq!(r.header("location"), Some(LOGIN), "{method}");
    }
}

#[test]
fn redirect_head_carries_return_url() {
    let n = redirecting(LOGIN);
    let r = n.request("HEAD", "/h?x=1", &[]);
    assert_eq!(r.status, 302);
    let (base, url) = split_location(r.header("location").unwrap(), '?');
    assert_eq!(base, LOGIN);
    assert_eq!(url, format!("http://127.0.0.1:{}/h?x=1", n.port));
}

#[test]
fn redirect_loginurl_with_variables() {
    let n = redirecting("https://$host/login/$arg_app");
    let r = n.get("/p?app=crm", &[("Host", "sub.example.com:8080")]);
    assert_eq!(r.status, 302);
    let (base, url) = split_location(r.header("location").unwrap(), '?');
    assert_eq!(base, "https://sub.example.com/login/crm");
    assert_eq!(url, "http://sub.example.com:8080/p?app=crm");
}

#[test]
fn one_log_line_per_failure_with_reason_never_the_token() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_issuer https://issuer.example.com;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let expired = hs256(
        SECRET,
        json!({"sub": "a", "iss": "https://issuer.example.com", "exp": now() - 100}),
    );
    let bad_sig = hs256(b"some other secret some other secret", claims("b"));
    let bad_iss = hs256(
        SECRET,
        json!({"sub": "c", "iss": "https://evil.example.com", "exp": now() + 100}),
    );
    let good = hs256(
        SECRET,
        json!({"sub": "d", "iss": "https://issuer.example.com", "exp": now() + 100}),
    );
    let cases: [(Option<&str>, &str, &str); 4] = [
        (None, "missing", "[info]"),
        (Some(&expired), "expired", "[error]"),
        (Some(&bad_sig), "signature", "[error]"),
        (Some(&bad_iss), "issuer", "[error]"),
    ];
    for (i, (token, word, level)) in cases.iter().enumerate() {
        let r = match token {
            Some(t) => n.get("/", &[("Authorization", &bearer(t))]),
            None => n.get("/", &[]),
        };
        assert_eq!(r.status, 401);
        let lines = n.jwt_log_lines();
        assert_eq!(
            lines.len(),
            i + 1,
            "one line per failed request:\n{}",
            lines.join("\n")
        );
        let last = lines.last().unwrap();
        assert!(last.contains(&format!("auth_jwt: {word}: ")), "{last}");
        assert!(
            last.contains(level),
            "{word} should be logged at {level}: {last}"
        );
    }
    assert_eq!(n.get("/", &[("Authorization", &bearer(&good))]).status, 200);
    assert_eq!(
        n.jwt_log_lines().len(),
        cases.len(),
        "a success logs nothing"
    );
    let log = n.error_log();
    for t in [&expired, &bad_sig, &bad_iss, &good] {
        for segment in t.split('.') {
            assert!(
                !log.contains(segment),
                "token segment {segment} in the error log:\n{log}"
            );
        }
    }
    assert!(!log.contains(&secret_hex()), "the key is in the error log");
    assert!(
        !log.contains(std::str::from_utf8(SECRET).unwrap()),
        "the key is in the error log"
    );
}
