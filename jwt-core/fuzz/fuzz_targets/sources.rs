//! Token extraction: `Authorization`-style header values, Cookie headers and
//! query strings, plus `Source::parse` of the configuration spec, and what the
//! glue derives from request text: `return_url` without token arguments, a
//! header-safe `Location`, names compared as applications read them.
//!
//! Input: byte 0 is the length (mod 32) of the name, then the name, then the
//! header / query text. Everything found must be a sub-slice of the input and
//! agree with a naive reference implementation; the extracted token then goes
//! through `verify` as nginx would do.
#![no_main]

use std::sync::OnceLock;

use jwt_core::{
    cookie_values, find_cookie, find_query_arg, header_safe, loose_name_eq,
    query_values,
    safe_url, strip_bearer, verify, without_query_args, Algorithm, KeySet,
    Policy, Source, SourceKind,
};
use jwt_core_fuzz::{HMAC_SECRET, NOW};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::from_secret(HMAC_SECRET, Algorithm::HS256)
            .expect("HS256 key")
            .0
    })
}

fn assert_within(found: &[u8], whole: &[u8], what: &str) {
    if found.is_empty() {
        return;
    }
    let start = whole.as_ptr() as usize;
    let end = start + whole.len();
    let f = found.as_ptr() as usize;
    assert!(
        f >= start && f + found.len() <= end,
        "{what}: result is not a sub-slice of the input"
    );
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [first, rest @ ..] = v {
        if !blank(*first) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !blank(*last) {
            break;
        }
        v = rest;
    }
    v
}

fn reference_bearer(v: &[u8]) -> &[u8] {
    let v = trim(v);
    if v.eq_ignore_ascii_case(b"bearer") {
        return &v[..0];
    }
    if v.len() > 6 && v[..6].eq_ignore_ascii_case(b"bearer") && blank(v[6]) {
        trim(&v[6..])
    } else {
        v
    }
}

fn reference_cookies<'a>(header: &'a [u8], name: &[u8]) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    for pair in header.split(|&b| b == b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if trim(&pair[..eq]) == name {
            let value = trim(&pair[eq + 1..]);
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                found.push(&value[1..value.len() - 1]);
            } else {
                found.push(value);
            }
        }
    }
    found
}

fn reference_queries<'a>(args: &'a [u8], name: &[u8]) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    for pair in args.split(|&b| b == b'&') {
        match pair.iter().position(|&b| b == b'=') {
            Some(eq) if &pair[..eq] == name => found.push(&pair[eq + 1..]),
            Some(_) => {}
            None if pair == name => found.push(&pair[pair.len()..]),
            None => {}
        }
    }
    found
}

fn check_token(token: &[u8]) {
    let _ = verify(token, keys(), &Policy::default(), NOW);
}

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let name_len = usize::from(len % 32).min(rest.len());
    let (name, value) = rest.split_at(name_len);

    // Header: the whole value.
    let token = strip_bearer(value);
    assert_within(token, value, "strip_bearer");
    assert_eq!(token, reference_bearer(value), "strip_bearer");
    assert!(token.first().is_none_or(|&b| !blank(b)));
    assert!(token.last().is_none_or(|&b| !blank(b)));
    check_token(token);

    // Cookie header: every value, and the first.
    let cookies: Vec<&[u8]> = cookie_values(value, name).collect();
    assert_eq!(cookies, reference_cookies(value, name), "cookie_values");
    let cookie = find_cookie(value, name);
    assert_eq!(cookie, cookies.first().copied(), "find_cookie");
    if let Some(cookie) = cookie {
        assert_within(cookie, value, "find_cookie");
        assert!(!cookie.contains(&b';'));
        let token = strip_bearer(cookie);
        assert_within(token, cookie, "strip_bearer(cookie)");
        check_token(token);
    }

    // Query string: every value, and the first.
    let args: Vec<&[u8]> = query_values(value, name).collect();
    assert_eq!(args, reference_queries(value, name), "query_values");
    let arg = find_query_arg(value, name);
    assert_eq!(arg, args.first().copied(), "find_query_arg");
    if let Some(arg) = arg {
        assert_within(arg, value, "find_query_arg");
        assert!(!arg.contains(&b'&'));
        check_token(arg);
    }

    // return_url: the request target without the token arguments, the rest in order.
    if let Ok(name) = std::str::from_utf8(name) {
        let uri = [&b"/p?"[..], value].concat();
        let kept = without_query_args(&uri, &[name]);
        let query = kept.strip_prefix(b"/p").expect("path kept");
        let query = query.strip_prefix(b"?").unwrap_or(query);
        let expected: Vec<&[u8]> = value
            .split(|&b| b == b'&')
            .filter(|p| p.split(|&b| b == b'=').next() != Some(name.as_bytes()))
            .collect();
        let got: Vec<&[u8]> = if query.is_empty() {
            Vec::new()
        } else {
            query.split(|&b| b == b'&').collect()
        };
        if expected.iter().any(|p| !p.is_empty()) {
            assert_eq!(got, expected, "without_query_args");
        } else {
            assert!(got.is_empty(), "without_query_args");
        }
    }

    // Location: RFC 3986's characters (and `%`) kept, every other byte as %XX.
    let url = safe_url(value);
    assert!(header_safe(&url));
    let mut out = url.as_bytes();
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b) {
            assert_eq!(out.first(), Some(&b), "safe_url");
            out = &out[1..];
        } else {
            let encoded = format!("%{b:02X}");
            assert!(out.starts_with(encoded.as_bytes()), "safe_url");
            out = &out[3..];
        }
    }
    assert!(out.is_empty(), "safe_url");

    // Parameter names as applications read them: an equivalence.
    assert!(loose_name_eq(name, name));
    assert_eq!(loose_name_eq(name, value), loose_name_eq(value, name));

    // Configuration spec.
    if let Ok(spec) = std::str::from_utf8(data) {
        if let Ok(source) = Source::parse(spec) {
            assert!(!source.name.is_empty());
            assert!(!source.name.contains(['=', ';', ',']));
            assert!(!source
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()));
            let kind = match source.kind {
                SourceKind::Header | SourceKind::Authorization => "HEADER",
                SourceKind::Cookie => "COOKIE",
                SourceKind::Query => "QUERY",
            };
            let again = Source::parse(&format!("{kind}={}", source.name)).expect("round trip");
            assert_eq!(again, source);
        }
    }
});
