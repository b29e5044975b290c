//! Keys over HTTP at request time (`auth_jwt_key_request`): the keys a request verifies with,
//! when it starts a fetch, and when it waits for one.
//!
//! The JWK sets live in the shared zone (`key_zone`), one slot per source. Each worker parses
//! a set once per generation and combines it with the keys of files into the set its requests
//! verify with. A request waits only when no keys may serve it (none fetched yet; expired,
//! with no failing provider to excuse them; or a `kid` they lack, which a refetch may bring):
//! its phase handler returns `NGX_DONE`, and a timer runs it again to look at the zone until
//! the fetch under way has ended, in whichever worker that fetch runs.

use core::cell::RefCell;
use core::ffi::c_void;
use core::ptr;
use std::rc::Rc;
use std::sync::Arc;

use jwt_core::refresh::{decide, Need, Snapshot, Timing};
use jwt_core::{Algorithm, KeySet};
use ngx::ffi::{
    ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_request_t, ngx_http_top_body_filter,
    ngx_int_t, NGX_AGAIN, NGX_DONE, NGX_ERROR, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR,
    NGX_LOG_WARN, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use crate::conf::ZoneConf;
use crate::conf::{Auth, FetchSource, Fetched, MainConf};
use crate::key_zone::{Finish, Zone, MAX_BODY};
use crate::ngx::guard::guard;
use crate::ngx::pool::{pool_box, pool_box_with, pool_find};
use crate::ngx::request::{log, now_ms};
use crate::ngx::shm::zone_memory;
use crate::ngx::subrequest;
use crate::ngx::timer::Resume;
use crate::revocation::{merge, MAX_LIST};

/// The most `Auth`s with key requests whose combined keys a worker keeps.
const MAX_AUTHS: usize = 1 << 16;
/// A request waits for keys at most this long, then is answered as keys unavailable.
const WAIT_LIMIT_MS: u64 = 60_000;
/// While waiting, the zone is looked at after this long, then twice as long each time, up to
/// `POLL_MAX_MS`.
const POLL_MS: usize = 2;
const POLL_MAX_MS: usize = 50;

/// The keys a request verifies with.
pub enum KeysNow<'a> {
    /// Key files (and inline keys) only: the `Auth`'s own.
    Files(&'a Auth),
    /// Combined with sets fetched.
    Combined(Rc<Combined>),
}

impl KeysNow<'_> {
    pub fn keys(&self) -> &KeySet {
        match self {
            KeysNow::Files(auth) => &auth.keys,
            KeysNow::Combined(c) => &c.keys,
        }
    }

    /// The verified-token cache's scope of these keys and the `Auth`'s policy.
    pub fn scope(&self) -> u64 {
        match self {
            KeysNow::Files(auth) => auth.scope,
            KeysNow::Combined(c) => c.scope,
        }
    }

    /// Why a key source gives no keys, if one does not.
    pub fn missing(&self) -> Option<&str> {
        match self {
            KeysNow::Files(_) => None,
            KeysNow::Combined(c) => c.missing.as_deref(),
        }
    }
}

/// An `Auth`'s keys in this worker: its files' and the sets fetched, as of `state`.
pub struct Combined {
    /// Per source, its slot and the generation of its set, or `None` when it gives none.
    state: Vec<(usize, Option<u64>)>,
    keys: Arc<KeySet>,
    scope: u64,
    missing: Option<String>,
}

thread_local! {
    /// Each `Auth`'s combined keys in this worker, at its `Fetched::id` (small numbers, given
    /// in order): rebuilt when a source's set changes, comes or goes.
    static COMBINED: RefCell<Vec<Option<Rc<Combined>>>> = const { RefCell::new(Vec::new()) };
}

/// The zone of `main`'s key requests (and followed revocation lists), once nginx has mapped
/// it.
pub fn key_zone(main: &MainConf) -> Option<&'static Zone> {
    let addr = zone_memory(main.key_zone?)?;
    // SAFETY: the zone was declared ZONE_SIZE bytes long and `Zone::init` prepared it.
    Some(unsafe { Zone::at(addr.as_ptr()) })
}

