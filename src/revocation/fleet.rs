//! `auth_jwt_revocation_request uri interval`: a fleet of nginx servers follows one list, the
//! one a login service publishes (the API's `GET` answer, or any URL serving that JSON).
//!
//! The list is fetched the way keys are (`key_request`): a background subrequest to a local
//! URI, isolated from the client, one at a time across the workers, backed off after a
//! failure. A request checked against the zone starts it when `interval` has passed since the
//! last fetch, and never waits for it. What arrives is merged into the zone (an entry held
//! keeps the later time, so nothing known is lost); a failed fetch keeps the zone as it is.

use jwt_core::refresh::{follow_due, Snapshot};
use ngx::ffi::{ngx_http_request_t, ngx_int_t};

use crate::conf::{MainConf, Revocation};
use crate::key_request::{
    key_zone, start_claimed, started_own_fetch, wait_for_fetch, Purpose, Started,
};
use crate::ngx::request::now_ms;

/// Starts the fetch of `revocation`'s followed list in the background when it is due, and
/// makes `r` wait for it (`Some(NGX_DONE)`) only when the list is older than twice its
/// interval (nothing checked for a while, or a fresh start) and its last fetch did not fail:
/// a server back from an idle spell does not judge with what it knew before it.
pub fn follow(
    r: &mut ngx_http_request_t,
    main: &'static MainConf,
    revocation: &Revocation,
) -> Option<ngx_int_t> {
    let follow = revocation.follow.as_ref()?;
    let zone = main.revocation_zones.get(revocation.zone)?;
    let keys = key_zone(main)?;
    let (now_ms, id, interval) = (now_ms(), follow.source.id, follow.interval_ms);
    let i = keys.slot_of(id, now_ms)?;
    let epoch = keys.epoch();
    let due = |s: &Snapshot| follow_due(s, now_ms, epoch, interval) && s.may_fetch(now_ms);
    // Read without the lock first: nearly every request finds nothing due.
    let s = keys.snapshot(i, id, now_ms)?;
    let mut started = false;
    if due(&s) && !started_own_fetch(r) {
        if let Some(start) = keys.claim_when(i, id, now_ms, false, due) {
            let purpose = Purpose::Revocations { zone };
            started =
                start_claimed(r, keys, i, &follow.source, start, now_ms, purpose) == Started::Yes;
        }
    }
    let stale =
        s.fetched_at == 0 || now_ms.saturating_sub(s.fetched_at) > interval.saturating_mul(2);
    let failing = s.failures > 0 && s.attempted_at >= s.fetched_at;
    let fetching = started
        || keys
            .snapshot(i, id, now_ms)
            .is_some_and(|s| s.fetching(now_ms));
    (stale && !failing && fetching)
        .then(|| wait_for_fetch(r, now_ms, started))
        .flatten()
}
