//! One test per defect of the C module in the first six rows of the table in README.md
//! ("Migrating from TeslaGov/ngx-http-auth-jwt-module"; `defectN` is row N), each written so
//! that it fails on the C module (TeslaGov 2.4.0) and passes on a correct one. The table's
//! other rows are specified where their behaviour is: the 401 challenge in responses.rs, client
//! `JWT-*` headers and `auth_request` targets in lifecycle.rs, the algorithms in directives.rs
//! and key_config.rs.

mod common;
use common::*;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn error_word(r: &Response) -> &str {
    r.header("x-jwt-error").unwrap_or("")
}

// Defect 1: Algorithm confusion ---------------------------------------------------------------

#[test]
fn defect1_hs256_token_signed_with_public_key_bytes_is_refused() {
    let rsa_pub = key("rsa2048.pub");
    let ec_pub = key("ec256.pub");
    let n = Nginx::start(&server(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n\
         location /inline {{ auth_jwt_key \"{}\"; auth_jwt_algorithm RS256; {PROXY} }}\n\
         location /file {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{{{KEYS}}}}/rsa2048.pub; auth_jwt_algorithm RS256; {PROXY} }}\n\
         location /ec {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{{{KEYS}}}}/ec256.pub; auth_jwt_algorithm ES256; {PROXY} }}",
        rsa_pub.trim()
    )));
    let c = claims("attacker");
    for secret in [
        rsa_pub.as_bytes(),
        rsa_pub.trim().as_bytes(),
        rsa_pub.trim_end().as_bytes(),
    ] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let forged = hs(alg, secret, &c);
            for loc in ["/inline", "/file"] {
                let r = n.get(loc, &[("Authorization", &bearer(&forged))]);
                assert_eq!(
                    (r.status, error_word(&r)),
                    (401, "algorithm"),
                    "{loc} {alg:?}"
                );
            }
        }
    }
    let forged = hs256(ec_pub.as_bytes(), c.clone());
    let r = n.get("/ec", &[("Authorization", &bearer(&forged))]);
    assert_eq!((r.status, error_word(&r)), (401, "algorithm"));
    // The genuine tokens pass: the locations work.
    let rs = signed(Algorithm::RS256, "rsa2048", &c);
    assert_eq!(
        n.get("/inline", &[("Authorization", &bearer(&rs))]).status,
        200
    );
    assert_eq!(
        n.get("/file", &[("Authorization", &bearer(&rs))]).status,
        200
    );
    let es = signed(Algorithm::ES256, "ec256", &c);
    assert_eq!(n.get("/ec", &[("Authorization", &bearer(&es))]).status, 200);
}

// Defect 2: Redirect Location leaks bytes of other requests -----------------------------------

#[test]
fn defect2_redirect_location_is_exact_on_non_default_port() {
    let n = Nginx::start(&format!(
        "large_client_header_buffers 4 32k;\n{}",
        server(&format!(
            "{}\nauth_jwt_redirect on;\nauth_jwt_loginurl https://login.example.com/;\n\
             location / {{ {PROXY} }}\nlocation /api {{ auth_jwt_redirect off; {PROXY} }}",
            key_line()
        ))
    ));
    assert_ne!(n.port, 80);
    for i in 0..40 {
        // A long JWT-bearing request in between, to fill memory with token bytes.
        let long = hs256(
            SECRET,
            json!({"sub": format!("user{i}"), "pad": "Z".repeat(4000 + i * 37), "exp": now() + 600}),
        );
        let r = n.get(
            "/api/data",
            &[
                ("Authorization", &bearer(&long)),
                ("Cookie", &format!("auth={long}")),
            ],
        );
        assert_eq!(r.status, 200);
        let bad = format!("{}.{}", "eyJhbGciOiJIUzI1NiJ9", "A".repeat(i));
        let r = n.get("/api/data", &[("Authorization", &bearer(&bad))]);
        assert_eq!(r.status, 401);

        let path = format!("/page/{i}?q={i}&x=y");
        let host = if i % 2 == 0 {
            n.host()
        } else {
            format!("localhost:{}", n.port)
        };
        let r = n.get(&path, &[("Host", &host)]);
        assert_eq!(r.status, 302);
        let loc = r.header("location").unwrap();
        let enc = loc
            .strip_prefix("https://login.example.com/?return_url=")
            .unwrap_or_else(|| panic!("{loc}"));
        assert_eq!(
            percent_decode(enc),
            format!("http://{host}{path}"),
            "request {i}: {loc}"
        );
        assert!(
            !loc.contains("eyJ"),
            "a token leaked into the Location: {loc}"
        );
    }
}