/// The keys `auth` verifies `r`'s token with now.
pub fn keys_now<'a>(r: &ngx_http_request_t, main: &MainConf, auth: &'a Auth) -> KeysNow<'a> {
    match &auth.fetched {
        None => KeysNow::Files(auth),
        Some(fetched) => KeysNow::Combined(combined(r, main, auth, fetched)),
    }
}

fn combined(
    r: &ngx_http_request_t,
    main: &MainConf,
    auth: &Auth,
    fetched: &Fetched,
) -> Rc<Combined> {
    let now = now_ms();
    let zone = key_zone(main);
    let state_of = |source: &FetchSource, hint: Option<usize>| {
        source_state(r, zone, source, hint, now, fetched.timing)
    };
    let slot = usize::try_from(fetched.id).unwrap_or(usize::MAX);
    let memo = COMBINED.with(|c| c.borrow().get(slot).cloned().flatten());
    if let Some(memo) = memo {
        let current = memo.state.len() == fetched.sources.len()
            && fetched
                .sources
                .iter()
                .zip(&memo.state)
                .all(|(source, &(i, generation))| state_of(source, Some(i)) == (i, generation));
        if current {
            return memo;
        }
    }
    let state = fetched.sources.iter().map(|s| state_of(s, None)).collect();
    let built = Rc::new(build(r, zone, auth, fetched, state, now));
    COMBINED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() <= slot && slot < MAX_AUTHS {
            c.resize(slot + 1, None);
        }
        if let Some(entry) = c.get_mut(slot) {
            *entry = Some(Rc::clone(&built));
        }
    });
    built
}

/// A source's slot, and the generation of its set if the set may serve `r` now.
fn source_state(
    r: &ngx_http_request_t,
    zone: Option<&Zone>,
    source: &FetchSource,
    hint: Option<usize>,
    now: u64,
    timing: Timing,
) -> (usize, Option<u64>) {
    let Some(zone) = zone else {
        return (usize::MAX, None);
    };
    let slot = match hint {
        Some(i) if zone.holds(i, source.id) => Some(i),
        _ => zone.slot_of(source.id, now),
    };
    let Some(i) = slot else {
        return (usize::MAX, None);
    };
    let Some(s) = zone.snapshot(i, source.id, now) else {
        return (i, None);
    };
    let serves = matches!(need(r, &s, now, zone, timing), Need::Ready { .. });
    (i, serves.then_some(s.generation))
}

/// What `r` does about a source in state `s`. Whether `r` has waited for keys matters only
/// when they would not serve otherwise: it is looked up then.
fn need(r: &ngx_http_request_t, s: &Snapshot, now: u64, zone: &Zone, timing: Timing) -> Need {
    match decide(s, now, zone.epoch(), timing, None) {
        ready @ Need::Ready { .. } => ready,
        other => match waiting(r) {
            Some(w) => decide(s, now, zone.epoch(), timing, Some(w.since)),
            None => other,
        },
    }
}

fn build(
    r: &ngx_http_request_t,
    zone: Option<&Zone>,
    auth: &Auth,
    fetched: &Fetched,
    mut state: Vec<(usize, Option<u64>)>,
    now: u64,
) -> Combined {
    let mut keys = KeySet::clone(&auth.keys);
    let mut missing = None;
    for (source, (i, generation)) in fetched.sources.iter().zip(state.iter_mut()) {
        let uri = &source.uri;
        let body = zone.and_then(|zone| {
            let body = generation.and_then(|_| zone.body(*i, source.id));
            if body.is_none() {
                missing.get_or_insert_with(|| unavailable(zone, *i, source, now, fetched.timing));
            }
            body
        });
        let Some((fetched_generation, body)) = body else {
            missing.get_or_insert_with(|| format!("no keys from \"{uri}\": no shared zone"));
            *generation = None;
            continue;
        };
        *generation = Some(fetched_generation);
        let set = KeySet::from_material(&body, fetched.algorithm)
            .map_err(|e| format!("the key set of \"{uri}\" is not usable here: {e}"))
            .and_then(|(set, _)| {
                keys.with_extra(&set)
                    .map_err(|e| format!("the key set of \"{uri}\" cannot be used: {e}"))
            });
        match set {
            Ok((set, skipped)) => {
                for why in skipped {
                    log(
                        r,
                        NGX_LOG_WARN,
                        format_args!("auth_jwt: keys: \"{uri}\": {why}"),
                    );
                }
                keys = set;
            }
            Err(why) => {
                log(r, NGX_LOG_WARN, format_args!("auth_jwt: keys: {why}"));
                missing.get_or_insert(why);
            }
        }
    }
    Combined {
        scope: fresh_scope(),
        keys: Arc::new(keys),
        state,
        missing,
    }
}

