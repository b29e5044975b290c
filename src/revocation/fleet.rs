//! `auth_jwt_revocation_request uri interval`: a fleet of nginx servers follows one list, the
//! one a login service publishes (the API's `GET` answer, or any URL serving that JSON).
//!
//! The list is fetched the way keys are (`key_request`): a background subrequest to a local
//! URI, isolated from the client, one at a time across the workers, backed off after a
//! failure. A request checked against the zone starts it when `interval` has passed since the
//! last fetch, and never waits for it. What arrives is merged into the zone (an entry held
//! keeps the later time, so nothing known is lost); a failed fetch keeps the zone as it is.

use jwt_core::refresh::follow_due;
use ngx::ffi::ngx_http_request_t;

use crate::conf::{MainConf, Revocation};
use crate::key_request::{key_zone, start_claimed, Purpose};
use crate::ngx::request::now_ms;

/// Starts the fetch of `revocation`'s followed list in the background, if it is due.
pub fn follow(r: &mut ngx_http_request_t, main: &'static MainConf, revocation: &Revocation) {
    let Some(follow) = &revocation.follow else {
        return;
    };
    let (Some(zone), Some(keys)) = (main.revocation_zones.get(revocation.zone), key_zone(main))
    else {
        return;
    };
    let (now_ms, id) = (now_ms(), follow.source.id);
    let Some(i) = keys.slot_of(id, now_ms) else {
        return;
    };
    let epoch = keys.epoch();
    let due = |s: &jwt_core::refresh::Snapshot| {
        follow_due(s, now_ms, epoch, follow.interval_ms) && s.may_fetch(now_ms)
    };
    // Read without the lock first: nearly every request finds nothing due.
    if !keys.snapshot(i, id, now_ms).is_some_and(|s| due(&s)) {
        return;
    }
    let Some(start) = keys.claim_when(i, id, now_ms, false, due) else {
        return;
    };
    let purpose = Purpose::Revocations { zone };
    start_claimed(r, keys, i, &follow.source, start, now_ms, purpose);
}
