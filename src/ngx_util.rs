//! The few primitives the module needs from nginx, each wrapping one raw operation.
//!
//! Everything here is `unsafe` underneath; callers get slices, `Option`s and `Result`s.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use ngx::ffi::{
    ngx_hash_key, ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_request_t,
    ngx_list_part_t, ngx_list_push, ngx_list_t, ngx_log_t, ngx_pnalloc, ngx_pool_cleanup_add,
    ngx_pool_t, ngx_str_t, ngx_table_elt_t, ngx_variable_value_t,
};

/// The bytes of an `ngx_str_t`.
pub fn bytes(s: &ngx_str_t) -> &[u8] {
    // SAFETY: nginx strings point at `len` initialised bytes that outlive the borrow of `s`.
    unsafe { bytes_unbound(*s) }
}

/// The bytes of an `ngx_str_t` for a caller-chosen lifetime.
///
/// # Safety
/// The memory must stay valid for `'a` (pool or configuration memory).
pub unsafe fn bytes_unbound<'a>(s: ngx_str_t) -> &'a [u8] {
    if s.len == 0 || s.data.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(s.data, s.len) }
}

/// Copies `value` into `pool`; `None` when the pool is out of memory.
pub fn pool_str(pool: *mut ngx_pool_t, value: &[u8]) -> Option<ngx_str_t> {
    if value.is_empty() {
        return Some(ngx_str_t {
            len: 0,
            data: ptr::null_mut(),
        });
    }
    // SAFETY: `pool` is a live nginx pool; ngx_pnalloc returns NULL or `len` writable bytes.
    let data = unsafe { ngx_pnalloc(pool, value.len()) }.cast::<u8>();
    if data.is_null() {
        return None;
    }
    // SAFETY: `data` has room for `value.len()` bytes and cannot overlap a Rust slice.
    unsafe { ptr::copy_nonoverlapping(value.as_ptr(), data, value.len()) };
    Some(ngx_str_t {
        len: value.len(),
        data,
    })
}

unsafe extern "C" fn drop_in_pool<T>(data: *mut c_void) {
    // SAFETY: registered by `pool_box` for exactly one initialised `T` at `data`.
    unsafe { ptr::drop_in_place(data.cast::<T>()) };
}

/// Moves `value` into `pool` and drops it when the pool is destroyed.
///
/// Unlike `ngx::core::Pool::allocate`, a failed allocation is reported, never written through.
pub fn pool_box<T>(pool: *mut ngx_pool_t, value: T) -> Option<NonNull<T>> {
    // SAFETY: drop_in_pool::<T> drops exactly one `T`.
    unsafe { pool_box_with(pool, value, drop_in_pool::<T>) }
}

/// A pool cleanup handler.
pub type Dropper = unsafe extern "C" fn(*mut c_void);

/// `pool_box` with a given cleanup handler; a value boxed with a handler of its own (a
/// non-generic function, so that its address is unique) can be found again with `pool_find`.
///
/// # Safety
/// `drop` must drop exactly one `T` at its argument.
pub unsafe fn pool_box_with<T>(
    pool: *mut ngx_pool_t,
    value: T,
    drop: Dropper,
) -> Option<NonNull<T>> {
    // SAFETY: `pool` is a live nginx pool; a cleanup with `size` allocates `size` bytes aligned
    // to NGX_ALIGNMENT, which covers every type this module stores there (align <= 8).
    let cln = unsafe { ngx_pool_cleanup_add(pool, core::mem::size_of::<T>()) };
    if cln.is_null() || core::mem::align_of::<T>() > core::mem::align_of::<u64>() {
        return None;
    }
    // SAFETY: `cln` is a fresh cleanup record; `data` is NULL or room for one `T`.
    unsafe {
        let data = NonNull::new((*cln).data.cast::<T>())?;
        data.as_ptr().write(value);
        (*cln).handler = Some(drop);
        Some(data)
    }
}

/// The data of `pool`'s cleanup records whose handler is `handler`, newest first.
fn cleanups(pool: *mut ngx_pool_t, handler: Dropper) -> impl Iterator<Item = *mut c_void> {
    // SAFETY: `pool` is live; its cleanup records form a NULL-terminated list.
    let mut c = unsafe { (*pool).cleanup };
    core::iter::from_fn(move || loop {
        // SAFETY: each record is valid until the pool is destroyed.
        let cln = unsafe { c.as_ref()? };
        c = cln.next;
        // Compared as addresses: `handler` is a single non-generic function.
        if cln.handler.map(|h| h as usize) == Some(handler as usize) {
            return Some(cln.data);
        }
    })
}

