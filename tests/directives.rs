//! Every directive of docs/DIRECTIVES.md, through a real nginx.

mod common;
use common::*;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A server with this body, `$jwt_error` exposed as `X-Jwt-Error`, content from the upstream.
fn srv(body: &str) -> String {
    server(&format!(
        "add_header X-Jwt-Error $jwt_error always;\n{body}"
    ))
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn err(r: &Response) -> &str {
    r.header("x-jwt-error").unwrap_or("")
}

fn good() -> String {
    hs256(SECRET, claims("alice"))
}

/// Changes the payload of a token (keeping the signature): its signature no longer verifies.
fn tamper(token: &str) -> String {
    with_payload(token, &json!({"sub": "mallory", "exp": now() + 3600}))
}

// ---------------------------------------------------------------------------------------------
// auth_jwt_enabled
// ---------------------------------------------------------------------------------------------

#[test]
fn enabled_defaults_to_on_where_a_key_is_configured() {
    let n = Nginx::start(&srv(&format!("{}\nlocation / {{ {PROXY} }}", key_line())));
    let r = n.get("/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(err(&r), "missing");
    let r = n.get("/", &[("Authorization", &bearer(&good()))]);
    assert_eq!(r.status, 200);
}

#[test]
fn enabled_defaults_to_off_without_a_key() {
    let n = Nginx::start(&srv(&format!("location / {{ {PROXY} }}")));
    let r = n.get("/", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = n.get("/", &[("Authorization", "Bearer garbage")]);
    assert_eq!(r.status, 200, "{r:?}");
}

/// The one mistake `nginx -t` cannot see (docs/DIRECTIVES.md): switched on where no key
/// applies, the check fails closed with a 500 and says why, whatever the token.
#[test]
fn enabled_on_without_a_key_answers_500() {
    let n = Nginx::start(&srv(&format!(
        "location / {{ auth_jwt_enabled on; {PROXY} }}"
    )));
    for auth in ["", "Bearer garbage"] {
        let headers: &[(&str, &str)] = if auth.is_empty() {
            &[]
        } else {
            &[("Authorization", auth)]
        };
        let r = n.get("/", headers);
        assert_eq!(r.status, 500, "{r:?}");
        assert!(
            r.header("x-echo-upstream").is_none(),
            "reached the upstream: {r:?}"
        );
    }
    let lines = n.jwt_log_lines();
    assert!(
        lines.iter().all(|l| l.contains("[error]")
            && l.contains("auth_jwt: key: no \"auth_jwt_key\" or key file is configured")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn enabled_on_and_off_explicitly() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_enabled off;\nlocation / {{ {PROXY} }}\nlocation /on {{ auth_jwt_enabled on; {PROXY} }}\nlocation /off {{ auth_jwt_enabled off; {PROXY} }}",
        key_line()
    )));
    assert_eq!(n.get("/", &[]).status, 200);
    assert_eq!(n.get("/off", &[]).status, 200);
    assert_eq!(n.get("/on", &[]).status, 401);
    assert_eq!(
        n.get("/on", &[("Authorization", &bearer(&good()))]).status,
        200
    );
}

#[test]
fn enabled_with_a_variable() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ auth_jwt_enabled $arg_auth; {PROXY} }}",
        key_line()
    )));
    for off in ["/?auth=off", "/?auth=OFF", "/?auth=Off"] {
        let r = n.get(off, &[]);
        assert_eq!(r.status, 200, "{off} should disable the check: {r:?}");
    }
    // Only `off` disables: an unset or empty variable, and every other word, fail closed.
    for on in [
        "/",
        "/?auth=",
        "/?auth=0",
        "/?auth=false",
        "/?auth=offx",
        "/?auth=on",
        "/?auth=1",
        "/?auth=yes",
        "/?auth=true",
    ] {
        let r = n.get(on, &[]);
        assert_eq!(r.status, 401, "{on} should enable the check: {r:?}");
        assert_eq!(
            n.get(on, &[("Authorization", &bearer(&good()))]).status,
            200
        );
    }
}

