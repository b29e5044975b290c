//! Request and response header lists (`ngx_list_t` of `ngx_table_elt_t`).

use core::ptr::{self, NonNull};

use ngx::ffi::{
    ngx_hash_key, ngx_http_request_t, ngx_list_part_t, ngx_list_push, ngx_list_t, ngx_pool_t,
    ngx_str_t, ngx_table_elt_t,
};

use super::pool::pool_str;

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
