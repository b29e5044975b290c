//! Background subrequests made for the server, not for the client, with their answer kept in
//! memory.

use core::ffi::c_void;
use core::ptr;

use ngx::ffi::{
    ngx_http_headers_in_t, ngx_http_post_subrequest_t, ngx_http_request_t, ngx_http_subrequest,
    ngx_int_t, ngx_list_init, ngx_palloc, ngx_pcalloc, ngx_table_elt_t, ngx_variable_value_t,
    NGX_HTTP_SUBREQUEST_BACKGROUND, NGX_HTTP_SUBREQUEST_IN_MEMORY, NGX_OK,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use super::pool::pool_str;
use super::string::bytes;

/// Called when a subrequest ends: the subrequest, the data given to `fetch`, nginx's code.
pub type Done = unsafe extern "C" fn(*mut ngx_http_request_t, *mut c_void, ngx_int_t) -> ngx_int_t;

/// Starts a subrequest of `r` to `uri` (with `args`) that runs in the background (`r` does
/// not wait for it, and its answer is never sent to the client) and keeps its response body
/// in memory. It carries none of the client's headers, arguments or body, and has variables of
/// its own: whatever the client sends cannot shape the request (`Range`, `If-None-Match`,
/// `Accept-Encoding`, `Host`) or reach the server it goes to (`Authorization`, cookies), and
/// what the subrequest computes never becomes the client request's value of a variable.
/// `done(sr, data, rc)` runs when it ends.
pub fn fetch(
    r: &mut ngx_http_request_t,
    uri: &str,
    args: &str,
    done: Done,
    data: *mut c_void,
) -> Option<()> {
    let (uri_text, args_text) = (uri, args);
    let mut uri = pool_str(r.pool, uri.as_bytes())?;
    let mut args = pool_str(r.pool, args.as_bytes())?;
    // SAFETY: the pool is live; NULL or room for one record, written at once.
    let ps = unsafe {
        let ps = ngx_palloc(r.pool, core::mem::size_of::<ngx_http_post_subrequest_t>())
            .cast::<ngx_http_post_subrequest_t>();
        if ps.is_null() {
            return None;
        }
        ps.write(ngx_http_post_subrequest_t {
            handler: Some(done),
            data,
        });
        ps
    };
    let flags = NGX_HTTP_SUBREQUEST_IN_MEMORY | NGX_HTTP_SUBREQUEST_BACKGROUND;
    let mut sr: *mut ngx_http_request_t = ptr::null_mut();
    // SAFETY: `r` is a live request; the strings and `ps` live in its pool.
    let rc = unsafe { ngx_http_subrequest(r, &mut uri, &mut args, &mut sr, ps, flags as usize) };
    // SAFETY: on success nginx returns the new subrequest, not yet run.
    let sr = unsafe { sr.as_mut() }.filter(|_| rc == NGX_OK as ngx_int_t)?;
    // SAFETY: as above.
    unsafe { without_client_input(sr, r, uri_text, args_text) }
}

/// Gives `sr` empty request headers (`$host` is then the server's name), no body, variables
/// of its own (nginx shares the parent's, cached values included), and a request line and
/// URI as written that are `uri?args`'s, not the client's.
///
/// # Safety
/// `sr` is a subrequest of `r` that has not run yet.
unsafe fn without_client_input(
    sr: &mut ngx_http_request_t,
    r: &ngx_http_request_t,
    uri: &str,
    args: &str,
) -> Option<()> {
    let count = NgxHttpCoreModule::main_conf(r)?.variables.nelts;
    // SAFETY: the pool is live; NULL or zeroed room for the values, "not yet evaluated".
    let variables = unsafe {
        ngx_pcalloc(
            sr.pool,
            count.max(1) * core::mem::size_of::<ngx_variable_value_t>(),
        )
    };
    if variables.is_null() {
        return None;
    }
    sr.variables = variables.cast();
    // SAFETY: every field of the headers is a pointer, a number or a flag: zero is "absent".
    let mut headers: ngx_http_headers_in_t = unsafe { core::mem::zeroed() };
    headers.content_length_n = -1;
    headers.keep_alive_n = -1;
    sr.headers_in = headers;
    // SAFETY: the list is in `sr`, which lives in the pool; ngx_list_init points it at itself.
    let rc = unsafe {
        ngx_list_init(
            &mut sr.headers_in.headers,
            sr.pool,
            1,
            core::mem::size_of::<ngx_table_elt_t>(),
        )
    };
    sr.request_body = ptr::null_mut();
    // nginx copies the client's request line and URI as written (`$request`, `$request_uri`,
    // the usual `proxy_cache_key`): the fetch's are its own.
    let target = if args.is_empty() {
        uri.to_owned()
    } else {
        format!("{uri}?{args}")
    };
    sr.unparsed_uri = pool_str(sr.pool, target.as_bytes())?;
    sr.request_line = pool_str(sr.pool, format!("GET {target} HTTP/1.0").as_bytes())?;
    (rc == NGX_OK as ngx_int_t).then_some(())
}

/// What an in-memory subrequest answered: its status (nginx's code when it sent none) and the
/// body as far as it came.
pub fn answer(sr: &ngx_http_request_t, rc: ngx_int_t) -> (usize, &[u8]) {
    let status = match sr.headers_out.status {
        0 if rc >= 100 => rc as usize,
        status => status,
    };
    // SAFETY: `out` is NULL or the chain the in-memory filter fills, one buffer whose
    // `pos..last` holds the body, in the request's pool.
    let body = unsafe {
        sr.out
            .as_ref()
            .and_then(|cl| cl.buf.as_ref())
            .filter(|b| !b.pos.is_null() && b.last >= b.pos)
            .map(|b| core::slice::from_raw_parts(b.pos, b.last.offset_from(b.pos) as usize))
    };
    (status, body.unwrap_or_default())
}

/// The response's `Content-Encoding`, if it has one.
pub fn content_encoding(sr: &ngx_http_request_t) -> Option<&[u8]> {
    // SAFETY: NULL or an element of the response's header list.
    unsafe { sr.headers_out.content_encoding.as_ref() }
        .filter(|h| h.hash != 0)
        .map(|h| bytes(&h.value))
}
