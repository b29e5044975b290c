//! Revocation: tokens refused before their expiry, by `jti` or by subject (`sub` with a cutoff
//! time, "log out everywhere").
//!
//! - `zone`: the list in shared memory, one per `auth_jwt_revocation_zone`;
//! - `state`: its state file (`state=`), read at load and written after each change;
//! - `api`: the content handler of `auth_jwt_revocation_api`, the login service's way in.
//!
//! The check runs where a token is judged (`verdict`), on every request, cached tokens
//! included: a revoked token is an invalid one for the access check and for every `$jwt_*`
//! variable, in every phase.

pub mod api;
pub mod fleet;
pub mod state;
pub mod zone;

use core::cell::RefCell;
use core::ffi::c_void;
use core::ptr::NonNull;
use std::collections::HashMap;

use jwt_core::revocation::{cut_off, parse_entries, Kind};
use jwt_core::{Claims, Error, Reason};
use ngx::ffi::{ngx_shm_zone_t, ngx_slab_pool_t, NGX_LOG_ERR};

use crate::conf::{Revocation, ZoneConf};
use crate::ngx::request::now;
use crate::ngx::shm::zone_memory;

use zone::{Refused, Table, When};

/// The owner of every revocation zone, for nginx's check that a zone name is not declared
/// for two uses.
pub static TAG: u8 = 0;

/// The largest list fetched by `auth_jwt_revocation_request`: 16 MiB, some 250,000 entries.
pub const MAX_LIST: usize = 16 * 1024 * 1024;

/// Now, for `zone`'s table.
pub fn clock(zone: &ZoneConf) -> When {
    When {
        now: now(),
        ttl: zone.ttl,
    }
}

/// Writes `zone`'s state file, if it has one, after a change (`changed`) or when it lacks an
/// earlier one (its last write failed).
pub fn persist(zone: &ZoneConf, table: &Table, changed: bool) -> Result<(), String> {
    let Some(path) = &zone.state else {
        return Ok(());
    };
    if !changed && !table.unsaved() {
        return Ok(());
    }
    let (entries, version) = table
        .list(clock(zone))
        .map_err(|_| "the zone is not ready".to_owned())?;
    state::save(path, table, &entries, version)
}

/// The table of `zone`; `None` before nginx maps it.
pub fn table(zone: &ZoneConf) -> Option<&'static Table> {
    table_of(zone.shm?)
}

fn table_of(shm: NonNull<ngx_shm_zone_t>) -> Option<&'static Table> {
    let addr = zone_memory(shm)?;
    // SAFETY: a revocation zone's block was prepared by `init_zone`, mapped for the life of
    // the process.
    Some(unsafe { Table::at(addr.as_ptr()) })
}

