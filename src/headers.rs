//! The identity headers across nginx's request lifecycle.
//!
//! - On arrival (post-read phase, before any `if`, `set`, `map`, subrequest or upstream can
//!   read them; or the first rewrite phase of a request that skipped post-read), every client
//!   header named `JWT` and a character that is not a letter or digit (`JWT-`, `jwt_`,
//!   `JWT.`) is removed from a main request in each server where the module is used; a header
//!   configured there as a token source is kept, by its exact name.
//! - The claim headers of `auth_jwt_extract_request_claims` replace every header whose name is
//!   the same to an application (`jwt_core::loose_name_eq`).
//! - `$http_jwt_*` variables are not cached: a read after the access phase sees the headers
//!   set there, whatever a rewrite-phase read saw.
//! - A `WWW-Authenticate` challenge this module added is withdrawn from a response that ends
//!   up other than a 401 (`satisfy any` granted by another module, `error_page 401 =`).

use core::ptr;

use jwt_core::Claims;
use ngx::ffi::{
    ngx_http_core_main_conf_t, ngx_http_output_header_filter_pt, ngx_http_request_t,
    ngx_http_top_header_filter, ngx_http_variable_t, ngx_int_t, ngx_table_elt_t, NGX_DECLINED,
    NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_UNAUTHORIZED, NGX_HTTP_VAR_NOCACHEABLE,
    NGX_LOG_INFO, NGX_LOG_WARN, NGX_OK,
};

use crate::conf::{ClaimHeader, Lookup, SrvConf};
use crate::ngx::guard::guard;
use crate::ngx::headers::{for_each_header_mut, headers, push_header, rebuild_list_without};
use crate::ngx::pool::{pool_mark, pool_marked, Mark};
use crate::ngx::request::log;
use crate::ngx::string::bytes;

/// The name of the challenge header this module adds; its address tells ours from another
/// module's.
static CHALLENGE: &[u8] = b"WWW-Authenticate";
static CHALLENGE_LOWCASE: &[u8] = b"www-authenticate";

/// Removes the client's `JWT-*` headers from a main request, once: in the post-read phase,
/// and for a request nginx finalised while reading its headers (a 400, then `error_page`), in
/// the first rewrite phase it reaches (see `strip_handler_redirected`).
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn strip_handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { strip_once::<L>(r, false) }
}

/// The rewrite phases' copy of `strip_handler`: a request on its first pass through them has
/// run the post-read phase (only an internal redirect, `error_page` included, starts there).
///
/// # Safety
/// Called by nginx's phase engine with a valid request.
pub unsafe extern "C" fn strip_handler_redirected<L: Lookup>(
    r: *mut ngx_http_request_t,
) -> ngx_int_t {
    // SAFETY: as this function's.
    unsafe { strip_once::<L>(r, true) }
}

