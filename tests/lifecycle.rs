//! The module across nginx's request lifecycle (docs/SECURITY.md: The request lifecycle, Client
//! headers the module removes, Several tokens in a request, What variables and headers may
//! contain): which client headers are removed and when, what `$http_jwt_*` and `$jwt_*` read in
//! each phase, subrequests, internal redirects, `satisfy any`, and what may reach a header.

mod common;
use common::*;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn token(claims: serde_json::Value) -> String {
    hs256(SECRET, claims)
}

/// Whether a page holds what the echo upstream answers (the request headers it received).
fn from_upstream(body: &str) -> bool {
    body.lines()
        .any(|l| l.starts_with("host: ") || l.starts_with("connection: "))
}

fn alice() -> String {
    token(json!({"sub": "alice", "user_id": 42, "exp": now() + 600}))
}

// ---------------------------------------------------------------------------------------------
// Identity headers: names folded as nginx and CGI upstreams fold them
// ---------------------------------------------------------------------------------------------

#[test]
fn claim_headers_replace_every_spelling_of_their_name() {
    let n = Nginx::start(&server(&format!(
        "{}\nunderscores_in_headers on;\n\
         location / {{ auth_jwt_extract_request_claims user_id sub;\n\
         proxy_set_header X-Uid $http_jwt_user_id; {PROXY} }}",
        key_line()
    )));
    let auth = bearer(&alice());
    let spellings = [
        ("JWT-user-id", "0"),
        ("jwt_user_id", "0"),
        ("JWT-USER_ID", "0"),
        ("JWT_Sub", "root"),
        ("jwt-sub", "root"),
    ];
    for (name, value) in spellings {
        let r = n.get("/", &[(name, value), ("Authorization", &auth)]);
        assert_eq!(r.status, 200);
        let seen = r.upstream_headers();
        let claim_headers: Vec<_> = seen
            .iter()
            .filter(|(k, _)| jwt_core::loose_name_eq(k.as_bytes(), b"jwt-user-id"))
            .collect();
        assert_eq!(claim_headers.len(), 1, "{name}: {seen:?}");
        assert_eq!(claim_headers[0].1, "42");
        let subs: Vec<_> = seen
            .iter()
            .filter(|(k, _)| jwt_core::loose_name_eq(k.as_bytes(), b"jwt-sub"))
            .collect();
        assert_eq!(subs.len(), 1, "{name}: {seen:?}");
        assert_eq!(subs[0].1, "alice");
        assert_eq!(r.upstream_one("x-uid").as_deref(), Some("42"), "{name}");
    }
}

