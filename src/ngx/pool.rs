//! Values kept in nginx memory pools: strings, boxed Rust values dropped with the pool, and
//! marks that survive internal redirects (which clear module contexts).

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use ngx::ffi::{ngx_pnalloc, ngx_pool_cleanup_add, ngx_pool_t, ngx_str_t};

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

/// A kind of mark on a pool; its address tells one kind from another, so each is a `static`
/// with an id of its own (distinct contents: two statics are never folded into one).
// The id is never read: it only gives each mark contents, and so an address, of its own.
#[allow(dead_code)]
pub struct Mark(pub u8);

/// The handler of every mark's cleanup record: it does nothing. Marks are told apart by their
/// data, never by this address, which the linker may share with any other empty function.
unsafe extern "C" fn marked(data: *mut c_void) {
    core::hint::black_box(data);
}

/// Marks `pool` with `mark`: a flag that survives internal redirects, which clear module
/// contexts.
pub fn pool_mark(pool: *mut ngx_pool_t, mark: &'static Mark) -> Option<()> {
    // SAFETY: `pool` is a live nginx pool; a cleanup of size 0 has a NULL `data`, replaced by
    // the mark's address, which `marked` never reads through.
    let cln = unsafe { ngx_pool_cleanup_add(pool, 0).as_mut()? };
    cln.handler = Some(marked);
    cln.data = ptr::from_ref(mark).cast_mut().cast();
    Some(())
}

/// Whether `pool` holds `mark`.
pub fn pool_marked(pool: *mut ngx_pool_t, mark: &'static Mark) -> bool {
    cleanups(pool, marked).any(|data| ptr::eq(data.cast_const().cast::<Mark>(), mark))
}