/// A verified-token cache scope for one combined set, never given before in this worker:
/// tokens cached under the set it replaces age out. (`scope_of` would share scopes between
/// identical sets, at the price of remembering every set a provider ever served.)
fn fresh_scope() -> u64 {
    thread_local! {
        static NEXT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    }
    // The top bit set: never a scope of `scope_of`, which counts up from 1.
    NEXT.with(|next| {
        let n = next.get().wrapping_add(1);
        next.set(n);
        n | 1 << 63
    })
}

/// Why source `source` gives no keys now.
fn unavailable(zone: &Zone, i: usize, source: &FetchSource, now: u64, timing: Timing) -> String {
    let uri = &source.uri;
    let Some(s) = zone.snapshot(i, source.id, now) else {
        return format!("no keys from \"{uri}\": no room in the shared zone");
    };
    let why = if s.fetched_at == 0 && s.failures == 0 {
        "none fetched yet".to_owned()
    } else if s.fetched_at == 0 {
        format!("fetching failed {} time(s) in a row", s.failures)
    } else {
        let age = now.saturating_sub(s.fetched_at) / 1000;
        let limit = timing.cache_ms.saturating_add(timing.stale_ms) / 1000;
        format!(
            "the keys fetched {age}s ago expired, and fetching again failed or is under way \
             (keys serve at most {limit}s)"
        )
    };
    format!("no keys from \"{uri}\": {why}")
}

/// A request waiting for keys, found again by its address (internal redirects clear module
/// contexts).
struct Waiting {
    r: *const ngx_http_request_t,
    /// When it started waiting.
    since: u64,
    /// It waited for a refetch already: an unknown `kid` makes it wait once, not again.
    refetched: bool,
    /// It started a fetch of its own and waited for it.
    started: bool,
    polls: u32,
    resume: Resume,
}

#[inline(never)]
unsafe extern "C" fn drop_waiting(data: *mut c_void) {
    // SAFETY: registered by `wait_for_keys` for exactly one `Waiting` at `data`.
    unsafe { ptr::drop_in_place(data.cast::<Waiting>()) };
}

fn waiting<'p>(r: &ngx_http_request_t) -> Option<&'p mut Waiting> {
    // SAFETY: every request points at its main request, whose pool holds the records;
    // `drop_waiting` is registered only for `Waiting` values.
    let mut found =
        unsafe { pool_find::<Waiting>((*r.main).pool, drop_waiting, |w| ptr::eq(w.r, r))? };
    // SAFETY: the record lives until the pool is destroyed; nginx runs one handler at a time.
    Some(unsafe { found.as_mut() })
}

