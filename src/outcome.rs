//! One verification per request, shared by the access handler and every variable.
//!
//! The outcome lives in the main request's module context, so `auth_request` subrequests and
//! the log phase read what the access phase computed. It is tagged with the `Auth` it was
//! computed under (and, with a `QUERY=` source, the token bytes): a lookup from another location
//! (after a rewrite moved the request, or from server-level `set`) recomputes rather than trust a
//! verdict made under other keys. Internal redirects clear module contexts; the verdict is then
//! found again among the request pool's cleanups when it matches.

use core::cell::RefCell;
use core::ffi::c_void;
use core::ptr;
use std::rc::Rc;

use jwt_core::{Error, Jwt, Reason, Source, SourceKind, TokenCache};
use ngx::ffi::{ngx_http_request_t, ngx_table_elt_t};

use crate::conf::{Auth, LocConf, MainConf};
use crate::glue::module;
use crate::ngx_util::{bytes, headers, now, pool_box_with, pool_find};

pub type Outcome = Result<Rc<Jwt>, Error>;

/// How the verdict was reached, for `$jwt_cache_status`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CacheStatus {
    /// A token verified before under the same keys and policy; only the clock re-checked.
    Hit,
    /// Verified in full (and remembered when valid).
    Miss,
    /// Verified in full with the cache off.
    Bypass,
}