#[test]
fn enabled_through_a_map() {
    let n = Nginx::start(&format!(
        "map $http_x_mode $jwt_on {{ default on; skip off; zero 0; no false; none \"\"; }}\n{}",
        srv(&format!(
            "{}\nlocation / {{ auth_jwt_enabled $jwt_on; {PROXY} }}",
            key_line()
        ))
    ));
    assert_eq!(n.get("/", &[("X-Mode", "skip")]).status, 200);
    for mode in ["zero", "no", "none", "anything", "on"] {
        assert_eq!(n.get("/", &[("X-Mode", mode)]).status, 401, "mode {mode}");
    }
    assert_eq!(n.get("/", &[]).status, 401);
    assert_eq!(
        n.get("/", &[("Authorization", &bearer(&good()))]).status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// auth_jwt_key encodings, inline PEM, key files
// ---------------------------------------------------------------------------------------------

#[test]
fn key_encodings_hex_utf8_base64() {
    let std_b64 = b64_std(SECRET);
    let utf8 = std::str::from_utf8(SECRET).unwrap();
    let n = Nginx::start(&srv(&format!(
        "location /hex {{ auth_jwt_key \"{}\"; {PROXY} }}\n\
         location /hexword {{ auth_jwt_key \"{}\" hex; {PROXY} }}\n\
         location /utf8 {{ auth_jwt_key \"{utf8}\" utf8; {PROXY} }}\n\
         location /base64 {{ auth_jwt_key \"{std_b64}\" base64; {PROXY} }}",
        secret_hex(),
        secret_hex().to_uppercase(),
    )));
    let wrong = hs256(b"another secret entirely, not the one", claims("alice"));
    for loc in ["/hex", "/hexword", "/utf8", "/base64"] {
        assert_eq!(
            n.get(loc, &[("Authorization", &bearer(&good()))]).status,
            200,
            "{loc}"
        );
        let r = n.get(loc, &[("Authorization", &bearer(&wrong))]);
        assert_eq!(r.status, 401, "{loc}");
        assert_eq!(err(&r), "signature", "{loc}");
    }
    // hex is the default: the hex text taken as UTF-8 bytes is not the key.
    let as_text = hs256(secret_hex().as_bytes(), claims("alice"));
    assert_eq!(
        n.get("/hex", &[("Authorization", &bearer(&as_text))])
            .status,
        401
    );
}

#[test]
fn key_inline_pem_for_rs256() {
    let n = Nginx::start(&srv(&format!(
        "location / {{ auth_jwt_key \"{}\"; auth_jwt_algorithm RS256; {PROXY} }}\n\
         location /pkcs1 {{ auth_jwt_key \"{}\"; auth_jwt_algorithm RS256; {PROXY} }}",
        key("rsa2048.pub").trim(),
        key("rsa2048.pkcs1.pub").trim()
    )));
    let t = signed(Algorithm::RS256, "rsa2048", &claims("bob"));
    for loc in ["/", "/pkcs1"] {
        assert_eq!(
            n.get(loc, &[("Authorization", &bearer(&t))]).status,
            200,
            "{loc}"
        );
        let other = signed(Algorithm::RS256, "rsa2048-b", &claims("bob"));
        let r = n.get(loc, &[("Authorization", &bearer(&other))]);
        assert_eq!((r.status, err(&r)), (401, "signature"), "{loc}");
    }
}

#[test]
fn keyfile_absolute_and_relative_to_prefix() {
    let files = [("keys/ec.pem", key("ec256.pub"))];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let n = Nginx::start_full(
        "",
        &srv(&format!(
            "auth_jwt_algorithm ES256;\n\
             location /abs {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{{{KEYS}}}}/ec256.pub; {PROXY} }}\n\
             location /rel {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path keys/ec.pem; {PROXY} }}"
        )),
        &files,
    );
    let t = signed(Algorithm::ES256, "ec256", &claims("carol"));
    for loc in ["/abs", "/rel"] {
        let r = n.get(loc, &[("Authorization", &bearer(&t))]);
        assert_eq!(r.status, 200, "{loc} {r:?}");
        let r = n.get(loc, &[("Authorization", &bearer(&tamper(&t)))]);
        assert_eq!((r.status, err(&r)), (401, "signature"), "{loc}");
        assert_eq!(n.get(loc, &[]).status, 401, "{loc}");
    }
}

#[test]
fn keyfile_jwks_selects_by_kid() {
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "one", "k": b64(b"first secret for kid one, 32 bytes+")},
        {"kty": "oct", "kid": "two", "k": b64(SECRET)},
    ]})
    .to_string();
    let n = Nginx::start_full(
        "",
        &srv(&format!(
            "auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/jwks.json;\nlocation / {{ {PROXY} }}"
        )),
        &[("conf/jwks.json", &jwks)],
    );
    let ok = hs_kid(Algorithm::HS256, SECRET, Some("two"), &claims("k"));
    assert_eq!(n.get("/", &[("Authorization", &bearer(&ok))]).status, 200);
    let wrong = hs_kid(Algorithm::HS256, SECRET, Some("one"), &claims("k"));
    let r = n.get("/", &[("Authorization", &bearer(&wrong))]);
    assert_eq!((r.status, err(&r)), (401, "signature"));
    let unknown = hs_kid(Algorithm::HS256, SECRET, Some("three"), &claims("k"));
    let r = n.get("/", &[("Authorization", &bearer(&unknown))]);
    assert_eq!((r.status, err(&r)), (401, "key"));
}