#[test]
fn a_refused_request_that_goes_on_carries_no_client_identity() {
    // `error_page 401 = @named` and `satisfy any` let refused requests reach an upstream.
    let n = Nginx::start(&server(&format!(
        "{}\nunderscores_in_headers on;\n\
         auth_jwt_extract_request_claims user_id;\n\
         location / {{ error_page 401 = @fallback; {PROXY} }}\n\
         location @fallback {{ auth_jwt_enabled off; {PROXY} }}\n\
         location /any {{ satisfy any; allow 127.0.0.1; deny all; {PROXY} }}",
        key_line()
    )));
    for path in ["/", "/any"] {
        for name in ["JWT-user-id", "jwt_user_id", "JWT-User_Id"] {
            let r = n.get(path, &[(name, "0"), ("Authorization", "Bearer forged")]);
            assert_eq!(r.status, 200, "{path}");
            assert!(
                !r.upstream_headers()
                    .iter()
                    .any(|(k, _)| k.to_ascii_lowercase().starts_with("jwt")),
                "{path} {name}: {:?}",
                r.upstream_headers()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client JWT-* headers: removed on arrival, before the rewrite phases
// ---------------------------------------------------------------------------------------------

#[test]
fn client_jwt_headers_never_reach_rewrite_phases_subrequests_or_upstreams() {
    let n = Nginx::start(&format!(
        "map $http_jwt_role $role_seen {{ default \"[$http_jwt_role]\"; }}\n{}",
        server(&format!(
            "{}\nauth_jwt_enabled off;\nunderscores_in_headers on;\n\
             if ($http_jwt_role = \"admin\") {{ return 418; }}\n\
             location /app {{\n\
               auth_jwt_enabled on;\n\
               auth_jwt_extract_request_claims sub;\n\
               auth_request /_auth;\n\
               {PROXY}\n\
             }}\n\
             location = /_auth {{\n\
               internal;\n\
               if ($http_jwt_sub = \"root\") {{ return 204; }}\n\
               return 403;\n\
             }}\n\
             location /plain {{\n\
               set $who \"[$http_jwt_sub][$http_jwt_role][$role_seen]\";\n\
               add_header X-Who $who always;\n\
               {PROXY}\n\
             }}",
            key_line()
        ))
    ));
    let root = token(json!({"sub": "root", "exp": now() + 600}));
    // The rooms service's rule: only root passes, by the token's sub.
    let r = n.get("/app", &[("Authorization", &bearer(&root))]);
    assert_eq!(r.status, 200, "{r:?}");
    for name in ["JWT-Sub", "jwt_sub", "JWT-SUB"] {
        let r = n.get(
            "/app",
            &[(name, "root"), ("Authorization", &bearer(&alice()))],
        );
        assert_eq!(r.status, 403, "{name}: alice with a forged header: {r:?}");
        // The server-level `if` never sees it either.
        let r = n.get("/plain", &[(name, "root"), ("JWT-Role", "admin")]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("x-who"), Some("[][][[]]"), "{name}");
        assert!(r
            .upstream_headers()
            .iter()
            .all(|(k, _)| !k.starts_with("jwt")));
    }
}

#[test]
fn a_token_source_named_jwt_is_kept_and_servers_without_the_module_are_left_alone() {
    let n = Nginx::start(&format!(
        "{}{}",
        server(&format!(
            "{}\nauth_jwt_location HEADER=JWT-Token;\nlocation / {{ {PROXY} }}",
            key_line()
        )),
        "server {\nlisten 127.0.0.1:{{PORT}};\nserver_name plain;\nlocation / { proxy_pass http://127.0.0.1:{{UPSTREAM}}; }\n}\n"
    ));
    let r = n.get("/", &[("JWT-Token", &alice()), ("JWT-Sub", "root")]);
    assert_eq!(r.status, 200, "the token source is read: {r:?}");
    assert!(r.upstream("jwt-sub").is_empty());
    assert_eq!(r.upstream("jwt-token"), vec![alice()]);
    // A server where no auth_jwt directive applies is not the module's business.
    let r = n.get("/", &[("Host", "plain"), ("JWT-Sub", "root")]);
    assert_eq!(r.upstream("jwt-sub"), vec!["root"]);
}

#[test]
fn http_jwt_variables_read_before_the_access_phase_see_the_module_s_header_after_it() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location / {{\n\
           set $early \"[$http_jwt_sub]\";\n\
           auth_jwt_extract_request_claims sub;\n\
           proxy_set_header X-Forwarded-User $http_jwt_sub;\n\
           proxy_set_header X-Early $early;\n\
           add_header X-Late $http_jwt_sub always;\n\
           {PROXY}\n\
         }}",
        key_line()
    )));
    let r = n.get(
        "/",
        &[("JWT-Sub", "root"), ("Authorization", &bearer(&alice()))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_one("x-early").as_deref(), Some("[]"));
    assert_eq!(r.upstream_one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(r.header("x-late"), Some("alice"));
}

// ---------------------------------------------------------------------------------------------
// What may reach a header
// ---------------------------------------------------------------------------------------------

#[test]
fn signed_claims_with_control_characters_never_become_header_bytes() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location / {{\n\
           add_header X-Name $jwt_claim_name always;\n\
           add_header X-Sub $jwt_sub always;\n\
           add_header X-Kid $jwt_header_kid always;\n\
           add_header X-Payload $jwt_payload always;\n\
           proxy_set_header X-Name $jwt_claim_name;\n\
           {PROXY}\n\
         }}",
        key_line()
    )));
    let evil = "Eve\r\nSet-Cookie: session=stolen";
    let payload = format!(
        "{{\n  \"sub\": \"{}\",\n  \"name\": \"{}\",\n  \"exp\": {}\n}}",
        "a\\r\\nb",
        "Eve\\r\\nSet-Cookie: session=stolen",
        now() + 600
    );
    let t = raw_hs256(r#"{"alg":"HS256","kid":"k\nX-Injected: 1"}"#, &payload);
    let r = n.get("/", &[("Authorization", &bearer(&t))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("set-cookie").is_none() && r.header("x-injected").is_none());
    assert!(r.header("x-name").is_none() && r.header("x-sub").is_none());
    assert!(r.header("x-kid").is_none());
    assert!(r.upstream("x-name").is_empty());
    // The payload arrives on one line, the same JSON.
    let p = r.header("x-payload").expect("payload header");
    let parsed: serde_json::Value = serde_json::from_str(p).unwrap();
    assert_eq!(parsed["name"], evil);
    let lines = n.jwt_log_lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("has control characters"))
            .count(),
        1,
        "one line per request: {lines:?}"
    );
    // Clean values pass.
    let r = n.get("/", &[("Authorization", &bearer(&alice()))]);
    assert_eq!(r.header("x-sub"), Some("alice"));
}

