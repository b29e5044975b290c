//! The zones of `auth_jwt_revocation_zone`, in `MainConf`. What `auth_jwt_revocation` and
//! `auth_jwt_revocation_request` compile into an `Auth` is in `verify`.

use core::ptr::NonNull;

use jwt_core::revocation::Entry;
use ngx::ffi::ngx_shm_zone_t;

/// One `auth_jwt_revocation_zone`.
pub struct ZoneConf {
    pub name: String,
    /// The table's bytes (`zone=NAME:SIZE`).
    pub size: usize,
    /// `state=`: the file the list is kept in, resolved against nginx's prefix.
    pub state: Option<String>,
    /// `ttl=`, in seconds: how long a subject's cutoff counts.
    pub ttl: i64,
    /// What the state file held when the configuration was read.
    pub loaded: Vec<Entry>,
    pub shm: Option<NonNull<ngx_shm_zone_t>>,
    /// At a reload, the running configuration's block of this zone and its size: a zone of
    /// another size is a new one, which takes its entries over.
    pub previous: Option<(NonNull<u8>, usize)>,
}

/// `ttl=`'s default: a week, the longest token lifetime among the deployments served.
pub const DEFAULT_TTL: i64 = 7 * 24 * 60 * 60;
