//! The deployment of nginx-conf/deployment.conf: several subdomains behind one login service
//! that sets cookie `auth` (an HS256 JWT minted by PyJWT with a 64-character ASCII secret),
//! plus Go services (`Authorization: Bearer`, 12 h tokens) and FastAPI (cookie `access_token`
//! = `Bearer <jwt>`). The directives it relies on are in docs/DIRECTIVES.md (auth_jwt_location,
//! auth_jwt_redirect, auth_jwt_loginurl, auth_jwt_extract_request_claims).

mod common;
use common::*;

/// The per-server block of nginx-conf/deployment.conf, with its pages, APIs and auth_request
/// locations.
fn deployment() -> Nginx {
    let body = format!(
        r#"server {{
    listen 127.0.0.1:{{{{PORT}}}};
    server_name wiki.example.com;

    auth_jwt_key "{hex}";
    auth_jwt_loginurl "https://example.com/";
    auth_jwt_enabled off;
    auth_jwt_redirect on;
    auth_jwt_location COOKIE=auth;
    auth_jwt_algorithm HS256;

    location / {{
        auth_jwt_enabled on;
        root html;
        try_files /index.html =404;
    }}
    location /public/ {{
        {PROXY}
    }}
    location /api/ {{
        auth_jwt_enabled on;
        auth_jwt_redirect off;
        auth_jwt_extract_request_claims sub;
        proxy_set_header X-Forwarded-User $http_jwt_sub;
        {PROXY}
    }}
    location /stream/ {{
        auth_jwt_enabled on;
        auth_jwt_redirect off;
        proxy_set_header X-Forwarded-User $jwt_sub;
        {PROXY}
    }}
    location /reports/ {{
        auth_request /_auth;
        {PROXY}
    }}
    location = /_auth {{
        internal;
        if ($jwt_sub = "") {{ return 401; }}
        return 204;
    }}
    location /hr/ {{
        auth_jwt_extract_request_claims sub;
        auth_request /_auth_hr;
        {PROXY}
    }}
    location = /_auth_hr {{
        internal;
        if ($http_jwt_sub = "") {{ return 401; }}
        if ($http_jwt_sub != "alice") {{ return 403; }}
        return 204;
    }}
    location /go/ {{
        auth_jwt_enabled on;
        auth_jwt_redirect off;
        auth_jwt_location HEADER=Authorization;
        proxy_set_header X-Forwarded-User $jwt_sub;
        {PROXY}
    }}
    location /fastapi/ {{
        auth_jwt_enabled on;
        auth_jwt_redirect off;
        auth_jwt_location COOKIE=access_token;
        proxy_set_header X-Forwarded-User $jwt_sub;
        {PROXY}
    }}
}}
"#,
        hex = hex(SECRET64.as_bytes())
    );
    Nginx::start(&body)
}

