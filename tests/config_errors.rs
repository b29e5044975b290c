//! Configuration errors fail `nginx -t` with an `[emerg]` naming nginx.conf and the line of the
//! offending directive (docs/DIRECTIVES.md); valid configurations pass.

mod common;
use common::*;

/// A server whose body has the offending directive on its own line.
fn conf(body: &str) -> String {
    format!("server {{\nlisten 127.0.0.1:{{{{PORT}}}};\n{body}\nlocation / {{ return 204; }}\n}}\n")
}

fn key_line() -> String {
    format!("auth_jwt_key \"{}\";", secret_hex())
}

#[test]
fn unknown_algorithm() {
    let out = expect_emerg_at(
        &conf(&format!("{}\nauth_jwt_algorithm HS999;", key_line())),
        "HS999",
    );
    assert!(out.contains("HS999"), "{out}");
}

#[test]
fn unknown_algorithm_in_location() {
    expect_emerg_at(
        &format!(
            "{}\nserver {{\nlisten 127.0.0.1:{{{{PORT}}}};\nlocation / {{\nauth_jwt_algorithm none;\n}}\n}}",
            key_line()
        ),
        "auth_jwt_algorithm none",
    );
}

#[test]
fn bad_hex_key() {
    expect_emerg_at(
        &conf("auth_jwt_key \"0123456789abcdefXY\";"),
        "auth_jwt_key",
    );
    expect_emerg_at(&conf("auth_jwt_key \"abc\";"), "auth_jwt_key");
    expect_emerg_at(
        &conf("auth_jwt_key \"not hex at all\" hex;"),
        "auth_jwt_key",
    );
}

#[test]
fn bad_base64_key() {
    expect_emerg_at(
        &conf("auth_jwt_key \"@@@not*base64@@@\" base64;"),
        "auth_jwt_key",
    );
}

#[test]
fn unknown_key_encoding_word() {
    expect_emerg_at(&conf("auth_jwt_key \"abcd\" rot13;"), "auth_jwt_key");
}

#[test]
fn unreadable_key_file() {
    expect_emerg_at(
        &conf("auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path /nonexistent/dir/key.pem;"),
        "auth_jwt_keyfile_path",
    );
}

#[test]
fn unreadable_key_file_with_default_algorithm() {
    // No algorithm can use a file that cannot be read.
    expect_emerg_at(
        &conf("auth_jwt_use_keyfile on;\nauth_jwt_keyfile_path /nonexistent/dir/key.pem;"),
        "auth_jwt_keyfile_path",
    );
}

#[test]
fn unparsable_key_file() {
    let body = conf("auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path conf/garbage.pem;");
    let (ok, out) = nginx_t_full("", &body, &[("conf/garbage.pem", "this is not a key\n")]);
    assert!(!ok, "{out}");
    assert!(out.contains("[emerg]"), "{out}");
    let line = conf_line(&body, "auth_jwt_keyfile_path");
    assert!(
        out.contains(&format!("nginx.conf:{line}")),
        "line {line}: {out}"
    );
}

#[test]
fn ec_key_with_rs256() {
    expect_emerg_at(
        &conf("auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{KEYS}}/ec256.pub; auth_jwt_algorithm RS256;"),
        "auth_jwt_keyfile_path",
    );
    let inline = format!(
        "auth_jwt_algorithm RS256; auth_jwt_key \"{}\";",
        key("ec256.pub").trim().replace('\n', " ")
    );
    expect_emerg_at(&conf(&inline), "auth_jwt_algorithm RS256");
}

#[test]
fn rsa_1024_key_is_refused() {
    expect_emerg_at(
        &conf("auth_jwt_algorithm RS256; auth_jwt_use_keyfile on; auth_jwt_keyfile_path {{KEYS}}/rsa1024.pub;"),
        "rsa1024",
    );
}

#[test]
fn redirect_without_loginurl() {
    expect_emerg_at(
        &conf(&format!("{}\nauth_jwt_redirect on;", key_line())),
        "auth_jwt_redirect",
    );
}

#[test]
fn bad_location_spec() {
    for spec in ["BODY=x", "HEADER", "HEADER=", "COOKIE=a;b", "header:x"] {
        expect_emerg_at(
            &conf(&format!("{}\nauth_jwt_location {spec};", key_line())),
            "auth_jwt_location",
        );
    }
}

#[test]
fn duplicate_directive_in_one_block() {
    expect_emerg_at(
        &conf(&format!(
            "{}\nauth_jwt_algorithm HS256;\nauth_jwt_algorithm HS384; # second",
            key_line()
        )),
        "# second",
    );
    expect_emerg_at(
        &conf(&format!("{}\n{} # again", key_line(), key_line())),
        "# again",
    );
}

#[test]
fn use_keyfile_without_path() {
    expect_emerg_at(
        &conf("auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;"),
        "auth_jwt_use_keyfile",
    );
}

#[test]
fn bad_flags() {
    for d in [
        "auth_jwt_redirect maybe;",
        "auth_jwt_use_keyfile yes;",
        "auth_jwt_validate_sub 1;",
        "auth_jwt_bypass_options nope;",
    ] {
        expect_emerg_at(&conf(&format!("{}\n{d}", key_line())), d);
    }
}

#[test]
fn valid_configurations_pass() {
    expect_valid(&conf(&key_line()));
    expect_valid(&conf(&format!(
        "{}\nauth_jwt_loginurl \"https://example.com/\";\nauth_jwt_enabled off;\nauth_jwt_redirect on;\n\
         auth_jwt_location COOKIE=auth HEADER=Authorization QUERY=jwt;\nauth_jwt_algorithm HS256;\n\
         auth_jwt_validate_sub on;\nauth_jwt_extract_var_claims sub email;\nauth_jwt_extract_request_claims sub;\n\
         auth_jwt_extract_response_claims sub;\nauth_jwt_bypass_options off;\nauth_jwt_realm \"x\";\n\
         auth_jwt_leeway 30s;\nauth_jwt_issuer https://a https://b;\nauth_jwt_audience api;",
        key_line()
    )));
    expect_valid(&conf("auth_jwt_algorithm RS256;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {{KEYS}}/rsa2048.pub;"));
    expect_valid(&conf("auth_jwt_algorithm ES384;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {{KEYS}}/ec384.pub;"));
    expect_valid(&conf("auth_jwt_algorithm EdDSA;\nauth_jwt_use_keyfile on;\nauth_jwt_keyfile_path {{KEYS}}/ed25519.pub;"));
    expect_valid(&conf(&format!(
        "auth_jwt_algorithm PS512;\nauth_jwt_key \"{}\";",
        key("rsa2048.pkcs1.pub").trim()
    )));
    expect_valid(&conf(
        "auth_jwt_key \"secret text\" utf8;\nauth_jwt_enabled $arg_x;",
    ));
    // TeslaGov style: a key at http level, algorithms chosen per location.
    expect_valid(&format!(
        "auth_jwt_key \"{}\";\nserver {{ listen 127.0.0.1:{{{{PORT}}}};\n\
         location /a {{ auth_jwt_algorithm RS256; }}\nlocation /b {{ auth_jwt_algorithm RS512; }} }}",
        key("rsa2048.pub").trim()
    ));
}