// ---------------------------------------------------------------------------------------------
// auth_jwt_algorithm: every algorithm, valid / other alg / wrong key
// ---------------------------------------------------------------------------------------------

/// `key_conf`: the key directives; `good`: a valid token; `other_alg`: a token using another
/// algorithm; `wrong_key`: right algorithm, wrong key (or altered content).
fn check_algorithm(alg: &str, key_conf: &str, good: &str, other_alg: &str, wrong_key: &str) {
    let n = Nginx::start(&srv(&format!(
        "location / {{ {key_conf} auth_jwt_algorithm {alg}; {PROXY} }}"
    )));
    let r = n.get("/", &[("Authorization", &bearer(good))]);
    assert_eq!(r.status, 200, "{alg} valid token: {r:?}\n{}", n.error_log());
    assert_eq!(
        r.upstream_one("authorization").as_deref(),
        Some(bearer(good).as_str())
    );
    let r = n.get("/", &[("Authorization", &bearer(other_alg))]);
    assert_eq!(
        (r.status, err(&r)),
        (401, "algorithm"),
        "{alg} other algorithm"
    );
    let r = n.get("/", &[("Authorization", &bearer(wrong_key))]);
    assert_eq!((r.status, err(&r)), (401, "signature"), "{alg} wrong key");
}

fn check_hs(alg: Algorithm, name: &str, other: Algorithm) {
    let c = claims("alice");
    check_algorithm(
        name,
        &key_line(),
        &hs(alg, SECRET, &c),
        &hs(other, SECRET, &c),
        &hs(alg, b"the wrong secret for this location!!", &c),
    );
}

fn check_rsa(alg: Algorithm, name: &str, other: Algorithm) {
    let c = claims("alice");
    check_algorithm(
        name,
        &format!("auth_jwt_key \"{}\";", key("rsa2048.pub").trim()),
        &signed(alg, "rsa2048", &c),
        &signed(other, "rsa2048", &c),
        &signed(alg, "rsa2048-b", &c),
    );
}