#[test]
fn a_login_url_built_from_variables_cannot_split_the_redirect() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_redirect on;\n\
         auth_jwt_loginurl \"https://login.example.com/?from=$uri\";\n\
         location / {{ {PROXY} }}",
        key_line()
    )));
    let r = n.get("/a%0d%0aSet-Cookie:%20x=1%0d%0a", &[]);
    assert_eq!(r.status, 302);
    assert!(r.header("set-cookie").is_none(), "{r:?}");
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with(
            "https://login.example.com/?from=/a%0D%0ASet-Cookie:%20x=1%0D%0A&return_url="
        ),
        "{location}"
    );
}

// ---------------------------------------------------------------------------------------------
// Subrequests: each location enforces its own settings
// ---------------------------------------------------------------------------------------------

#[test]
fn an_auth_request_target_enforces_its_own_settings() {
    let other = b"another-secret-for-the-auth-location-0123456789";
    let n = Nginx::start(&server(&format!(
        "location /app {{ auth_request /_auth; {PROXY} }}\n\
         location /proxied {{ auth_request /_auth_proxy; {PROXY} }}\n\
         location = /_auth {{\n\
           internal;\n\
           {}\n\
           auth_jwt_extract_request_claims sub;\n\
           if ($http_jwt_sub = \"\") {{ return 403; }}\n\
           return 204;\n\
         }}\n\
         location = /_auth_proxy {{\n\
           internal;\n\
           {}\n\
           {PROXY}\n\
         }}",
        key_line(),
        key_line()
    )));
    let forged = hs256(other, json!({"sub": "root", "exp": now() + 600}));
    for path in ["/app", "/proxied"] {
        assert_eq!(n.get(path, &[]).status, 401, "{path} without a token");
        let r = n.get(path, &[("Authorization", &bearer(&forged))]);
        assert_eq!(r.status, 401, "{path} forged");
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm="));
        let r = n.get(path, &[("Authorization", &bearer(&alice()))]);
        assert_eq!(r.status, 200, "{path} valid: {r:?}");
    }
}