/// Starts what `auth`'s key sources need before `r`'s token is judged: a fetch where no keys
/// serve (and `r` then waits: `Some(NGX_DONE)`), or a refresh in the background where they
/// serve but are due for one.
pub fn prepare(r: &mut ngx_http_request_t, main: &MainConf, auth: &Auth) -> Option<ngx_int_t> {
    let fetched = auth.fetched.as_ref()?;
    let zone = key_zone(main)?;
    let now = now_ms();
    let (mut wait, mut started) = (false, false);
    for source in &fetched.sources {
        let Some(i) = zone.slot_of(source.id, now) else {
            continue;
        };
        let Some(s) = zone.snapshot(i, source.id, now) else {
            continue;
        };
        match need(r, &s, now, zone, fetched.timing) {
            Need::Ready { refresh: true, .. } => {
                start(r, zone, i, source, fetched, now, false);
            }
            // A request whose own fetch ended without keys and without a failure to back off
            // from (refused by this server, abandoned) does not start another: it would loop.
            Need::Fetch if waiting(r).is_some_and(|w| w.started) => {}
            // If another request won the claim, its fetch is the one to wait for.
            Need::Fetch => match start(r, zone, i, source, fetched, now, false) {
                Started::Yes => (wait, started) = (true, true),
                Started::Claimed => wait = true,
                Started::Failed => {}
            },
            Need::Wait => wait = true,
            Need::Ready { .. } | Need::Unavailable => {}
        }
    }
    wait.then(|| wait_for_keys(r, now, Waited::Fetch { started }))
        .flatten()
}

/// For a token whose `kid` none of `auth`'s keys has: fetches the sources again (each at most
/// once per cooldown; a request starts this once) and waits for the fetches under way to end.
/// `Some(NGX_DONE)` when `r` waits.
pub fn refetch(r: &mut ngx_http_request_t, main: &MainConf, auth: &Auth) -> Option<ngx_int_t> {
    let fetched = auth.fetched.as_ref()?;
    let zone = key_zone(main)?;
    let refetched = waiting(r).is_some_and(|w| w.refetched);
    let now = now_ms();
    let mut wait = false;
    for source in &fetched.sources {
        let Some(i) = zone.slot_of(source.id, now) else {
            continue;
        };
        let started = !refetched && start(r, zone, i, source, fetched, now, true) == Started::Yes;
        wait |= started
            || zone
                .snapshot(i, source.id, now)
                .is_some_and(|s| s.fetching(now));
    }
    wait.then(|| wait_for_keys(r, now, Waited::Refetch))
        .flatten()
}

