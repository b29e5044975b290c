//! A revocation list in shared memory: one zone per `auth_jwt_revocation_zone`, read by every
//! worker of every configuration that names it.
//!
//! The zone is a fixed-size hash table (linear probing, removal by backward shift, so no
//! tombstones) of fixed-size entries, filled to at most three quarters. Every access holds the
//! zone's slab mutex (nginx's, which the master releases when a worker dies holding it); a
//! zone without entries is answered from one atomic load. A lookup allocates nothing; a change
//! and a listing do.
//!
//! Times are seconds since the epoch, as in tokens. A `jti` entry holds the token's `exp`, a
//! `sub` entry its cutoff; an entry past its expiry (`Entry::expires`) no longer counts and is
//! removed by the next change that sweeps (`purge_locked`).

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::collections::HashSet;

use jwt_core::revocation::{hash, Entry, Kind, MAX_VALUE};
use ngx::ffi::ngx_slab_pool_t;

use crate::ngx::process::exiting;
use crate::ngx::shm::ShmLock;

/// The value of `Table::magic` in a zone this layout wrote.
const MAGIC: u64 = 0x6a77_7276_0003_0118;

/// How often a change sweeps expired entries out, at most: a sweep reads the whole table.
const PURGE_EVERY: i64 = 60;

#[repr(C)]
pub struct Table {
    magic: AtomicU64,
    /// The hash seed, drawn when the zone is first prepared.
    seed: AtomicU64,
    pool: AtomicPtr<ngx_slab_pool_t>,
    /// Entry slots following the header.
    slots: AtomicUsize,
    /// Entries held, expired ones not yet swept included.
    count: AtomicUsize,
    /// Bumped by every change; the state file records the one it holds.
    version: AtomicU64,
    written: AtomicU64,
    /// When expired entries were last swept out.
    purged_at: AtomicI64,
    /// When a reload's new zone of another size took the entries over (seconds; 0: never):
    /// this table then takes no change, which the new one would not see (`retired`).
    retired_at: AtomicI64,
}

/// How long a table handed over at a reload refuses changes in workers that are not exiting:
/// by then those of a successful reload have been told to exit; a reload that failed left
/// them serving, and the table is theirs again.
const RETIRING: i64 = 5;

/// One entry; `hash` 0 marks a free slot.
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    time: i64,
    kind: u8,
    len: u8,
    value: [u8; MAX_VALUE],
    /// To a multiple of 8 bytes, the slot's alignment.
    _pad: [u8; SLOT_PAD],
}

const SLOT_PAD: usize = (8 - (18 + MAX_VALUE) % 8) % 8;

/// Bytes per entry.
pub const SLOT_SIZE: usize = core::mem::size_of::<Slot>();
const HEADER: usize = core::mem::size_of::<Table>().next_multiple_of(SLOT_SIZE);

/// Entries a zone of `size` bytes holds.
pub fn capacity(size: usize) -> usize {
    slots_for(size) * 3 / 4
}

/// The entry slots of a zone of `size` bytes, after the header.
fn slots_for(size: usize) -> usize {
    size.saturating_sub(HEADER) / SLOT_SIZE
}

/// The clock a table is read and changed by: now, and the configuration's `ttl=` (how long a
/// subject's cutoff counts), which stays the configuration's, so that a reload that fails
/// changes nothing of the zone the running one uses.
#[derive(Clone, Copy, Debug)]
pub struct When {
    pub now: i64,
    pub ttl: i64,
}

/// Why a change could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The entries would not fit: how many the zone holds at most.
    Full(usize),
    /// The zone is not prepared (never, once nginx has mapped it).
    Unavailable,
    /// A reload is replacing the zone with one of another size (`hand_over`).
    Retired,
}

