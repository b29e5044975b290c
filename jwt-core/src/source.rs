//! Finding the token in a request: header, cookie or query argument.

use crate::text::quoted;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Header,
    /// `HEADER=Authorization`, in any case: nginx keeps a pointer to that header (a second one
    /// is its 400), so it is read without walking the request's header list.
    Authorization,
    Cookie,
    Query,
}

/// Where to read a token from, as configured with `HEADER=NAME`, `COOKIE=NAME` or `QUERY=NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    pub name: String,
}

impl Source {
    pub fn parse(spec: &str) -> Result<Source, String> {
        let invalid = || {
            format!(
                "invalid token location {}, expected HEADER=NAME, COOKIE=NAME or QUERY=NAME",
                quoted(spec)
            )
        };
        let (kind, name) = spec.split_once('=').ok_or_else(invalid)?;
        let kind = if kind.eq_ignore_ascii_case("header") {
            SourceKind::Header
        } else if kind.eq_ignore_ascii_case("cookie") {
            SourceKind::Cookie
        } else if kind.eq_ignore_ascii_case("query") {
            SourceKind::Query
        } else {
            return Err(invalid());
        };
        let bad_char =
            |c: char| matches!(c, '=' | ';' | ',') || c.is_whitespace() || c.is_control();
        if name.is_empty() || name.chars().any(bad_char) {
            return Err(invalid());
        }
        let kind = match kind {
            SourceKind::Header if name.eq_ignore_ascii_case("authorization") => {
                SourceKind::Authorization
            }
            kind => kind,
        };
        Ok(Source {
            kind,
            name: name.to_owned(),
        })
    }
}

/// Whether `value` holds a space or a tab, found with SIMD: a token is read on every request.
pub fn has_blank(value: &[u8]) -> bool {
    memchr::memchr2(b' ', b'\t', value).is_some()
}

fn is_blank(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn trim_blanks(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !is_blank(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(start, |last| last.saturating_add(1));
    value.get(start..end).unwrap_or_default()
}

/// Trims spaces and tabs; a leading "bearer" (any case) followed by at least
/// one space or tab is dropped with the blanks after it, and a lone "bearer" (nginx has
/// trimmed what followed it) leaves nothing.
pub fn strip_bearer(value: &[u8]) -> &[u8] {
    let value = trim_blanks(value);
    if value.eq_ignore_ascii_case(b"bearer") {
        return value.get(..0).unwrap_or_default();
    }
    match (value.get(..6), value.get(6)) {
        (Some(scheme), Some(sep)) if scheme.eq_ignore_ascii_case(b"bearer") && is_blank(sep) => {
            trim_blanks(value.get(6..).unwrap_or_default())
        }
        _ => value,
    }
}

/// Value of cookie `name` (case-sensitive) in one Cookie header ("a=1; b=2";
/// missing spaces and empty pairs are tolerated), first match; a value wrapped
/// in double quotes is unquoted.
pub fn find_cookie<'a>(header: &'a [u8], name: &'a [u8]) -> Option<&'a [u8]> {
    cookie_values(header, name).next()
}

/// Every value of cookie `name` in one Cookie header, in order, as `find_cookie` reads them.
pub fn cookie_values<'a>(header: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    cookie_pairs(header).filter_map(move |(key, value)| (key == name).then_some(value))
}

/// The `(name, value)` pairs of one Cookie header, in order: blanks trimmed, a value wrapped in
/// double quotes unquoted, pairs without `=` left out.
pub fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = Some(header);
    core::iter::from_fn(move || loop {
        let here = rest?;
        // Each pair's end found with SIMD: the value before it is often a whole token, and a
        // byte-by-byte split would step through it on every request.
        let end = memchr::memchr(b';', here).unwrap_or(here.len());
        let (pair, tail) = here.split_at_checked(end)?;
        // Past the ';'; none left after the last pair.
        rest = tail.get(1..);
        if let Some(found) = cookie_pair(pair) {
            return Some(found);
        }
    })
}

/// One "name=value" pair of a Cookie header.
fn cookie_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = pair.iter().position(|&b| b == b'=')?;
    let (key, rest) = pair.split_at_checked(eq)?;
    let value = trim_blanks(rest.get(1..)?);
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    Some((trim_blanks(key), value))
}

/// Value of argument `name` in a raw query string ("a=1&b=2"), first match,
/// raw (no percent-decoding). A bare `name` without '=' has an empty value.
pub fn find_query_arg<'a>(args: &'a [u8], name: &'a [u8]) -> Option<&'a [u8]> {
    query_values(args, name).next()
}

/// Every value of argument `name` in a raw query string, in order, as `find_query_arg` reads
/// them.
pub fn query_values<'a>(args: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    query_pairs(args).filter_map(move |(key, value)| (key == name).then_some(value))
}

/// The `(name, value)` pairs of a raw query string, in order, raw; a bare name has an empty
/// value.
pub fn query_pairs(args: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    args.split(|&b| b == b'&')
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let (key, rest) = pair.split_at(eq);
                (key, rest.get(1..).unwrap_or_default())
            }
            None => (pair, pair.get(pair.len()..).unwrap_or_default()),
        })
}