#[test]
fn variables_in_a_subrequest_are_judged_by_its_location() {
    let k2 = b"the-auth-location-has-its-own-secret-0123456789";
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /app {{\n\
           auth_jwt_enabled off;\n\
           auth_request /_auth;\n\
           add_header X-Main-Sub $jwt_sub always;\n\
           {PROXY}\n\
         }}\n\
         location = /_auth {{\n\
           internal;\n\
           auth_jwt_key \"{}\";\n\
           auth_jwt_issuer good;\n\
           auth_jwt_enabled off;\n\
           if ($jwt_error != \"\") {{ return 403; }}\n\
           return 204;\n\
         }}",
        key_line(),
        hex(k2)
    )));
    let server_key = hs256(
        SECRET,
        json!({"sub": "s", "iss": "good", "exp": now() + 600}),
    );
    let own = hs256(k2, json!({"sub": "o", "iss": "good", "exp": now() + 600}));
    let wrong_iss = hs256(k2, json!({"sub": "o", "iss": "bad", "exp": now() + 600}));
    let r = n.get("/app", &[("Authorization", &bearer(&server_key))]);
    assert_eq!(
        r.status, 403,
        "signed with the server's key, not the location's"
    );
    let r = n.get("/app", &[("Authorization", &bearer(&wrong_iss))]);
    assert_eq!(r.status, 403, "the location's issuer rule");
    let r = n.get("/app", &[("Authorization", &bearer(&own))]);
    assert_eq!(r.status, 200);
    // The main request's variables stay judged by its own (the server's) key.
    assert_eq!(r.header("x-main-sub"), None);
}

#[test]
fn ssi_includes_and_mirrors_of_a_protected_location_are_checked() {
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "{}\nauth_jwt_enabled off;\nlog_subrequest on;\n\
             location = /page.html {{ ssi on; root html; }}\n\
             location /secret/ {{ auth_jwt_enabled on; return 200 \"classified\"; }}\n\
             location /mirrored {{ mirror /copy; {PROXY} }}\n\
             location = /copy {{\n\
               internal;\n\
               auth_jwt_enabled on;\n\
               access_log logs/mirror.log;\n\
               {PROXY}\n\
             }}",
            key_line()
        )),
        &[(
            "html/page.html",
            "before<!--# include virtual=\"/secret/x\" -->after",
        )],
    );
    let r = n.get("/page.html", &[]);
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("classified"), "{}", r.body);
    let r = n.get("/page.html", &[("Authorization", &bearer(&alice()))]);
    assert!(r.body.contains("classified"), "{}", r.body);

    assert_eq!(n.get("/mirrored", &[]).status, 200);
    n.get("/mirrored", &[("Authorization", &bearer(&alice()))]);
    n.wait_for("the mirror log", || {
        n.read("logs/mirror.log").lines().count() >= 2
    });
    let statuses: Vec<String> = n
        .read("logs/mirror.log")
        .lines()
        .map(|l| {
            l.split('"')
                .nth(2)
                .unwrap_or("")
                .trim()
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["401", "200"], "{}", n.read("logs/mirror.log"));
}

// ---------------------------------------------------------------------------------------------
// if, satisfy any, internal redirects
// ---------------------------------------------------------------------------------------------

#[test]
fn auth_jwt_enabled_in_a_location_if_applies_and_in_a_server_if_is_refused() {
    let n = Nginx::start(&server(&format!(
        "{}\nlocation / {{ if ($arg_open) {{ auth_jwt_enabled off; }} {PROXY} }}",
        key_line()
    )));
    assert_eq!(n.get("/", &[]).status, 401);
    assert_eq!(n.get("/?open=1", &[]).status, 200);
    let body = server(&format!(
        "{}\nif ($arg_open) {{ auth_jwt_enabled off; }}\nlocation / {{ {PROXY} }}",
        key_line()
    ));
    let out = expect_emerg_at(&body, "if ($arg_open)");
    assert!(
        out.contains("\"auth_jwt_enabled\" directive is not allowed here"),
        "{out}"
    );
}

#[test]
fn with_satisfy_any_the_redirect_waits_for_the_other_access_modules() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_redirect on;\nauth_jwt_loginurl https://login.example.com/;\n\
         satisfy any;\n\
         location /allowed {{ allow 127.0.0.1; deny all; {PROXY} }}\n\
         location /denied {{ deny all; {PROXY} }}\n\
         location /alone {{ {PROXY} }}",
        key_line()
    )));
    assert_eq!(n.get("/allowed", &[]).status, 200);
    for path in ["/denied", "/alone"] {
        let r = n.get(path, &[]);
        assert_eq!(r.status, 302, "{path}: {r:?}");
        assert!(r
            .header("location")
            .unwrap()
            .starts_with("https://login.example.com/?return_url="));
        let r = n.get(path, &[("Authorization", &bearer(&alice()))]);
        assert_eq!(r.status, 200, "{path}");
    }
    let r = n.get("/denied", &[("Authorization", "Bearer forged")]);
    assert_eq!(r.status, 302);
}