impl CacheStatus {
    pub fn word(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

pub struct Verdict {
    pub outcome: Outcome,
    /// `None` when there was no token to verify.
    pub cache: Option<CacheStatus>,
}

struct Ctx {
    auth: *const Auth,
    /// The token judged (request memory, valid for the request): a verdict is reused only
    /// for the same bytes, which a rewrite of `QUERY=` arguments could change.
    token: Option<(*const u8, usize)>,
    verdict: Verdict,
}

impl Ctx {
    fn judged(&self, auth: &Auth, token: Option<&[u8]>) -> bool {
        // SAFETY: `self.token` points into the request's memory, which outlives its verdicts.
        let same = |(p, n): (*const u8, usize), t: &[u8]| unsafe { core::slice::from_raw_parts(p, n) } == t;
        ptr::eq(self.auth, auth)
            && match (self.token, token) {
                (None, None) => true,
                (Some(mine), Some(t)) => same(mine, t),
                _ => false,
            }
    }
}

/// The cleanup of a pool-held `Ctx`; its address identifies our verdicts among the pool's
/// cleanups.
#[inline(never)]
unsafe extern "C" fn drop_ctx(data: *mut c_void) {
    // SAFETY: registered by `verdict` for exactly one `Ctx` at `data`.
    unsafe { ptr::drop_in_place(data.cast::<Ctx>()) };
}

thread_local! {
    /// nginx runs requests on one thread per worker: one cache per worker, no locking.
    static CACHE: RefCell<TokenCache> = RefCell::new(TokenCache::new(0));
}

/// This module's `http{}` configuration for `r`.
pub fn main_conf<'c>(r: &ngx_http_request_t) -> Option<&'c MainConf> {
    // SAFETY: `main_conf` holds one slot per HTTP module; ours was created by
    // create_main_conf and lives as long as the cycle.
    unsafe {
        (*r.main_conf.add(module().ctx_index))
            .cast::<MainConf>()
            .as_ref()
    }
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

/// The main request's token judged under the main request's current location, or `None`
/// when no key is configured there.
pub fn outcome<'p>(r: &ngx_http_request_t) -> Option<&'p Outcome> {
    verdict(r).map(|v| &v.outcome)
}

/// The verdict on the main request's token under the main request's current location, or
/// `None` when no key is configured there.
///
/// The verdict lives in the main request's pool, valid for the whole request: the result is not
/// tied to the borrow of `r`.
pub fn verdict<'p>(r: &ngx_http_request_t) -> Option<&'p Verdict> {
    // SAFETY: every request points at its main request, which outlives its subrequests.
    let main: &'p ngx_http_request_t = unsafe { &*r.main };
    let auth = loc_conf(main)?.auth.as_deref()?;
    // SAFETY: `ctx` holds one slot per HTTP module; ours is NULL or a `Ctx` stored below.
    let slot = unsafe { &mut *main.ctx.add(module().ctx_index) };
    // SAFETY: a non-NULL slot was written below and lives in the request's pool.
    if let Some(ctx) = unsafe { slot.cast::<Ctx>().as_ref() } {
        // Only query arguments can change under a verdict (a rewrite); headers cannot.
        if ptr::eq(ctx.auth, auth) && !auth.query {
            return Some(&ctx.verdict);
        }
    }
    // Headers do not change under a verdict, so without a query source the `Auth` alone
    // identifies it, and the token need not be looked for again.
    let query_token = auth.query.then(|| find_token(main, &auth.sources));
    // An internal redirect clears module contexts but not the pool: find the verdict again
    // rather than judge the same token twice (an `index` file, `try_files`, `error_page`).
    // SAFETY: `drop_ctx` is registered only for `Ctx` values.
    let found = unsafe {
        pool_find::<Ctx>(main.pool, drop_ctx, |c| match query_token {
            Some(token) => c.judged(auth, token),
            None => ptr::eq(c.auth, auth),
        })
    };
    let ctx = match found {
        Some(ctx) => ctx,
        None => {
            let token = query_token.unwrap_or_else(|| find_token(main, &auth.sources));
            let cache_size = main_conf(main).map_or(0, MainConf::cache_size);
            let verdict = compute(auth, token, cache_size);
            let token = token.map(|t| (t.as_ptr(), t.len()));
            // SAFETY: `drop_ctx` drops exactly one `Ctx`. If the pool is exhausted, nothing
            // can be kept; callers fail closed.
            unsafe {
                pool_box_with(
                    main.pool,
                    Ctx {
                        auth,
                        token,
                        verdict,
                    },
                    drop_ctx,
                )?
            }
        }
    };
    *slot = ctx.as_ptr().cast();
    // SAFETY: it lives until the request pool is destroyed.
    Some(unsafe { &ctx.as_ref().verdict })
}

fn compute(auth: &Auth, token: Option<&[u8]>, cache_size: usize) -> Verdict {
    let Some(token) = token else {
        // The detail (where no token was found) is the Auth's, written when logged.
        let missing = Error {
            reason: Reason::Missing,
            detail: String::new(),
        };
        return Verdict {
            outcome: Err(missing),
            cache: None,
        };
    };
    let now = now();
    let verify = || jwt_core::verify(token, &auth.keys, &auth.policy, now).map(Rc::new);
    if cache_size == 0 || token.is_empty() {
        return Verdict {
            outcome: verify(),
            cache: Some(CacheStatus::Bypass),
        };
    }
    CACHE.with(|cache| {
        // Never re-entered (verification calls back into nothing); if it were, skip the cache.
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return Verdict {
                outcome: verify(),
                cache: Some(CacheStatus::Bypass),
            };
        };
        cache.set_limit(cache_size);
        if let Some(outcome) = cache.get(auth.scope, token, &auth.policy, now) {
            return Verdict {
                outcome,
                cache: Some(CacheStatus::Hit),
            };
        }
        let outcome = verify();
        if let Ok(jwt) = &outcome {
            cache.insert(auth.scope, token, Rc::clone(jwt));
        }
        Verdict {
            outcome,
            cache: Some(CacheStatus::Miss),
        }
    })
}

/// The first token present, in the order of `auth_jwt_location`.
fn find_token<'r>(r: &'r ngx_http_request_t, sources: &[Source]) -> Option<&'r [u8]> {
    sources.iter().find_map(|source| match source.kind {
        SourceKind::Header => header_value(r, source.name.as_bytes()).map(jwt_core::strip_bearer),
        SourceKind::Authorization => authorization(r).map(jwt_core::strip_bearer),
        SourceKind::Cookie => headers(&r.headers_in.headers)
            .filter(|h| bytes(&h.key).eq_ignore_ascii_case(b"cookie"))
            .find_map(|h| jwt_core::find_cookie(bytes(&h.value), source.name.as_bytes()))
            .map(jwt_core::strip_bearer),
        SourceKind::Query => jwt_core::find_query_arg(bytes(&r.args), source.name.as_bytes()),
    })
}

/// The one Authorization header nginx allows (it answers a second with 400), through the
/// pointer it keeps: no walk through a browser's dozen headers for the usual source.
fn authorization(r: &ngx_http_request_t) -> Option<&[u8]> {
    // SAFETY: NULL or an element of the request's header list, which lives in its pool.
    let h = unsafe { r.headers_in.authorization.as_ref() }?;
    (h.hash != 0).then(|| bytes(&h.value))
}

fn header_value<'r>(r: &'r ngx_http_request_t, name: &[u8]) -> Option<&'r [u8]> {
    headers(&r.headers_in.headers)
        .find(|h| h.hash != 0 && bytes(&h.key).eq_ignore_ascii_case(name))
        .map(|h: &ngx_table_elt_t| bytes(&h.value))
}