/// Whether two names (of headers, cookies, query arguments) may be one name to an application:
/// compared percent-decoded, ignoring case, with every byte but a letter or digit read as `_`
/// (nginx's `$http_*` and CGI read `-` as `_`, PHP turns `.`, a space and `[` into `_`,
/// frameworks decode names).
pub fn loose_name_eq(a: &[u8], b: &[u8]) -> bool {
    // Without escapes, names of other lengths differ: most names a request holds.
    if a.len() != b.len() && memchr::memchr(b'%', a).is_none() && memchr::memchr(b'%', b).is_none()
    {
        return false;
    }
    let fold = |b: u8| {
        if b.is_ascii_alphanumeric() {
            b.to_ascii_lowercase()
        } else {
            b'_'
        }
    };
    let (mut x, mut y) = (decoded(a), decoded(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if fold(p) == fold(q) => {}
            _ => return false,
        }
    }
}

/// `name` with its `%XX` escapes decoded (an incomplete escape stays as it is).
fn decoded(name: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut i = 0;
    core::iter::from_fn(move || {
        let b = *name.get(i)?;
        if b == b'%' {
            let high = name.get(i + 1).copied().and_then(hex);
            let low = name.get(i + 2).copied().and_then(hex);
            if let (Some(high), Some(low)) = (high, low) {
                i += 3;
                return Some(high << 4 | low);
            }
        }
        i += 1;
        Some(b)
    })
}