fn check_pub(alg: Algorithm, name: &str, stem: &str, other: Algorithm, other_stem: &str) {
    let c = claims("alice");
    let good = signed(alg, stem, &c);
    check_algorithm(
        name,
        &format!("auth_jwt_key \"{}\";", key(&format!("{stem}.pub")).trim()),
        &good,
        &signed(other, other_stem, &c),
        &tamper(&good),
    );
}

#[test]
fn algorithm_hs256() {
    check_hs(Algorithm::HS256, "HS256", Algorithm::HS384);
}
#[test]
fn algorithm_hs384() {
    check_hs(Algorithm::HS384, "HS384", Algorithm::HS512);
}
#[test]
fn algorithm_hs512() {
    check_hs(Algorithm::HS512, "HS512", Algorithm::HS256);
}
#[test]
fn algorithm_rs256() {
    check_rsa(Algorithm::RS256, "RS256", Algorithm::PS256);
}
#[test]
fn algorithm_rs384() {
    check_rsa(Algorithm::RS384, "RS384", Algorithm::RS256);
}
#[test]
fn algorithm_rs512() {
    check_rsa(Algorithm::RS512, "RS512", Algorithm::RS384);
}
#[test]
fn algorithm_ps256() {
    check_rsa(Algorithm::PS256, "PS256", Algorithm::RS256);
}
#[test]
fn algorithm_ps384() {
    check_rsa(Algorithm::PS384, "PS384", Algorithm::PS512);
}
#[test]
fn algorithm_ps512() {
    check_rsa(Algorithm::PS512, "PS512", Algorithm::PS256);
}
#[test]
fn algorithm_es256() {
    check_pub(
        Algorithm::ES256,
        "ES256",
        "ec256",
        Algorithm::ES384,
        "ec384",
    );
}
#[test]
fn algorithm_es384() {
    check_pub(
        Algorithm::ES384,
        "ES384",
        "ec384",
        Algorithm::ES256,
        "ec256",
    );
}
#[test]
fn algorithm_eddsa() {
    check_pub(
        Algorithm::EdDSA,
        "EdDSA",
        "ed25519",
        Algorithm::ES256,
        "ec256",
    );
}

// ---------------------------------------------------------------------------------------------
// auth_jwt_location
// ---------------------------------------------------------------------------------------------

#[test]
fn location_header() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_location HEADER=X-Token;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    assert_eq!(n.get("/", &[("X-Token", &good())]).status, 200);
    assert_eq!(n.get("/", &[("x-token", &bearer(&good()))]).status, 200);
    let r = n.get("/", &[("Authorization", &bearer(&good()))]);
    assert_eq!((r.status, err(&r)), (401, "missing"));
}

#[test]
fn location_authorization_among_many_headers() {
    // Read through the pointer nginx keeps to the one Authorization header it allows.
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_location HEADER=authorization;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let (t, forged) = (bearer(&good()), bearer(&tamper(&good())));
    let filler = "x".repeat(40);
    let fillers: Vec<String> = (0..20).map(|i| format!("X-Filler-{i}")).collect();
    let send = |extra: &[(&str, &str)]| {
        let mut h: Vec<(&str, &str)> = fillers.iter().map(|k| (k.as_str(), &*filler)).collect();
        h.extend([("X-Authorization", t.as_str()), ("Authorization-Next", &t)]);
        h.extend_from_slice(extra);
        n.get("/", &h)
    };
    assert_eq!(send(&[("AUTHORIZATION", &t)]).status, 200);
    let r = send(&[("Authorization", &forged)]);
    assert_eq!((r.status, err(&r)), (401, "signature"));
    // Headers merely named like it are not it.
    let r = send(&[]);
    assert_eq!((r.status, err(&r)), (401, "missing"));
    // A second Authorization line is nginx's 400, before the module could pick one.
    let r = send(&[("Authorization", &forged), ("Authorization", &t)]);
    assert_eq!(r.status, 400);
}

