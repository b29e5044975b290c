//! The state of this nginx process.

/// Whether this worker has been told to exit (a reload or a stop): it finishes its requests
/// and takes no new connection.
pub fn exiting() -> bool {
    // SAFETY: nginx's own flags, written by its signal handlers and main loop on this thread;
    // read as nginx reads them.
    unsafe {
        core::ptr::read_volatile(core::ptr::addr_of!(ngx::ffi::ngx_exiting)) != 0
            || core::ptr::read_volatile(core::ptr::addr_of!(ngx::ffi::ngx_quit)) != 0
            || core::ptr::read_volatile(core::ptr::addr_of!(ngx::ffi::ngx_terminate)) != 0
    }
}
