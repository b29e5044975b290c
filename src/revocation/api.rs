//! `auth_jwt_revocation_api NAME`: the location through which a login service revokes.
//!
//! - `GET` (and `HEAD`): the entries in effect, as a JSON array;
//! - `POST`: a JSON object or array of entries, added all or none;
//! - `DELETE`: a JSON object naming one entry (`{"sub": …}` or `{"jti": …}`), removed.
//!
//! Every answer is JSON; an error is `{"error": "…"}` on one line, logged, and changes nothing.
//! A full zone refuses the whole request (507): nothing is dropped or evicted to make room.
//! With `state=`, a change is answered only once the state file holds it.
//!
//! The location answers main requests only. A subrequest skips the access phase, so `allow`,
//! `deny` and `auth_jwt` guarding the location would not guard it, and a mirror would replay
//! the client's `POST`.

use core::ptr;

use jwt_core::revocation::{error_json, parse_entries, parse_name, to_json, Defaults};
use ngx::ffi::{
    ngx_http_discard_request_body, ngx_http_finalize_request, ngx_http_read_client_request_body,
    ngx_http_request_t, ngx_int_t, NGX_DONE, NGX_ERROR, NGX_HTTP_DELETE, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_POST, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, NGX_OK,
};

use crate::conf::Lookup;
use crate::ngx::guard::guard;
use crate::ngx::request::{log, now};
use crate::ngx::response::send;

use super::zone::{Refused, Table};
use crate::conf::ZoneConf;

use super::{clock, persist, table};

const JSON: &[u8] = b"application/json";

