//! One verification per request and key set, shared by the handlers and every variable.
//!
//! A verdict is judged with the configuration of the location that asks: the main request's
//! for its access check and variables, a subrequest's own for its check and for variables read
//! in it. The token is always the client's, read from the main request. Verdicts live in the
//! main request's pool, tagged with the `Auth` they were computed under (and, with a `QUERY=`
//! source, the token bytes), so a location with other keys recomputes rather than trust one
//! made elsewhere. The main request's module context points at the last one, and the others
//! are found again among the pool's cleanups: internal redirects clear module contexts.

use core::cell::{Cell, RefCell};
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use std::rc::Rc;

use jwt_core::{Claims, Error, Reason, TokenCache};
use ngx::ffi::ngx_http_request_t;

use crate::conf::{Auth, LocConf, Lookup, MainConf, RequestConf};
use crate::key_request::{keys_now, suspensions, KeysNow};
use crate::ngx::pool::{pool_box_with, pool_find, pool_mark, pool_marked, Mark};
use crate::ngx::request::{complex_value_raw, now};
use crate::revocation;
use crate::token::{find_token, usable, Found};

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
    /// The token names a `kid` that none of the keys has (refused with `Reason::Key`).
    pub unknown_kid: bool,
}

struct Ctx {
    auth: *const Auth,
    /// The scope of the keys it was judged with: fetched keys change under a request that
    /// waits for them.
    scope: u64,
    /// `key_request::suspensions()` when it was judged: unchanged, no request of the worker
    /// has waited for keys since, so neither have the request's keys changed.
    suspensions: u64,
    /// The revocation list's version when it was judged (`revocation::version`): a change
    /// to the list since (a revocation while the request ran, a fleet's list merged while it
    /// waited) is judged afresh, also for a verdict found again after an internal redirect.
    list: u64,
    /// The request has had its keys (a key request's fetch started or found not needed)
    /// since it was judged.
    keys_had: Cell<bool>,
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

/// Where a request's verdicts are kept, and the size of the worker's cache.
#[derive(Clone, Copy)]
pub struct Verdicts {
    /// This module's context slot of the main request (`Lookup::ctx_slot`), NULL or a `Ctx`.
    slot: NonNull<*mut c_void>,
    main: &'static MainConf,
}

impl Verdicts {
    /// The store of `r`'s main request; `conf` is `r`'s configuration.
    pub fn of<L: Lookup>(r: &ngx_http_request_t, conf: &RequestConf<'static>) -> Option<Verdicts> {
        Some(Verdicts {
            slot: L::ctx_slot(r)?,
            main: conf.main,
        })
    }

    /// The client's token judged under `conf`, the configuration of `r`'s location, or `None`
    /// when no key is configured there.
    pub fn outcome<'p>(&self, r: &ngx_http_request_t, conf: &LocConf) -> Option<&'p Outcome> {
        self.verdict(r, conf).map(|v| &v.outcome)
    }

