//! The NGINX Plus family of directives (docs/DIRECTIVES.md: auth_jwt, auth_jwt_key_file,
//! auth_jwt_type; docs/PLUS.md): configurations written for NGINX Plus or kjdev/nginx-auth-jwt,
//! through a real nginx, and where they meet the C module's family in one configuration.

mod common;
use common::*;

/// An HS256 JWK set of one `oct` key with this kid, the secret being `SECRET`.
fn oct_jwks(kid: &str) -> String {
    jwks(&[json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": b64(SECRET)})])
}

/// nginx with this http body and `conf/keys.json`, the JWK set of `oct_jwks("k1")`.
fn start_with_keys(http: &str) -> Nginx {
    Nginx::start_full("", http, &[("conf/keys.json", &oct_jwks("k1"))])
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn get(n: &Nginx, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    n.get(path, &headers)
}

/// Plus's own example: `auth_jwt "closed site"; auth_jwt_key_file conf/keys.json;`.
#[test]
fn auth_jwt_with_a_key_file_checks_bearer_tokens() {
    let n = start_with_keys(&server(&format!(
            "auth_jwt \"closed site\";\nauth_jwt_key_file conf/keys.json jwks;\n\
             location / {{ add_header X-Jwt-Error $jwt_error always; add_header X-Sub $jwt_sub; {PROXY} }}\n\
             location /public {{ auth_jwt off; {PROXY} }}"
        )));
    let r = get(&n, "/", None);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"closed site\"")
    );
    let good = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("alice"));
    let r = get(&n, "/", Some(&good));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-sub"), Some("alice"));
    let unknown = hs_kid(Algorithm::HS256, SECRET, Some("k2"), &claims("alice"));
    let r = get(&n, "/", Some(&unknown));
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("key")));
    assert_eq!(get(&n, "/public", None).status, 200);
}

/// `token=$variable` reads the token from any variable; the Authorization header is then not
/// a source.
#[test]
fn token_from_a_variable() {
    let n = start_with_keys(&server(&format!(
            "auth_jwt_key_file conf/keys.json;\n\
             location /cookie {{ auth_jwt \"\" token=$cookie_auth_token; add_header X-Sub $jwt_sub; {PROXY} }}\n\
             location /arg {{ auth_jwt \"\" token=$arg_jwt; add_header X-Sub $jwt_sub; {PROXY} }}"
        )));
    let good = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("bob"));
    let r = n.get(
        "/cookie",
        &[("Cookie", &format!("theme=x; auth_token={good}"))],
    );
    assert_eq!((r.status, r.header("x-sub")), (200, Some("bob")), "{r:?}");
    let r = get(&n, "/cookie", Some(&good));
    assert_eq!(
        r.status, 401,
        "the Authorization header is not the source: {r:?}"
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"\""));
    let r = n.get(&format!("/arg?jwt={good}"), &[]);
    assert_eq!((r.status, r.header("x-sub")), (200, Some("bob")), "{r:?}");
    let lines = n.jwt_log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("no token in cookie \"auth_token\"")),
        "{lines:?}"
    );
}

/// A token variable that reads the module's own variables cannot make the check read itself.
#[test]
fn token_variable_reading_jwt_variables_is_not_found() {
    let n = start_with_keys(&format!(
        "map $jwt_sub $loop {{ default $jwt_sub; }}\n{}",
        server(&format!(
            "auth_jwt_key_file conf/keys.json;\n\
                 location / {{ auth_jwt \"x\" token=$loop; {PROXY} }}"
        ))
    ));
    let good = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("bob"));
    assert_eq!(get(&n, "/", Some(&good)).status, 401);
    assert_eq!(get(&n, "/", None).status, 401);
}

/// The realm may hold variables; it is escaped per request.
#[test]
fn realm_with_variables() {
    let n = start_with_keys(&server(&format!(
        "auth_jwt $arg_realm;\nauth_jwt_key_file conf/keys.json;\nlocation / {{ {PROXY} }}"
    )));
    let r = n.get("/?realm=a%22b", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"a%22b\""));
    let r = n.get("/?realm=team", &[]);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"team\""));
}

