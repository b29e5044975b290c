//! The access-phase handler: enforce, pass claims on, or answer 401 / 302.

use jwt_core::timing::{self, Span};
use jwt_core::{Jwt, Reason};
use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, ngx_table_elt_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_MOVED_TEMPORARILY, NGX_HTTP_OPTIONS,
    NGX_HTTP_UNAUTHORIZED, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN, NGX_OK,
};

use crate::conf::{is_enabled_value, ClaimHeader, Enabled, LocConf};
use crate::ngx_util::{bytes, complex_value, guard, headers, push_header, rebuild_list_without};
use crate::outcome::{loc_conf, main_conf, outcome};

/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes the request being processed.
    let Some(r) = (unsafe { r.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let log = unsafe { (*r.connection).log };
    let failed = NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    timing::measure(Span::Handler, || {
        guard(log, "the access handler", failed, || access(r))
    })
}

fn access(r: &mut ngx_http_request_t) -> ngx_int_t {
    let Some(conf) = loc_conf(r) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let bypass = conf.bypass_options() && r.method == NGX_HTTP_OPTIONS as usize;
    if bypass || !enabled(r, conf) {
        // Not enforced here, but headers named like ours are still ours: never pass a client's.
        if !conf.request_claims().is_empty() {
            let jwt = outcome(r).and_then(|o| o.as_deref().ok());
            if set_request_claims(r, conf.request_claims(), jwt).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
        }
        return NGX_DECLINED as ngx_int_t;
    }
    if conf.auth.is_none() {
        let why = conf
            .key_error
            .as_deref()
            .unwrap_or("no \"auth_jwt_key\" or key file is configured");
        log(r, NGX_LOG_ERR, format_args!("auth_jwt: key: {why}"));
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    match outcome(r) {
        Some(Ok(jwt)) => admit(r, conf, jwt),
        Some(Err(e)) => {
            // A request without a token is routine (a first visit), not an error.
            let (level, detail) = match (e.reason, &conf.auth) {
                (Reason::Missing, Some(auth)) => (NGX_LOG_INFO, auth.missing.as_str()),
                _ => (NGX_LOG_ERR, e.detail.as_str()),
            };
            let word = e.reason.word();
            log(r, level, format_args!("auth_jwt: {word}: {detail}"));
            // A refused request may still reach an upstream (`satisfy any` letting another
            // access module decide, `error_page 401 = @named`): never with the client's copy.
            if set_request_claims(r, conf.request_claims(), None).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
            reject(r, conf, e.reason)
        }
        None => NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
    }
}

fn enabled(r: &mut ngx_http_request_t, conf: &LocConf) -> bool {
    match conf.enabled() {
        // Unset: on wherever a key is configured.
        None => conf.auth.is_some() || conf.key_error.is_some(),
        Some(Enabled::Static(on)) => *on,
        // A value that cannot be evaluated enables the check: fail closed.
        Some(Enabled::Variable(cv)) => complex_value(r, cv.0).map_or(true, is_enabled_value),
    }
}

fn admit(r: &mut ngx_http_request_t, conf: &LocConf, jwt: &Jwt) -> ngx_int_t {
    let done = set_request_claims(r, conf.request_claims(), Some(jwt))
        .and_then(|()| push_claims(r, conf.response_claims(), jwt, Direction::Client));
    match done {
        Some(()) => NGX_OK as ngx_int_t,
        None => NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
    }
}

// Refusals and their logging out of line: they would otherwise sit between the instructions an
// admitted request runs, in the cache lines it needs.
#[cold]
#[inline(never)]
fn log(r: &ngx_http_request_t, level: u32, args: core::fmt::Arguments) {
    // SAFETY: a request's connection and its log outlive the request.
    let log = unsafe { (*r.connection).log };
    ngx::ngx_log_error!(level, log, "{}", args);
}

/// A header value must not be able to end the header (request smuggling to the upstream).
fn header_safe(value: &str) -> bool {
    !value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
}

fn is_claim_header(h: &ngx_table_elt_t, claims: &[ClaimHeader]) -> bool {
    let key = bytes(&h.key);
    claims.iter().any(|c| key.eq_ignore_ascii_case(&c.name))
}

/// Replaces every `JWT-<claim>` request header with the token's claim (or with nothing).
fn set_request_claims(
    r: &mut ngx_http_request_t,
    claims: &[ClaimHeader],
    jwt: Option<&Jwt>,
) -> Option<()> {
    if claims.is_empty() {
        return Some(());
    }
    if headers(&r.headers_in.headers).any(|h| is_claim_header(h, claims)) {
        rebuild_list_without(r, |h| is_claim_header(h, claims))?;
    }
    match jwt {
        Some(jwt) => push_claims(r, claims, jwt, Direction::Upstream),
        None => Some(()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Request headers, seen by the upstream and as `$http_jwt_*`.
    Upstream,
    /// Response headers, seen by the client.
    Client,
}

/// Adds `JWT-<claim>` headers for the claims the token has. A value that could end the header
/// line (CR, LF, other controls) is left out, and logged when it was meant for the upstream.
fn push_claims(
    r: &mut ngx_http_request_t,
    claims: &[ClaimHeader],
    jwt: &Jwt,
    direction: Direction,
) -> Option<()> {
    for c in claims {
        let Some(value) = jwt.claim(&c.claim).map(jwt_core::render) else {
            continue;
        };
        if !header_safe(&value) {
            if direction == Direction::Upstream {
                let why = "has control characters, not passed on";
                log(
                    r,
                    NGX_LOG_WARN,
                    format_args!("auth_jwt: claim \"{}\" {why}", c.claim),
                );
            }
            continue;
        }
        let (list, real_hash) = match direction {
            Direction::Upstream => (&mut r.headers_in.headers, true),
            Direction::Client => (&mut r.headers_out.headers, false),
        };
        push_header(
            list,
            r.pool,
            &c.name,
            &c.lowcase,
            value.as_bytes(),
            real_hash,
        )?;
    }
    Some(())
}

#[cold]
#[inline(never)]
fn reject(r: &mut ngx_http_request_t, conf: &LocConf, reason: Reason) -> ngx_int_t {
    let sent = if conf.redirect() {
        redirect(r, conf)
    } else {
        challenge(r, conf, reason)
    };
    sent.unwrap_or(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t)
}

/// 401 with an RFC 6750 §3 challenge; `error` only when a token was presented.
fn challenge(r: &mut ngx_http_request_t, conf: &LocConf, reason: Reason) -> Option<ngx_int_t> {
    let mut value = String::from(conf.challenge());
    if reason != Reason::Missing {
        value.push_str(", error=\"invalid_token\", error_description=\"");
        value.push_str(describe(reason));
        value.push('"');
    }
    let h = push_header(
        &mut r.headers_out.headers,
        r.pool,
        b"WWW-Authenticate",
        b"www-authenticate",
        value.as_bytes(),
        false,
    )?;
    r.headers_out.www_authenticate = h.as_ptr();
    Some(NGX_HTTP_UNAUTHORIZED as ngx_int_t)
}

fn describe(reason: Reason) -> &'static str {
    match reason {
        Reason::Missing => "the token is missing",
        Reason::Malformed => "the token is malformed",
        Reason::TooLarge => "the token is too large",
        Reason::Algorithm => "the token algorithm is not accepted",
        Reason::Key => "no key matches the token",
        Reason::Signature => "the token signature is invalid",
        Reason::Expired => "the token has expired",
        Reason::NotYetValid => "the token is not valid yet",
        Reason::Issuer => "the token issuer is not accepted",
        Reason::Audience => "the token audience is not accepted",
        Reason::Subject => "the token has no subject",
        Reason::Claim => "a required claim is missing or invalid",
    }
}

/// 302 to the login URL; GET and HEAD carry the URL asked for as `return_url`.
fn redirect(r: &mut ngx_http_request_t, conf: &LocConf) -> Option<ngx_int_t> {
    let login = complex_value(r, conf.loginurl()?.0)?.to_vec();
    let mut location = String::from_utf8_lossy(&login).into_owned();
    if r.method == NGX_HTTP_GET as usize || r.method == NGX_HTTP_HEAD as usize {
        let asked = requested_url(r)?;
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("return_url=");
        jwt_core::percent_encode_component(&asked, &mut location);
    }
    let h = push_header(
        &mut r.headers_out.headers,
        r.pool,
        b"Location",
        b"location",
        location.as_bytes(),
        false,
    )?;
    r.headers_out.location = h.as_ptr();
    Some(NGX_HTTP_MOVED_TEMPORARILY as ngx_int_t)
}

/// `$scheme://$http_host$request_uri`, or with `$host` when the client sent no Host header.
fn requested_url(r: &mut ngx_http_request_t) -> Option<Vec<u8>> {
    let main = main_conf(r)?;
    let cv = if r.headers_in.host.is_null() {
        main.return_url_no_host
    } else {
        main.return_url
    };
    complex_value(r, cv?.0).map(<[u8]>::to_vec)
}