#[test]
fn a_challenge_is_withdrawn_when_the_response_is_not_a_401() {
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "{}\n\
             location /fallback {{ error_page 401 = @open; {PROXY} }}\n\
             location @open {{ auth_jwt_enabled off; {PROXY} }}\n\
             location /any {{ satisfy any; allow 127.0.0.1; deny all; {PROXY} }}\n\
             location /page {{ error_page 401 /401.html; }}\n\
             location = /401.html {{ auth_jwt_enabled off; root html; internal; }}",
            key_line()
        )),
        &[("html/401.html", "please log in\n")],
    );
    for path in ["/fallback", "/any"] {
        let r = n.get(path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("www-authenticate").is_none(), "{path}: {r:?}");
    }
    // A 401 keeps it, with error_page serving the page.
    let r = n.get("/page", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.body, "please log in\n");
    assert!(r.header("www-authenticate").is_some());
}

// ---------------------------------------------------------------------------------------------
// Token sources, return_url
// ---------------------------------------------------------------------------------------------

#[test]
fn an_empty_source_does_not_hide_a_later_one() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_location HEADER=Authorization COOKIE=auth QUERY=jwt;\n\
         add_header X-Status $jwt_cache_status always;\n\
         location / {{ {PROXY} }}",
        key_line()
    )));
    let t = alice();
    let cases: [&[(&str, &str)]; 4] = [
        &[("Authorization", ""), ("Cookie", &format!("auth={t}"))],
        &[
            ("Authorization", "Bearer "),
            ("Cookie", &format!("auth={t}")),
        ],
        &[("Cookie", &format!("auth=; auth={t}"))],
        &[("Cookie", "auth=\"\"")],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let r = n.get("/?jwt=", headers);
        let expected = if i == 3 { 401 } else { 200 };
        assert_eq!(r.status, expected, "{headers:?}");
    }
    // Nothing but empty values: missing, not a cache decision.
    let r = n.get("/?jwt=", &[("Authorization", "")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-status"), None);
    let r = n.get(&format!("/?jwt=&jwt={t}"), &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn return_url_leaves_out_a_query_token_and_names_a_host() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_redirect on;\nauth_jwt_loginurl https://login.example.com/;\n\
         auth_jwt_location QUERY=token;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    let r = n.get("/p?a=1&token=expired.token.value&b=2", &[]);
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    let url = percent_decode(loc.split_once("return_url=").unwrap().1);
    assert_eq!(url, format!("http://{}/p?a=1&b=2", n.host()));
    // HTTP/1.0 without Host, in a server without server_name: the address it came in on.
    let r = n.raw(b"GET /q HTTP/1.0\r\n\r\n", false);
    assert_eq!(r.status, 302);
    let url = percent_decode(
        r.header("location")
            .unwrap()
            .split_once("return_url=")
            .unwrap()
            .1,
    );
    assert_eq!(url, format!("http://127.0.0.1:{}/q", n.port));
}

// ---------------------------------------------------------------------------------------------
// Found by a review: HTTP/0.9, cached switch values, if/set in subrequests, error_page,
// requests that skip post-read, ambiguous tokens, other header-name spellings
// ---------------------------------------------------------------------------------------------

#[test]
fn an_http_0_9_request_with_claim_headers_does_not_crash_the_worker() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_location QUERY=token;\nauth_jwt_extract_request_claims sub;\n\
         location /p/ {{ root html; }}\n\
         location /off/ {{ auth_jwt_enabled off; root html; }}",
        key_line()
    )));
    for path in ["/p/x", "/off/x"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port)).unwrap();
        use std::io::{Read, Write};
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(format!("GET {path}?token={}\r\n", alice()).as_bytes())
            .unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
    }
    // The worker is alive and well (Drop fails the test on a crash in the log).
    let r = n.get("/p/", &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn a_cached_map_value_never_switches_the_check_off_elsewhere() {
    let n = Nginx::start_full(
        "",
        &format!(
            "map $uri $auth_needed {{ ~^/public/ off; default on; }}\n{}",
            server(&format!(
                "{}\nauth_jwt_enabled $auth_needed;\nroot html;\nssi on;\n\
                 location / {{ try_files $uri $uri/ /app.php$is_args$args; }}\n\
                 location = /app.php {{ {PROXY} }}\n\
                 location /private/ {{ {PROXY} }}",
                key_line()
            ))
        ),
        &[(
            "html/public/page.html",
            "before<!--# include virtual=\"/private/secret\" -->after",
        )],
    );
    assert_eq!(n.get("/app.php", &[]).status, 401);
    let r = n.get("/public/nope", &[]);
    assert_eq!(r.status, 401, "try_files from /public/ to /app.php: {r:?}");
    let r = n.get("/public/page.html", &[]);
    assert_eq!(r.status, 200);
    assert!(!from_upstream(&r.body), "{}", r.body);
    assert!(r.body.contains("401"), "{}", r.body);
    let r = n.get("/public/nope", &[("Authorization", &bearer(&alice()))]);
    assert_eq!(r.status, 200);
}

#[test]
fn a_subrequest_is_checked_again_after_the_location_s_if_and_set() {
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "{}\nauth_jwt_enabled off;\n\
             location /api/ {{ if ($request_method != OPTIONS) {{ auth_jwt_enabled on; }} {PROXY} }}\n\
             location /page/ {{ ssi on; root html; }}\n\
             location /gate/ {{ auth_request /api/check; {PROXY} }}\n\
             location /set/ {{ auth_jwt_enabled $need; set $need on; {PROXY} }}\n\
             location /page2/ {{ set $need off; ssi on; root html; }}",
            key_line()
        )),
        &[
            ("html/page/x.html", "[<!--# include virtual=\"/api/secret\" -->]"),
            ("html/page2/x.html", "[<!--# include virtual=\"/set/secret\" -->]"),
        ],
    );
    assert_eq!(n.get("/api/secret", &[]).status, 401);
    for page in ["/page/x.html", "/page2/x.html"] {
        let r = n.get(page, &[]);
        assert!(!from_upstream(&r.body), "{page}: {}", r.body);
        assert!(r.body.contains("401"), "{page}: {}", r.body);
    }
    assert_eq!(n.get("/gate/x", &[]).status, 401);
    assert_eq!(
        n.get("/gate/x", &[("Authorization", &bearer(&alice()))])
            .status,
        200
    );
}