/// Several `auth_jwt_key_file`: the keys of all of them verify (an RSA set and an EC key).
#[test]
fn several_key_files_combine() {
    let rsa = jwks(&[rsa_jwk("rsa2048", "r1")]);
    let ec = jwks(&[{
        let mut k = ec256_jwk("ec256");
        k["kid"] = json!("e1");
        k
    }]);
    let n = Nginx::start_full(
        "",
        &server(&format!(
            "auth_jwt \"api\";\nauth_jwt_key_file conf/rsa.json;\nauth_jwt_key_file conf/ec.json;\n\
             location / {{ {PROXY} }}"
        )),
        &[("conf/rsa.json", &rsa), ("conf/ec.json", &ec)],
    );
    let rs = signed_kid(Algorithm::RS256, "rsa2048", Some("r1"), &claims("a"));
    let es = signed_kid(Algorithm::ES256, "ec256", Some("e1"), &claims("a"));
    assert_eq!(get(&n, "/", Some(&rs)).status, 200);
    assert_eq!(get(&n, "/", Some(&es)).status, 200);
    // A kid of one set with the other set's key type is not accepted.
    let swapped = signed_kid(Algorithm::ES256, "ec256", Some("r1"), &claims("a"));
    assert_eq!(get(&n, "/", Some(&swapped)).status, 401);
    // An independent issuer (PyJWT) with the RSA key.
    let py = pyjwt_kid(
        &key("rsa2048.key"),
        &claims("py").to_string(),
        "RS256",
        "r1",
    );
    assert_eq!(get(&n, "/", Some(&py)).status, 200);
}

/// Two files giving one kid to different keys fail `nginx -t`; the same key twice does not.
#[test]
fn one_kid_for_two_keys_fails_nginx_t() {
    let a = jwks(&[rsa_jwk("rsa2048", "k")]);
    let b = jwks(&[rsa_jwk("rsa2048-b", "k")]);
    let body =
        server("auth_jwt \"x\";\nauth_jwt_key_file conf/a.json;\nauth_jwt_key_file conf/b.json;");
    let (ok, out) = nginx_t_full("", &body, &[("conf/a.json", &a), ("conf/b.json", &b)]);
    assert!(!ok, "{out}");
    assert!(out.contains("two different keys have kid \"k\""), "{out}");
    let (ok, out) = nginx_t_full("", &body, &[("conf/a.json", &a), ("conf/b.json", &a)]);
    assert!(ok, "{out}");
}

#[test]
fn auth_jwt_type() {
    expect_valid(&server("auth_jwt_type signed;"));
    for kind in ["encrypted", "nested"] {
        let body = server(&format!("auth_jwt_type {kind};"));
        let out = expect_emerg_at(&body, "auth_jwt_type");
        assert!(
            out.contains(&format!("\"{kind}\" is not supported")),
            "{out}"
        );
    }
    let out = expect_emerg_at(&server("auth_jwt_type jwe;"), "auth_jwt_type");
    assert!(out.contains("invalid value \"jwe\""), "{out}");
}

/// Where the families meet at one level, `nginx -t` refuses; across levels the inner one
/// applies.
#[test]
fn families_at_one_level_are_refused() {
    let hex = secret_hex();
    let cases = [
        (
            format!("auth_jwt_key \"{hex}\";\nauth_jwt_key_file conf/k.json;"),
            "auth_jwt_key_file",
            "cannot be mixed",
        ),
        (
            format!("auth_jwt_enabled on;\nauth_jwt \"x\";\nauth_jwt_key \"{hex}\";"),
            "auth_jwt \"x\"",
            "is duplicate: the check is already switched on or off here",
        ),
        (
            format!("auth_jwt_realm a;\nauth_jwt \"x\";\nauth_jwt_key \"{hex}\";"),
            "auth_jwt \"x\"",
            "the realm is already set",
        ),
        (
            format!("auth_jwt \"x\";\nauth_jwt_location COOKIE=a;\nauth_jwt_key \"{hex}\";"),
            "auth_jwt_location",
            "where the token is read is already set",
        ),
        (
            "auth_jwt_key_file conf/$host.json;".to_string(),
            "auth_jwt_key_file",
            "does not support variables",
        ),
        (
            "auth_jwt_key_file conf/k.json keyval;".to_string(),
            "auth_jwt_key_file",
            "format \"keyval\" is not supported",
        ),
        (
            "auth_jwt \"x\" token=cookie;".to_string(),
            "auth_jwt",
            "needs a variable",
        ),
        (
            "auth_jwt off token=$cookie_a;".to_string(),
            "auth_jwt",
            "takes no parameter after \"off\"",
        ),
    ];
    for (directives, needle, message) in cases {
        let out = expect_emerg_at(&server(&directives), needle);
        assert!(out.contains(message), "{directives}\n{out}");
    }
}