/// The newest value in `pool` boxed by `pool_box_with(.., drop)` that `pick` accepts.
///
/// # Safety
/// Every cleanup of `pool` with handler `drop` must hold a `T` (as `pool_box_with` leaves it).
pub unsafe fn pool_find<T>(
    pool: *mut ngx_pool_t,
    drop: Dropper,
    pick: impl Fn(&T) -> bool,
) -> Option<NonNull<T>> {
    cleanups(pool, drop).find_map(|data| {
        // SAFETY: by this function's contract, the data of such a record is a `T`.
        let value = unsafe { data.cast::<T>().as_ref() }?;
        pick(value).then(|| NonNull::from(value))
    })
}

/// Marks `pool` with a cleanup record of handler `mark` and no data: a flag that survives
/// internal redirects, which clear module contexts.
///
/// # Safety
/// `mark` must accept a NULL argument.
pub unsafe fn pool_mark(pool: *mut ngx_pool_t, mark: Dropper) -> Option<()> {
    // SAFETY: `pool` is a live nginx pool; a cleanup of size 0 has a NULL `data`.
    let cln = unsafe { ngx_pool_cleanup_add(pool, 0).as_mut()? };
    cln.handler = Some(mark);
    Some(())
}

/// Whether `pool` holds a cleanup record of handler `mark`.
pub fn pool_marked(pool: *mut ngx_pool_t, mark: Dropper) -> bool {
    cleanups(pool, mark).next().is_some()
}

/// Iterates the elements of an `ngx_list_t` of `ngx_table_elt_t` (request or response headers).
pub fn headers(list: &ngx_list_t) -> impl Iterator<Item = &ngx_table_elt_t> {
    let mut part: *const ngx_list_part_t = &list.part;
    let mut i = 0usize;
    core::iter::from_fn(move || loop {
        // SAFETY: `part` walks the list's own chain of parts, each holding `nelts` elements.
        let p = unsafe { part.as_ref()? };
        if i < p.nelts {
            // SAFETY: `i < nelts`, so the element is initialised.
            let elt = unsafe { &*p.elts.cast::<ngx_table_elt_t>().add(i) };
            i += 1;
            return Some(elt);
        }
        part = p.next;
        i = 0;
    })
}

/// Appends a header to `list`, its value copied into `pool`. Returns `None` when out of memory.
///
/// `key` and `lowcase` (the lowercase form of `key`) are referenced, not copied: static or
/// configuration memory, which outlives every request. The header's `key.data` is `key`'s
/// address, by which a filter can tell the module's headers. `hash` is 1 for response headers
/// (nginx's header filter only tests for non-zero) or the real key hash for request headers.
pub fn push_header(
    list: &mut ngx_list_t,
    pool: *mut ngx_pool_t,
    key: &'static [u8],
    lowcase: &'static [u8],
    value: &[u8],
    real_hash: bool,
) -> Option<NonNull<ngx_table_elt_t>> {
    let as_str = |s: &'static [u8]| ngx_str_t {
        len: s.len(),
        data: s.as_ptr().cast_mut(),
    };
    let (key, lowcase) = (as_str(key), as_str(lowcase));
    let value = pool_str(pool, value)?;
    if list.nalloc == 0 {
        // An HTTP/0.9 request has no header list: nginx initialises it only for a request
        // line of HTTP/1.0 or later.
        init_header_list(list, pool, 4)?;
    }
    let hash = if real_hash {
        // SAFETY: `lowcase` points at `len` readable bytes; ngx_hash_key only reads them.
        unsafe { ngx_hash_key(lowcase.data, lowcase.len) }
    } else {
        1
    };
    // SAFETY: `list` is an initialised nginx list of ngx_table_elt_t.
    let h = unsafe { ngx_list_push(list) }.cast::<ngx_table_elt_t>();
    if h.is_null() {
        return None;
    }
    // SAFETY: `h` points at an uninitialised element we own; zeroing first leaves any field this
    // nginx version has beyond ours (e.g. `next`, 1.23+) NULL.
    unsafe {
        ptr::write_bytes(h, 0, 1);
        (*h).hash = hash;
        (*h).key = key;
        (*h).value = value;
        (*h).lowcase_key = lowcase.data;
    }
    NonNull::new(h)
}

