//! A request's log, its complex values and variables, and nginx's clock.

use core::ptr;

use ngx::ffi::{ngx_http_complex_value, ngx_http_request_t, ngx_str_t, ngx_variable_value_t};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use super::conf::ComplexValue;
use super::string::bytes_unbound;

/// Logs one line on the request's connection log.
// Out of line: refusals and warnings are the rare path, and their formatting code would
// otherwise sit between the instructions an admitted request runs.
#[cold]
#[inline(never)]
pub fn log(r: &ngx_http_request_t, level: u32, args: core::fmt::Arguments) {
    // SAFETY: a request's connection and its log outlive the request.
    let log = unsafe { (*r.connection).log };
    ngx::ngx_log_error!(level, log, "{}", args);
}

/// Evaluates a compiled complex value for `r`.
pub fn complex_value(r: &mut ngx_http_request_t, cv: ComplexValue) -> Option<&[u8]> {
    // SAFETY: `r` is a live request; the result is allocated in its pool, which outlives the
    // borrow.
    unsafe { complex_value_raw(r, cv) }
}

/// Evaluates a compiled complex value for the request at `r`, with no Rust reference to it
/// held across the call (the caller may hold one to another request of the same tree).
///
/// # Safety
/// `r` is a live request; the result lives in its pool.
pub unsafe fn complex_value_raw<'a>(
    r: *mut ngx_http_request_t,
    cv: ComplexValue,
) -> Option<&'a [u8]> {
    let mut out = ngx_str_t {
        len: 0,
        data: ptr::null_mut(),
    };
    // SAFETY: as the caller's; `cv` was compiled at configuration time.
    let rc = unsafe { ngx_http_complex_value(r, cv.0.as_ptr(), &mut out) };
    if rc != ngx::ffi::NGX_OK as ngx::ffi::ngx_int_t {
        return None;
    }
    // SAFETY: pool memory, valid for the request.
    Some(unsafe { bytes_unbound(out) })
}

/// Evaluates `cv` for `r` with none of the variable values nginx cached for the request: a
/// `map` (and a `map` of a `map`) computed for another location before an internal redirect,
/// or by the parent of a subrequest, which shares its parent's values, is computed again.
/// With `keep_assigned`, the values `set` assigned are kept (variables that only `set`
/// defines: nginx gives them their own index as data).
pub fn complex_value_fresh(
    r: &mut ngx_http_request_t,
    cv: ComplexValue,
    keep_assigned: bool,
) -> Option<&[u8]> {
    let cmcf = NgxHttpCoreModule::main_conf(r)?;
    // SAFETY: the core main configuration lists the variables, `r->variables` holding one
    // value for each.
    let (defs, old) = unsafe {
        let n = cmcf.variables.nelts;
        if n == 0 || cmcf.variables.elts.is_null() || r.variables.is_null() {
            return complex_value(r, cv);
        }
        (
            core::slice::from_raw_parts(
                cmcf.variables.elts.cast::<ngx::ffi::ngx_http_variable_t>(),
                n,
            ),
            core::slice::from_raw_parts(r.variables, n),
        )
    };
    let size = core::mem::size_of_val(old);
    // SAFETY: the request pool is live; ngx_pcalloc returns NULL or `size` zeroed bytes, the
    // initial state of every value (neither valid nor not found).
    let fresh = unsafe { ngx::ffi::ngx_pcalloc(r.pool, size) }.cast::<ngx_variable_value_t>();
    if fresh.is_null() {
        return None;
    }
    if keep_assigned {
        for (i, (def, value)) in defs.iter().zip(old).enumerate() {
            if def.data == i && value.valid() != 0 {
                // SAFETY: `i` is within the `n` values of `fresh`.
                unsafe { fresh.add(i).write(*value) };
            }
        }
    }
    let saved = r.variables;
    r.variables = fresh;
    let value = complex_value(r, cv).map(|v| {
        // SAFETY: pool memory, valid for the request.
        unsafe {
            bytes_unbound(ngx_str_t {
                len: v.len(),
                data: v.as_ptr().cast_mut(),
            })
        }
    });
    r.variables = saved;
    value
}

/// Fills a variable value that points at request-lifetime memory.
pub fn set_variable(v: &mut ngx_variable_value_t, value: ngx_str_t) {
    v.set_len(value.len as u32);
    v.set_valid(1);
    v.set_no_cacheable(0);
    v.set_not_found(0);
    v.set_escape(0);
    v.data = value.data;
}

/// Marks a variable as not found (empty everywhere; `-` in access logs).
pub fn set_not_found(v: &mut ngx_variable_value_t) {
    v.set_len(0);
    v.set_valid(0);
    v.set_not_found(1);
    v.data = ptr::null_mut();
}

/// nginx's cached wall-clock time in milliseconds: the same in every process.
pub fn now_ms() -> u64 {
    // SAFETY: as `now`'s.
    unsafe {
        let tp = ptr::read_volatile(ptr::addr_of!(ngx::ffi::ngx_cached_time));
        let sec = ptr::read_volatile(&(*tp).sec) as u64;
        let msec = ptr::read_volatile(&(*tp).msec) as u64;
        sec.saturating_mul(1000).saturating_add(msec)
    }
}

/// nginx's cached current time, in Unix seconds.
pub fn now() -> i64 {
    // SAFETY: ngx_cached_time always points at a valid slot once the cycle has started; the
    // volatile read matches how nginx's own ngx_time() reads a value updated by the timer.
    unsafe { ptr::read_volatile(&(*ngx::ffi::ngx_cached_time).sec) as i64 }
}