// Defect 3: Worker crashes --------------------------------------------------------------------

#[test]
fn defect3_claim_variable_in_http_log_format_without_auth_config() {
    let n = Nginx::start(&format!(
        "log_format claims '$uri foo=[$jwt_claim_foo] sub=[$jwt_sub] hdr=[$jwt_header_alg]';\n\
         access_log {{{{PREFIX}}}}/logs/claims.log claims;\n\
         server {{ listen 127.0.0.1:{{{{PORT}}}}; server_name plain;\n\
           location / {{ {PROXY} }}\n\
           location /tokened {{ {} {PROXY} }}\n\
         }}",
        key_line()
    ));
    let t = hs256(
        SECRET,
        json!({"sub": "s", "foo": "bar", "exp": now() + 600}),
    );
    for i in 0..20 {
        assert_eq!(n.get(&format!("/plain{i}"), &[]).status, 200);
        assert_eq!(
            n.get(&format!("/plain{i}"), &[("Authorization", &bearer(&t))])
                .status,
            200
        );
        assert_eq!(
            n.get("/tokened", &[("Authorization", &bearer(&t))]).status,
            200
        );
    }
    let log = n.error_log();
    assert!(
        !log.contains("exited on signal"),
        "a worker crashed:\n{log}"
    );
    let lines = n.read("logs/claims.log");
    assert_eq!(lines.lines().count(), 60, "{lines}");
    assert!(
        lines
            .lines()
            .any(|l| l == "/plain0 foo=[-] sub=[-] hdr=[-]"),
        "{lines}"
    );
    assert_eq!(
        lines
            .lines()
            .filter(|l| *l == "/tokened foo=[bar] sub=[s] hdr=[HS256]")
            .count(),
        20,
        "{lines}"
    );
}

#[test]
fn defect3_unsupported_algorithm_fails_configuration_instead_of_crashing() {
    let body = server(&format!(
        "{}\nauth_jwt_algorithm RS9000;\nlocation / {{ return 204; }}",
        key_line()
    ));
    expect_emerg_at(&body, "RS9000");
}

// Defect 4: Claim lists of different locations ------------------------------------------------

#[test]
fn defect4_different_var_claim_lists_per_location() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /a {{ auth_jwt_extract_var_claims a b; add_header X-V \"$jwt_claim_a|$jwt_claim_b|$jwt_claim_c\"; {PROXY} }}\n\
         location /b {{ auth_jwt_extract_var_claims c b; add_header X-V \"$jwt_claim_a|$jwt_claim_b|$jwt_claim_c\"; {PROXY} }}\n\
         location /c {{ auth_jwt_extract_var_claims c; return 200 \"$jwt_claim_c|$jwt_claim_a\"; }}",
        key_line()
    )));
    let t = hs256(
        SECRET,
        json!({"sub": "s", "a": "A", "b": "B", "c": "C", "exp": now() + 600}),
    );
    for _ in 0..3 {
        for loc in ["/a", "/b"] {
            let r = n.get(loc, &[("Authorization", &bearer(&t))]);
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-v"), Some("A|B|C"), "{loc}");
        }
        let r = n.get("/c", &[("Authorization", &bearer(&t))]);
        assert_eq!(r.body, "C|A");
    }
}

// Defect 5: JWT-<claim> request headers replaced, not appended --------------------------------