#[test]
fn inner_level_family_applies() {
    let hex = secret_hex();
    let n = start_with_keys(&server(&format!(
            "auth_jwt_key \"{hex}\";\nauth_jwt_location COOKIE=auth;\n\
             location /c {{ add_header X-Sub $jwt_sub; {PROXY} }}\n\
             location /plus {{ auth_jwt \"p\"; auth_jwt_key_file conf/keys.json; add_header X-Sub $jwt_sub; {PROXY} }}\n\
             location /off {{ auth_jwt off; {PROXY} }}"
        )));
    let plain = hs256(SECRET, claims("carol"));
    let kid = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("dave"));
    // The C family's location reads the cookie.
    let r = n.get("/c", &[("Cookie", &format!("auth={plain}"))]);
    assert_eq!((r.status, r.header("x-sub")), (200, Some("carol")), "{r:?}");
    // The Plus location reads the Authorization header and verifies with its key file.
    let r = n.get("/plus", &[("Cookie", &format!("auth={kid}"))]);
    assert_eq!(r.status, 401, "{r:?}");
    let r = get(&n, "/plus", Some(&kid));
    assert_eq!((r.status, r.header("x-sub")), (200, Some("dave")), "{r:?}");
    // `auth_jwt off` switches off the check the server's key switched on.
    assert_eq!(n.get("/off", &[]).status, 200);
}

/// `auth_jwt` inside `limit_except`: the methods it lists go unchecked, the others are checked.
#[test]
fn limit_except_limits_the_check_to_methods() {
    let n = start_with_keys(&server(&format!(
        "auth_jwt_key_file conf/keys.json;\n\
             location / {{ limit_except GET {{ auth_jwt \"write\"; }} {PROXY} }}"
    )));
    let good = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("erin"));
    assert_eq!(n.request("GET", "/", &[]).status, 200);
    let r = n.request("POST", "/", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    let auth = bearer(&good);
    let r = n.request("POST", "/", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{r:?}");
}

/// As in Plus, where the keys come from `auth_jwt_key_file`, `exp` and `nbf` are checked
/// when present; `auth_jwt_require $jwt_claim_exp` requires `exp`. The C module's family
/// keeps requiring it.
#[test]
fn exp_is_checked_when_present_in_the_plus_family() {
    let hex = secret_hex();
    let n = start_with_keys(&server(&format!(
            "location /plus {{ auth_jwt \"x\"; auth_jwt_key_file conf/keys.json; \
             add_header X-Jwt-Error $jwt_error always; add_header X-Sub $jwt_sub; {PROXY} }}\n\
             location /plus-exp {{ auth_jwt \"x\"; auth_jwt_key_file conf/keys.json; \
             auth_jwt_require $jwt_claim_exp; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n\
             location /c {{ auth_jwt_key \"{hex}\"; add_header X-Jwt-Error $jwt_error always; {PROXY} }}"
        )));
    let no_exp = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &json!({"sub": "x"}));
    let r = get(&n, "/plus", Some(&no_exp));
    assert_eq!((r.status, r.header("x-sub")), (200, Some("x")), "{r:?}");
    let expired = hs_kid(
        Algorithm::HS256,
        SECRET,
        Some("k1"),
        &json!({"sub": "x", "exp": now() - 60}),
    );
    let r = get(&n, "/plus", Some(&expired));
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("expired")));
    let r = get(&n, "/plus-exp", Some(&no_exp));
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("require")),
        "{r:?}"
    );
    let r = get(&n, "/c", Some(&hs256(SECRET, json!({"sub": "x"}))));
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("claim")),
        "{r:?}"
    );
}