thread_local! {
    /// How many times a request of this worker has started to wait for keys.
    static SUSPENSIONS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// A count that changes whenever a request of this worker waits for keys: a verdict judged
/// when it had some value was judged with the request's keys of now while it keeps it (keys
/// that changed meanwhile in the zone are taken by the next request).
pub fn suspensions() -> u64 {
    SUSPENSIONS.with(core::cell::Cell::get)
}

/// Makes `r` wait for a fetch under way (`started`: by `r`) and look at the zone again
/// shortly; `None` once it has waited too long.
pub fn wait_for_fetch(r: &mut ngx_http_request_t, now: u64, started: bool) -> Option<ngx_int_t> {
    wait_for_keys(r, now, Waited::Fetch { started })
}

/// Whether `r` has waited for a fetch it started itself: it starts no other, which could loop.
pub fn started_own_fetch(r: &ngx_http_request_t) -> bool {
    waiting(r).is_some_and(|w| w.started)
}

/// Makes `r` wait and look at the zone again shortly.
fn wait_for_keys(r: &mut ngx_http_request_t, now: u64, why: Waited) -> Option<ngx_int_t> {
    SUSPENSIONS.with(|n| n.set(n.get().wrapping_add(1)));
    let w = match waiting(r) {
        Some(w) => w,
        None => {
            let w = Waiting {
                r: ptr::from_ref(r),
                since: now,
                refetched: false,
                started: false,
                polls: 0,
                resume: Resume::new(),
            };
            // SAFETY: `drop_waiting` drops exactly one `Waiting`; the main pool outlives `r`.
            let mut boxed = unsafe { pool_box_with((*r.main).pool, w, drop_waiting)? };
            // SAFETY: just stored; nothing else refers to it yet.
            unsafe { boxed.as_mut() }
        }
    };
    if now.saturating_sub(w.since) > WAIT_LIMIT_MS {
        return None;
    }
    match why {
        Waited::Refetch => w.refetched = true,
        Waited::Fetch { started } => w.started |= started,
    }
    let ms = (POLL_MS << w.polls.min(8)).min(POLL_MAX_MS);
    w.polls += 1;
    w.resume.after(r, ms);
    Some(NGX_DONE as ngx_int_t)
}

/// What a request waits for.
enum Waited {
    /// Keys where none serve; `started`: by a fetch it started itself.
    Fetch { started: bool },
    /// A refetch for its token's unknown `kid`.
    Refetch,
}

#[derive(PartialEq, Eq)]
pub enum Started {
    Yes,
    /// Another request holds the fetch (or may not start one yet).
    Claimed,
    Failed,
}

/// Claims source `source`'s fetch and starts it as a background subrequest of `r`.
fn start(
    r: &mut ngx_http_request_t,
    zone: &'static Zone,
    i: usize,
    source: &FetchSource,
    fetched: &Fetched,
    now: u64,
    refetch: bool,
) -> Started {
    let Some(start) = zone.claim(i, source.id, now, refetch) else {
        return Started::Claimed;
    };
    let purpose = Purpose::Keys {
        algorithm: fetched.algorithm,
        timing: fetched.timing,
    };
    start_claimed(r, zone, i, source, start, now, purpose)
}

/// Starts the fetch of source `source` claimed with `start` (slot `i`) as a background
/// subrequest of `r`, for `purpose`.
pub fn start_claimed(
    r: &mut ngx_http_request_t,
    zone: &'static Zone,
    i: usize,
    source: &FetchSource,
    start: u64,
    now: u64,
    purpose: Purpose,
) -> Started {
    let what = fetch_of(&purpose);
    let fetch = Fetch {
        zone,
        slot: i,
        id: source.id,
        start,
        uri: source.uri.clone(),
        purpose,
        done: false,
        seen: 0,
        too_big: None,
    };
    // A subrequest of the main request: `r` may be one nginx cannot nest a fetch in (an
    // in-memory subrequest), and the main request outlives all of them.
    let main: &mut ngx_http_request_t = if ptr::eq(r, r.main) {
        r
    } else {
        // SAFETY: every request points at its main request, alive as long as `r`, and
        // another request than `r`: no other reference to it is live here.
        unsafe { &mut *r.main }
    };
    let started = pool_box(main.pool, fetch).and_then(|mut fetch| {
        let data = fetch.as_ptr().cast();
        subrequest::fetch(main, &source.uri, &source.args, fetch_done, data).or_else(|| {
            // SAFETY: the record is in the pool; the subrequest that would use it failed.
            unsafe { fetch.as_mut() }.done = true;
            None
        })
    });
    if started.is_some() {
        return Started::Yes;
    }
    // Not the provider's failure: released, for the next request to try.
    zone.finish(i, source.id, start, now, Finish::Abandoned);
    let uri = &source.uri;
    log(
        main,
        NGX_LOG_ERR,
        format_args!("auth_jwt: {what}: cannot start the subrequest to \"{uri}\""),
    );
    Started::Failed
}

/// Why a fetch brought nothing: what to log, and whether this server refused it (`here`), not
/// the source, which then is not backed off.
struct NoAnswer {
    why: String,
    here: bool,
}

/// What a fetch brings.
pub enum Purpose {
    /// A JWK set, kept in the zone for the requests of `auth_jwt_key_request`.
    Keys {
        algorithm: Option<Algorithm>,
        timing: Timing,
    },
    /// A revocation list, merged into its zone (`auth_jwt_revocation_request`).
    Revocations { zone: &'static ZoneConf },
}

/// The word log lines about a fetch for `purpose` start with.
fn fetch_of(purpose: &Purpose) -> &'static str {
    match purpose {
        Purpose::Keys { .. } => "keys",
        Purpose::Revocations { .. } => "revocations",
    }
}

/// One fetch under way, in the pool of the request that started it.
struct Fetch {
    zone: &'static Zone,
    slot: usize,
    id: u64,
    /// The claim, which ends it.
    start: u64,
    uri: String,
    purpose: Purpose,
    done: bool,
    /// The body's bytes seen so far, and whether they passed the limit (`body_filter`).
    seen: usize,
    too_big: Option<usize>,
}

impl Drop for Fetch {
    /// A fetch whose request went before it ended (the client left): released unjudged.
    fn drop(&mut self) {
        if !self.done {
            self.zone
                .finish(self.slot, self.id, self.start, now_ms(), Finish::Abandoned);
        }
    }
}

/// Whether `r` is a fetch of keys: it is exempt from the check of the location it reaches.
pub fn is_fetch(r: &ngx_http_request_t) -> bool {
    // SAFETY: NULL or the record `subrequest::fetch` (or another module) gave the subrequest.
    unsafe { r.post_subrequest.as_ref() }
        .and_then(|ps| ps.handler)
        .is_some_and(|h| {
            let done: subrequest::Done = fetch_done;
            h as usize == done as usize
        })
}

/// The end of a fetch's subrequest.
unsafe extern "C" fn fetch_done(
    sr: *mut ngx_http_request_t,
    data: *mut c_void,
    rc: ngx_int_t,
) -> ngx_int_t {
    if rc == NGX_AGAIN as ngx_int_t {
        return rc;
    }
    // SAFETY: nginx passes the subrequest and the data `start` gave it, a `Fetch` in the pool.
    if let (Some(sr), Some(fetch)) = unsafe { (sr.as_ref(), data.cast::<Fetch>().as_mut()) } {
        // SAFETY: a request's connection and its log outlive the request.
        let conn_log = unsafe { (*sr.connection).log };
        guard(conn_log, "the key fetch", (), || fetch.end(sr, rc));
    }
    // The fetch's failure is the fetch's own, never the client's request's: nginx would
    // otherwise end the client's request with it.
    if rc == NGX_ERROR as ngx_int_t || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        NGX_OK as ngx_int_t
    } else {
        rc
    }
}