#[test]
fn error_page_cannot_turn_a_refused_auth_subrequest_into_a_grant() {
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "{}\nauth_jwt_enabled off;\n\
             error_page 401 = /login.html;\n\
             location = /login.html {{ root html; }}\n\
             location = /authz {{ internal; auth_jwt_enabled on; {PROXY} }}\n\
             location /app/ {{ auth_request /authz; {PROXY} }}",
            key_line()
        )),
        &[("html/login.html", "log in\n")],
    );
    let r = n.get("/app/secret", &[]);
    assert!(
        r.header("x-echo-request").is_none(),
        "the upstream was reached: {r:?}"
    );
    assert_eq!(
        r.body, "log in\n",
        "the main request's own error page: {r:?}"
    );
    let r = n.get("/app/secret", &[("Authorization", &bearer(&alice()))]);
    assert_eq!(r.header("x-echo-request"), Some("GET /app/secret HTTP/1.0"));
}

#[test]
fn a_request_finalised_while_reading_headers_loses_its_jwt_headers_too() {
    let n = Nginx::start(&server(&format!(
        "{}\nerror_page 400 = @app_error;\nerror_page 501 /err;\n\
         location /app/ {{ auth_jwt_extract_request_claims sub; {PROXY} }}\n\
         location @app_error {{ auth_jwt_enabled off; {PROXY} }}\n\
         location = /err {{ auth_jwt_enabled off; {PROXY} }}",
        key_line()
    )));
    for request in [
        "GET /app/x HTTP/1.1\r\nJWT-Sub: admin\r\nJWT-Roles: admin\r\n\r\n",
        "GET /app/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\nJWT-Sub: admin\r\n\r\n",
    ] {
        let r = n.raw(request.as_bytes(), false);
        // The error page proxies the request: the upstream sees what was left of it.
        let seen = r.upstream_headers();
        assert!(
            seen.iter().all(|(k, _)| !k.starts_with("jwt")),
            "{request:?}: {seen:?}"
        );
    }
    assert!(
        n.error_log().contains("client header \"JWT-Sub\" removed"),
        "{}",
        n.error_log()
    );
}