#[test]
fn defect5_client_jwt_sub_header_never_reaches_upstream() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location / {{ auth_jwt_extract_request_claims sub email; proxy_set_header X-Forwarded-User $http_jwt_sub; {PROXY} }}\n\
         location /off {{ auth_jwt_enabled off; auth_jwt_extract_request_claims sub; proxy_set_header X-Forwarded-User $http_jwt_sub; {PROXY} }}",
        key_line()
    )));
    let alice = hs256(SECRET, json!({"sub": "alice", "exp": now() + 600}));
    let nosub = hs256(
        SECRET,
        json!({"email": "x@example.com", "exp": now() + 600}),
    );
    let spoofs: [&[(&str, &str)]; 4] = [
        &[("JWT-Sub", "root")],
        &[("jwt-sub", "root")],
        &[("JWT-SUB", "root"), ("Jwt-Sub", "admin")],
        &[
            ("JWT-Sub", "root"),
            ("JWT-Email", "root@example.com"),
            ("jwt-sub", "root"),
        ],
    ];
    for spoof in spoofs {
        let with = |t: &str| {
            let auth = bearer(t);
            let mut h: Vec<(&str, &str)> = spoof.to_vec();
            h.push(("Authorization", &auth));
            n.get("/", &h)
        };
        let no_user_reaches_upstream = |r: &Response| {
            assert!(
                r.upstream("jwt-sub").is_empty(),
                "{spoof:?}: {:?}",
                r.upstream_headers()
            );
            assert!(r.upstream("x-forwarded-user").is_empty(), "{spoof:?}");
        };
        let r = with(&alice);
        assert_eq!(r.status, 200);
        assert_eq!(r.upstream("jwt-sub"), vec!["alice"], "{spoof:?}");
        assert_eq!(r.upstream("x-forwarded-user"), vec!["alice"], "{spoof:?}");
        assert!(r.upstream("jwt-email").is_empty(), "{spoof:?}");
        let r = with(&nosub);
        assert_eq!(r.status, 200);
        no_user_reaches_upstream(&r);
        assert_eq!(r.upstream("jwt-email"), vec!["x@example.com"]);
        // Not enforced here, but still ours: the client's header is dropped.
        let r = n.get("/off", spoof);
        assert_eq!(r.status, 200);
        no_user_reaches_upstream(&r);
    }
    // A CORS preflight passes unchecked, and without the client's header either.
    let r = n.request(
        "OPTIONS",
        "/",
        &[
            ("JWT-Sub", "root"),
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.upstream("jwt-sub").is_empty(),
        "{:?}",
        r.upstream_headers()
    );
    // Other headers are left alone; every JWT-* header of the client is the module's.
    let r = n.get(
        "/",
        &[
            ("Authorization", &bearer(&alice)),
            ("X-Keep", "1"),
            ("JWT-Subject", "spoofed"),
        ],
    );
    assert_eq!(r.upstream("x-keep"), vec!["1"]);
    assert!(r.upstream("jwt-subject").is_empty());
}

/// A refused token does not end every request: with `satisfy any` another access module may
/// admit it, and `error_page 401 = @named` may proxy it. Neither may carry the client's header.
#[test]
fn defect5_client_jwt_sub_header_is_dropped_from_refused_requests_too() {
    let n = Nginx::start(&server(&format!(
        "{}
         auth_jwt_extract_request_claims sub;
         location /any/ {{ satisfy any; allow 127.0.0.1; deny all; {PROXY} }}
         location /fallback/ {{ error_page 401 = @anonymous; {PROXY} }}
         location @anonymous {{ auth_jwt_enabled off; proxy_set_header X-Anon 1; {PROXY} }}",
        key_line()
    )));
    let forged = hs256(
        b"not the secret",
        json!({"sub": "alice", "exp": now() + 600}),
    );
    for path in ["/any/", "/fallback/"] {
        for token in [None, Some(forged.as_str())] {
            let auth = token.map(bearer);
            let mut h = vec![("JWT-Sub", "root"), ("jwt-sub", "admin")];
            if let Some(a) = &auth {
                h.push(("Authorization", a));
            }
            let r = n.get(path, &h);
            assert_eq!(r.status, 200, "{path} {token:?}");
            assert!(
                r.upstream("jwt-sub").is_empty(),
                "{path} {token:?}: {:?}",
                r.upstream_headers()
            );
        }
    }
    // The fallback really went through the named location.
    let r = n.get("/fallback/", &[("JWT-Sub", "root")]);
    assert_eq!(r.upstream("x-anon"), vec!["1"]);
}

// Defect 6: nbf / iss / aud / leeway, key decoding, key file path, logged reasons -------------

