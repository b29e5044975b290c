//! The panic guard of every `extern "C"` entry.

use ngx::ffi::ngx_log_t;

/// Runs `f` at an `extern "C"` entry; a panic becomes `fallback` and one `[alert]` line.
///
/// Panics are ruled out by construction (no `unwrap`, `expect`, `panic!` or panicking
/// indexing, by lint; the JWT core is fuzzed) and this is the last line: a panic unwinding into
/// nginx's C frames would abort the worker with every connection it holds. The release profile
/// keeps `panic = "unwind"` so that this catch works.
pub fn guard<R>(log: *mut ngx_log_t, what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => {
            if !log.is_null() {
                ngx::ngx_log_error!(
                    ngx::ffi::NGX_LOG_ALERT,
                    log,
                    "auth_jwt: internal error (panic) in {what}; answered as a failure"
                );
            }
            fallback
        }
    }
}
