//! Shared-memory zones: declared while the configuration is read, mapped by nginx before the
//! workers start, and kept over a reload when their name, size and owner are unchanged.
//!
//! nginx takes every zone to start with its slab allocator (the master unlocks its mutex when
//! a worker dies), so a zone's memory is one block allocated from that allocator, found again
//! through the allocator's `data`.

use core::ffi::c_void;
use core::ptr::NonNull;

use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_calloc, ngx_slab_pool_t,
    NGX_ERROR, NGX_OK,
};

/// Room for the slab allocator's own records besides a block (its page descriptors).
const SLAB_OVERHEAD: usize = 256 * 1024;

/// Prepares a zone's memory: its block, the zone's slab allocator (whose mutex the block may
/// use), and whether the zone is kept from the previous configuration (a reload).
pub type Init = unsafe fn(addr: *mut u8, pool: *mut ngx_slab_pool_t, reused: bool);

/// Declares the zone `name` holding a block of `size` bytes, owned by `tag`; `init` runs when
/// nginx has mapped it (at start, and at each reload). The same zone, if already declared.
pub fn add_zone(
    cf: NonNull<ngx_conf_t>,
    name: &'static str,
    size: usize,
    tag: *const c_void,
    init: Init,
) -> Option<NonNull<ngx_shm_zone_t>> {
    let mut name = ngx::ffi::ngx_str_t {
        len: name.len(),
        data: name.as_ptr().cast_mut(),
    };
    // SAFETY: `cf` is the configuration being read; nginx copies nothing it does not own
    // (the name is static).
    let zone = unsafe {
        ngx_shared_memory_add(cf.as_ptr(), &mut name, size + SLAB_OVERHEAD, tag.cast_mut())
    };
    let mut zone = NonNull::new(zone)?;
    // SAFETY: nginx returned a zone record of this cycle.
    let z = unsafe { zone.as_mut() };
    z.init = Some(init_zone);
    z.data = init as *mut c_void;
    Some(zone)
}

/// The block of a mapped zone; `None` before nginx maps it.
pub fn zone_memory(zone: NonNull<ngx_shm_zone_t>) -> Option<NonNull<u8>> {
    // SAFETY: the zone record lives as long as its configuration; a mapped zone starts with
    // its slab allocator, whose `data` `init_zone` set to the block.
    unsafe {
        let pool = zone.as_ref().shm.addr.cast::<ngx_slab_pool_t>().as_ref()?;
        NonNull::new(pool.data.cast())
    }
}

/// nginx's zone initialiser: `data` is the previous configuration's zone data when the zone
/// is kept over a reload, else NULL. Our `data` holds the `Init` until it has run, then the
/// zone's address.
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx passes the zone record it has just mapped.
    let Some(zone) = (unsafe { zone.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    if zone.data.is_null() || zone.shm.addr.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: `add_zone` stored an `Init` function pointer in `data`.
    let init: Init = unsafe { core::mem::transmute::<*mut c_void, Init>(zone.data) };
    // SAFETY: nginx mapped the zone and started it with its slab allocator.
    let Some(pool) = (unsafe { zone.shm.addr.cast::<ngx_slab_pool_t>().as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let reused = !data.is_null() && !pool.data.is_null();
    if !reused {
        // SAFETY: the allocator is nginx's, of this zone; the block is zeroed.
        pool.data = unsafe { ngx_slab_calloc(pool, zone.shm.size - SLAB_OVERHEAD) };
        if pool.data.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
    }
    // SAFETY: the block is `size` bytes of the zone, mapped for the life of the process.
    unsafe { init(pool.data.cast(), pool, reused) };
    zone.data = pool.data;
    NGX_OK as ngx_int_t
}
