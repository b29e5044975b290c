//! The keys of `auth_jwt_key_request`, shared by every worker: one shared-memory zone holding,
//! per key source, the JWK set last fetched and the state of its fetching.
//!
//! The zone has a fixed layout and size, so that `nginx -s reload` finds it again and keeps its
//! keys; all-zero memory (what the system maps) is a valid empty zone. A slot is found by its
//! source's id (the server block and the URI); every read checks that id, so a slot reused for
//! another source is never read as this one's. Readers of the hot path only load atomics; the
//! zone's slab mutex (nginx's, which the master releases when a worker dies holding it) guards
//! a body being written or copied and the claiming of a slot.
//!
//! When to fetch is decided by `jwt_core::refresh`, apart from nginx, and tested there.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use jwt_core::refresh::{Snapshot, LEASE_MS};
use ngx::ffi::{ngx_pid, ngx_slab_pool_t};

use crate::ngx::shm::ShmLock;

/// Key sources a zone holds; a configuration may name at most this many.
pub const SLOTS: usize = 64;
/// The largest JWK set kept: 64 KiB, some forty RSA keys with their certificate chains.
pub const MAX_BODY: usize = 64 * 1024;

/// The value of `Zone::magic` in a zone this layout wrote.
const MAGIC: u64 = 0x6a77_6b73_0001_0040;

pub const ZONE_SIZE: usize = core::mem::size_of::<Zone>();

#[repr(C)]
pub struct Zone {
    magic: AtomicU64,
    /// Incremented at each reload: keys fetched under an earlier configuration are refreshed
    /// in the background at their next use.
    epoch: AtomicU64,
    /// The zone's slab allocator, whose mutex is the zone's lock (mapped at one address in
    /// every process).
    pool: AtomicPtr<ngx_slab_pool_t>,
    ids: [AtomicU64; SLOTS],
    heads: [Head; SLOTS],
    bodies: [UnsafeCell<[u8; MAX_BODY]>; SLOTS],
}

// SAFETY: bodies are written and read only under `lock`; everything else is atomic.
unsafe impl Sync for Zone {}

/// The fetching state of one source. Times are wall-clock milliseconds, shared by processes.
#[repr(C)]
#[derive(Default)]
struct Head {
    /// Bumped when a fetch brings a body different from the one held.
    generation: AtomicU64,
    /// When the body was last fetched (or confirmed unchanged); 0: never.
    fetched_at: AtomicU64,
    /// The zone's epoch at that fetch.
    epoch: AtomicU64,
    /// When the last attempt ended, and how many attempts in a row failed.
    attempted_at: AtomicU64,
    failures: AtomicU64,
    /// When the fetch under way started; 0: none. And the pid of the worker running it.
    in_flight: AtomicU64,
    owner: AtomicU64,
    /// When an unknown `kid` last caused a fetch.
    refetched_at: AtomicU64,
    len: AtomicUsize,
}