/// `auth_jwt_require`: the rooms service's rule (only `sub = root`, through a `map`) and the
/// admin page's (`type = 1`, else 403), in both families; every directive must hold.
#[test]
fn auth_jwt_require_rules() {
    let hex = secret_hex();
    let n = start_with_keys(&format!(
            "map $jwt_claim_sub $is_root {{ root 1; default 0; }}\n\
             map $jwt_claim_type $is_admin {{ 1 1; default \"\"; }}\n{}",
            server(&format!(
                "auth_jwt_key \"{hex}\";\n\
                 location /rooms {{ auth_jwt_require $is_root; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n\
                 location /admin {{ auth_jwt_require $is_admin error=403; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n\
                 location /both {{ auth_jwt_require $is_root; auth_jwt_require $is_admin error=403; {PROXY} }}\n\
                 location /plus {{ auth_jwt \"p\"; auth_jwt_key_file conf/keys.json; auth_jwt_require $is_root error=403; {PROXY} }}"
            ))
        ));
    let root = hs256(SECRET, claims("root"));
    let alice = hs256(SECRET, claims("alice"));
    let admin = hs256(
        SECRET,
        json!({"sub": "alice", "type": 1, "exp": now() + 3600}),
    );
    let root_admin = hs256(
        SECRET,
        json!({"sub": "root", "type": 1, "exp": now() + 3600}),
    );

    assert_eq!(get(&n, "/rooms", Some(&root)).status, 200);
    let r = get(&n, "/rooms", Some(&alice));
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("require")),
        "{r:?}"
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("error=\"invalid_token\"")),
        "{r:?}"
    );
    // No token: the usual refusal, not the requirement's.
    let r = get(&n, "/rooms", None);
    assert_eq!((r.status, r.header("x-jwt-error")), (401, Some("missing")));

    assert_eq!(get(&n, "/admin", Some(&admin)).status, 200);
    let r = get(&n, "/admin", Some(&alice));
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (403, Some("require")),
        "{r:?}"
    );

    assert_eq!(get(&n, "/both", Some(&root_admin)).status, 200);
    assert_eq!(get(&n, "/both", Some(&root)).status, 403);
    assert_eq!(get(&n, "/both", Some(&admin)).status, 401);

    let kid_root = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("root"));
    let kid_alice = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("alice"));
    assert_eq!(get(&n, "/plus", Some(&kid_root)).status, 200);
    assert_eq!(get(&n, "/plus", Some(&kid_alice)).status, 403);
    let lines = n.jwt_log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("auth_jwt: require: \"$is_root\" is empty or 0")),
        "{lines:?}"
    );
}

#[test]
fn auth_jwt_require_bad_values_fail_nginx_t() {
    for (directive, message) in [
        ("auth_jwt_require $a error=500;", "invalid \"error=500\""),
        ("auth_jwt_require error=403 $a;", "takes \"error=\" last"),
        ("auth_jwt_require error=403;", "needs at least one value"),
        ("auth_jwt_require iss;", "value \"iss\" has no variable"),
    ] {
        let out = expect_emerg_at(&server(directive), "auth_jwt_require");
        assert!(out.contains(message), "{directive}\n{out}");
    }
}

/// `auth_jwt_claim_set` and `auth_jwt_header_set`: nested lookups from the top of the JSON
/// tree, as a Keycloak token needs (`realm_access.roles`).
#[test]
fn claim_set_and_header_set() {
    let n = start_with_keys(&format!(
            "auth_jwt_claim_set $roles realm_access roles;\n\
             auth_jwt_claim_set $access realm_access;\n\
             auth_jwt_claim_set $email email;\n\
             auth_jwt_claim_set $nothing realm_access nothing here;\n\
             auth_jwt_header_set $kid kid;\n\
             map $roles $is_admin {{ ~(^|,)admin(,|$) 1; default 0; }}\n{}",
            server(&format!(
                "auth_jwt \"kc\";\nauth_jwt_key_file conf/keys.json;\n\
                 location / {{ add_header X-Roles $roles; add_header X-Access $access; \
                 add_header X-Email $email; add_header X-Nothing \"[$nothing]\"; add_header X-Kid $kid; {PROXY} }}\n\
                 location /admin {{ auth_jwt_require $is_admin error=403; {PROXY} }}"
            ))
        ));
    let payload = json!({
        "sub": "kc-user", "exp": now() + 3600, "email": "u@example.com",
        "realm_access": {"roles": ["offline_access", "admin"]},
    });
    let token = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &payload);
    let r = get(&n, "/", Some(&token));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-roles"), Some("offline_access,admin"));
    assert_eq!(
        r.header("x-access"),
        Some("{\"roles\":[\"offline_access\",\"admin\"]}")
    );
    assert_eq!(r.header("x-email"), Some("u@example.com"));
    assert_eq!(r.header("x-nothing"), Some("[]"));
    assert_eq!(r.header("x-kid"), Some("k1"));
    assert_eq!(get(&n, "/admin", Some(&token)).status, 200);
    let user = hs_kid(
        Algorithm::HS256,
        SECRET,
        Some("k1"),
        &json!({"sub": "u", "exp": now() + 3600, "realm_access": {"roles": ["user"]}}),
    );
    assert_eq!(get(&n, "/admin", Some(&user)).status, 403);
    // Without a valid token the variables are empty.
    let r = get(&n, "/", None);
    assert_eq!(r.status, 401);
}