/// Prepares a revocation zone's block and merges into it what it must hold: at a reload that
/// changed its size, the entries of the zone it replaces (never dropped silently), and what
/// the state file held (an entry already held keeps the later time). `false`, logged, when they
/// do not fit: nginx then keeps the running configuration.
///
/// # Safety
/// As `shm::Init`; `arg` is the zone's `ZoneConf`, alive while the configuration is.
pub unsafe fn init_zone(
    addr: *mut u8,
    pool: *mut ngx_slab_pool_t,
    reused: bool,
    arg: *const c_void,
) -> bool {
    // SAFETY: `arg` is the `ZoneConf` `add_zone` was given, in the configuration being
    // applied.
    let Some(conf) = (unsafe { arg.cast::<ZoneConf>().as_ref() }) else {
        return false;
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    // SAFETY: as this function's: the zone's block of `conf.size` bytes.
    unsafe { Table::init(addr, conf.size, pool, seed) };
    // SAFETY: as above.
    let table = unsafe { Table::at(addr) };
    // nginx's cached clock, which the master keeps as the workers do.
    let when = clock(conf);
    let mut old = None;
    let mut carried = Vec::new();
    if let (false, Some((block, size))) = (reused, conf.previous) {
        // SAFETY: the running configuration's block of this zone, still mapped (nginx frees
        // the zones it replaces after preparing the new ones); its layout is checked.
        old = unsafe { Table::at_checked(block.as_ptr(), size) };
        if let Some(old) = old {
            let Some(entries) = old.hand_over(when) else {
                log_emerg(format_args!(
                    "auth_jwt_revocation_zone \"{}\": the zone it replaces stays locked",
                    conf.name
                ));
                return false;
            };
            carried = entries;
        }
    }
    let from_old = carried.len();
    let sources = [
        (carried, "the zone it replaces"),
        (conf.loaded.clone(), "its state file"),
    ];
    for (entries, from) in sources {
        if let Err(Refused::Full(max)) = table.insert(&entries, when) {
            log_emerg(format_args!(
                "auth_jwt_revocation_zone \"{}\" holds {max} entries, too few for the {} of \
                 {from} ({from_old} in the zone it replaces): enlarge it",
                conf.name,
                entries.len()
            ));
            // The running configuration stays, with its zone.
            if let Some(old) = old {
                old.take_back();
            }
            return false;
        }
    }
    true
}

/// Logs on the running cycle's log (the master's, while zones are prepared).
fn log_emerg(args: core::fmt::Arguments) {
    // SAFETY: nginx sets `ngx_cycle` before reading any configuration; its log is open.
    let log = unsafe { (*ngx::ffi::ngx_cycle).log };
    ngx::ngx_log_error!(ngx::ffi::NGX_LOG_EMERG, log, "{}", args);
}

/// The version of `revocation`'s list, which every change moves on; 0 before nginx maps it.
pub fn version(revocation: &Revocation) -> u64 {
    table_of(revocation.shm).map_or(0, Table::version)
}

/// Why `claims`, of a valid token, are refused by `revocation` at `now`: its `jti` is listed,
/// or its subject's cutoff is later than its `iat` (or it has none). A zone not yet mapped
/// holds nothing.
pub fn check(revocation: &Revocation, claims: &Claims, now: i64) -> Option<Error> {
    let table = table_of(revocation.shm)?;
    if table.is_empty() {
        return None;
    }
    // A number is listed as its JSON text, as `$jwt_claim_sub` reads it.
    let (jti, sub) = (claims.jti_text(), claims.sub_text());
    let (jti, sub) = (jti.as_deref(), sub.as_deref());
    let when = When {
        now,
        ttl: revocation.ttl,
    };
    let lock = table.lock()?;
    if let Some(jti) = jti {
        if table.lookup(&lock, Kind::Jti, jti, when).is_some() {
            drop(lock);
            return Some(revoked(format_args!("jti {} is revoked", quoted(jti))));
        }
    }
    let cutoff = sub.and_then(|sub| table.lookup(&lock, Kind::Sub, sub, when));
    drop(lock);
    let (Some(sub), Some(cutoff)) = (sub, cutoff) else {
        return None;
    };
    let iat = claims.iat();
    if !cut_off(iat, cutoff) {
        return None;
    }
    Some(match iat {
        Some(iat) => revoked(format_args!(
            "sub {} is cut off at {cutoff}, the token was issued at {iat}",
            quoted(sub)
        )),
        None => revoked(format_args!(
            "sub {} is cut off at {cutoff}, the token has no iat",
            quoted(sub)
        )),
    })
}

#[cold]
fn revoked(detail: core::fmt::Arguments) -> Error {
    Error {
        reason: Reason::Revoked,
        detail: detail.to_string(),
    }
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.escape_debug())
}

thread_local! {
    /// The digest of the list this worker last merged, by source: the same list again (each
    /// fetch of an unchanged list) is not merged again.
    static MERGED: RefCell<HashMap<u64, u64>> = RefCell::new(HashMap::new());
}

/// Merges the list `uri` (source `id`) answered into `zone`, all or nothing, and saves the
/// zone's state file if it changed; what to log beside, or why nothing was merged.
pub fn merge(
    zone: &ZoneConf,
    id: u64,
    uri: &str,
    body: &[u8],
) -> Result<Vec<(u32, String)>, String> {
    let digest = {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        h.finish()
    };
    if MERGED.with(|m| m.borrow().get(&id) == Some(&digest)) {
        return Ok(Vec::new());
    }
    let problems = merge_list(zone, uri, body)?;
    // Merged and saved: the same list again needs nothing.
    if problems.is_empty() {
        MERGED.with(|m| m.borrow_mut().insert(id, digest));
    }
    Ok(problems)
}

fn merge_list(zone: &ZoneConf, uri: &str, body: &[u8]) -> Result<Vec<(u32, String)>, String> {
    let entries = parse_entries(body, None)
        .map_err(|e| format!("\"{uri}\" answered an unusable revocation list: {e}"))?;
    let table = table(zone).ok_or_else(|| format!("zone \"{}\" is not ready", zone.name))?;
    let changed = match table.insert(&entries, clock(zone)) {
        Ok((_, changed)) => changed,
        Err(Refused::Full(max)) => {
            return Err(format!(
                "zone \"{}\" cannot hold the list ({max} entries at most): nothing of it was \
                 merged",
                zone.name
            ))
        }
        Err(Refused::Unavailable) => return Err(format!("zone \"{}\" is not ready", zone.name)),
        Err(Refused::Retired) => {
            return Err(format!(
                "zone \"{}\" is being replaced by a reload",
                zone.name
            ))
        }
    };
    let mut problems = Vec::new();
    if let Err(e) = persist(zone, table, changed) {
        problems.push((
            NGX_LOG_ERR,
            format!("merged, but not saved (a restart would lose it): {e}"),
        ));
    }
    Ok(problems)
}