#[test]
fn two_different_tokens_in_one_source_are_refused() {
    let n = Nginx::start(&server(&format!(
        "{}\nunderscores_in_headers on;\n\
         add_header X-Jwt-Error $jwt_error always;\n\
         location /q/ {{ auth_jwt_location QUERY=access_token; {PROXY} }}\n\
         location /c/ {{ auth_jwt_location COOKIE=auth_token; {PROXY} }}\n\
         location /h/ {{ auth_jwt_location HEADER=X-Token; {PROXY} }}\n\
         location /both/ {{ auth_jwt_location HEADER=Authorization COOKIE=auth_token; {PROXY} }}",
        key_line()
    )));
    let (t, f) = (alice(), token(json!({"sub": "admin", "exp": now() + 600})));
    let forged = format!("{}x", &f[..f.len() - 1]);
    // Another value under the same name as an application reads names: refused.
    let refused: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            format!("/q/?access_token={t}&access_token={forged}"),
            vec![],
        ),
        (
            format!("/q/?%61ccess_token={forged}&access_token={t}"),
            vec![],
        ),
        (
            format!("/q/?access_token={t}&access.token={forged}"),
            vec![],
        ),
        (
            format!("/q/?access_token={t}&access%5Btoken={forged}"),
            vec![],
        ),
        (
            "/c/".into(),
            vec![("Cookie", format!("auth_token={t}; auth_token={forged}"))],
        ),
        (
            "/c/".into(),
            vec![("Cookie", format!("AUTH_TOKEN={forged}; auth_token={t}"))],
        ),
        (
            "/c/".into(),
            vec![
                ("Cookie", format!("auth.token={forged}")),
                ("Cookie", format!("auth_token={t}")),
            ],
        ),
        (
            "/h/".into(),
            vec![("X-Token", t.clone()), ("X_Token", forged.clone())],
        ),
    ];
    for (path, headers) in &refused {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = n.get(path, &h);
        assert_eq!(
            (r.status, r.header("x-jwt-error")),
            (401, Some("malformed")),
            "{path} {h:?}"
        );
    }
    assert!(n
        .jwt_log_lines()
        .iter()
        .any(|l| l.contains("two different tokens in")));
    // The same token twice, empty values, another scheme's credentials, and a token in an
    // earlier source next to another in a later one: the first source's token is judged.
    let accepted: Vec<(String, Vec<(&str, String)>)> = vec![
        (format!("/q/?access_token={t}&access_token={t}"), vec![]),
        (
            "/c/".into(),
            vec![(
                "Cookie",
                format!("auth_token={t}; auth_token=; auth_token=\"{t}\""),
            )],
        ),
        (
            "/both/".into(),
            vec![
                ("Authorization", "Basic YWxpY2U6cHc=".into()),
                ("Cookie", format!("auth_token={t}")),
            ],
        ),
        (
            "/both/".into(),
            vec![
                ("Authorization", bearer(&t)),
                ("Cookie", format!("auth_token={forged}")),
            ],
        ),
    ];
    for (path, headers) in &accepted {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(n.get(path, &h).status, 200, "{path} {h:?}");
    }
}