impl Fetch {
    fn end(&mut self, sr: &ngx_http_request_t, rc: ngx_int_t) {
        if self.done {
            return;
        }
        self.done = true;
        let now = now_ms();
        let (zone, i, id) = (self.zone, self.slot, self.id);
        let what = fetch_of(&self.purpose);
        let uri = &self.uri;
        let outcome = self.answer(sr, rc).and_then(|body| {
            // What the answer holds is always the source's.
            let used = match &self.purpose {
                Purpose::Keys { algorithm, .. } => {
                    key_set(uri, body, *algorithm).map(|warnings| (Finish::Body(body), warnings))
                }
                Purpose::Revocations { zone } => {
                    merge(zone, self.id, uri, body).map(|problems| (Finish::Done, problems))
                }
            };
            used.map_err(|why| NoAnswer { why, here: false })
        });
        match outcome {
            Ok((finish, notes)) => {
                let before = zone.snapshot(i, id, now).map(|s| s.generation);
                let body = matches!(finish, Finish::Body(_));
                zone.finish(i, id, self.start, now, finish);
                let after = zone.snapshot(i, id, now).map(|s| s.generation);
                // A key set's warnings are said once per new set; a merge's problems always.
                if before != after || !body {
                    for (level, note) in notes {
                        log(
                            sr,
                            level,
                            format_args!("auth_jwt: {what}: \"{uri}\": {note}"),
                        );
                    }
                }
            }
            // Not the provider's failure: no back-off for every request.
            Err(NoAnswer { why, here: true }) => {
                zone.finish(i, id, self.start, now, Finish::Abandoned);
                log(
                    sr,
                    NGX_LOG_WARN,
                    format_args!("auth_jwt: {what}: {why}, from this server, not the provider"),
                );
            }
            Err(NoAnswer { why, .. }) => {
                zone.finish(i, id, self.start, now, Finish::Failed);
                let then = zone
                    .snapshot(i, id, now)
                    .map(|s| self.consequence(&s, now))
                    .unwrap_or_default();
                log(
                    sr,
                    NGX_LOG_ERR,
                    format_args!("auth_jwt: {what}: {why}; {then}"),
                );
            }
        }
    }