/// `uri` (a request line's target, `path?query`) without the arguments named in `names`:
/// what `return_url` carries when the token came in the query string.
pub fn without_query_args(uri: &[u8], names: &[&str]) -> Vec<u8> {
    let Some(q) = memchr::memchr(b'?', uri) else {
        return uri.to_vec();
    };
    let (path, query) = uri.split_at(q);
    let query = query.get(1..).unwrap_or_default();
    let named = |pair: &[u8]| {
        let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
        names.iter().any(|n| n.as_bytes() == key)
    };
    let kept: Vec<&[u8]> = query.split(|&b| b == b'&').filter(|p| !named(p)).collect();
    let mut out = path.to_vec();
    if kept.iter().any(|p| !p.is_empty()) {
        out.push(b'?');
        out.extend_from_slice(&kept.join(&b'&'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_in_order() {
        let cookies: Vec<&[u8]> =
            cookie_values(b"auth=; x=1; auth=tok; auth=\"q\"", b"auth").collect();
        assert_eq!(cookies, [&b""[..], b"tok", b"q"]);
        let args: Vec<&[u8]> = query_values(b"t&a=1&t=x&t=", b"t").collect();
        assert_eq!(args, [&b""[..], b"x", b""]);
    }

    #[test]
    fn names_as_applications_read_them() {
        for (a, b) in [
            (&b"access_token"[..], &b"access_token"[..]),
            (b"access_token", b"%61ccess_token"),
            (b"access_token", b"access.token"),
            (b"access_token", b"access+token"),
            (b"access_token", b"access%5Btoken"),
            (b"access_token", b"ACCESS-TOKEN"),
            (b"X-Token", b"x_token"),
            (b"JWT-user_id", b"jwt_USER-ID"),
            (b"JWT-sub", b"JWT.sub"),
        ] {
            assert!(loose_name_eq(a, b), "{a:?} {b:?}");
        }
        for (a, b) in [
            (&b"access_token"[..], &b"access_tokens"[..]),
            (b"token", b"tokn"),
            (b"a%", b"ab"),
            (b"JWT-sub", b"JWT-subs"),
        ] {
            assert!(!loose_name_eq(a, b), "{a:?} {b:?}");
        }
        assert!(loose_name_eq(b"a%4", b"a%4"));
    }

    #[test]
    fn query_arguments_left_out() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"/p", b"/p"),
            (b"/p?token=abc", b"/p"),
            (b"/p?a=1&token=abc&b=2", b"/p?a=1&b=2"),
            (b"/p?token=abc&token=def", b"/p"),
            (b"/p?tokens=1&xtoken=2", b"/p?tokens=1&xtoken=2"),
            (b"/p?token", b"/p"),
            (b"/p?", b"/p"),
        ];
        for (uri, expected) in cases {
            assert_eq!(
                without_query_args(uri, &["token"]),
                expected,
                "{}",
                String::from_utf8_lossy(uri)
            );
        }
        assert_eq!(
            without_query_args(b"/p?a=1&jwt=2", &["token", "jwt"]),
            b"/p?a=1"
        );
    }

    #[test]
    fn parses_sources() {
        assert_eq!(
            Source::parse("HEADER=Authorization").unwrap(),
            Source {
                kind: SourceKind::Authorization,
                name: "Authorization".into()
            }
        );
        assert_eq!(
            Source::parse("header=authorization").unwrap().kind,
            SourceKind::Authorization
        );
        assert_eq!(
            Source::parse("HEADER=X-Authorization").unwrap().kind,
            SourceKind::Header
        );
        assert_eq!(
            Source::parse("cookie=auth").unwrap(),
            Source {
                kind: SourceKind::Cookie,
                name: "auth".into()
            }
        );
        assert_eq!(
            Source::parse("Query=token").unwrap().kind,
            SourceKind::Query
        );
        assert!(Source::parse("QUERY=a=b").is_err());
        for bad in [
            "",
            "HEADER",
            "HEADER=",
            "BODY=x",
            "HEADER =x",
            "COOKIE=a b",
            "COOKIE=a;b",
            "COOKIE=a,b",
            "QUERY=a\tb",
            "QUERY=a\u{7f}",
            "=x",
        ] {
            let err = Source::parse(bad).unwrap_err();
            assert!(
                err.starts_with("invalid token location \"")
                    && err.ends_with("expected HEADER=NAME, COOKIE=NAME or QUERY=NAME"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            Source::parse("x").unwrap_err(),
            "invalid token location \"x\", expected HEADER=NAME, COOKIE=NAME or QUERY=NAME"
        );
    }

    #[test]
    fn strips_bearer() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"Bearer abc", b"abc"),
            (b"bearer abc", b"abc"),
            (b"BEARER\t\t abc  ", b"abc"),
            (b"  Bearer   a.b.c \t", b"a.b.c"),
            (b"abc", b"abc"),
            (b"  abc  ", b"abc"),
            (b"Bearerabc", b"Bearerabc"),
            (b"Bearer", b""),
            (b"Bearer ", b""),
            (b"bEaReR", b""),
            (b"Basic abc", b"Basic abc"),
            (b"", b""),
            (b" \t ", b""),
            (b"Bearer Bearer x", b"Bearer x"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                strip_bearer(input),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn finds_cookies() {
        let h = b"xauth=1; auth=two; authx=3";
        assert_eq!(find_cookie(h, b"auth"), Some(&b"two"[..]));
        assert_eq!(find_cookie(h, b"xauth"), Some(&b"1"[..]));
        assert_eq!(find_cookie(h, b"authx"), Some(&b"3"[..]));
        assert_eq!(find_cookie(h, b"Auth"), None);
        assert_eq!(find_cookie(h, b"aut"), None);
        assert_eq!(find_cookie(b"a=1;b=2;;  ; c=3", b"c"), Some(&b"3"[..]));
        assert_eq!(find_cookie(b"a=1;b=2", b"b"), Some(&b"2"[..]));
        assert_eq!(find_cookie(b"a=\"q.r.s\"", b"a"), Some(&b"q.r.s"[..]));
        assert_eq!(
            find_cookie(b"x=1; a=\"Bearer t.o.k\"", b"a").map(strip_bearer),
            Some(&b"t.o.k"[..])
        );
        assert_eq!(find_cookie(b"a=\"", b"a"), Some(&b"\""[..]));
        assert_eq!(find_cookie(b"a=\"\"", b"a"), Some(&b""[..]));
        assert_eq!(find_cookie(b"a=1; a=2", b"a"), Some(&b"1"[..]));
        assert_eq!(find_cookie(b"a; b=2", b"a"), None);
        assert_eq!(find_cookie(b"a=x=y", b"a"), Some(&b"x=y"[..]));
        assert_eq!(find_cookie(b"", b"a"), None);
        assert_eq!(find_cookie(b"a=", b"a"), Some(&b""[..]));
    }

    /// `find_cookie` written plainly, without `memchr`: what the fast one must agree with.
    fn find_cookie_by_split<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        header
            .split(|&b| b == b';')
            .filter_map(cookie_pair)
            .find_map(|(key, value)| (key == name).then_some(value))
    }

    proptest::proptest! {
        #[test]
        fn finds_cookies_as_a_split_on_semicolons_does(
            header in proptest::collection::vec(proptest::sample::select(b"ab=; \t\"".to_vec()), 0..40),
            name in proptest::collection::vec(proptest::sample::select(b"ab ".to_vec()), 0..3),
        ) {
            proptest::prop_assert_eq!(find_cookie(&header, &name), find_cookie_by_split(&header, &name));
        }
    }

    #[test]
    fn finds_query_args() {
        let args = b"xtoken=1&token=a.b.c&tokenx=3";
        assert_eq!(find_query_arg(args, b"token"), Some(&b"a.b.c"[..]));
        assert_eq!(find_query_arg(args, b"xtoken"), Some(&b"1"[..]));
        assert_eq!(find_query_arg(args, b"Token"), None);
        assert_eq!(find_query_arg(b"a=%41&a=2", b"a"), Some(&b"%41"[..]));
        assert_eq!(find_query_arg(b"a&b=2", b"a"), Some(&b""[..]));
        assert_eq!(find_query_arg(b"a=&b=2", b"a"), Some(&b""[..]));
        assert_eq!(find_query_arg(b"&&b=2&", b"b"), Some(&b"2"[..]));
        assert_eq!(find_query_arg(b"", b"a"), None);
        assert_eq!(find_query_arg(b"b=a", b"a"), None);
    }
}
