//! One verification per request and key set, shared by the handlers and every variable.
//!
//! A verdict is judged with the configuration of the location that asks: the main request's
//! for its access check and variables, a subrequest's own for its check and for variables read
//! in it. The token is always the client's, read from the main request. Verdicts live in the
//! main request's pool, tagged with the `Auth` they were computed under (and, with a `QUERY=`
//! source, the token bytes), so a location with other keys recomputes rather than trust one
//! made elsewhere. The main request's module context points at the last one, and the others
//! are found again among the pool's cleanups: internal redirects clear module contexts.

use core::cell::RefCell;
use core::ffi::c_void;
use core::ptr;
use std::rc::Rc;

use jwt_core::{Claims, Error, Reason, Source, SourceKind, TokenCache};
use ngx::ffi::ngx_http_request_t;

use crate::conf::{describe_source, Auth, LocConf, MainConf, SrvConf};
use crate::glue::module;
use crate::ngx_util::{bytes, headers, now, pool_box_with, pool_find};

pub type Outcome = Result<Claims, Error>;

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

/// This module's `server{}` state for `r`.
pub fn srv_conf<'c>(r: &ngx_http_request_t) -> Option<&'c SrvConf> {
    // SAFETY: `srv_conf` holds one slot per HTTP module; ours was created by
    // create_srv_conf and lives as long as the cycle.
    unsafe {
        (*r.srv_conf.add(module().ctx_index))
            .cast::<SrvConf>()
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

/// The client's token judged under `r`'s location, or `None` when no key is configured there.
pub fn outcome<'p>(r: &ngx_http_request_t) -> Option<&'p Outcome> {
    verdict(r).map(|v| &v.outcome)
}

/// The verdict on the client's token under `r`'s location, or `None` when no key is
/// configured there.
///
/// The verdict lives in the main request's pool, valid for the whole request: the result is not
/// tied to the borrow of `r`.
pub fn verdict<'p>(r: &ngx_http_request_t) -> Option<&'p Verdict> {
    let auth = loc_conf(r)?.auth.as_deref()?;
    // SAFETY: every request points at its main request, which outlives its subrequests.
    let main: &'p ngx_http_request_t = unsafe { &*r.main };
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
    // Another location's verdict, or one an internal redirect cleared from the context: found
    // again rather than judged twice (an `index` file, `try_files`, `error_page`).
    // SAFETY: `drop_ctx` is registered only for `Ctx` values.
    let found = unsafe {
        pool_find::<Ctx>(main.pool, drop_ctx, |c| match &query_token {
            Some(found) => c.judged(auth, found.as_ref().ok().copied().flatten()),
            None => ptr::eq(c.auth, auth),
        })
    };
    let ctx = match found {
        Some(ctx) => ctx,
        None => {
            let found = query_token.unwrap_or_else(|| find_token(main, &auth.sources));
            let cache_size = main_conf(main).map_or(0, MainConf::cache_size);
            let token = found.as_ref().ok().copied().flatten();
            let verdict = compute(auth, found, cache_size);
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

fn compute(auth: &Auth, found: Found, cache_size: usize) -> Verdict {
    let verdict = |outcome: Result<Rc<jwt_core::Jwt>, Error>, cache| Verdict {
        outcome: outcome.map(Claims::new),
        cache,
    };
    let token = match found {
        Ok(token) => token,
        Err(detail) => {
            let ambiguous = Error {
                reason: Reason::Malformed,
                detail,
            };
            return verdict(Err(ambiguous), None);
        }
    };
    let Some(token) = token else {
        // The detail (where no token was found) is the Auth's, written when logged.
        let missing = Error {
            reason: Reason::Missing,
            detail: String::new(),
        };
        return verdict(Err(missing), None);
    };
    let now = now();
    let verify = || jwt_core::verify(token, &auth.keys, &auth.policy, now).map(Rc::new);
    if cache_size == 0 {
        return verdict(verify(), Some(CacheStatus::Bypass));
    }
    CACHE.with(|cache| {
        // Never re-entered (verification calls back into nothing); if it were, skip the cache.
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return verdict(verify(), Some(CacheStatus::Bypass));
        };
        cache.set_limit(cache_size);
        if let Some(outcome) = cache.get(auth.scope, token, &auth.policy, now) {
            return verdict(outcome, Some(CacheStatus::Hit));
        }
        let outcome = verify();
        if let Ok(jwt) = &outcome {
            cache.insert(auth.scope, token, Rc::clone(jwt));
        }
        verdict(outcome, Some(CacheStatus::Miss))
    })
}

/// What the client sent for a token: in the order of `auth_jwt_location`, the first source
/// holding one wins, and its first non-empty value is the token (an empty header, cookie or
/// argument, one holding only `Bearer`, or another scheme's credentials do not hide a later
/// one). A source holding two different tokens is an error: an application reading the other
/// one, by its name as it reads names, would trust a token nginx never checked.
type Found<'r> = Result<Option<&'r [u8]>, String>;

fn find_token<'r>(r: &'r ngx_http_request_t, sources: &'r [Source]) -> Found<'r> {
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
    // A token holds no blank: a value with one (`Basic …`) is another scheme's credentials.
    let usable = |value: &'r [u8]| {
        let token = jwt_core::strip_bearer(value);
        (!token.is_empty() && !jwt_core::has_blank(token)).then_some(token)
    };
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
