//! A response a content handler makes whole: status, type, one body in memory.

use core::ptr;

use ngx::ffi::{
    ngx_chain_t, ngx_create_temp_buf, ngx_http_output_filter, ngx_http_request_t,
    ngx_http_send_header, ngx_int_t, ngx_str_t, NGX_ERROR, NGX_OK,
};

use super::headers::push_header;

/// Sends `status` with `body` of type `content_type`, and the headers `extra`; what the
/// content handler returns (or finalizes the request with).
pub fn send(
    r: &mut ngx_http_request_t,
    status: usize,
    content_type: &'static [u8],
    body: &[u8],
    extra: &[(&'static [u8], &'static [u8], &[u8])],
) -> ngx_int_t {
    let error = NGX_ERROR as ngx_int_t;
    for (name, lowcase, value) in extra {
        if push_header(
            &mut r.headers_out.headers,
            r.pool,
            name,
            lowcase,
            value,
            false,
        )
        .is_none()
        {
            return error;
        }
    }
    r.headers_out.status = status;
    r.headers_out.content_type = ngx_str_t {
        len: content_type.len(),
        data: content_type.as_ptr().cast_mut(),
    };
    r.headers_out.content_type_len = content_type.len();
    r.headers_out.content_length_n = body.len() as i64;
    // SAFETY: `r` is the live request this handler answers.
    let rc = unsafe { ngx_http_send_header(r) };
    if rc == error || rc > NGX_OK as ngx_int_t || r.header_only() != 0 {
        return rc;
    }
    // SAFETY: the request's pool; NULL or a buffer of `len` writable bytes (at least 1).
    let Some(b) = (unsafe { ngx_create_temp_buf(r.pool, body.len().max(1)).as_mut() }) else {
        return error;
    };
    // SAFETY: the buffer has room for the body, and is not the body's memory.
    unsafe {
        ptr::copy_nonoverlapping(body.as_ptr(), b.last, body.len());
        b.last = b.last.add(body.len());
    }
    b.set_last_buf(u32::from(ptr::eq(r, r.main)));
    b.set_last_in_chain(1);
    let mut out = ngx_chain_t {
        buf: b,
        next: ptr::null_mut(),
    };
    // SAFETY: the chain and its buffer live until the filters have taken them (the buffer is
    // pool memory; nginx copies the chain link it keeps).
    unsafe { ngx_http_output_filter(r, &mut out) }
}
