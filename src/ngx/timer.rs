//! Requests that wait in a phase handler and run their phases again on a timer.

use core::ptr;

use ngx::ffi::{
    ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_http_post_request, ngx_http_request_t,
    ngx_http_run_posted_requests,
};

/// A request's timer: when it fires, the request's phases run again from the handler that
/// returned `NGX_DONE` to wait.
pub struct Resume {
    ev: ngx_event_t,
}

impl Resume {
    pub fn new() -> Resume {
        // SAFETY: an event is plain data; zero is an idle event with no timer.
        Resume {
            ev: unsafe { core::mem::zeroed() },
        }
    }

    /// Runs `r`'s phases again in `ms` milliseconds.
    ///
    /// The `Resume` must stay where it is (in the request's pool) until it fires or drops.
    pub fn after(&mut self, r: &mut ngx_http_request_t, ms: usize) {
        let ev = &mut self.ev;
        ev.data = ptr::from_mut(r).cast();
        ev.handler = Some(resume);
        // SAFETY: a request's connection outlives it.
        ev.log = unsafe { (*r.connection).log };
        if ev.timer_set() != 0 {
            // SAFETY: the event is in the timer tree.
            unsafe { ngx_del_timer(ev) };
        }
        // SAFETY: the event stays in place until it fires or `drop` removes it.
        unsafe { ngx_add_timer(ev, ms) };
    }
}

impl Drop for Resume {
    fn drop(&mut self) {
        if self.ev.timer_set() != 0 {
            // SAFETY: the event is in the timer tree; it leaves it before its memory goes.
            unsafe { ngx_del_timer(&mut self.ev) };
        }
    }
}

unsafe extern "C" fn resume(ev: *mut ngx_event_t) {
    // SAFETY: `data` was set to the request by `after`; the request is alive, since its pool
    // (which holds the event) is.
    unsafe {
        let r = (*ev).data.cast::<ngx_http_request_t>();
        let c = (*r).connection;
        // The request's write handler runs its phases; nginx runs posted requests so.
        if ngx_http_post_request(r, ptr::null_mut()) == ngx::ffi::NGX_OK as isize {
            ngx_http_run_posted_requests(c);
        }
    }
}