#[test]
fn a_map_of_a_map_cannot_switch_the_check_off_elsewhere() {
    let n = Nginx::start_full(
        "",
        &format!(
            "map $uri $section {{ ~^/public/ public; default private; }}\n\
             map $section $auth_needed {{ public off; default on; }}\n{}",
            server(&format!(
                "{}\nauth_jwt_enabled $auth_needed;\nroot html;\n\
                 location /private/ {{ {PROXY} }}\n\
                 location /public/ {{ ssi on; try_files $uri /private/fallback; }}\n\
                 location /setoff/ {{ auth_jwt_enabled off; set $off off; ssi on; }}\n\
                 location /api/ {{ auth_jwt_enabled $off; {PROXY} }}",
                key_line()
            ))
        ),
        &[
            (
                "html/public/page.html",
                "[<!--# include virtual=\"/private/secret\" -->]",
            ),
            (
                "html/setoff/page.html",
                "[<!--# include virtual=\"/api/secret\" -->]",
            ),
        ],
    );
    let r = n.get("/public/nope", &[]);
    assert_eq!(r.status, 401, "try_files from /public/ to /private/: {r:?}");
    for page in ["/public/page.html", "/setoff/page.html"] {
        let r = n.get(page, &[]);
        assert!(!from_upstream(&r.body), "{page}: {}", r.body);
        assert!(r.body.contains("401"), "{page}: {}", r.body);
    }
    assert_eq!(n.get("/api/x", &[]).status, 401);
    let r = n.get("/public/nope", &[("Authorization", &bearer(&alice()))]);
    assert_eq!(r.status, 200);
}

#[test]
fn a_variable_set_before_the_access_phase_still_drives_the_switch() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_enabled $need;\n\
         location /open/ {{ set $need off; {PROXY} }}\n\
         location /closed/ {{ set $need on; {PROXY} }}",
        key_line()
    )));
    assert_eq!(n.get("/open/x", &[]).status, 200);
    assert_eq!(n.get("/closed/x", &[]).status, 401);
    assert!(
        !n.error_log().contains("uninitialized"),
        "{}",
        n.error_log()
    );
}

#[test]
fn every_spelling_a_cgi_upstream_folds_is_removed() {
    let n = Nginx::start(&server(&format!(
        "{}\nignore_invalid_headers off;\nlocation / {{ {PROXY} }}",
        key_line()
    )));
    for name in ["JWT.SUB", "jwt*sub", "Jwt~sub", "JWT-sub"] {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{name}: admin\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            alice()
        );
        let r = n.raw(raw.as_bytes(), false);
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert!(
            r.upstream_headers()
                .iter()
                .all(|(k, _)| !k.to_ascii_lowercase().starts_with("jwt")),
            "{name}: {:?}",
            r.upstream_headers()
        );
    }
    // A name that merely starts with the letters is not the module's.
    let r = n.get(
        "/",
        &[("JWTX-Keep", "1"), ("Authorization", &bearer(&alice()))],
    );
    assert_eq!(r.upstream("jwtx-keep"), vec!["1"]);
}

#[test]
fn only_the_exact_token_source_header_is_kept() {
    let n = Nginx::start(&server(&format!(
        "{}\nunderscores_in_headers on;\nignore_invalid_headers off;\nauth_jwt_location HEADER=JWT-Token;\n\
         location / {{ proxy_set_header X-Token $http_jwt_token; {PROXY} }}",
        key_line()
    )));
    let forged = token(json!({"sub": "admin", "exp": now() + 600}));
    let forged = format!("{}x", &forged[..forged.len() - 1]);
    for (first, second) in [
        (("JWT_Token", forged.as_str()), ("JWT-Token", alice())),
        (
            ("jwt-token", alice().as_str()),
            ("JWT.Token", forged.clone()),
        ),
    ] {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}: {}\r\n{}: {}\r\nConnection: close\r\n\r\n",
            first.0, first.1, second.0, second.1
        );
        let r = n.raw(raw.as_bytes(), false);
        assert_eq!(r.status, 200, "{first:?} {second:?}: {r:?}");
        // Only the source's own header reaches the upstream, and $http_jwt_token reads it.
        assert_eq!(r.upstream_one("x-token"), Some(alice()));
        let names: Vec<String> = r
            .upstream_headers()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("jwt"))
            .collect();
        assert_eq!(names, ["jwt-token"], "{first:?} {second:?}");
    }
}
