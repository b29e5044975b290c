//! The variables (docs/DIRECTIVES.md: Variables) in every phase and context: rewrite
//! (`if`/`return`/`set`), `map`, `add_header`, `proxy_set_header`, `log_format`, `auth_request`
//! subrequests, internal redirects.

mod common;
use common::*;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn auth(t: &str) -> [(&'static str, String); 1] {
    [("Authorization", bearer(t))]
}

fn hdrs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

fn alice() -> String {
    hs256(
        SECRET,
        json!({"sub": "alice", "role": "admin", "exp": now() + 3600}),
    )
}

fn bob() -> String {
    hs256(
        SECRET,
        json!({"sub": "bob", "role": "user", "exp": now() + 3600}),
    )
}

#[test]
fn rewrite_phase_if_return_set() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /if {{ if ($jwt_sub = \"alice\") {{ return 200 \"hello $jwt_sub\"; }} return 403 \"no:$jwt_error\"; }}\n\
         location /set {{ set $user $jwt_sub; set $role \"r=$jwt_claim_role\"; return 200 \"$user,$role\"; }}",
        key_line()
    )));
    let r = n.get("/if", &hdrs(&auth(&alice())));
    assert_eq!((r.status, r.body.as_str()), (200, "hello alice"));
    let r = n.get("/if", &hdrs(&auth(&bob())));
    assert_eq!((r.status, r.body.as_str()), (403, "no:"));
    let r = n.get("/if", &[]);
    assert_eq!((r.status, r.body.as_str()), (403, "no:missing"));
    let expired = hs256(SECRET, json!({"sub": "alice", "exp": now() - 10}));
    let r = n.get("/if", &hdrs(&auth(&expired)));
    assert_eq!((r.status, r.body.as_str()), (403, "no:expired"));
    let r = n.get("/set", &hdrs(&auth(&bob())));
    assert_eq!((r.status, r.body.as_str()), (200, "bob,r=user"));
    let r = n.get("/set", &hdrs(&auth(&expired)));
    assert_eq!((r.status, r.body.as_str()), (200, ",r="));
}

#[test]
fn claim_rendering_and_header_and_payload() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /claims {{ return 200 \"$jwt_claim_s|$jwt_claim_n|$jwt_claim_f|$jwt_claim_b|$jwt_claim_arr|$jwt_claim_obj|$jwt_claim_absent|$jwt_sub\"; }}\n\
         location /header {{ return 200 \"$jwt_header_alg|$jwt_header_kid|$jwt_header_typ\"; }}\n\
         location /payload {{ return 200 \"$jwt_payload\"; }}",
        key_line()
    )));
    let payload = format!(
        r#"{{"sub":"carol","s":"str ing","n":42,"f":1.5,"b":true,"arr":["x","y",3],"obj":{{"k":"v","n":[1,2]}},"exp":{}}}"#,
        now() + 3600
    );
    let t = raw_hs256(r#"{"alg":"HS256","typ":"JWT","kid":"kid-1"}"#, &payload);
    let r = n.get("/claims", &hdrs(&auth(&t)));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        r#"str ing|42|1.5|true|x,y,3|{"k":"v","n":[1,2]}||carol"#
    );
    let r = n.get("/header", &hdrs(&auth(&t)));
    assert_eq!(r.body, "HS256|kid-1|JWT");
    let r = n.get("/payload", &hdrs(&auth(&t)));
    assert_eq!(r.body, payload);
}

#[test]
fn map_and_add_header() {
    let n = Nginx::start(&format!(
        "map $jwt_claim_role $is_admin {{ admin yes; default no; }}\n\
         map $jwt_sub $greeting {{ \"\" anonymous; default \"user $jwt_sub\"; }}\n{}",
        server(&format!(
            "{}\nauth_jwt_enabled off;\n\
             location / {{ add_header X-Admin $is_admin always; add_header X-Greeting $greeting always; \
                           add_header X-Sub $jwt_sub always; add_header X-Err $jwt_error always; {PROXY} }}",
            key_line()
        ))
    ));
    let r = n.get("/", &hdrs(&auth(&alice())));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-admin"), Some("yes"));
    assert_eq!(r.header("x-greeting"), Some("user alice"));
    assert_eq!(r.header("x-sub"), Some("alice"));
    assert_eq!(r.header("x-err"), None);
    let r = n.get("/", &hdrs(&auth(&bob())));
    assert_eq!(r.header("x-admin"), Some("no"));
    assert_eq!(r.header("x-greeting"), Some("user bob"));
    let r = n.get("/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-admin"), Some("no"));
    assert_eq!(r.header("x-greeting"), Some("anonymous"));
    assert_eq!(r.header("x-sub"), None);
    assert_eq!(r.header("x-err"), Some("missing"));
}

