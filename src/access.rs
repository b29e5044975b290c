//! The access check: enforce, pass claims on, or answer 401 / 302.
//!
//! nginx runs the access phase for main requests only, so the check runs in three places:
//! - the access phase, before the other access modules (`First`): a token decides here, and
//!   the claim headers are in place before `auth_request` starts its subrequest;
//! - the access phase, after the other access modules (`Last`): with `satisfy any` and
//!   `auth_jwt_redirect on`, the 302 waits until no other module (`allow`, `auth_basic`,
//!   `auth_request`) has granted access;
//! - a subrequest's location, at the start of its rewrite phase (before its `if`, `set` and
//!   `return`) and again in pre-access (after them) (`Subrequest`): a location reached by
//!   `auth_request`, SSI or `mirror` enforces its own settings, and refuses with 401 (or the
//!   403 of `auth_jwt_require ... error=403`: the answers `auth_request` understands, kept from
//!   the location's `error_page`), never with a redirect.
//!
//! With keys of `auth_jwt_key_request`, the keys are had first, at the start of the server
//! rewrite (for a server with rewrite directives of its own) and rewrite phases: the request
//! waits there for a fetch when none are usable, so that `$jwt_*` read by `if`, `set` and
//! `map` are what they are with key files. A fetch of keys (the server's own subrequest) skips
//! the server's rewrite directives and the pre-access phase, which judge the client.

use core::ptr;

use jwt_core::{Claims, Reason};
use ngx::ffi::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_FORBIDDEN, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_MOVED_TEMPORARILY, NGX_HTTP_OPTIONS,
    NGX_HTTP_SATISFY_ANY, NGX_HTTP_UNAUTHORIZED, NGX_LOG_ERR, NGX_LOG_INFO, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use crate::conf::{
    is_enabled_value, Auth, Enabled, LocConf, Lookup, MainConf, Realm, RequestConf, Require,
    UrlParts, DEFAULT_CHALLENGE,
};
use crate::headers::{push_challenge, push_claims, set_request_claims, Direction};
use crate::key_request::{is_fetch, prepare, refetch};
use crate::ngx::conf::ComplexValue;
use crate::ngx::guard::guard;
use crate::ngx::headers::{headers, push_header};
use crate::ngx::phases::skip_rest_of_phase;
use crate::ngx::request::{complex_value, complex_value_fresh, log};
use crate::ngx::string::bytes;
use crate::revocation::fleet::follow;
use crate::verdict::{mark_unmet, Verdicts};

/// Where in the request's life the check runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The access phase, before the other access modules.
    First,
    /// The access phase, after the other access modules.
    Last,
    /// A subrequest's rewrite or pre-access phase.
    Subrequest,
}

/// Access phase, before the other access modules.
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn access_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { run::<L>(r, Stage::First) }
}

/// Access phase, after the other access modules.
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn access_last_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { run::<L>(r, Stage::Last) }
}

/// Rewrite phase of a location: subrequests only.
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn subrequest_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { run::<L>(r, Stage::Subrequest) }
}

/// Pre-access phase of a location: subrequests only. A fetch of keys skips the rest of the
/// phase: `limit_req` and `limit_conn` judge the client, and the fetch is the server's own
/// request (one would also mark the client's request as already judged).
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn subrequest_preaccess_handler<L: Lookup>(
    r: *mut ngx_http_request_t,
) -> ngx_int_t {
    // SAFETY: nginx passes the request being processed.
    if unsafe { r.as_ref() }.is_some_and(|r| !ptr::eq(r, r.main) && is_fetch(r)) {
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: as this function's.
    unsafe { run::<L>(r, Stage::Subrequest) }
}

/// Rewrite phase, first: where the check applies with keys of `auth_jwt_key_request`, the
/// keys are had (waiting for a fetch if need be, or for a refetch when the token's `kid` is
/// new) before the location's `if`, `set` and `map` read `$jwt_*`, as they read them with key
/// files.
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn keys_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { keys::<L>(r, false) }
}

/// Server rewrite phase, first: as `keys_handler`, for a server whose own `if`, `set` or
/// `return` may read `$jwt_*` (a server without them does not make the requests of its
/// locations, `auth_jwt off` ones included, wait). A fetch of keys skips the server's
/// rewrite directives: they judge the client, and the fetch is the server's own request.
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn keys_server_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { keys::<L>(r, true) }
}