#[test]
fn location_cookie() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_location COOKIE=auth;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let t = good();
    let cookies = [
        format!("auth={t}"),
        format!("theme=dark; auth={t}; lang=en"),
        format!("session=abc;auth={t}"),
        format!("auth=Bearer {t}"),
        format!("a=1; auth=\"Bearer {t}\"; b=2"),
        format!("auth=\"{t}\""),
    ];
    for c in &cookies {
        let r = n.get("/", &[("Cookie", c)]);
        assert_eq!(r.status, 200, "cookie {c}: {r:?}");
    }
    // Cookies on several Cookie header lines.
    let r = n.get(
        "/",
        &[("Cookie", "theme=dark"), ("Cookie", &format!("auth={t}"))],
    );
    assert_eq!(r.status, 200);
    // A cookie whose name merely contains "auth" is not it.
    let r = n.get("/", &[("Cookie", &format!("xauth={t}; auth_other={t}"))]);
    assert_eq!((r.status, err(&r)), (401, "missing"));
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!((r.status, err(&r)), (401, "missing"));
}

#[test]
fn location_query() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_location QUERY=token;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let t = good();
    assert_eq!(n.get(&format!("/?token={t}"), &[]).status, 200);
    assert_eq!(n.get(&format!("/?a=1&token={t}&b=2"), &[]).status, 200);
    let r = n.get(&format!("/?xtoken={t}"), &[]);
    assert_eq!((r.status, err(&r)), (401, "missing"));
}

#[test]
fn location_several_first_present_wins() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_location HEADER=X-Token COOKIE=auth QUERY=token;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let t = good();
    let bad = hs256(b"wrong secret wrong secret wrong!!", claims("eve"));
    assert_eq!(n.get(&format!("/?token={t}"), &[]).status, 200);
    assert_eq!(n.get("/", &[("Cookie", &format!("auth={t}"))]).status, 200);
    // The header comes first: its bad token decides, although the cookie's is good.
    let r = n.get("/", &[("X-Token", &bad), ("Cookie", &format!("auth={t}"))]);
    assert_eq!((r.status, err(&r)), (401, "signature"));
    // The cookie comes before the query.
    let r = n.get(
        &format!("/?token={t}"),
        &[("Cookie", &format!("auth={bad}"))],
    );
    assert_eq!((r.status, err(&r)), (401, "signature"));
    let r = n.get(
        &format!("/?token={bad}"),
        &[("Cookie", &format!("auth={t}"))],
    );
    assert_eq!(r.status, 200);
}

// ---------------------------------------------------------------------------------------------
// redirect, validate_sub, claims, OPTIONS, leeway, issuer, audience, realm
// ---------------------------------------------------------------------------------------------

#[test]
fn redirect_and_loginurl() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_loginurl https://login.example.com/;\nlocation / {{ auth_jwt_redirect on; {PROXY} }}\nlocation /api {{ auth_jwt_redirect off; {PROXY} }}",
        key_line()
    )));
    let r = n.get("/x", &[]);
    assert_eq!(r.status, 302);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://login.example.com/?return_url="),
        "{r:?}"
    );
    assert_eq!(n.get("/api", &[]).status, 401);
    assert_eq!(
        n.get("/x", &[("Authorization", &bearer(&good()))]).status,
        200
    );
}

#[test]
fn validate_sub() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ auth_jwt_validate_sub on; {PROXY} }}\nlocation /nosub {{ {PROXY} }}",
        key_line()
    )));
    let nosub = hs256(SECRET, json!({"exp": now() + 600}));
    let empty = hs256(SECRET, json!({"sub": "", "exp": now() + 600}));
    let numeric = hs256(SECRET, json!({"sub": 42, "exp": now() + 600}));
    assert_eq!(
        n.get("/", &[("Authorization", &bearer(&good()))]).status,
        200
    );
    for t in [&nosub, &empty, &numeric] {
        let r = n.get("/", &[("Authorization", &bearer(t))]);
        assert_eq!((r.status, err(&r)), (401, "subject"));
    }
    assert_eq!(
        n.get("/nosub", &[("Authorization", &bearer(&nosub))])
            .status,
        200
    );
}

