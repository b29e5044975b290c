//! nginx strings as byte slices.

use ngx::ffi::ngx_str_t;

/// The bytes of an `ngx_str_t`.
pub fn bytes(s: &ngx_str_t) -> &[u8] {
    // SAFETY: nginx strings point at `len` initialised bytes that outlive the borrow of `s`.
    unsafe { bytes_unbound(*s) }
}

/// The bytes of an `ngx_str_t` for a caller-chosen lifetime.
///
/// # Safety
/// The memory must stay valid for `'a` (pool or configuration memory).
pub unsafe fn bytes_unbound<'a>(s: ngx_str_t) -> &'a [u8] {
    if s.len == 0 || s.data.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(s.data, s.len) }
}