/// The location's content handler.
///
/// # Safety
/// Called by nginx with a valid request.
pub unsafe extern "C" fn handler<L: Lookup>(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes the request being processed.
    let Some(r) = (unsafe { r.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let conn_log = unsafe { (*r.connection).log };
    guard(
        conn_log,
        "the revocation API",
        NGX_ERROR as ngx_int_t,
        || start::<L>(r),
    )
}

fn start<L: Lookup>(r: &mut ngx_http_request_t) -> ngx_int_t {
    let Some(zone) = api_zone::<L>(r) else {
        return NGX_ERROR as ngx_int_t;
    };
    if !ptr::eq(r, r.main) {
        return refuse(r, 403, "the revocation API does not answer subrequests");
    }
    let method = r.method as u32;
    if method == NGX_HTTP_GET || method == NGX_HTTP_HEAD {
        // SAFETY: `r` is the live main request.
        if unsafe { ngx_http_discard_request_body(r) } != NGX_OK as ngx_int_t {
            return NGX_ERROR as ngx_int_t;
        }
        return list(r, zone);
    }
    if method != NGX_HTTP_POST && method != NGX_HTTP_DELETE {
        let allow: &[(&'static [u8], &'static [u8], &[u8])] =
            &[(b"Allow", b"allow", b"GET, HEAD, POST, DELETE")];
        log_error(r, "method not allowed");
        return send(r, 405, JSON, b"{\"error\":\"method not allowed\"}\n", allow);
    }
    // SAFETY: `r` is the live main request; nginx calls `body_read` once the body is in.
    let rc = unsafe { ngx_http_read_client_request_body(r, Some(body_read::<L>)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return rc;
    }
    NGX_DONE as ngx_int_t
}

/// The body is in: the change is made and answered.
unsafe extern "C" fn body_read<L: Lookup>(r: *mut ngx_http_request_t) {
    // SAFETY: nginx passes the request whose body it read.
    let Some(req) = (unsafe { r.as_mut() }) else {
        return;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let conn_log = unsafe { (*req.connection).log };
    let rc = guard(
        conn_log,
        "the revocation API",
        NGX_ERROR as ngx_int_t,
        || match api_zone::<L>(req) {
            Some(zone) => change(req, zone),
            None => NGX_ERROR as ngx_int_t,
        },
    );
    // SAFETY: as above; the handler returned NGX_DONE, so the request is ours to finalize.
    unsafe { ngx_http_finalize_request(r, rc) };
}

/// The zone of the request's location.
fn api_zone<L: Lookup>(r: &ngx_http_request_t) -> Option<&'static ZoneConf> {
    let i = L::loc(r)?.api?;
    L::main(r)?.revocation_zones.get(i).map(|z| &**z)
}

fn list(r: &mut ngx_http_request_t, zone: &ZoneConf) -> ngx_int_t {
    let Some(table) = table(zone) else {
        return unavailable(r, zone);
    };
    match table.list(clock(zone)) {
        Ok((entries, _)) => send(r, 200, JSON, to_json(&entries).as_bytes(), &[]),
        Err(_) => unavailable(r, zone),
    }
}

fn change(r: &mut ngx_http_request_t, zone: &ZoneConf) -> ngx_int_t {
    let Some(body) = body(r) else {
        return refuse(
            r,
            413,
            "the body is larger than \"client_body_buffer_size\"",
        );
    };
    let Some(table) = table(zone) else {
        return unavailable(r, zone);
    };
    let now = now();
    if r.method as u32 == NGX_HTTP_DELETE {
        let (kind, value) = match parse_name(&body) {
            Ok(name) => name,
            Err(e) => return refuse(r, 400, &e),
        };
        return match table.remove(kind, &value, now) {
            Ok(true) => saved(r, zone, table, true, b"{\"deleted\":1}\n"),
            Ok(false) => refuse(r, 404, &format!("no entry for this {}", kind.name())),
            Err(Refused::Retired) => reloading(r, zone),
            Err(_) => unavailable(r, zone),
        };
    }
    let defaults = Defaults { now, ttl: zone.ttl };
    let entries = match parse_entries(&body, Some(defaults)) {
        Ok(entries) => entries,
        Err(e) => return refuse(r, 400, &e),
    };
    match table.insert(&entries, clock(zone)) {
        Ok((stored, changed)) => {
            let answer = format!("{{\"stored\":{stored}}}\n");
            saved(r, zone, table, changed, answer.as_bytes())
        }
        Err(Refused::Full(max)) => {
            let name = &zone.name;
            let why = format!("zone \"{name}\" is full ({max} entries); nothing was stored");
            refuse(r, 507, &why)
        }
        Err(Refused::Retired) => reloading(r, zone),
        Err(Refused::Unavailable) => unavailable(r, zone),
    }
}

/// A change made in a worker of the configuration a reload replaces, once the new zone has
/// taken the entries over: it would be lost, so it is refused, to be sent again.
#[cold]
fn reloading(r: &mut ngx_http_request_t, zone: &ZoneConf) -> ngx_int_t {
    let why = format!(
        "zone \"{}\" is being replaced by a reload; nothing was changed, send it again",
        zone.name
    );
    refuse(r, 503, &why)
}

/// Answers a change (or a request that changed nothing, `changed` false) once the state file,
/// if any, holds it, and any change it missed before.
fn saved(
    r: &mut ngx_http_request_t,
    zone: &ZoneConf,
    table: &Table,
    changed: bool,
    answer: &[u8],
) -> ngx_int_t {
    if let Err(e) = persist(zone, table, changed) {
        let why = format!("the change is in effect but not saved, a restart would lose it: {e}");
        return refuse(r, 500, &why);
    }
    send(r, 200, JSON, answer, &[])
}

/// The request body, whole in memory; `None` when nginx kept part of it in a file.
fn body(r: &ngx_http_request_t) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    // SAFETY: after the body is read, `request_body` is NULL or nginx's record of it.
    let Some(rb) = (unsafe { r.request_body.as_ref() }) else {
        return Some(out);
    };
    let mut link = rb.bufs;
    // SAFETY: `bufs` is a chain of buffers of the request's pool, NULL-terminated.
    while let Some(cl) = unsafe { link.as_ref() } {
        // SAFETY: each link holds a buffer.
        let b = unsafe { cl.buf.as_ref() }?;
        if b.in_file() != 0 {
            return None;
        }
        if !b.pos.is_null() && b.last >= b.pos {
            // SAFETY: `pos..last` are the buffer's bytes in memory.
            let len = unsafe { b.last.offset_from(b.pos) } as usize;
            out.extend_from_slice(unsafe { core::slice::from_raw_parts(b.pos, len) });
        }
        link = cl.next;
    }
    Some(out)
}

/// An error answer, logged: `{"error": why}`.
#[cold]
fn refuse(r: &mut ngx_http_request_t, status: usize, why: &str) -> ngx_int_t {
    log_error(r, why);
    let body = error_json(why);
    send(r, status, JSON, body.as_bytes(), &[])
}

#[cold]
fn unavailable(r: &mut ngx_http_request_t, zone: &ZoneConf) -> ngx_int_t {
    let why = format!("zone \"{}\" is not ready", zone.name);
    refuse(r, 500, &why)
}

fn log_error(r: &ngx_http_request_t, why: &str) {
    log(
        r,
        NGX_LOG_ERR,
        format_args!("auth_jwt_revocation_api: {why}"),
    );
}