#[test]
fn extract_var_claims_is_accepted() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_extract_var_claims email role;\nlocation / {{ add_header X-Email $jwt_claim_email; add_header X-Role $jwt_claim_role; {PROXY} }}",
        key_line()
    )));
    let t = hs256(
        SECRET,
        json!({"sub": "a", "email": "a@example.com", "role": "admin", "exp": now() + 600}),
    );
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-email"), Some("a@example.com"));
    assert_eq!(r.header("x-role"), Some("admin"));
}

#[test]
fn extract_request_claims() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ auth_jwt_extract_request_claims sub email; {PROXY} }}",
        key_line()
    )));
    let t = hs256(
        SECRET,
        json!({"sub": "dave", "email": "dave@example.com", "exp": now() + 600}),
    );
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_one("jwt-sub").as_deref(), Some("dave"));
    assert_eq!(
        r.upstream_one("jwt-email").as_deref(),
        Some("dave@example.com")
    );
    assert_eq!(n.get("/", &[]).status, 401);
}

#[test]
fn extract_response_claims() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ auth_jwt_extract_response_claims sub email; {PROXY} }}",
        key_line()
    )));
    let t = hs256(
        SECRET,
        json!({"sub": "erin", "email": "erin@example.com", "exp": now() + 600}),
    );
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("jwt-sub"), Some("erin"));
    assert_eq!(r.header("jwt-email"), Some("erin@example.com"));
    // Not a request header.
    assert!(r.upstream("jwt-sub").is_empty());
}

#[test]
fn bypass_options() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ {PROXY} }}\nlocation /strict {{ auth_jwt_bypass_options off; {PROXY} }}",
        key_line()
    )));
    // A CORS preflight passes: OPTIONS with Origin and Access-Control-Request-Method.
    let preflight = [
        ("Origin", "https://a.example.com"),
        ("Access-Control-Request-Method", "DELETE"),
    ];
    let r = n.request("OPTIONS", "/", &preflight);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo-request"), Some("OPTIONS / HTTP/1.0"));
    // Any other OPTIONS request is checked: a method-agnostic upstream would answer it.
    for headers in [
        &[][..],
        &[("Origin", "https://a.example.com")][..],
        &[("Access-Control-Request-Method", "GET")][..],
    ] {
        let r = n.request("OPTIONS", "/", headers);
        assert_eq!(r.status, 401, "{headers:?}");
    }
    let r = n.request("OPTIONS", "/strict", &preflight);
    assert_eq!(r.status, 401);
    assert_eq!(
        n.request("OPTIONS", "/strict", &[("Authorization", &bearer(&good()))])
            .status,
        200
    );
    // Only OPTIONS is exempt.
    assert_eq!(n.request("DELETE", "/", &[]).status, 401);
}

#[test]
fn leeway() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ {PROXY} }}\nlocation /lee {{ auth_jwt_leeway 2m; {PROXY} }}",
        key_line()
    )));
    let expired = hs256(SECRET, json!({"sub": "a", "exp": now() - 30}));
    let early = hs256(
        SECRET,
        json!({"sub": "a", "nbf": now() + 30, "exp": now() + 600}),
    );
    let long_expired = hs256(SECRET, json!({"sub": "a", "exp": now() - 600}));
    let r = n.get("/", &[("Authorization", &bearer(&expired))]);
    assert_eq!((r.status, err(&r)), (401, "expired"));
    let r = n.get("/", &[("Authorization", &bearer(&early))]);
    assert_eq!((r.status, err(&r)), (401, "not_yet_valid"));
    assert_eq!(
        n.get("/lee", &[("Authorization", &bearer(&expired))])
            .status,
        200
    );
    assert_eq!(
        n.get("/lee", &[("Authorization", &bearer(&early))]).status,
        200
    );
    let r = n.get("/lee", &[("Authorization", &bearer(&long_expired))]);
    assert_eq!((r.status, err(&r)), (401, "expired"));
}