    /// The verdict on the client's token under `conf`, the configuration of `r`'s location, or
    /// `None` when no key is configured there.
    ///
    /// The verdict lives in the main request's pool, valid for the whole request: the result
    /// is not tied to the borrow of `r`.
    pub fn verdict<'p>(&self, r: &ngx_http_request_t, conf: &LocConf) -> Option<&'p Verdict> {
        let auth = conf.auth.as_deref()?;
        // A token variable that reads a `$jwt_*` variable, directly or through a `map`, would
        // judge the token while reading it: such a variable reads as not found. Only a
        // verdict that evaluates a variable can recur, so only those look (a thread-local
        // read is a call in a shared object).
        if auth.variable.is_some() && READING_TOKEN.with(Cell::get) {
            return None;
        }
        // SAFETY: every request points at its main request, which outlives its subrequests.
        let main: &'p ngx_http_request_t = unsafe { &*r.main };
        // SAFETY: the slot is the main request's, valid for the request; NULL or a `Ctx`
        // stored below.
        let slot = unsafe { &mut *self.slot.as_ptr() };
        // SAFETY: a non-NULL slot was written below and lives in the request's pool.
        if let Some(ctx) = unsafe { slot.cast::<Ctx>().as_ref() } {
            // Only query arguments and variables can change under a verdict (a rewrite, a
            // `set`), and fetched keys, once the request has waited for them; headers cannot.
            if ptr::eq(ctx.auth, auth)
                && !auth.volatile
                && ctx.suspensions == suspensions()
                && ctx.list == list_version(auth)
            {
                return Some(&ctx.verdict);
            }
        }
        let keys = keys_now(r, self.main, auth);
        let scope = keys.scope();
        let list = list_version(auth);
        // Headers do not change under a verdict, so without a query source or a variable the
        // `Auth` alone identifies it, and the token need not be looked for again.
        let query_token = auth.volatile.then(|| read_token(main, auth));
        // Another location's verdict, or one an internal redirect cleared from the context:
        // found again rather than judged twice (an `index` file, `try_files`, `error_page`).
        // SAFETY: `drop_ctx` is registered only for `Ctx` values.
        let found = unsafe {
            pool_find::<Ctx>(main.pool, drop_ctx, |c| {
                c.scope == scope
                    && c.list == list
                    && match &query_token {
                        Some(found) => c.judged(auth, found.as_ref().ok().copied().flatten()),
                        None => ptr::eq(c.auth, auth),
                    }
            })
        };
        let ctx = match found {
            Some(ctx) => ctx,
            None => {
                let found = query_token.unwrap_or_else(|| read_token(main, auth));
                let token = found.as_ref().ok().copied().flatten();
                let verdict = compute(auth, &keys, found, self.main.cache_size());
                let token = token.map(|t| (t.as_ptr(), t.len()));
                // SAFETY: `drop_ctx` drops exactly one `Ctx`. If the pool is exhausted,
                // nothing can be kept; callers fail closed.
                unsafe {
                    pool_box_with(
                        main.pool,
                        Ctx {
                            auth,
                            scope,
                            suspensions: suspensions(),
                            list,
                            keys_had: Cell::new(false),
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
}

impl Verdicts {
    /// Whether `r`'s request has had the keys of `conf` since its verdict under them, with no
    /// wait since: the key step need not run again (the access phase after the rewrite one).
    pub fn keys_had(&self, conf: &LocConf) -> bool {
        self.current(conf).is_some_and(|ctx| ctx.keys_had.get())
    }

    /// Records that `r`'s request has had the keys of `conf`, for `keys_had`.
    pub fn set_keys_had(&self, conf: &LocConf) {
        if let Some(ctx) = self.current(conf) {
            ctx.keys_had.set(true);
        }
    }

    /// The request's last verdict, if judged under `conf`'s `Auth` with no wait since.
    fn current(&self, conf: &LocConf) -> Option<&Ctx> {
        let auth = conf.auth.as_deref()?;
        // SAFETY: the slot is the main request's; NULL or a `Ctx` in the request's pool.
        let ctx = unsafe { (*self.slot.as_ptr()).cast::<Ctx>().as_ref() }?;
        let same = ctx.suspensions == suspensions() && ctx.list == list_version(auth);
        (ptr::eq(ctx.auth, auth) && same).then_some(ctx)
    }
}

/// The version of `auth`'s revocation list; 0 without one.
fn list_version(auth: &Auth) -> u64 {
    auth.revocation.as_ref().map_or(0, revocation::version)
}

/// The mark of a request refused by `auth_jwt_require`.
static UNMET: Mark = Mark(2);

/// Records that a requirement refused `r`'s request, for `$jwt_error`.
pub fn mark_unmet(r: &ngx_http_request_t) -> Option<()> {
    // SAFETY: every request points at its main request, which outlives its subrequests.
    pool_mark(unsafe { (*r.main).pool }, &UNMET)
}

/// Whether a requirement refused `r`'s request.
pub fn refused_unmet(r: &ngx_http_request_t) -> bool {
    // SAFETY: every request points at its main request, which outlives its subrequests.
    pool_marked(unsafe { (*r.main).pool }, &UNMET)
}

thread_local! {
    /// A token variable is being evaluated on this worker's thread.
    static READING_TOKEN: Cell<bool> = const { Cell::new(false) };
}

/// The client's token: from the sources, or the variable of `auth_jwt … token=`, evaluated
/// for the main request.
fn read_token<'p>(main: &'p ngx_http_request_t, auth: &'p Auth) -> Found<'p> {
    let Some(cv) = auth.variable else {
        return find_token(main, &auth.sources);
    };
    /// Clears the flag however the evaluation ends.
    struct Reading;
    impl Drop for Reading {
        fn drop(&mut self) {
            READING_TOKEN.with(|reading| reading.set(false));
        }
    }
    READING_TOKEN.with(|reading| reading.set(true));
    let _reading = Reading;
    // SAFETY: `r.main` is the live main request; nginx evaluates the value in its pool.
    let value = unsafe { complex_value_raw(main.main, cv) };
    Ok(value.and_then(usable))
}

fn compute(auth: &Auth, keys: &KeysNow, found: Found, cache_size: usize) -> Verdict {
    let verdict = |outcome: Result<Rc<jwt_core::Jwt>, Error>, cache| Verdict {
        outcome: outcome.map(Claims::new),
        cache,
        unknown_kid: false,
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
    let mut judged = judge(auth, keys, token, now, cache_size);
    // Every request, cached tokens included: a revocation applies from the next request.
    if let (Ok(claims), Some(revocation)) = (&judged.outcome, &auth.revocation) {
        if let Some(revoked) = revocation::check(revocation, claims, now) {
            judged.outcome = Err(revoked);
        }
    }
    if let Err(e) = &mut judged.outcome {
        if e.reason == Reason::Key {
            judged.unknown_kid = jwt_core::names_unknown_kid(token, keys.keys());
            // A source that gives no keys may have had the one the token needs.
            if let Some(missing) = keys.missing() {
                *e = Error {
                    reason: Reason::KeysUnavailable,
                    detail: missing.to_owned(),
                };
            }
        }
    }
    judged
}

/// Verifies `token`, or finds it verified in the worker's cache.
fn judge(auth: &Auth, keys: &KeysNow, token: &[u8], now: i64, cache_size: usize) -> Verdict {
    let verdict = |outcome: Result<Rc<jwt_core::Jwt>, Error>, cache| Verdict {
        outcome: outcome.map(Claims::new),
        cache,
        unknown_kid: false,
    };
    let (set, scope) = (keys.keys(), keys.scope());
    let verify = || jwt_core::verify(token, set, &auth.policy, now).map(Rc::new);
    if cache_size == 0 {
        return verdict(verify(), Some(CacheStatus::Bypass));
    }
    CACHE.with(|cache| {
        // Never re-entered (verification calls back into nothing); if it were, skip the cache.
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return verdict(verify(), Some(CacheStatus::Bypass));
        };
        cache.set_limit(cache_size);
        if let Some(outcome) = cache.get(scope, token, &auth.policy, now) {
            return verdict(outcome, Some(CacheStatus::Hit));
        }
        let outcome = verify();
        if let Ok(jwt) = &outcome {
            cache.insert(scope, token, Rc::clone(jwt));
        }
        verdict(outcome, Some(CacheStatus::Miss))
    })
}