    /// The body the subrequest answered, whole, with 200 and no content coding; or why not.
    fn answer<'s>(&self, sr: &'s ngx_http_request_t, rc: ngx_int_t) -> Result<&'s [u8], NoAnswer> {
        let uri = &self.uri;
        let (what, limit) = self.purpose.limit();
        // A failed subrequest or another status than 200 with no upstream is this server's
        // refusal (the location's own rules, which a client's request may trip).
        let here = sr.upstream.is_null();
        let source = |why| NoAnswer { why, here: false };
        if let Some(max) = self.too_big {
            return Err(source(format!(
                "\"{uri}\" answered more than {max} bytes, the most {what} may have here \
                 ({} KiB, and no more than the location's \"subrequest_output_buffer_size\")",
                limit / 1024
            )));
        }
        if rc == NGX_ERROR as ngx_int_t {
            return Err(NoAnswer {
                why: format!(
                    "the subrequest to \"{uri}\" failed (as one whose body exceeds its \
                     location's \"subrequest_output_buffer_size\" does)"
                ),
                here,
            });
        }
        let (status, body) = subrequest::answer(sr, rc);
        if status != 200 {
            let why = format!("\"{uri}\" answered {status}, not 200");
            return Err(NoAnswer { why, here });
        }
        if let Some(encoding) = subrequest::content_encoding(sr) {
            if !encoding.eq_ignore_ascii_case(b"identity") {
                return Err(source(format!(
                    "\"{uri}\" answered with Content-Encoding \"{}\": {what} must come \
                     uncompressed",
                    String::from_utf8_lossy(encoding).escape_debug()
                )));
            }
        }
        if body.len() > limit {
            return Err(source(format!(
                "\"{uri}\" answered {} bytes, more than the {} KiB {what} may have",
                body.len(),
                limit / 1024
            )));
        }
        Ok(body)
    }

    /// What a failed fetch leaves in use.
    fn consequence(&self, s: &Snapshot, now: u64) -> String {
        let timing = match &self.purpose {
            Purpose::Keys { timing, .. } => *timing,
            Purpose::Revocations { .. } => {
                return "the revocations merged before stay in effect".to_owned()
            }
        };
        if s.fetched_at == 0 {
            return "no keys from it are available: requests that need them get 500".to_owned();
        }
        let age = now.saturating_sub(s.fetched_at);
        let limit = timing.cache_ms.saturating_add(timing.stale_ms);
        if age <= limit {
            format!(
                "the keys fetched {}s ago stay in use for up to {}s more",
                age / 1000,
                (limit - age) / 1000
            )
        } else {
            format!(
                "the keys fetched {}s ago are past their stale time: requests that need them get \
                 500",
                age / 1000
            )
        }
    }
}

/// The warnings of the JWK set `body` answered by `uri`; or why it is not a usable one.
fn key_set(
    uri: &str,
    body: &[u8],
    algorithm: Option<Algorithm>,
) -> Result<Vec<(u32, String)>, String> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(format!("\"{uri}\" answered something other than a JWK set"));
    }
    let (set, warnings) = KeySet::from_material(body, algorithm)
        .map_err(|e| format!("\"{uri}\" answered an unusable JWK set: {e}"))?;
    if set.is_empty() {
        return Err(format!("\"{uri}\" answered a JWK set with no usable key"));
    }
    Ok(warnings.into_iter().map(|w| (NGX_LOG_WARN, w)).collect())
}

impl Purpose {
    /// What is fetched, and the most bytes it may have.
    fn limit(&self) -> (&'static str, usize) {
        match self {
            Purpose::Keys { .. } => ("a key set", MAX_BODY),
            Purpose::Revocations { .. } => ("a revocation list", MAX_LIST),
        }
    }
}

static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;