#[test]
fn issuer() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_issuer https://a.example.com https://b.example.com;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let tok = |iss: Option<&str>| {
        let mut c = claims("a");
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        bearer(&hs256(SECRET, c))
    };
    assert_eq!(
        n.get(
            "/",
            &[("Authorization", &tok(Some("https://b.example.com")))]
        )
        .status,
        200
    );
    assert_eq!(
        n.get(
            "/",
            &[("Authorization", &tok(Some("https://a.example.com")))]
        )
        .status,
        200
    );
    for bad in [
        Some("https://c.example.com"),
        Some("https://a.example.com/"),
        None,
    ] {
        let r = n.get("/", &[("Authorization", &tok(bad))]);
        assert_eq!((r.status, err(&r)), (401, "issuer"), "{bad:?}");
    }
}

#[test]
fn audience_string_and_array() {
    let n = Nginx::start(&srv(&format!(
        "{}\nauth_jwt_audience api other;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let tok = |aud: Option<serde_json::Value>| {
        let mut c = claims("a");
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        bearer(&hs256(SECRET, c))
    };
    for ok in [
        json!("api"),
        json!("other"),
        json!(["x", "api"]),
        json!(["other"]),
    ] {
        assert_eq!(
            n.get("/", &[("Authorization", &tok(Some(ok.clone())))])
                .status,
            200,
            "{ok}"
        );
    }
    for bad in [
        Some(json!("web")),
        Some(json!(["x", "y"])),
        Some(json!([])),
        None,
    ] {
        let r = n.get("/", &[("Authorization", &tok(bad.clone()))]);
        assert_eq!((r.status, err(&r)), (401, "audience"), "{bad:?}");
    }
}

#[test]
fn realm() {
    let n = Nginx::start(&srv(&format!(
        "{}\nlocation / {{ {PROXY} }}\nlocation /r {{ auth_jwt_realm \"my realm\"; {PROXY} }}",
        key_line()
    )));
    let r = n.get("/r", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"my realm\"")
    );
    let r = n.get("/", &[]);
    let v = r.header("www-authenticate").unwrap();
    assert!(v.starts_with("Bearer realm=\""), "{v}");
    assert!(!v.contains("my realm"));
}

// ---------------------------------------------------------------------------------------------
// Inheritance http → server → location
// ---------------------------------------------------------------------------------------------

#[test]
fn inheritance_http_server_location() {
    let other_secret = "location-level secret, utf8 encoded";
    let n = Nginx::start(&format!(
        "{}\nadd_header X-Jwt-Error $jwt_error always;\n\
         server {{ listen 127.0.0.1:{{{{PORT}}}};\n auth_jwt_algorithm HS384;\n\
           location /a {{ {PROXY} }}\n\
           location /b {{ auth_jwt_algorithm HS512; {PROXY} }}\n\
           location /c {{ auth_jwt_key \"{other_secret}\" utf8; {PROXY} }}\n\
           location /d {{ auth_jwt_enabled off; {PROXY} }}\n\
         }}\n\
         server {{ listen 127.0.0.1:{{{{PORT}}}}; server_name second; location / {{ {PROXY} }} }}",
        key_line()
    ));
    let c = claims("x");
    let h256 = hs(Algorithm::HS256, SECRET, &c);
    let h384 = hs(Algorithm::HS384, SECRET, &c);
    let h512 = hs(Algorithm::HS512, SECRET, &c);
    let other384 = hs(Algorithm::HS384, other_secret.as_bytes(), &c);
    let get = |path: &str, t: &str| {
        let r = n.get(path, &[("Authorization", &bearer(t))]);
        (r.status, err(&r).to_string())
    };
    assert_eq!(get("/a", &h384), (200, String::new()));
    assert_eq!(get("/a", &h256), (401, "algorithm".into()));
    assert_eq!(get("/b", &h512), (200, String::new()));
    assert_eq!(get("/b", &h384), (401, "algorithm".into()));
    assert_eq!(get("/c", &other384), (200, String::new()));
    assert_eq!(get("/c", &h384), (401, "signature".into()));
    assert_eq!(n.get("/d", &[]).status, 200);
    assert_eq!(n.get("/a", &[]).status, 401);
    // The second server inherits only the http-level key, with the default HS256.
    let host = [("Host", "second")];
    assert_eq!(n.get("/", &host).status, 401);
    let r = n.get(
        "/",
        &[("Host", "second"), ("Authorization", &bearer(&h256))],
    );
    assert_eq!(r.status, 200);
    let r = n.get(
        "/",
        &[("Host", "second"), ("Authorization", &bearer(&h384))],
    );
    assert_eq!((r.status, err(&r)), (401, "algorithm"));
}

// ---------------------------------------------------------------------------------------------
// Enforced without a usable key: fail closed, say why
// ---------------------------------------------------------------------------------------------

#[test]
fn enabled_without_any_key_fails_closed_with_a_log_line() {
    let n = Nginx::start(&srv(&format!(
        "auth_jwt_enabled on;\nlocation / {{ {PROXY} }}"
    )));
    let r = n.get("/", &[("Authorization", &bearer(&good()))]);
    assert_fails_closed(&n, &r, "auth_jwt: key: no \"auth_jwt_key\"");
}

/// A request refused with nginx's own 500 page, the reason logged as an `[error]` line.
#[track_caller]
fn assert_fails_closed(n: &Nginx, r: &Response, reason: &str) {
    assert_eq!(r.status, 500, "nothing to verify against must never admit");
    assert!(
        r.body.contains("500 Internal Server Error"),
        "not nginx's own page: {r:?}"
    );
    let lines = n.jwt_log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[error]") && l.contains(reason)),
        "{lines:?}"
    );
}