#[test]
fn defect6_nbf_iss_aud_leeway_honoured() {
    let n = Nginx::start(&server(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n{}\n\
         auth_jwt_issuer https://login.example.com;\nauth_jwt_audience wiki;\n\
         location / {{ {PROXY} }}\nlocation /lee {{ auth_jwt_leeway 90s; {PROXY} }}",
        key_line()
    )));
    let t = |extra: serde_json::Value| {
        let mut c = json!({"sub": "s", "iss": "https://login.example.com", "aud": "wiki", "exp": now() + 600});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        bearer(&hs256(SECRET, c))
    };
    let get = |path: &str, tok: String| {
        let r = n.get(path, &[("Authorization", &tok)]);
        (r.status, error_word(&r).to_string())
    };
    assert_eq!(get("/", t(json!({}))), (200, String::new()));
    assert_eq!(
        get("/", t(json!({"nbf": now() + 60}))),
        (401, "not_yet_valid".into())
    );
    assert_eq!(
        get("/lee", t(json!({"nbf": now() + 60}))),
        (200, String::new())
    );
    assert_eq!(
        get("/", t(json!({"exp": now() - 60}))),
        (401, "expired".into())
    );
    assert_eq!(
        get("/lee", t(json!({"exp": now() - 60}))),
        (200, String::new())
    );
    assert_eq!(
        get("/", t(json!({"iss": "https://evil.example.com"}))),
        (401, "issuer".into())
    );
    assert_eq!(get("/", t(json!({"iss": null}))), (401, "issuer".into()));
    assert_eq!(get("/", t(json!({"aud": "crm"}))), (401, "audience".into()));
    assert_eq!(
        get("/", t(json!({"aud": ["crm", "wiki"]}))),
        (200, String::new())
    );
}

#[test]
fn defect6_hex_key_decoded_at_configuration() {
    // A bad hex key is a configuration error, not a per-request failure.
    let body = server(&format!("auth_jwt_key \"{}zz\";", secret_hex()));
    expect_emerg_at(&body, "auth_jwt_key");
    // Non-hex encodings exist.
    let n = Nginx::start(&server(&format!(
        "auth_jwt_key \"{}\" utf8;\nlocation / {{ {PROXY} }}",
        std::str::from_utf8(SECRET).unwrap()
    )));
    assert_eq!(
        n.get(
            "/",
            &[("Authorization", &bearer(&hs256(SECRET, claims("s"))))]
        )
        .status,
        200
    );
}

#[test]
fn defect6_key_file_relative_to_prefix_not_working_directory() {
    let pem = key("rsa2048.pub");
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "auth_jwt_algorithm RS256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/jwt/rsa.pem;\nlocation / {{ {PROXY} }}"
        )),
        &[("conf/jwt/rsa.pem", &pem)],
    );
    // The test process's working directory is the package root, which has no conf/jwt/rsa.pem.
    assert!(!std::path::Path::new("conf/jwt/rsa.pem").exists());
    let t = signed(Algorithm::RS256, "rsa2048", &claims("s"));
    assert_eq!(n.get("/", &[("Authorization", &bearer(&t))]).status, 200);
    // Read at configuration: removing the file does not matter any more.
    std::fs::remove_file(n.prefix.join("conf/jwt/rsa.pem")).unwrap();
    assert_eq!(n.get("/", &[("Authorization", &bearer(&t))]).status, 200);
}

#[test]
fn defect6_failures_logged_with_reason() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_audience wiki;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let cases = [
        (
            hs256(SECRET, json!({"sub": "s", "aud": "crm", "exp": now() + 60})),
            "audience",
        ),
        (
            hs256(
                SECRET,
                json!({"sub": "s", "aud": "wiki", "exp": now() - 60}),
            ),
            "expired",
        ),
        (
            hs256(b"wrong wrong wrong wrong wrong wrong", claims("s")),
            "signature",
        ),
        ("a.b".to_string(), "malformed"),
    ];
    for (t, word) in &cases {
        assert_eq!(n.get("/", &[("Authorization", &bearer(t))]).status, 401);
        let last = n.jwt_log_lines().pop().unwrap_or_default();
        assert!(
            last.contains("[error]") && last.contains(&format!("auth_jwt: {word}: ")),
            "{word}: {last}"
        );
        assert!(!last.contains(t.as_str()), "token in the log: {last}");
    }
}