#[test]
fn claim_set_errors_fail_nginx_t() {
    let out = expect_emerg_at(
        "auth_jwt_claim_set roles realm_access;",
        "auth_jwt_claim_set",
    );
    assert!(out.contains("invalid variable name \"roles\""), "{out}");
    let (ok, out) = nginx_t("auth_jwt_claim_set $a x;\nauth_jwt_claim_set $a y;");
    assert!(!ok && out.contains("duplicate"), "{out}");
}

/// A requirement holds only if it also holds with the variables computed afresh: a `map`
/// cached before a rewrite (here for `/start`) cannot grant `/target`
/// (docs/DIRECTIVES.md: auth_jwt_require).
#[test]
fn auth_jwt_require_is_not_granted_by_a_cached_map() {
    let hex = secret_hex();
    let n = Nginx::start_full(
        "",
        &format!(
            "map $uri $uri_ok {{ /start 1; /target-ok 1; default 0; }}\n{}",
            server(&format!(
                "auth_jwt_key \"{hex}\";\n\
                 location /start {{ set $seen $uri_ok; rewrite ^ /target last; }}\n\
                 location /target {{ auth_jwt_require $uri_ok; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n\
                 location /target-ok {{ auth_jwt_require $uri_ok; {PROXY} }}"
            ))
        ),
        &[],
    );
    let token = hs256(SECRET, claims("alice"));
    let r = get(&n, "/start", Some(&token));
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("require")),
        "{r:?}"
    );
    assert_eq!(get(&n, "/target-ok", Some(&token)).status, 200);
}

/// `token=$cookie_NAME`, `$arg_NAME`, `$http_NAME` are the sources they read, with their rules:
/// two different tokens under the name are refused, a query token stays out of `return_url`,
/// and a `JWT-*` header named as the source is kept on arrival. Any other variable is read as
/// it is.
#[test]
fn token_variables_are_sources_with_their_rules() {
    let n = start_with_keys(&format!(
            "map $http_x_custom $custom {{ default $http_x_custom; }}\n{}",
            server(&format!(
                "auth_jwt_key_file conf/keys.json;\n\
                 location /c {{ auth_jwt \"x\" token=$cookie_t; add_header X-Jwt-Error $jwt_error always; {PROXY} }}\n\
                 location /a {{ auth_jwt \"x\" token=$arg_t; {PROXY} }}\n\
                 location /r {{ auth_jwt \"x\" token=$arg_t; auth_jwt_redirect on; auth_jwt_loginurl https://login.example/; {PROXY} }}\n\
                 location /h {{ auth_jwt \"x\" token=$http_jwt_token; add_header X-Sub $jwt_sub; {PROXY} }}\n\
                 location /m {{ auth_jwt \"x\" token=$custom; add_header X-Sub $jwt_sub; {PROXY} }}"
            ))
        ));
    let good = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &claims("ann"));
    let forged = raw_token(r#"{"alg":"none"}"#, r#"{"sub":"root"}"#, |_| Vec::new());
    let r = n.get("/c", &[("Cookie", &format!("t={good}; t={forged}"))]);
    assert_eq!(
        (r.status, r.header("x-jwt-error")),
        (401, Some("malformed")),
        "{r:?}"
    );
    assert_eq!(n.get(&format!("/a?t={good}&t={forged}"), &[]).status, 401);
    assert_eq!(n.get(&format!("/a?t={good}"), &[]).status, 200);
    let expired = hs_kid(
        Algorithm::HS256,
        SECRET,
        Some("k1"),
        &json!({"sub": "a", "exp": 1}),
    );
    let r = n.get(&format!("/r?x=1&t={expired}"), &[]);
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap_or("");
    assert!(
        !location.contains("eyJ"),
        "the token reached return_url: {location}"
    );
    let r = n.get("/h", &[("JWT-Token", &good)]);
    assert_eq!((r.status, r.header("x-sub")), (200, Some("ann")), "{r:?}");
    let r = n.get("/m", &[("X-Custom", &good)]);
    assert_eq!((r.status, r.header("x-sub")), (200, Some("ann")), "{r:?}");
}