#[test]
fn a_public_key_without_an_algorithm_serves_its_own_type() {
    // No algorithm configured: a PEM key serves its type's algorithm (RS256 for RSA, the curve's
    // for EC), and a nested location may pin another of the same family.
    let body = srv(&format!(
        "auth_jwt_key \"{}\";\n\
         location /rs384/ {{ auth_jwt_algorithm RS384; {PROXY} }}\n\
         location /default/ {{ {PROXY} }}\n\
         location /ec/ {{ auth_jwt_key \"{}\"; {PROXY} }}",
        key("rsa2048.pub"),
        key("ec256.pub")
    ));
    let n = Nginx::start(&body);
    let rs256 = signed(Algorithm::RS256, "rsa2048", &claims("alice"));
    let rs384 = signed(Algorithm::RS384, "rsa2048", &claims("alice"));
    let es256 = signed(Algorithm::ES256, "ec256", &claims("alice"));
    assert_eq!(
        n.get("/default/", &[("Authorization", &bearer(&rs256))])
            .status,
        200
    );
    assert_eq!(
        n.get("/rs384/", &[("Authorization", &bearer(&rs384))])
            .status,
        200
    );
    assert_eq!(
        n.get("/ec/", &[("Authorization", &bearer(&es256))]).status,
        200
    );
    for (path, token) in [("/default/", &rs384), ("/rs384/", &rs256), ("/ec/", &rs256)] {
        let r = n.get(path, &[("Authorization", &bearer(token))]);
        assert_eq!((r.status, err(&r)), (401, "algorithm"), "{path}");
    }
    // An HMAC token made with the public key as its secret is refused everywhere.
    let confused = hs256(key("rsa2048.pub").as_bytes(), claims("mallory"));
    let r = n.get("/default/", &[("Authorization", &bearer(&confused))]);
    assert_eq!((r.status, err(&r)), (401, "algorithm"));
}