impl Table {
    /// The table at `addr`.
    ///
    /// # Safety
    /// `addr` points at a zone block prepared by `init`, mapped for the life of the process.
    pub unsafe fn at(addr: *mut u8) -> &'static Table {
        // SAFETY: as this function's.
        unsafe { &*addr.cast::<Table>() }
    }

    /// The table at `addr` if a block of `size` bytes there holds one of this layout.
    ///
    /// # Safety
    /// As `at`, for a block of `size` bytes.
    pub unsafe fn at_checked(addr: *mut u8, size: usize) -> Option<&'static Table> {
        // SAFETY: as this function's.
        let table = unsafe { Table::at(addr) };
        (table.magic.load(Ordering::Acquire) == MAGIC
            && table.slots.load(Ordering::Acquire) == slots_for(size))
        .then_some(table)
    }

    /// Prepares the block of `size` bytes at `addr`: cleared when new (or of an unknown
    /// layout), kept over a reload.
    ///
    /// # Safety
    /// `addr` has `size` writable bytes of shared memory, zeroed or written by this module;
    /// called by the master before the configuration's workers start.
    pub unsafe fn init(addr: *mut u8, size: usize, pool: *mut ngx_slab_pool_t, seed: u64) {
        // SAFETY: as this function's; all-zero is a valid header.
        let table = unsafe { Table::at(addr) };
        // SAFETY: as this function's.
        if unsafe { Table::at_checked(addr, size) }.is_none() {
            // SAFETY: `addr` has `size` bytes, nothing else's; zero is an empty table.
            unsafe { core::ptr::write_bytes(addr, 0, size) };
            table.slots.store(slots_for(size), Ordering::Release);
            table.seed.store(seed, Ordering::Release);
            table.magic.store(MAGIC, Ordering::Release);
        }
        table.pool.store(pool, Ordering::Release);
    }

    /// Whether the table holds no entry: nothing to look up.
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The time of the entry `kind`/`value` while it counts at `now`.
    pub fn lookup(&self, lock: &Locked, kind: Kind, value: &str, when: When) -> Option<i64> {
        let i = self.find(lock, kind, value.as_bytes())?;
        let slot = self.slot(lock, i)?;
        (when.now < expires(slot, when.ttl)).then_some(slot.time)
    }

    /// Holds the zone's lock for a series of reads or a change.
    pub fn lock(&self) -> Option<Locked> {
        ShmLock::of(self.pool.load(Ordering::Acquire)).map(Locked)
    }

    /// Adds `entries`, all or none; an entry already held keeps the later time. Entries
    /// expired at `now` are left out. The number of entries now in effect, and whether
    /// anything changed.
    pub fn insert(&self, entries: &[Entry], when: When) -> Result<(usize, bool), Refused> {
        let now = when.now;
        if self.retired(now) {
            return Err(Refused::Retired);
        }
        let ttl = when.ttl;
        let live: Vec<&Entry> = entries.iter().filter(|e| now < e.expires(ttl)).collect();
        // Each name once, counted before the lock is taken: requests wait on it.
        let mut seen = HashSet::with_capacity(live.len());
        let distinct: Vec<&Entry> = live
            .iter()
            .copied()
            .filter(|e| seen.insert((e.kind, e.value.as_str())))
            .collect();
        let max = self.slots() * 3 / 4;
        if distinct.len() > max {
            return Err(Refused::Full(max));
        }
        let lock = self.lock().ok_or(Refused::Unavailable)?;
        let mut new = self.new_entries(&lock, &distinct);
        if self.count.load(Ordering::Acquire) + new > max {
            self.purge_locked(&lock, when);
            new = self.new_entries(&lock, &distinct);
            if self.count.load(Ordering::Acquire) + new > max {
                return Err(Refused::Full(max));
            }
        }
        let mut changed = false;
        for e in &live {
            changed |= self.put(&lock, e);
        }
        if self.purged_at.load(Ordering::Acquire) + PURGE_EVERY <= now {
            changed |= self.purge_locked(&lock, when);
        }
        if changed {
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        Ok((live.len(), changed))
    }

    /// Removes the entry `kind`/`value`; whether there was one.
    pub fn remove(&self, kind: Kind, value: &str, now: i64) -> Result<bool, Refused> {
        if self.retired(now) {
            return Err(Refused::Retired);
        }
        let lock = self.lock().ok_or(Refused::Unavailable)?;
        let Some(i) = self.find(&lock, kind, value.as_bytes()) else {
            return Ok(false);
        };
        self.delete(&lock, i);
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// At a reload, for the new zone of another size that replaces this one: the entries in
    /// effect at `now`, this table retired from then on. The lock is tried for at most a
    /// second: the master runs this, and cannot release the lock of a worker that died holding
    /// it while it reads a configuration.
    pub fn hand_over(&self, when: When) -> Option<Vec<Entry>> {
        let lock = ShmLock::try_of(self.pool.load(Ordering::Acquire), 1000).map(Locked)?;
        self.retired_at.store(when.now.max(1), Ordering::Release);
        Some(self.entries(&lock, when))
    }

    /// Takes changes again: the reload that took the entries over failed.
    pub fn take_back(&self) {
        self.retired_at.store(0, Ordering::Release);
    }

    /// Whether the table was handed over to a new zone, in a worker that exits (or too
    /// recently to know whether the reload failed).
    fn retired(&self, now: i64) -> bool {
        let at = self.retired_at.load(Ordering::Acquire);
        at != 0 && (exiting() || now.saturating_sub(at) < RETIRING)
    }

    /// The entries in effect at `now`, and the version they are of.
    pub fn list(&self, when: When) -> Result<(Vec<Entry>, u64), Refused> {
        let lock = self.lock().ok_or(Refused::Unavailable)?;
        Ok((self.entries(&lock, when), self.version()))
    }

    fn entries(&self, lock: &Locked, when: When) -> Vec<Entry> {
        let held = self.count.load(Ordering::Acquire).min(self.slots());
        let mut out = Vec::with_capacity(held);
        for i in 0..self.slots() {
            let Some(slot) = self.slot(lock, i) else {
                break;
            };
            if slot.hash == 0 || when.now >= expires(slot, when.ttl) {
                continue;
            }
            let (Some(kind), Some(value)) = (Kind::from_byte(slot.kind), slot_value(slot)) else {
                continue;
            };
            out.push(Entry {
                kind,
                value: String::from_utf8_lossy(value).into_owned(),
                time: slot.time,
            });
        }
        out
    }

    /// Whether a file written for `version` may replace the state file: it holds an earlier
    /// one. Asked with the lock held, and `set_written` told under the same lock, so that two
    /// workers' files replace each other in the order of their versions.
    pub fn newer_than_written(&self, _lock: &Locked, version: u64) -> bool {
        version > self.written.load(Ordering::Acquire)
    }

    pub fn set_written(&self, _lock: &Locked, version: u64) {
        self.written.store(version, Ordering::Release);
    }

    /// Whether the state file lacks a change (its last write failed): the next change through
    /// the API or a fleet writes it, even one that changes nothing.
    pub fn unsaved(&self) -> bool {
        self.version() > self.written.load(Ordering::Acquire)
    }

    fn slots(&self) -> usize {
        self.slots.load(Ordering::Acquire)
    }

    /// How many of `entries`, each a different name, the table does not hold.
    fn new_entries(&self, lock: &Locked, entries: &[&Entry]) -> usize {
        entries
            .iter()
            .filter(|e| self.find(lock, e.kind, e.value.as_bytes()).is_none())
            .count()
    }

    /// Stores `e`, or moves its time on; whether anything changed. Room was checked.
    fn put(&self, lock: &Locked, e: &Entry) -> bool {
        let bytes = e.value.as_bytes();
        if let Some(i) = self.find(lock, e.kind, bytes) {
            let Some(slot) = self.slot_mut(lock, i) else {
                return false;
            };
            let time = Entry::merged(slot.time, e.time);
            let changed = time != slot.time;
            slot.time = time;
            return changed;
        }
        let Ok(len) = u8::try_from(bytes.len()) else {
            return false;
        };
        let h = hash(e.kind, bytes, self.seed.load(Ordering::Acquire));
        let n = self.slots();
        let mut i = home(h, n);
        for _ in 0..n {
            let Some(slot) = self.slot_mut(lock, i) else {
                return false;
            };
            if slot.hash == 0 {
                let mut value = [0; MAX_VALUE];
                if let Some(dst) = value.get_mut(..bytes.len()) {
                    dst.copy_from_slice(bytes);
                }
                *slot = Slot {
                    hash: h,
                    time: e.time,
                    kind: e.kind.byte(),
                    len,
                    value,
                    _pad: [0; SLOT_PAD],
                };
                self.count.fetch_add(1, Ordering::AcqRel);
                return true;
            }
            i = (i + 1) % n;
        }
        false
    }

    /// The slot holding `kind`/`value`.
    fn find(&self, lock: &Locked, kind: Kind, value: &[u8]) -> Option<usize> {
        let n = self.slots();
        if n == 0 || value.len() > MAX_VALUE {
            return None;
        }
        let h = hash(kind, value, self.seed.load(Ordering::Acquire));
        let mut i = home(h, n);
        for _ in 0..n {
            let slot = self.slot(lock, i)?;
            if slot.hash == 0 {
                return None;
            }
            if slot.hash == h && slot.kind == kind.byte() && slot_value(slot) == Some(value) {
                return Some(i);
            }
            i = (i + 1) % n;
        }
        None
    }

    /// Empties slot `i`, moving up the entries after it that probing would no longer reach.
    fn delete(&self, lock: &Locked, i: usize) {
        let n = self.slots();
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) % n;
            let Some(&next) = self.slot(lock, j) else {
                break;
            };
            if next.hash == 0 || j == i {
                break;
            }
            let h = home(next.hash, n);
            // `next` stays when its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                if let Some(slot) = self.slot_mut(lock, hole) {
                    *slot = next;
                }
                hole = j;
            }
        }
        if let Some(slot) = self.slot_mut(lock, hole) {
            slot.hash = 0;
        }
        // Saturating: a worker killed between a slot's write and the count's must not make it
        // wrap (`purge_locked` recounts).
        let _ = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(1))
            });
    }

    /// Removes every entry expired at `now`, and counts the rest afresh; whether there was
    /// one.
    fn purge_locked(&self, lock: &Locked, when: When) -> bool {
        self.purged_at.store(when.now, Ordering::Release);
        let mut removed = false;
        let mut i = 0;
        while i < self.slots() {
            let Some(slot) = self.slot(lock, i) else {
                break;
            };
            if slot.hash != 0 && when.now >= expires(slot, when.ttl) {
                // The entry moved into `i` is looked at next.
                self.delete(lock, i);
                removed = true;
            } else {
                i += 1;
            }
        }
        let held = (0..self.slots())
            .filter(|&i| self.slot(lock, i).is_some_and(|s| s.hash != 0))
            .count();
        self.count.store(held, Ordering::Release);
        removed
    }

    fn slot(&self, _lock: &Locked, i: usize) -> Option<&Slot> {
        if i >= self.slots() {
            return None;
        }
        // SAFETY: `init` sized the table for `slots` entries after the header, in the zone's
        // block; the lock is held, so no other process writes them.
        Some(unsafe { &*self.slots_ptr().add(i) })
    }

    #[allow(clippy::mut_from_ref)]
    fn slot_mut(&self, _lock: &Locked, i: usize) -> Option<&mut Slot> {
        if i >= self.slots() {
            return None;
        }
        // SAFETY: as `slot`; the lock is held, and no other reference to this slot is alive
        // (callers copy what they read before writing).
        Some(unsafe { &mut *self.slots_ptr().add(i) })
    }

    fn slots_ptr(&self) -> *mut Slot {
        // SAFETY: the slots follow the header within the block `init` prepared.
        unsafe {
            (self as *const Table)
                .cast::<u8>()
                .cast_mut()
                .add(HEADER)
                .cast::<Slot>()
        }
    }
}

/// The zone's lock, held; reads and changes of the table take it as proof.
pub struct Locked(#[allow(dead_code)] ShmLock);

fn home(h: u64, n: usize) -> usize {
    (h % n as u64) as usize
}

fn slot_value(slot: &Slot) -> Option<&[u8]> {
    slot.value.get(..usize::from(slot.len))
}

/// When the entry of `slot` stops counting (`Entry::expires`).
fn expires(slot: &Slot, ttl: i64) -> i64 {
    match Kind::from_byte(slot.kind) {
        Some(Kind::Sub) => slot.time.saturating_add(ttl),
        _ => slot.time,
    }
}