/// A refusal of `auth_jwt_require ... error=403` in an `auth_request` target skips the
/// location's `error_page`, which could turn it into the 2xx that grants access.
#[test]
fn require_403_in_a_subrequest_skips_error_page() {
    let n = start_with_keys(&format!(
            "map $jwt_claim_role $is_admin {{ admin 1; default 0; }}\n{}",
            server(&format!(
                "auth_jwt_key_file conf/keys.json;\n\
                 location /app {{ auth_request /_auth; {PROXY} }}\n\
                 location = /_auth {{ internal; auth_jwt \"x\"; auth_jwt_require $is_admin error=403; \
                 error_page 403 = /denied; return 204; }}\n\
                 location = /denied {{ internal; return 200 \"denied\"; }}"
            ))
        ));
    let role = |role: &str| {
        hs_kid(
            Algorithm::HS256,
            SECRET,
            Some("k1"),
            &json!({"sub": "u", "role": role, "exp": now() + 60}),
        )
    };
    assert_eq!(get(&n, "/app", Some(&role("user"))).status, 403);
    assert_eq!(get(&n, "/app", Some(&role("admin"))).status, 200);
}

/// A location that switches to `auth_jwt_key_file` under a level checked by the C module's
/// default is no longer checked without `auth_jwt`, as in NGINX Plus: `nginx -t` says so.
#[test]
fn switching_to_key_files_without_auth_jwt_warns() {
    let hex = secret_hex();
    let files = [("conf/k.json", oct_jwks("k1"))];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let body = server(&format!(
        "auth_jwt_key \"{hex}\";\nlocation / {{ }}\nlocation /v2 {{ auth_jwt_key_file conf/k.json; }}"
    ));
    let (ok, out) = nginx_t_full("", &body, &files);
    assert!(ok, "{out}");
    assert!(
        out.contains("[warn]")
            && out.contains("tokens are not checked here: keys of \"auth_jwt_key_file\""),
        "{out}"
    );
    let body = server(&format!(
        "auth_jwt_key \"{hex}\";\nlocation /v2 {{ auth_jwt \"v2\"; auth_jwt_key_file conf/k.json; }}"
    ));
    let (ok, out) = nginx_t_full("", &body, &files);
    assert!(ok && !out.contains("[warn]"), "{out}");
}

/// A claim-set variable whose name `set` or `map` also defines fails `nginx -t`: its value
/// would be cached and could outlive the keys that judged it.
#[test]
fn claim_set_variable_defined_elsewhere_fails_nginx_t() {
    for other in [
        "map $uri $role { default x; }",
        "server { listen 127.0.0.1:1; set $role guest; }",
    ] {
        let (ok, out) = nginx_t(&format!("auth_jwt_claim_set $role role;\n{other}"));
        assert!(!ok, "{other}\n{out}");
        assert!(
            out.contains("\"$role\" of \"auth_jwt_claim_set\" is already defined"),
            "{out}"
        );
    }
}

/// The realm's quotes and backslashes are escaped per request (RFC 7230 quoted-string).
#[test]
fn realm_variable_is_escaped() {
    let n = start_with_keys(&server(&format!(
        "auth_jwt $arg_realm;\nauth_jwt_key_file conf/keys.json;\nlocation / {{ {PROXY} }}"
    )));
    let r = n.get("/?realm=a\"b\\c", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"a\\\"b\\\\c\"")
    );
}

/// A token without `exp` accepted where the keys come from `auth_jwt_key_file` is never
/// served from the cache to a location of the C module's family with the same keys, which
/// requires `exp`: the two policies are two cache scopes.
#[test]
fn exp_optional_and_required_do_not_share_cache_entries() {
    let n = start_with_keys(&server(&format!(
            "add_header X-Cache $jwt_cache_status always;\nadd_header X-Jwt-Error $jwt_error always;\n\
             location /plus {{ auth_jwt \"x\"; auth_jwt_key_file conf/keys.json; {PROXY} }}\n\
             location /c {{ auth_jwt_use_keyfile on; auth_jwt_keyfile_path conf/keys.json; {PROXY} }}"
        )));
    let no_exp = hs_kid(Algorithm::HS256, SECRET, Some("k1"), &json!({"sub": "x"}));
    let statuses: Vec<_> = (0..3)
        .map(|_| {
            let r = get(&n, "/plus", Some(&no_exp));
            (r.status, r.header("x-cache").unwrap_or("").to_owned())
        })
        .collect();
    assert_eq!(
        statuses.last(),
        Some(&(200, "HIT".to_owned())),
        "{statuses:?}"
    );
    let r = get(&n, "/c", Some(&no_exp));
    assert_eq!(
        (r.status, r.header("x-jwt-error"), r.header("x-cache")),
        (401, Some("claim"), Some("MISS")),
        "{r:?}"
    );
}
