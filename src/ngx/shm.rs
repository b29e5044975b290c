//! Shared-memory zones: declared while the configuration is read, mapped by nginx before the
//! workers start, and kept over a reload when their name, size and owner are unchanged.
//!
//! nginx takes every zone to start with its slab allocator (the master unlocks its mutex when
//! a worker dies), so a zone's memory is one block allocated from that allocator, found again
//! through the allocator's `data`.

use core::ffi::c_void;
use core::ptr::NonNull;

use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_palloc, ngx_shared_memory_add, ngx_shm_zone_t, ngx_shmtx_lock,
    ngx_shmtx_t, ngx_shmtx_trylock, ngx_shmtx_unlock, ngx_slab_calloc, ngx_slab_pool_t, NGX_ERROR,
    NGX_OK,
};

use super::pool::pool_str;

/// Room for the slab allocator's own records besides a block (its page descriptors).
const SLAB_OVERHEAD: usize = 256 * 1024;

/// Prepares a zone's memory: its block, the zone's slab allocator (whose mutex the block may
/// use), whether the zone is kept from the previous configuration (a reload), and the `arg`
/// given to `add_zone`.
/// `false` fails the configuration's start (a reload keeps the running one); the function has
/// logged why.
pub type Init =
    unsafe fn(addr: *mut u8, pool: *mut ngx_slab_pool_t, reused: bool, arg: *const c_void) -> bool;

/// What `init_zone` runs, kept in the configuration pool until it has.
struct Pending {
    init: Init,
    arg: *const c_void,
}

/// Declares the zone `name` holding a block of `size` bytes, owned by `tag`; `init` runs with
/// `arg` when nginx has mapped it (at start, and at each reload), while `arg`, if a pointer,
/// must still be valid (it may point into the configuration). `None` when nginx refuses it
/// (a zone of that name declared for another use); it has then logged why.
pub fn add_zone(
    cf: NonNull<ngx_conf_t>,
    name: &str,
    size: usize,
    tag: *const c_void,
    init: Init,
    arg: *const c_void,
) -> Option<NonNull<ngx_shm_zone_t>> {
    // SAFETY: `cf` is the configuration being read.
    let pool = unsafe { cf.as_ref().pool };
    // nginx keeps the name for the cycle's life: a copy in the configuration pool.
    let mut name = pool_str(pool, name.as_bytes())?;
    // SAFETY: as above; nginx keeps the name, which lives as long as the cycle.
    let zone = unsafe {
        ngx_shared_memory_add(cf.as_ptr(), &mut name, size + SLAB_OVERHEAD, tag.cast_mut())
    };
    let mut zone = NonNull::new(zone)?;
    // SAFETY: the pool is the configuration's; `Pending` needs no drop.
    let pending = unsafe { ngx_palloc(pool, core::mem::size_of::<Pending>()) }.cast::<Pending>();
    let pending = NonNull::new(pending)?;
    // SAFETY: freshly allocated, aligned by nginx's pool for any object of this size.
    unsafe { pending.as_ptr().write(Pending { init, arg }) };
    // SAFETY: nginx returned a zone record of this cycle.
    let z = unsafe { zone.as_mut() };
    z.init = Some(init_zone);
    z.data = pending.as_ptr().cast();
    Some(zone)
}

/// The block of the running configuration's zone `name` of owner `tag` (at a reload, while the
/// new configuration is read), and its size: the zone a new one of another size replaces, and
/// whose content it may take over. nginx keeps it mapped until the new zones are prepared.
pub fn previous_block(
    cf: NonNull<ngx_conf_t>,
    name: &str,
    tag: *const c_void,
) -> Option<(NonNull<u8>, usize)> {
    // SAFETY: `cf` is the configuration being read; its cycle's `old_cycle` is the running one
    // (at a first start, nginx's initial cycle, without zones).
    let old = unsafe { cf.as_ref().cycle.as_ref()?.old_cycle.as_ref()? };
    let mut part: *const ngx::ffi::ngx_list_part_t = &old.shared_memory.part;
    // SAFETY: the list of the old cycle's zones, as nginx built it: parts of `nelts`
    // `ngx_shm_zone_t` each, NULL-terminated.
    while let Some(p) = unsafe { part.as_ref() } {
        let zones = p.elts.cast::<ngx_shm_zone_t>();
        for i in 0..p.nelts {
            // SAFETY: `i` < `nelts`.
            let z = unsafe { &*zones.add(i) };
            if z.shm.name.data.is_null() {
                continue;
            }
            // SAFETY: a zone's name is its bytes, kept for the cycle's life.
            let named = unsafe { core::slice::from_raw_parts(z.shm.name.data, z.shm.name.len) };
            if named == name.as_bytes() && core::ptr::eq(z.tag, tag) {
                // SAFETY: a mapped zone starts with its slab allocator, whose `data` is the
                // block `init_zone` allocated.
                let pool = unsafe { z.shm.addr.cast::<ngx_slab_pool_t>().as_ref()? };
                let size = z.shm.size.checked_sub(SLAB_OVERHEAD)?;
                return NonNull::new(pool.data.cast()).map(|b| (b, size));
            }
        }
        part = p.next;
    }
    None
}

/// A zone's slab mutex, held: the zone's lock, which the master releases when a worker dies
/// holding it.
pub struct ShmLock(*mut ngx_shmtx_t);

impl ShmLock {
    /// Locks the mutex of `pool` if it can within `attempts` tries a millisecond apart.
    pub fn try_of(pool: *mut ngx_slab_pool_t, attempts: usize) -> Option<ShmLock> {
        if pool.is_null() {
            return None;
        }
        // SAFETY: as in `of`.
        let mutex = unsafe { core::ptr::addr_of_mut!((*pool).mutex) };
        for _ in 0..attempts {
            // SAFETY: as above.
            if unsafe { ngx_shmtx_trylock(mutex) } != 0 {
                return Some(ShmLock(mutex));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        None
    }

    /// Locks the mutex of `pool`; `None` for a NULL pool (a zone not yet prepared).
    pub fn of(pool: *mut ngx_slab_pool_t) -> Option<ShmLock> {
        if pool.is_null() {
            return None;
        }
        // SAFETY: a non-NULL pool is a zone's slab allocator, mapped for the life of the
        // process; its mutex is nginx's shared one.
        let mutex = unsafe { core::ptr::addr_of_mut!((*pool).mutex) };
        // SAFETY: as above.
        unsafe { ngx_shmtx_lock(mutex) };
        Some(ShmLock(mutex))
    }
}

impl Drop for ShmLock {
    fn drop(&mut self) {
        // SAFETY: locked by `ShmLock::of`, by this process.
        unsafe { ngx_shmtx_unlock(self.0) };
    }
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
/// is kept over a reload, else NULL. Our `data` holds the `Pending` until it has run, then the
/// zone's block.
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx passes the zone record it has just mapped.
    let Some(zone) = (unsafe { zone.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    if zone.data.is_null() || zone.shm.addr.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: `add_zone` stored a `Pending` in `data`, in the configuration pool.
    let Pending { init, arg } = unsafe { zone.data.cast::<Pending>().read() };
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
    if !unsafe { init(pool.data.cast(), pool, reused, arg) } {
        return NGX_ERROR as ngx_int_t;
    }
    zone.data = pool.data;
    NGX_OK as ngx_int_t
}
