//! Installing handlers in nginx's request phases, during postconfiguration.

use ngx::ffi::{
    ngx_array_push, ngx_http_core_main_conf_t, ngx_http_handler_pt, ngx_http_request_t, ngx_int_t,
};

/// A phase handler.
pub type Handler = unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t;

/// Adds `handler` to `phase`, where it runs before the handlers already there (nginx runs a
/// phase's handlers from the last added to the first).
pub fn add_handler(
    cmcf: &mut ngx_http_core_main_conf_t,
    phase: u32,
    handler: Handler,
) -> Option<()> {
    let phase = cmcf.phases.get_mut(phase as usize)?;
    // SAFETY: during postconfiguration `handlers` is an initialised nginx array of handler
    // pointers.
    let h = unsafe { ngx_array_push(&mut phase.handlers) }.cast::<ngx_http_handler_pt>();
    // SAFETY: NULL or a fresh slot of the array.
    unsafe { h.as_mut()? }.replace(handler);
    Some(())
}

/// Adds `handler` to `phase` where it runs after the handlers already there (and after those
/// of modules loaded before this one).
pub fn add_handler_last(
    cmcf: &mut ngx_http_core_main_conf_t,
    phase: u32,
    handler: Handler,
) -> Option<()> {
    add_handler(cmcf, phase, handler)?;
    let handlers = &cmcf.phases.get_mut(phase as usize)?.handlers;
    // SAFETY: the array holds `nelts` initialised handler pointers, the new one last.
    let all = unsafe {
        core::slice::from_raw_parts_mut(handlers.elts.cast::<ngx_http_handler_pt>(), handlers.nelts)
    };
    all.rotate_right(1);
    Some(())
}