/// # Safety
/// `r` is the request nginx's phase engine is running.
unsafe fn strip_once<L: Lookup>(r: *mut ngx_http_request_t, redirected: bool) -> ngx_int_t {
    // SAFETY: nginx passes the request being processed.
    let Some(r) = (unsafe { r.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    if redirected && r.internal() == 0 {
        return NGX_DECLINED as ngx_int_t;
    }
    // Subrequests copy the main request's headers, cleaned before any could start.
    if !ptr::eq(r, r.main) {
        return NGX_DECLINED as ngx_int_t;
    }
    let Some(srv) = L::srv(r).filter(|srv| srv.guarded) else {
        return NGX_DECLINED as ngx_int_t;
    };
    // Once per request: afterwards the module's own claim headers are in the list.
    if pool_marked(r.pool, &STRIPPED) {
        return NGX_DECLINED as ngx_int_t;
    }
    // SAFETY: a request's connection and its log outlive the request.
    let conn_log = unsafe { (*r.connection).log };
    let failed = NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    guard(conn_log, "removing client JWT-* headers", failed, || {
        strip_client_headers(r, srv)
    })
}

/// The mark of a request whose client headers were cleaned.
static STRIPPED: Mark = Mark(1);

fn strip_client_headers(r: &mut ngx_http_request_t, srv: &SrvConf) -> ngx_int_t {
    if pool_mark(r.pool, &STRIPPED).is_none() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    let removed = headers(&r.headers_in.headers).find(|h| srv.removes(bytes(&h.key)));
    let Some(first) = removed.map(|h| String::from_utf8_lossy(bytes(&h.key)).into_owned()) else {
        return NGX_DECLINED as ngx_int_t;
    };
    if rebuild_list_without(r, |h| srv.removes(bytes(&h.key))).is_none() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    log(
        r,
        NGX_LOG_INFO,
        format_args!(
            "auth_jwt: client header \"{first}\" removed (JWT-* headers are the module's)"
        ),
    );
    NGX_DECLINED as ngx_int_t
}

fn is_claim_header(h: &ngx_table_elt_t, claims: &[ClaimHeader]) -> bool {
    let key = bytes(&h.key);
    claims.iter().any(|c| jwt_core::loose_name_eq(key, &c.name))
}

/// Replaces every header named like a `JWT-<claim>` of `claims`, as an application reads names,
/// with the token's claim, or with nothing when there is no valid token.
///
/// A subrequest's header list shares its storage with its parent's: it gets a list of its
/// own before anything is added, so the parent never sees the subrequest's headers.
pub fn set_request_claims(
    r: &mut ngx_http_request_t,
    claims: &'static [ClaimHeader],
    jwt: Option<&Claims>,
) -> Option<()> {
    if claims.is_empty() {
        return Some(());
    }
    let subrequest = !ptr::eq(r, r.main);
    if subrequest || headers(&r.headers_in.headers).any(|h| is_claim_header(h, claims)) {
        rebuild_list_without(r, |h| is_claim_header(h, claims))?;
    }
    match jwt {
        Some(jwt) => push_claims(r, claims, jwt, Direction::Upstream),
        None => Some(()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Request headers, seen by the upstream and as `$http_jwt_*`.
    Upstream,
    /// Response headers, seen by the client.
    Client,
}

/// Adds `JWT-<claim>` headers for the claims the token has, by their exact name. A value
/// that could end the header line (CR, LF, other controls) is left out, and logged.
pub fn push_claims(
    r: &mut ngx_http_request_t,
    claims: &'static [ClaimHeader],
    jwt: &Claims,
    direction: Direction,
) -> Option<()> {
    for c in claims {
        let Some(value) = jwt.claim_exact(&c.claim).map(jwt_core::render) else {
            continue;
        };
        if !jwt_core::header_safe(&value) {
            if jwt.first_withheld() {
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

/// Adds the 401's `WWW-Authenticate` challenge.
pub fn push_challenge(r: &mut ngx_http_request_t, value: &[u8]) -> Option<()> {
    let h = push_header(
        &mut r.headers_out.headers,
        r.pool,
        CHALLENGE,
        CHALLENGE_LOWCASE,
        value,
        false,
    )?;
    r.headers_out.www_authenticate = h.as_ptr();
    Some(())
}

/// Marks as non-cacheable every `$http_jwt_*` variable the configuration uses.
///
/// nginx keeps a variable's value for the rest of the request: a rewrite-phase read of
/// `$http_jwt_sub` would hide the header the module sets later. A non-cacheable variable is
/// computed again at each read. Runs once the configuration is complete: nginx assigns
/// variables their flags after the modules' postconfiguration.
pub fn uncache_variables(cmcf: &mut ngx_http_core_main_conf_t) {
    let vars = &cmcf.variables;
    if vars.elts.is_null() {
        return;
    }
    // SAFETY: once the configuration is read, the core main configuration's `variables` is an
    // array of `nelts` indexed variables.
    let vars = unsafe {
        core::slice::from_raw_parts_mut(vars.elts.cast::<ngx_http_variable_t>(), vars.nelts)
    };
    for v in vars.iter_mut() {
        // Variable names are lowercase once indexed; `-` cannot be part of one.
        if bytes(&v.name).starts_with(b"http_jwt_") {
            v.flags |= NGX_HTTP_VAR_NOCACHEABLE as ngx::ffi::ngx_uint_t;
        }
    }
}

static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;

/// Puts `header_filter` at the top of nginx's header filter chain.
///
/// # Safety
/// Called once per configuration, from postconfiguration, as nginx's own filters install
/// themselves.
pub unsafe fn install_header_filter<L: Lookup>() {
    // SAFETY: configuration runs on one thread; nginx reads the chain only while serving.
    unsafe {
        NEXT_HEADER_FILTER = ngx_http_top_header_filter;
        ngx_http_top_header_filter = Some(header_filter::<L>);
    }
}

unsafe extern "C" fn header_filter<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes the request whose header is being sent.
    if let Some(r) = unsafe { r.as_mut() } {
        // SAFETY: a request's connection and its log outlive the request.
        let conn_log = unsafe { (*r.connection).log };
        guard(conn_log, "the header filter", (), || {
            withdraw_challenge::<L>(r)
        });
    }
    // SAFETY: the next filter was set at installation, before any request.
    match unsafe { NEXT_HEADER_FILTER } {
        // SAFETY: calling the rest of nginx's chain with the request it gave us.
        Some(next) => unsafe { next(r) },
        None => NGX_OK as ngx_int_t,
    }
}

/// Hides this module's challenge from a main request's response that is not a 401.
fn withdraw_challenge<L: Lookup>(r: &mut ngx_http_request_t) {
    if !ptr::eq(r, r.main) || r.headers_out.status == NGX_HTTP_UNAUTHORIZED as usize {
        return;
    }
    if !L::srv(r).is_some_and(|srv| srv.guarded) {
        return;
    }
    let ours = |h: &ngx_table_elt_t| h.hash != 0 && ptr::eq(h.key.data, CHALLENGE.as_ptr());
    if !headers(&r.headers_out.headers).any(ours) {
        return;
    }
    for_each_header_mut(&mut r.headers_out.headers, |h| {
        if ours(h) {
            h.hash = 0;
        }
    });
    // SAFETY: NULL or an element of the response's header list.
    if unsafe { r.headers_out.www_authenticate.as_ref() }.is_some_and(|h| h.hash == 0) {
        r.headers_out.www_authenticate = ptr::null_mut();
    }
}