/// Makes `list` an empty list of `ngx_table_elt_t` with room for `n` in its first part.
fn init_header_list(list: &mut ngx_list_t, pool: *mut ngx_pool_t, n: usize) -> Option<()> {
    let size = core::mem::size_of::<ngx_table_elt_t>();
    // SAFETY: `pool` is a live nginx pool; ngx_palloc returns NULL or `n * size` bytes.
    let elts = unsafe { ngx::ffi::ngx_palloc(pool, n * size) };
    if elts.is_null() {
        return None;
    }
    list.part.elts = elts;
    list.part.nelts = 0;
    list.part.next = ptr::null_mut();
    list.last = &mut list.part;
    list.size = size;
    list.nalloc = n;
    list.pool = pool;
    Some(())
}

/// Calls `f` on every element of a header list, mutably.
pub fn for_each_header_mut(list: &mut ngx_list_t, mut f: impl FnMut(&mut ngx_table_elt_t)) {
    let mut part: *mut ngx_list_part_t = &mut list.part;
    // SAFETY: `part` walks the list's own chain of parts, NULL-terminated, which nothing else
    // touches during the call.
    while let Some(p) = unsafe { part.as_mut() } {
        if !p.elts.is_null() {
            // SAFETY: a part holds `nelts` initialised elements at `elts`.
            let elts = unsafe {
                core::slice::from_raw_parts_mut(p.elts.cast::<ngx_table_elt_t>(), p.nelts)
            };
            elts.iter_mut().for_each(&mut f);
        }
        part = p.next;
    }
}

/// Logs one line on the request's connection log.
// Out of line: refusals and warnings are the rare path, and their formatting code would
// otherwise sit between the instructions an admitted request runs.
#[cold]
#[inline(never)]
pub fn log(r: &ngx_http_request_t, level: u32, args: core::fmt::Arguments) {
    // SAFETY: a request's connection and its log outlive the request.
    let log = unsafe { (*r.connection).log };
    ngx::ngx_log_error!(level, log, "{}", args);
}

/// Rebuilds the request's header list without the elements `drop` selects.
///
/// nginx has no list removal, and shifting elements in place would invalidate the pointers
/// `headers_in` keeps to known headers (Host, Cookie, ...). A fresh list of copies leaves those
/// elements where they are, unchanged, while every reader that walks the list (proxy,
/// `$http_*`) no longer sees the dropped ones.
pub fn rebuild_list_without(
    r: &mut ngx_http_request_t,
    mut drop: impl FnMut(&ngx_table_elt_t) -> bool,
) -> Option<()> {
    let kept: Vec<ngx_table_elt_t> = headers(&r.headers_in.headers)
        .filter(|h| !drop(h))
        .copied()
        .collect();
    let n = kept.len() + 8;
    // SAFETY: the request pool is live; ngx_list_create returns NULL or an initialised list.
    let fresh =
        unsafe { ngx::ffi::ngx_list_create(r.pool, n, core::mem::size_of::<ngx_table_elt_t>()) };
    // SAFETY: checked non-NULL just below before any use.
    let fresh = unsafe { fresh.as_mut()? };
    for h in kept {
        // SAFETY: `fresh` is a list of ngx_table_elt_t with room for `n` elements.
        let slot = unsafe { ngx_list_push(fresh) }.cast::<ngx_table_elt_t>();
        if slot.is_null() {
            return None;
        }
        // SAFETY: `slot` is an element-sized slot of `fresh`.
        unsafe { slot.write(h) };
    }
    r.headers_in.headers = *fresh;
    // The copied header still points `last` at the pool copy's first part; point it at our own.
    if ptr::eq(fresh.last, &fresh.part) {
        r.headers_in.headers.last = &mut r.headers_in.headers.part;
    }
    Some(())
}

/// Evaluates a compiled complex value for `r`.
pub fn complex_value(
    r: &mut ngx_http_request_t,
    cv: NonNull<ngx_http_complex_value_t>,
) -> Option<&[u8]> {
    let mut out = ngx_str_t {
        len: 0,
        data: ptr::null_mut(),
    };
    // SAFETY: `cv` was compiled at configuration time and lives as long as the cycle; the
    // result is allocated in the request pool, which outlives `'r`.
    let rc = unsafe { ngx_http_complex_value(r, cv.as_ptr(), &mut out) };
    if rc != ngx::ffi::NGX_OK as ngx::ffi::ngx_int_t {
        return None;
    }
    // SAFETY: see above: pool memory valid for the request.
    Some(unsafe { bytes_unbound(out) })
}