/// What the login service does: `jwt.encode({"sub":…,"iat":…,"exp":…}, secret, "HS256")`.
fn login_token(sub: &str, lifetime: i64) -> String {
    let iat = now();
    pyjwt(
        SECRET64,
        &format!(r#"{{"sub":"{sub}","iat":{iat},"exp":{}}}"#, iat + lifetime),
        "HS256",
    )
}

fn cookies(token: &str) -> String {
    format!("_ga=GA1.2.3; theme=dark; auth={token}; csrftoken=abc123")
}

#[test]
fn secret_is_64_ascii_chars() {
    assert_eq!(SECRET64.len(), 64);
    assert!(SECRET64.bytes().all(|b| b.is_ascii_graphic()));
}

#[test]
fn page_redirects_to_login_without_cookie() {
    let n = deployment();
    let r = n.get(
        "/docs/page?id=7&x=y",
        &[("Host", &format!("wiki.example.com:{}", n.port))],
    );
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("location").unwrap();
    let enc = loc
        .strip_prefix("https://example.com/?return_url=")
        .unwrap_or_else(|| panic!("{loc}"));
    assert_eq!(
        percent_decode(enc),
        format!("http://wiki.example.com:{}/docs/page?id=7&x=y", n.port)
    );
    // Other cookies are not the token.
    let r = n.get(
        "/",
        &[("Cookie", "_ga=1; session=eyJhbGciOiJIUzI1NiJ9.e30.x")],
    );
    assert_eq!(r.status, 302);
}

#[test]
fn page_served_with_login_cookie() {
    let n = deployment();
    let t = login_token("alice", 3600);
    let r = n.get("/docs/page", &[("Cookie", &cookies(&t))]);
    assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
    assert_eq!(r.body, "static index\n");
    let expired = login_token("alice", -60);
    assert_eq!(
        n.get("/docs/page", &[("Cookie", &cookies(&expired))])
            .status,
        302
    );
    let forged = pyjwt(
        "a-different-64-character-secret-a-different-64-character-secret!!",
        r#"{"sub":"alice","exp":9999999999}"#,
        "HS256",
    );
    assert_eq!(
        n.get("/docs/page", &[("Cookie", &cookies(&forged))]).status,
        302
    );
}

#[test]
fn public_location_is_open() {
    let n = deployment();
    assert_eq!(n.get("/public/x", &[]).status, 200);
}

#[test]
fn api_gives_401_and_passes_user_through_jwt_sub_header() {
    let n = deployment();
    let r = n.get("/api/items", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("location").is_none());
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer realm="));
    let t = login_token("alice", 3600);
    let r = n.get(
        "/api/items",
        &[("Cookie", &cookies(&t)), ("JWT-Sub", "root")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream("x-forwarded-user"), vec!["alice"]);
    assert_eq!(r.upstream("jwt-sub"), vec!["alice"]);
    let r = n.get(
        "/api/items",
        &[("Cookie", &cookies(&login_token("alice", -5)))],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn stream_passes_user_through_jwt_sub_variable() {
    let n = deployment();
    assert_eq!(n.get("/stream/live", &[]).status, 401);
    let t = login_token("bob", 3600);
    let r = n.get(
        "/stream/live",
        &[("Cookie", &cookies(&t)), ("X-Forwarded-User", "root")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream("x-forwarded-user"), vec!["bob"]);
}

#[test]
fn auth_request_on_jwt_sub() {
    let n = deployment();
    assert_eq!(n.get("/reports/q1", &[]).status, 401);
    let r = n.get(
        "/reports/q1",
        &[("Cookie", &cookies(&login_token("carol", 3600)))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        n.get(
            "/reports/q1",
            &[("Cookie", &cookies(&login_token("carol", -5)))]
        )
        .status,
        401
    );
}

#[test]
fn auth_request_on_http_jwt_sub() {
    let n = deployment();
    assert_eq!(n.get("/hr/salaries", &[]).status, 401);
    let r = n.get(
        "/hr/salaries",
        &[("Cookie", &cookies(&login_token("alice", 3600)))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.upstream("jwt-sub"), vec!["alice"]);
    assert_eq!(
        n.get(
            "/hr/salaries",
            &[("Cookie", &cookies(&login_token("bob", 3600)))]
        )
        .status,
        403
    );
    // A client claiming to be alice without a token is not.
    assert_eq!(n.get("/hr/salaries", &[("JWT-Sub", "alice")]).status, 401);
    let r = n.get(
        "/hr/salaries",
        &[
            ("Cookie", &cookies(&login_token("bob", 3600))),
            ("JWT-Sub", "alice"),
        ],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn go_service_bearer_header_12h() {
    let n = deployment();
    let t = hs256(
        SECRET64.as_bytes(),
        json!({"sub": "svc-go", "iat": now(), "exp": now() + 12 * 3600}),
    );
    let r = n.get("/go/x", &[("Authorization", &format!("Bearer {t}"))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream("x-forwarded-user"), vec!["svc-go"]);
    // The cookie is not read there.
    assert_eq!(n.get("/go/x", &[("Cookie", &cookies(&t))]).status, 401);
}

#[test]
fn fastapi_access_token_cookie() {
    let n = deployment();
    let t = pyjwt(
        SECRET64,
        &format!(r#"{{"sub":"fast","exp":{}}}"#, now() + 1800),
        "HS256",
    );
    for cookie in [
        format!("access_token=\"Bearer {t}\""),
        format!("access_token=Bearer {t}"),
        format!("other=1; access_token=\"Bearer {t}\"; auth=garbage"),
    ] {
        let r = n.get("/fastapi/me", &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "{cookie}: {r:?}\n{}", n.error_log());
        assert_eq!(r.upstream("x-forwarded-user"), vec!["fast"]);
    }
    assert_eq!(
        n.get("/fastapi/me", &[("Cookie", &cookies(&t))]).status,
        401
    );
}

#[test]
fn every_configuration_of_the_deployment_passes_nginx_t() {
    let (ok, out) = nginx_t(&format!(
        "server {{ listen 127.0.0.1:{{{{PORT}}}};\n\
           auth_jwt_key \"{}\";\n\
           auth_jwt_loginurl \"https://example.com/\";\n\
           auth_jwt_enabled off;\n\
           auth_jwt_redirect on;\n\
           auth_jwt_location COOKIE=auth;\n\
           auth_jwt_algorithm HS256;\n\
           location / {{ auth_jwt_enabled on; }}\n\
           location /api/ {{ auth_jwt_enabled on; auth_jwt_redirect off; }}\n\
         }}",
        hex(SECRET64.as_bytes())
    ));
    assert!(ok, "{out}");
}