/// # Safety
/// `r` is the request nginx's phase engine is running.
unsafe fn keys<L: Lookup>(r: *mut ngx_http_request_t, server: bool) -> ngx_int_t {
    let declined = NGX_DECLINED as ngx_int_t;
    // SAFETY: nginx passes the request being processed.
    let Some(r) = (unsafe { r.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let Some(conf) = L::conf(r) else {
        return declined;
    };
    if is_fetch(r) {
        if server {
            skip_rest_of_phase(r);
        }
        return declined;
    }
    let fetched = conf.loc.auth.as_deref().is_some_and(Auth::fetches);
    if !fetched || server && !conf.main.has_rewrites(r) {
        return declined;
    }
    let Some(verdicts) = Verdicts::of::<L>(r, &conf) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let conn_log = unsafe { (*r.connection).log };
    guard(conn_log, "the key handler", declined, || {
        if !enforced(r, conf.loc) {
            return declined;
        }
        have_keys(r, &conf, verdicts).unwrap_or(declined)
    })
}

/// Has the keys of `conf`'s key requests: `Some(NGX_DONE)` when `r` waits for a fetch (none
/// are usable yet, or the token's `kid` is one they lack).
fn have_keys(
    r: &mut ngx_http_request_t,
    conf: &RequestConf<'static>,
    verdicts: Verdicts,
) -> Option<ngx_int_t> {
    let auth = conf.loc.auth.as_deref()?;
    if verdicts.keys_had(conf.loc) {
        return None;
    }
    // Before the token is judged: the list it is judged against may be due.
    if let Some(wait) = auth
        .revocation
        .as_ref()
        .and_then(|rev| follow(r, conf.main, rev))
    {
        return Some(wait);
    }
    if let Some(wait) = prepare(r, conf.main, auth) {
        return Some(wait);
    }
    let unknown_kid = verdicts.verdict(r, conf.loc).is_some_and(|v| v.unknown_kid);
    if let Some(wait) = unknown_kid.then(|| refetch(r, conf.main, auth)).flatten() {
        return Some(wait);
    }
    verdicts.set_keys_had(conf.loc);
    None
}

/// # Safety
/// `r` is the request nginx's phase engine is running.
unsafe fn run<L: Lookup>(r: *mut ngx_http_request_t, stage: Stage) -> ngx_int_t {
    // SAFETY: nginx passes the request being processed.
    let Some(r) = (unsafe { r.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // Every request passes all three stages; those with nothing to do here leave at once.
    let main = ptr::eq(r, r.main);
    // A fetch of keys is the server's own request, made before any token can be judged.
    if (stage == Stage::Subrequest) == main
        || stage == Stage::Last && !L::loc(r).is_some_and(LocConf::redirect)
        || !main && is_fetch(r)
    {
        return NGX_DECLINED as ngx_int_t;
    }
    let Some(conf) = L::conf(r) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let failed = NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    let Some(verdicts) = Verdicts::of::<L>(r, &conf) else {
        return failed;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let conn_log = unsafe { (*r.connection).log };
    guard(conn_log, "the access handler", failed, || {
        check(r, stage, &conf, verdicts)
    })
}

fn check(
    r: &mut ngx_http_request_t,
    stage: Stage,
    conf: &RequestConf<'static>,
    verdicts: Verdicts,
) -> ngx_int_t {
    let declined = NGX_DECLINED as ngx_int_t;
    let loc = conf.loc;
    // With `satisfy any`, a redirect waits for the other access modules.
    let deferred = stage != Stage::Subrequest && loc.redirect() && satisfy_any(r);
    if stage == Stage::Last && !deferred {
        return declined;
    }
    if !enforced(r, loc) {
        if stage != Stage::Last {
            // Not enforced, but headers named like ours are still ours: never pass a client's.
            let claims = verdicts.outcome(r, loc).and_then(|o| o.as_ref().ok());
            if set_request_claims(r, loc.request_claims(), claims).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
        }
        return declined;
    }
    let Some(auth) = &loc.auth else {
        let why = "no \"auth_jwt_key\" or key file is configured";
        log(r, NGX_LOG_ERR, format_args!("auth_jwt: key: {why}"));
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    // Keys fetched over HTTP, or a followed revocation list: the request may have to wait.
    if auth.fetches() {
        if let Some(wait) = have_keys(r, conf, verdicts) {
            return wait;
        }
    }
    match verdicts.outcome(r, loc) {
        Some(Ok(claims)) => match unmet_requirement(r, loc) {
            // Admitted by the first stage already; nothing to add.
            None if stage == Stage::Last => declined,
            None => admit(r, loc, claims, stage),
            Some((require, text)) => refuse_unmet(r, conf, require, &text, stage, deferred),
        },
        Some(Err(e)) => {
            // A refused request may still reach an upstream (`satisfy any` letting another
            // access module decide, `error_page 401 = @named`): never with the client's copy.
            if set_request_claims(r, loc.request_claims(), None).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
            if stage == Stage::First && deferred {
                return declined;
            }
            if e.reason == Reason::KeysUnavailable {
                // The server's failure, not the client's: neither a login page nor a 401.
                let detail = &e.detail;
                log(
                    r,
                    NGX_LOG_ERR,
                    format_args!("auth_jwt: keys_unavailable: {detail}"),
                );
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
            // A request without a token is routine (a first visit), not an error.
            let (level, detail) = match e.reason {
                Reason::Missing => (NGX_LOG_INFO, auth.missing.as_str()),
                _ => (NGX_LOG_ERR, e.detail.as_str()),
            };
            let word = e.reason.word();
            log(r, level, format_args!("auth_jwt: {word}: {detail}"));
            reject(r, conf, e.reason, stage)
        }
        None => NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
    }
}

/// Whether the check applies to this request.
fn enforced(r: &mut ngx_http_request_t, conf: &LocConf) -> bool {
    if conf.bypass_options() && is_preflight(r) {
        return false;
    }
    match conf.enabled() {
        // Unset: on wherever a key of the C module's family applies (its default); the NGINX
        // Plus family needs `auth_jwt`, as in Plus.
        None => conf.auth.is_some() && !conf.keys_from_plus(),
        Some(Enabled::Static(on)) => *on,
        Some(Enabled::Variable(cv)) => enabled_by(r, *cv),
    }
}

/// Whether a value with variables enables the check: only `off` that holds afresh disables
/// it, and a value that cannot be evaluated enables it (fail closed).
fn enabled_by(r: &mut ngx_http_request_t, cv: ComplexValue) -> bool {
    !holds_afresh(r, cv, |v| !is_enabled_value(v))
}

/// Whether `cv`'s value passes `test` twice: with the values nginx cached for the request, and
/// with the variables computed afresh, so that a `map` of `$uri` computed for another location
/// before an internal redirect, or for the parent of a subrequest, cannot relax a check. A
/// main request keeps the values its `set` assigned; a subrequest does not take them from its
/// parent. A value that cannot be evaluated does not pass.
fn holds_afresh(
    r: &mut ngx_http_request_t,
    cv: ComplexValue,
    test: impl Fn(&[u8]) -> bool,
) -> bool {
    if !complex_value(r, cv).is_some_and(&test) {
        return false;
    }
    let main = ptr::eq(r, r.main);
    complex_value_fresh(r, cv, main).is_some_and(test)
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. Browsers
/// send it without credentials; any other `OPTIONS` request is checked like the rest.
fn is_preflight(r: &ngx_http_request_t) -> bool {
    if r.method != NGX_HTTP_OPTIONS as usize {
        return false;
    }
    let has = |name: &[u8]| {
        headers(&r.headers_in.headers)
            .any(|h| h.hash != 0 && bytes(&h.key).eq_ignore_ascii_case(name))
    };
    has(b"origin") && has(b"access-control-request-method")
}

fn satisfy_any(r: &ngx_http_request_t) -> bool {
    NgxHttpCoreModule::location_conf(r).is_some_and(|c| c.satisfy == NGX_HTTP_SATISFY_ANY as usize)
}

/// The first `auth_jwt_require` of the location that does not hold, with the value that is
/// empty or `0`; a value must hold afresh too, so that a cached `map` cannot grant.
fn unmet_requirement(
    r: &mut ngx_http_request_t,
    conf: &'static LocConf,
) -> Option<(&'static Require, String)> {
    let met = |v: &[u8]| !v.is_empty() && v != b"0";
    for require in conf.requires() {
        for (cv, text) in &require.values {
            if !holds_afresh(r, *cv, met) {
                return Some((require, text.clone()));
            }
        }
    }
    None
}

/// A valid token that does not meet a requirement: 403, or refused as an invalid token
/// (401 or the redirect), with `$jwt_error` = `require`.
#[cold]
#[inline(never)]
fn refuse_unmet(
    r: &mut ngx_http_request_t,
    conf: &RequestConf<'static>,
    require: &Require,
    text: &str,
    stage: Stage,
    deferred: bool,
) -> ngx_int_t {
    if set_request_claims(r, conf.loc.request_claims(), None).is_none() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    if stage == Stage::First && deferred && require.error == 401 {
        return NGX_DECLINED as ngx_int_t;
    }
    if mark_unmet(r).is_none() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    log(
        r,
        NGX_LOG_ERR,
        format_args!("auth_jwt: require: \"{text}\" is empty or 0"),
    );
    if require.error == 403 {
        if stage == Stage::Subrequest {
            // As for every refusal of a subrequest: `auth_request` must see the 403, which
            // an `error_page 403 =` of the location would turn into a grant.
            r.set_error_page(1);
        }
        return NGX_HTTP_FORBIDDEN as ngx_int_t;
    }
    reject(r, conf, Reason::Require, stage)
}

fn admit(
    r: &mut ngx_http_request_t,
    conf: &'static LocConf,
    claims: &Claims,
    stage: Stage,
) -> ngx_int_t {
    let done = set_request_claims(r, conf.request_claims(), Some(claims))
        .and_then(|()| push_claims(r, conf.response_claims(), claims, Direction::Client));
    match (done, stage) {
        (None, _) => NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        // The phase goes on with the location's own handlers (rewrite directives, limit_req).
        (Some(()), Stage::Subrequest) => NGX_DECLINED as ngx_int_t,
        (Some(()), _) => NGX_OK as ngx_int_t,
    }
}

#[cold]
#[inline(never)]
fn reject(
    r: &mut ngx_http_request_t,
    conf: &RequestConf,
    reason: Reason,
    stage: Stage,
) -> ngx_int_t {
    let sent = if stage == Stage::Subrequest {
        // The 401 is `auth_request`'s to see: an `error_page 401 =` of the location would
        // turn it into the 2xx that grants access.
        r.set_error_page(1);
        challenge(r, conf.loc, reason)
    } else if conf.loc.redirect() {
        redirect(r, conf)
    } else {
        challenge(r, conf.loc, reason)
    };
    sent.unwrap_or(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t)
}

/// 401 with an RFC 6750 §3 challenge; `error` only when a token was presented.
fn challenge(r: &mut ngx_http_request_t, conf: &LocConf, reason: Reason) -> Option<ngx_int_t> {
    let mut value = match conf.realm() {
        None => String::from(DEFAULT_CHALLENGE),
        Some(Realm::Text(challenge)) => challenge.clone(),
        Some(Realm::Variable(cv)) => {
            let realm = String::from_utf8_lossy(complex_value(r, *cv)?).into_owned();
            format!("Bearer realm=\"{}\"", jwt_core::quote_param(&realm))
        }
    };
    if reason != Reason::Missing {
        value.push_str(", error=\"invalid_token\", error_description=\"");
        value.push_str(describe(reason));
        value.push('"');
    }
    push_challenge(r, value.as_bytes())?;
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
        Reason::Require => "the token does not meet a requirement of this location",
        Reason::KeysUnavailable => "the keys are unavailable",
        Reason::Revoked => "the token has been revoked",
    }
}

/// 302 to the login URL; GET and HEAD carry the URL asked for as `return_url`. A byte of the
/// login URL that cannot stand in a URI (a CR or LF from a variable) is percent-encoded.
fn redirect(r: &mut ngx_http_request_t, conf: &RequestConf) -> Option<ngx_int_t> {
    let login = complex_value(r, conf.loc.loginurl()?)?.to_vec();
    let mut location = jwt_core::safe_url(&login);
    if r.method == NGX_HTTP_GET as usize || r.method == NGX_HTTP_HEAD as usize {
        let asked = requested_url(r, conf.loc, conf.main)?;
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

/// The URL the client asked for: `$scheme://HOST$request_uri`, HOST being the `Host` header,
/// else `$host`, else the address the request came in on (an HTTP/1.0 request without `Host`
/// to a server without `server_name`); a token from a `QUERY=` source is left out.
fn requested_url(r: &mut ngx_http_request_t, conf: &LocConf, main: &MainConf) -> Option<Vec<u8>> {
    let parts = main.url_parts?;
    let scheme = complex_value(r, parts.scheme)?.to_vec();
    // SAFETY: NULL or an element of the request's header list.
    let header = unsafe { r.headers_in.host.as_ref() }.map(|h| bytes(&h.value).to_vec());
    let host = match header.filter(|h| !h.is_empty()) {
        Some(host) => host,
        None => {
            let name = complex_value(r, parts.host)?.to_vec();
            if name.is_empty() {
                local_address(r, &scheme, parts)?
            } else {
                name
            }
        }
    };
    let names: Vec<&str> = conf.query_sources().collect();
    let uri = jwt_core::without_query_args(bytes(&r.unparsed_uri), &names);
    let mut url = scheme;
    url.extend_from_slice(b"://");
    url.extend_from_slice(&host);
    url.extend_from_slice(&uri);
    Some(url)
}

/// `$server_addr:$server_port`, an IPv6 address in brackets, the port left out when it is the
/// scheme's default.
fn local_address(r: &mut ngx_http_request_t, scheme: &[u8], parts: UrlParts) -> Option<Vec<u8>> {
    let addr = complex_value(r, parts.server_addr)?.to_vec();
    let port = complex_value(r, parts.server_port)?.to_vec();
    let mut host = if addr.contains(&b':') {
        [&b"["[..], &addr, b"]"].concat()
    } else {
        addr
    };
    let default = matches!(
        (scheme, port.as_slice()),
        (b"http", b"80") | (b"https", b"443")
    );
    if !default && !port.is_empty() {
        host.push(b':');
        host.extend_from_slice(&port);
    }
    Some(host)
}