/// Evaluates `cv` for `r` with none of the variable values nginx cached for the request: a
/// `map` (and a `map` of a `map`) computed for another location before an internal redirect,
/// or by the parent of a subrequest, which shares its parent's values, is computed again.
/// With `keep_assigned`, the values `set` assigned are kept (variables that only `set`
/// defines: nginx gives them their own index as data).
pub fn complex_value_fresh(
    r: &mut ngx_http_request_t,
    cv: NonNull<ngx_http_complex_value_t>,
    keep_assigned: bool,
) -> Option<&[u8]> {
    // SAFETY: `main_conf` holds one slot per HTTP module; the core module's is always set and
    // lists the variables, `r->variables` holding one value for each.
    let (defs, old) = unsafe {
        let core = (*ptr::addr_of!(ngx::ffi::ngx_http_core_module)).ctx_index;
        let cmcf = (*r.main_conf.add(core))
            .cast::<ngx::ffi::ngx_http_core_main_conf_t>()
            .as_ref()?;
        let n = cmcf.variables.nelts;
        if n == 0 || cmcf.variables.elts.is_null() || r.variables.is_null() {
            return complex_value(r, cv);
        }
        (
            core::slice::from_raw_parts(
                cmcf.variables.elts.cast::<ngx::ffi::ngx_http_variable_t>(),
                n,
            ),
            core::slice::from_raw_parts(r.variables, n),
        )
    };
    let size = core::mem::size_of_val(old);
    // SAFETY: the request pool is live; ngx_pcalloc returns NULL or `size` zeroed bytes, the
    // initial state of every value (neither valid nor not found).
    let fresh = unsafe { ngx::ffi::ngx_pcalloc(r.pool, size) }.cast::<ngx_variable_value_t>();
    if fresh.is_null() {
        return None;
    }
    if keep_assigned {
        for (i, (def, value)) in defs.iter().zip(old).enumerate() {
            if def.data == i && value.valid() != 0 {
                // SAFETY: `i` is within the `n` values of `fresh`.
                unsafe { fresh.add(i).write(*value) };
            }
        }
    }
    let saved = r.variables;
    r.variables = fresh;
    let value = complex_value(r, cv).map(|v| {
        // SAFETY: pool memory, valid for the request.
        unsafe {
            bytes_unbound(ngx_str_t {
                len: v.len(),
                data: v.as_ptr().cast_mut(),
            })
        }
    });
    r.variables = saved;
    value
}

/// Fills a variable value that points at request-lifetime memory.
pub fn set_variable(v: &mut ngx_variable_value_t, value: ngx_str_t) {
    v.set_len(value.len as u32);
    v.set_valid(1);
    v.set_no_cacheable(0);
    v.set_not_found(0);
    v.set_escape(0);
    v.data = value.data;
}

/// Marks a variable as not found (empty everywhere; `-` in access logs).
pub fn set_not_found(v: &mut ngx_variable_value_t) {
    v.set_len(0);
    v.set_valid(0);
    v.set_not_found(1);
    v.data = ptr::null_mut();
}

/// Runs `f` at an `extern "C"` entry; a panic becomes `fallback` and one `[alert]` line.
///
/// Panics are ruled out by construction (no `unwrap`, `expect`, `panic!` or panicking
/// indexing, by lint; the JWT core is fuzzed) and this is the last line: a panic unwinding into
/// nginx's C frames would abort the worker with every connection it holds. The release profile
/// keeps `panic = "unwind"` so that this catch works.
pub fn guard<R>(log: *mut ngx_log_t, what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => {
            if !log.is_null() {
                ngx::ngx_log_error!(
                    ngx::ffi::NGX_LOG_ALERT,
                    log,
                    "auth_jwt: internal error (panic) in {what}; answered as a failure"
                );
            }
            fallback
        }
    }
}

/// nginx's cached current time, in Unix seconds.
pub fn now() -> i64 {
    // SAFETY: ngx_cached_time always points at a valid slot once the cycle has started; the
    // volatile read matches how nginx's own ngx_time() reads a value updated by the timer.
    unsafe { ptr::read_volatile(&(*ngx::ffi::ngx_cached_time).sec) as i64 }
}