#[test]
fn proxy_set_header_reaches_upstream() {
    let n = Nginx::start(&server(&format!(
        "{}\nlocation / {{ proxy_set_header X-User $jwt_sub; proxy_set_header X-Role $jwt_claim_role; \
                             proxy_set_header X-Alg $jwt_header_alg; {PROXY} }}",
        key_line()
    )));
    let r = n.get(
        "/",
        &[("Authorization", &bearer(&alice())), ("X-User", "root")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream("x-user"), vec!["alice"]);
    assert_eq!(r.upstream_one("x-role").as_deref(), Some("admin"));
    assert_eq!(r.upstream_one("x-alg").as_deref(), Some("HS256"));
}

#[test]
fn log_format_at_http_level_with_unconfigured_server() {
    let n = Nginx::start(&format!(
        "log_format jwt '$server_port $uri $status sub=[$jwt_sub] role=[$jwt_claim_role] err=[$jwt_error] alg=[$jwt_header_alg]';\n\
         access_log {{{{PREFIX}}}}/logs/jwt.log jwt;\n\
         {}\n\
         server {{ listen 127.0.0.1:{{{{PORT}}}}; server_name plain; location / {{ {PROXY} }} }}",
        server(&format!("server_name secured;\n{}\nlocation / {{ {PROXY} }}", key_line()))
    ));
    let secured = |t: Option<&str>| {
        let mut h = vec![("Host", "secured")];
        let b;
        if let Some(t) = t {
            b = bearer(t);
            h.push(("Authorization", b.as_str()));
        }
        n.get("/s", &h).status
    };
    assert_eq!(secured(Some(&alice())), 200);
    assert_eq!(secured(None), 401);
    assert_eq!(secured(Some("bad.token.here")), 401);
    assert_eq!(n.get("/p", &[("Host", "plain")]).status, 200);
    assert_eq!(
        n.get(
            "/p",
            &[("Host", "plain"), ("Authorization", &bearer(&alice()))]
        )
        .status,
        200
    );
    let log = n.read("logs/jwt.log");
    let lines: Vec<&str> = log.lines().collect();
    let port = n.port;
    assert_eq!(
        lines,
        vec![
            format!("{port} /s 200 sub=[alice] role=[admin] err=[] alg=[HS256]"),
            format!("{port} /s 401 sub=[-] role=[-] err=[missing] alg=[-]"),
            format!("{port} /s 401 sub=[-] role=[-] err=[malformed] alg=[-]"),
            format!("{port} /p 200 sub=[-] role=[-] err=[-] alg=[-]"),
            format!("{port} /p 200 sub=[-] role=[-] err=[-] alg=[-]"),
        ],
        "{log}"
    );
}

#[test]
fn unconfigured_server_rewrite_phase_variables_are_empty() {
    let n = Nginx::start(&server(
        "location / { if ($jwt_sub) { return 500 \"unexpected $jwt_sub\"; } return 200 \"[$jwt_sub][$jwt_claim_x][$jwt_error][$jwt_payload]\"; }",
    ));
    for _ in 0..3 {
        let r = n.get("/", &hdrs(&auth(&alice())));
        assert_eq!((r.status, r.body.as_str()), (200, "[][][][]"));
    }
}

#[test]
fn auth_request_subrequest_decides_on_jwt_sub() {
    let n = Nginx::start(&server(&format!(
        "{}\nauth_jwt_enabled off;\n\
         location /protected {{ auth_request /_auth; {PROXY} }}\n\
         location = /_auth {{ internal; if ($jwt_sub = \"\") {{ return 403; }} if ($jwt_sub != \"alice\") {{ return 403; }} return 204; }}\n\
         location /admin {{ auth_request /_admin; {PROXY} }}\n\
         location = /_admin {{ internal; if ($jwt_claim_role = \"admin\") {{ return 204; }} return 403; }}",
        key_line()
    )));
    assert_eq!(n.get("/protected", &hdrs(&auth(&alice()))).status, 200);
    assert_eq!(n.get("/protected", &hdrs(&auth(&bob()))).status, 403);
    assert_eq!(n.get("/protected", &[]).status, 403);
    let expired = hs256(SECRET, json!({"sub": "alice", "exp": now() - 10}));
    assert_eq!(n.get("/protected", &hdrs(&auth(&expired))).status, 403);
    assert_eq!(n.get("/admin", &hdrs(&auth(&alice()))).status, 200);
    assert_eq!(n.get("/admin", &hdrs(&auth(&bob()))).status, 403);
}

#[test]
fn after_internal_redirects() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /ep {{ error_page 404 = @fallback; root html; }}\n\
         location /tf {{ try_files /nonexistent @fallback; }}\n\
         location @fallback {{ auth_jwt_enabled off; add_header X-Sub \"[$jwt_sub]\" always; add_header X-Role \"[$jwt_claim_role]\" always; {PROXY} }}\n\
         location /rw {{ auth_jwt_enabled off; rewrite ^ /target last; }}\n\
         location /target {{ auth_jwt_enabled off; return 200 \"sub=$jwt_sub\"; }}",
        key_line()
    )));
    for path in ["/ep/missing.html", "/tf"] {
        let r = n.get(path, &hdrs(&auth(&alice())));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.header("x-sub"), Some("[alice]"), "{path}");
        assert_eq!(r.header("x-role"), Some("[admin]"), "{path}");
        // Enforcement happened before the redirect.
        assert_eq!(n.get(path, &[]).status, 401, "{path}");
    }
    let r = n.get("/rw", &hdrs(&auth(&bob())));
    assert_eq!((r.status, r.body.as_str()), (200, "sub=bob"));
}

#[test]
fn internal_redirect_to_location_with_another_key_recomputes() {
    let n = Nginx::start(&server(&format!(
        "{}\n\
         location /a {{ auth_jwt_enabled off; error_page 404 = /b/x; root html; }}\n\
         location /b {{ auth_jwt_key \"another secret for b, 32 bytes long\" utf8; auth_jwt_enabled off; \
                        return 200 \"[$jwt_sub][$jwt_error]\"; }}",
        key_line()
    )));
    // Valid under the server's key, but /b has another key: nothing may leak across.
    let r = n.get(
        "/a/missing",
        &[
            ("Authorization", &bearer(&alice())),
            ("X-Probe", "$jwt_sub"),
        ],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "[][signature]"));
    let b = hs256(b"another secret for b, 32 bytes long", claims("bee"));
    let r = n.get("/a/missing", &hdrs(&auth(&b)));
    assert_eq!((r.status, r.body.as_str()), (200, "[bee][]"));
}
