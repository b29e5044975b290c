//! One verification per request, shared by the access handler and every variable.
//!
//! The outcome lives in the main request's module context, so `auth_request` subrequests and
//! the log phase read what the access phase computed. It is tagged with the `Auth` it was
//! computed under: a lookup from another location (after a rewrite moved the request, or from
//! server-level `set`) recomputes rather than trusting a verdict made under other keys.
//! Internal redirects clear module contexts; the next lookup recomputes then too.

use core::ptr;

use jwt_core::{Error, Jwt, Reason, Source, SourceKind};
use ngx::ffi::{ngx_http_request_t, ngx_table_elt_t};

use crate::conf::{Auth, LocConf};
use crate::glue::module;
use crate::ngx_util::{bytes, headers, now, pool_box};

pub type Outcome = Result<Jwt, Error>;

struct Ctx {
    auth: *const Auth,
    outcome: Outcome,
}

/// This module's location configuration for `r`.
///
/// Configuration memory lives as long as the cycle, so the result is not tied to the borrow of
/// `r` (the handler needs `r` mutably while it reads its configuration).
pub fn loc_conf<'c>(r: &ngx_http_request_t) -> Option<&'c LocConf> {
    // SAFETY: `loc_conf` is the request's array of location configurations, one per HTTP
    // module, and ours was created by `create_loc_conf`; it lives as long as the cycle.
    unsafe {
        let conf = *r.loc_conf.add(module().ctx_index);
        conf.cast::<LocConf>().as_ref()
    }
}

/// The verdict on the main request's token under the main request's current location, or
/// `None` when no key is configured there.
///
/// The verdict lives in the main request's pool, valid for the whole request: the result is not
/// tied to the borrow of `r`.
pub fn outcome<'p>(r: &ngx_http_request_t) -> Option<&'p Outcome> {
    // SAFETY: every request points at its main request, which outlives its subrequests.
    let main: &'p ngx_http_request_t = unsafe { &*r.main };
    let auth = loc_conf(main)?.auth.as_deref()?;
    // SAFETY: `ctx` holds one slot per HTTP module; ours is NULL or a `Ctx` from `store`.
    let slot = unsafe { &mut *main.ctx.add(module().ctx_index) };
    // SAFETY: a non-NULL slot was written by `store` below, in this request's pool.
    if let Some(ctx) = unsafe { slot.cast::<Ctx>().as_ref() } {
        if ptr::eq(ctx.auth, auth) {
            return Some(&ctx.outcome);
        }
    }
    let outcome = compute(main, auth);
    // If the pool is exhausted, nothing can be cached; the request fails closed below.
    let ctx = pool_box(main.pool, Ctx { auth, outcome })?;
    *slot = ctx.as_ptr().cast();
    // SAFETY: just stored; it lives until the request pool is destroyed.
    Some(unsafe { &ctx.as_ref().outcome })
}

fn compute(r: &ngx_http_request_t, auth: &Auth) -> Outcome {
    let Some(token) = find_token(r, &auth.sources) else {
        return Err(Error {
            reason: Reason::Missing,
            detail: describe_sources(&auth.sources),
        });
    };
    jwt_core::verify(token, &auth.keys, &auth.policy, now())
}

fn describe_sources(sources: &[Source]) -> String {
    let names: Vec<String> = sources
        .iter()
        .map(|s| match s.kind {
            SourceKind::Header => format!("header \"{}\"", s.name),
            SourceKind::Cookie => format!("cookie \"{}\"", s.name),
            SourceKind::Query => format!("argument \"{}\"", s.name),
        })
        .collect();
    format!("no token in {}", names.join(", "))
}

/// The first token present, in the order of `auth_jwt_location`.
fn find_token<'r>(r: &'r ngx_http_request_t, sources: &[Source]) -> Option<&'r [u8]> {
    sources.iter().find_map(|source| match source.kind {
        SourceKind::Header => header_value(r, source.name.as_bytes()).map(jwt_core::strip_bearer),
        SourceKind::Cookie => headers(&r.headers_in.headers)
            .filter(|h| bytes(&h.key).eq_ignore_ascii_case(b"cookie"))
            .find_map(|h| jwt_core::find_cookie(bytes(&h.value), source.name.as_bytes()))
            .map(jwt_core::strip_bearer),
        SourceKind::Query => jwt_core::find_query_arg(bytes(&r.args), source.name.as_bytes()),
    })
}

fn header_value<'r>(r: &'r ngx_http_request_t, name: &[u8]) -> Option<&'r [u8]> {
    headers(&r.headers_in.headers)
        .find(|h| h.hash != 0 && bytes(&h.key).eq_ignore_ascii_case(name))
        .map(|h: &ngx_table_elt_t| bytes(&h.value))
}