/// Installs `body_filter` at the top of nginx's body filters.
///
/// # Safety
/// Once per configuration, from postconfiguration.
pub unsafe fn install_body_filter() {
    // SAFETY: configuration runs on one thread; nginx reads the chain only while serving.
    unsafe {
        NEXT_BODY_FILTER = ngx_http_top_body_filter;
        ngx_http_top_body_filter = Some(body_filter);
    }
}

/// Bounds a fetch's body before nginx keeps it in memory: past the limit, the rest is
/// dropped and the fetch fails. nginx's own in-memory limit answers an error, which every
/// filter's error turns into the end of the client's connection, whose request started the
/// fetch.
unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, body: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: nginx passes the request whose body is being sent.
    let fetch = unsafe { r.as_ref() }.filter(|r| is_fetch(r)).and_then(|r| {
        // SAFETY: `is_fetch` checked that the data is the `Fetch` that `start` gave it.
        let fetch = unsafe { (*r.post_subrequest).data.cast::<Fetch>().as_mut() }?;
        Some((r, fetch))
    });
    if let Some((r, fetch)) = fetch {
        // SAFETY: a request's connection and its log outlive the request.
        let conn_log = unsafe { (*r.connection).log };
        // A failure to judge is a body dropped: the fetch fails, never the client's request.
        if guard(conn_log, "the key fetch's body filter", true, || {
            too_big(r, fetch, body)
        }) {
            // SAFETY: the chain nginx passes, valid during the call.
            unsafe { consume(body) };
            return NGX_OK as ngx_int_t;
        }
    }
    // SAFETY: the next filter was set at installation, before any request.
    match unsafe { NEXT_BODY_FILTER } {
        // SAFETY: calling the rest of nginx's chain with what it gave us.
        Some(next) => unsafe { next(r, body) },
        None => NGX_OK as ngx_int_t,
    }
}

/// Whether the fetch `r`'s body, with `body`, passes its limit: 64 KiB, and the location's
/// `subrequest_output_buffer_size` (as it says, or as the body's bytes show).
fn too_big(r: &ngx_http_request_t, fetch: &mut Fetch, body: *mut ngx_chain_t) -> bool {
    let limit = NgxHttpCoreModule::location_conf(r)
        .map_or(0, |clcf| clcf.subrequest_output_buffer_size)
        .min(fetch.purpose.limit().1);
    let declared = usize::try_from(r.headers_out.content_length_n).unwrap_or(0);
    // SAFETY: the chain nginx passes, valid during the call.
    let size = unsafe { chain_size(body) };
    fetch.seen = fetch.seen.saturating_add(size);
    if fetch.too_big.is_some() || declared > limit || fetch.seen > limit {
        fetch.too_big = Some(limit);
    }
    fetch.too_big.is_some()
}

/// The bytes of a chain, in memory or in a file.
///
/// # Safety
/// `cl` is NULL or a valid chain.
unsafe fn chain_size(mut cl: *mut ngx_chain_t) -> usize {
    let mut size = 0usize;
    // SAFETY: as this function's.
    while let Some(link) = unsafe { cl.as_ref() } {
        // SAFETY: a link's buffer is NULL or valid.
        if let Some(b) = unsafe { link.buf.as_ref() } {
            let in_memory = b.temporary() != 0 || b.memory() != 0 || b.mmap() != 0;
            let n = if in_memory {
                (b.last as usize).saturating_sub(b.pos as usize)
            } else {
                usize::try_from(b.file_last.saturating_sub(b.file_pos)).unwrap_or(usize::MAX)
            };
            size = size.saturating_add(n);
        }
        cl = link.next;
    }
    size
}

/// Marks every buffer of a chain as sent.
///
/// # Safety
/// `cl` is NULL or a valid chain.
unsafe fn consume(mut cl: *mut ngx_chain_t) {
    // SAFETY: as this function's.
    while let Some(link) = unsafe { cl.as_ref() } {
        // SAFETY: a link's buffer is NULL or valid, and this filter owns the call.
        if let Some(b) = unsafe { link.buf.as_mut() } {
            b.pos = b.last;
            b.file_pos = b.file_last;
        }
        cl = link.next;
    }
}