impl Zone {
    /// The zone at `addr`.
    ///
    /// # Safety
    /// `addr` points at `ZONE_SIZE` bytes of shared memory, zeroed or written by this module,
    /// mapped for the life of the process.
    pub unsafe fn at(addr: *mut u8) -> &'static Zone {
        // SAFETY: as this function's; every field is valid all-zero.
        unsafe { &*addr.cast::<Zone>() }
    }

    /// Prepares a zone at start, or one kept over a reload: an unknown layout is cleared, and
    /// a reload moves the epoch on.
    ///
    /// # Safety
    /// `addr` is as for `at`. Called by the master before this configuration's workers start;
    /// the workers of the previous one may read the zone meanwhile, and see only atomic writes
    /// (a cleared zone reads as empty).
    pub unsafe fn init(
        addr: *mut u8,
        pool: *mut ngx_slab_pool_t,
        reused: bool,
        _: *const c_void,
    ) -> bool {
        // SAFETY: as this function's.
        let zone = unsafe { Zone::at(addr) };
        if zone.magic.load(Ordering::Acquire) != MAGIC {
            // SAFETY: `addr` has ZONE_SIZE writable bytes, nothing else's; zero is a valid
            // empty zone.
            unsafe { core::ptr::write_bytes(addr, 0, ZONE_SIZE) };
            zone.magic.store(MAGIC, Ordering::Release);
        } else if reused {
            zone.epoch.fetch_add(1, Ordering::AcqRel);
        }
        zone.pool.store(pool, Ordering::Release);
        true
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether slot `i` holds the source `id`.
    pub fn holds(&self, i: usize, id: u64) -> bool {
        self.ids
            .get(i)
            .is_some_and(|s| s.load(Ordering::Acquire) == id)
    }

    /// The slot of source `id`, claimed for it when it has none: a free slot, else the one
    /// fetched longest ago with no fetch under way. `None` when every slot is busy.
    pub fn slot_of(&self, id: u64, now: u64) -> Option<usize> {
        if let Some(i) = self.find(id) {
            return Some(i);
        }
        let _guard = self.lock()?;
        if let Some(i) = self.find(id) {
            return Some(i);
        }
        let free = self.ids.iter().position(|s| s.load(Ordering::Acquire) == 0);
        let i = free.or_else(|| {
            self.heads
                .iter()
                .enumerate()
                .filter(|(_, h)| {
                    let started = h.in_flight.load(Ordering::Acquire);
                    started == 0 || now.saturating_sub(started) >= LEASE_MS
                })
                .min_by_key(|(_, h)| h.fetched_at.load(Ordering::Acquire))
                .map(|(i, _)| i)
        })?;
        let head = self.heads.get(i)?;
        self.ids.get(i)?.store(0, Ordering::Release);
        head.clear();
        self.ids.get(i)?.store(id, Ordering::Release);
        Some(i)
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.ids
            .iter()
            .position(|s| s.load(Ordering::Acquire) == id)
    }

    /// Slot `i`'s state at `now`, if it holds `id`.
    pub fn snapshot(&self, i: usize, id: u64, now: u64) -> Option<Snapshot> {
        let head = self.heads.get(i)?;
        let mut s = head.snapshot();
        // A fetch running for a while: is its worker still there? (A worker killed or
        // crashed mid-fetch leaves the claim behind.)
        if s.in_flight != 0 && now.saturating_sub(s.in_flight) >= OWNER_CHECK_MS {
            s.owner_gone = !alive(head.owner.load(Ordering::Acquire));
        }
        self.holds(i, id).then_some(s)
    }

    /// Claims the fetch of slot `i` (single flight): `Some(start)` for the one caller that may
    /// fetch, with the value that later releases it. `refetch`: for an unknown `kid`.
    pub fn claim(&self, i: usize, id: u64, now: u64, refetch: bool) -> Option<u64> {
        self.claim_when(i, id, now, refetch, |s| {
            if refetch {
                s.may_refetch(now)
            } else {
                s.may_fetch(now)
            }
        })
    }

    /// `claim`, when `allowed` holds of the slot's state, read under the lock.
    pub fn claim_when(
        &self,
        i: usize,
        id: u64,
        now: u64,
        refetch: bool,
        allowed: impl FnOnce(&Snapshot) -> bool,
    ) -> Option<u64> {
        let head = self.heads.get(i)?;
        // Under the lock: the slot cannot be given to another source meanwhile.
        let _guard = self.lock()?;
        let s = self.snapshot(i, id, now)?;
        if !allowed(&s) {
            return None;
        }
        let start = now.max(1);
        head.in_flight
            .compare_exchange(s.in_flight, start, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        // SAFETY: nginx sets its pid before any request runs and never changes it after.
        let pid = unsafe { ngx_pid };
        head.owner
            .store(u64::try_from(pid).unwrap_or(0), Ordering::Release);
        if refetch {
            head.refetched_at.store(start, Ordering::Release);
        }
        Some(start)
    }

    /// Ends the fetch claimed with `start`: with a body, stored (a new generation if it
    /// differs); without, a failure (`failed`) or an abandoned fetch (neither).
    pub fn finish(&self, i: usize, id: u64, start: u64, now: u64, outcome: Finish) {
        let Some(head) = self.heads.get(i) else {
            return;
        };
        let Some(_guard) = self.lock() else {
            return;
        };
        if !self.holds(i, id) || head.in_flight.load(Ordering::Acquire) != start {
            return;
        }
        match outcome {
            Finish::Body(body) => {
                let Some(cell) = self.bodies.get(i) else {
                    return;
                };
                // SAFETY: bodies are accessed only under the lock, held here.
                let held = unsafe { &mut *cell.get() };
                let len = head.len.load(Ordering::Acquire).min(MAX_BODY);
                let same =
                    head.fetched_at.load(Ordering::Acquire) != 0 && held.get(..len) == Some(body);
                if !same {
                    let Some(room) = held.get_mut(..body.len()) else {
                        return;
                    };
                    room.copy_from_slice(body);
                    head.len.store(body.len(), Ordering::Release);
                    head.generation.fetch_add(1, Ordering::AcqRel);
                }
                head.fetched_at.store(now.max(1), Ordering::Release);
                head.epoch.store(self.epoch(), Ordering::Release);
                head.failures.store(0, Ordering::Release);
                head.attempted_at.store(now, Ordering::Release);
            }
            Finish::Done => {
                head.fetched_at.store(now.max(1), Ordering::Release);
                head.epoch.store(self.epoch(), Ordering::Release);
                head.failures.store(0, Ordering::Release);
                head.attempted_at.store(now, Ordering::Release);
            }
            Finish::Failed => {
                head.failures.fetch_add(1, Ordering::AcqRel);
                head.attempted_at.store(now, Ordering::Release);
            }
            Finish::Abandoned => {}
        }
        head.in_flight.store(0, Ordering::Release);
    }

    /// A copy of slot `i`'s body and its generation, if it holds `id` and a body.
    pub fn body(&self, i: usize, id: u64) -> Option<(u64, Vec<u8>)> {
        let head = self.heads.get(i)?;
        let cell = self.bodies.get(i)?;
        let _guard = self.lock()?;
        if !self.holds(i, id) || head.fetched_at.load(Ordering::Acquire) == 0 {
            return None;
        }
        let len = head.len.load(Ordering::Acquire).min(MAX_BODY);
        // SAFETY: bodies are accessed only under the lock, held here.
        let body = unsafe { &*cell.get() }.get(..len)?.to_vec();
        Some((head.generation.load(Ordering::Acquire), body))
    }

    /// The zone's lock; `None` before `init` (never, once nginx has mapped the zone).
    fn lock(&self) -> Option<ShmLock> {
        ShmLock::of(self.pool.load(Ordering::Acquire))
    }
}

/// How a fetch ended.
pub enum Finish<'a> {
    Body(&'a [u8]),
    /// Succeeded, with what it brought kept elsewhere (a revocation list, merged).
    Done,
    Failed,
    Abandoned,
}

/// A fetch older than this has its worker's life checked by those who find it.
const OWNER_CHECK_MS: u64 = 500;

/// Whether process `pid` exists (a reused pid passes: the lease then decides).
fn alive(pid: u64) -> bool {
    let Ok(pid) = ngx::ffi::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { ngx::ffi::kill(pid, 0) };
    // SAFETY: errno is thread-local and read right after the call.
    rc == 0 || unsafe { *ngx::ffi::__errno_location() } != ngx::ffi::ESRCH as i32
}

impl Head {
    fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Acquire);
        Snapshot {
            generation: load(&self.generation),
            fetched_at: load(&self.fetched_at),
            epoch: load(&self.epoch),
            attempted_at: load(&self.attempted_at),
            failures: load(&self.failures),
            in_flight: load(&self.in_flight),
            owner_gone: false,
            refetched_at: load(&self.refetched_at),
        }
    }

    fn clear(&self) {
        for a in [
            &self.generation,
            &self.fetched_at,
            &self.epoch,
            &self.attempted_at,
            &self.failures,
            &self.in_flight,
            &self.owner,
            &self.refetched_at,
        ] {
            a.store(0, Ordering::Release);
        }
        self.len.store(0, Ordering::Release);
    }
}
