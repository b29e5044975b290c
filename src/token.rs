//! Finding the client's token in the request: the sources of `auth_jwt_location` (or of
//! `auth_jwt ... token=$cookie_X | $arg_X | $http_X`), in order.

use jwt_core::{Source, SourceKind};
use ngx::ffi::ngx_http_request_t;

use crate::ngx::headers::headers;
use crate::ngx::string::bytes;

/// What the client sent for a token: in the order of `auth_jwt_location`, the first source
/// holding one wins, and its first non-empty value is the token (an empty header, cookie or
/// argument, one holding only `Bearer`, or another scheme's credentials do not hide a later
/// one). A source holding two different tokens is an error: an application reading the other
/// one, by its name as it reads names, would trust a token nginx never checked.
pub type Found<'r> = Result<Option<&'r [u8]>, String>;

pub fn find_token<'r>(r: &'r ngx_http_request_t, sources: &'r [Source]) -> Found<'r> {
    for source in sources {
        let mut token = None;
        let mut seen: Option<&[u8]> = None;
        let mut clash = false;
        each_candidate(r, source, &mut |exact, value| {
            if exact && token.is_none() {
                token = Some(value);
            }
            match seen {
                None => seen = Some(value),
                Some(other) if other == value => {}
                Some(_) => clash = true,
            }
            !clash
        });
        if clash {
            return Err(format!(
                "two different tokens in {}",
                describe_source(source)
            ));
        }
        if token.is_some() {
            return Ok(token);
        }
    }
    Ok(None)
}

/// Calls `visit` with each non-empty value of `source` (Bearer prefix stripped) until it
/// returns false, with whether its name is exactly the configured one or only the same to an
/// application (`loose_name_eq`).
fn each_candidate<'r>(
    r: &'r ngx_http_request_t,
    source: &'r Source,
    visit: &mut dyn FnMut(bool, &'r [u8]) -> bool,
) {
    let name = source.name.as_bytes();
    match source.kind {
        SourceKind::Authorization => {
            if let Some(token) = authorization(r).and_then(usable) {
                visit(true, token);
            }
        }
        SourceKind::Header => {
            for h in headers(&r.headers_in.headers).filter(|h| h.hash != 0) {
                let key = bytes(&h.key);
                let exact = key.eq_ignore_ascii_case(name);
                if !exact && !jwt_core::loose_name_eq(key, name) {
                    continue;
                }
                if let Some(token) = usable(bytes(&h.value)) {
                    if !visit(exact, token) {
                        return;
                    }
                }
            }
        }
        SourceKind::Cookie => {
            let cookies = headers(&r.headers_in.headers)
                .filter(|h| h.hash != 0 && bytes(&h.key).eq_ignore_ascii_case(b"cookie"));
            for h in cookies {
                for (key, value) in jwt_core::cookie_pairs(bytes(&h.value)) {
                    let exact = key == name;
                    if !exact && !jwt_core::loose_name_eq(key, name) {
                        continue;
                    }
                    if let Some(token) = usable(value) {
                        if !visit(exact, token) {
                            return;
                        }
                    }
                }
            }
        }
        SourceKind::Query => {
            for (key, value) in jwt_core::query_pairs(bytes(&r.args)) {
                let exact = key == name;
                if (exact || jwt_core::loose_name_eq(key, name))
                    && !value.is_empty()
                    && !visit(exact, value)
                {
                    return;
                }
            }
        }
    }
}

/// The one Authorization header nginx allows (it answers a second with 400), through the
/// pointer it keeps: no walk through a browser's dozen headers for the usual source.
fn authorization(r: &ngx_http_request_t) -> Option<&[u8]> {
    // SAFETY: NULL or an element of the request's header list, which lives in its pool.
    let h = unsafe { r.headers_in.authorization.as_ref() }?;
    (h.hash != 0).then(|| bytes(&h.value))
}

/// The token in a value: its `Bearer ` prefix removed; `None` for an empty value, a lone
/// `Bearer`, or a value with a blank (`Basic …`: another scheme's credentials).
pub fn usable(value: &[u8]) -> Option<&[u8]> {
    let token = jwt_core::strip_bearer(value);
    (!token.is_empty() && !jwt_core::has_blank(token)).then_some(token)
}

/// A token source as log lines name it: `header "Authorization"`.
pub fn describe_source(source: &Source) -> String {
    match source.kind {
        SourceKind::Header | SourceKind::Authorization => format!("header \"{}\"", source.name),
        SourceKind::Cookie => format!("cookie \"{}\"", source.name),
        SourceKind::Query => format!("argument \"{}\"", source.name),
    }
}
