//! Installing handlers in nginx's request phases, during postconfiguration, and moving a
//! request through them.

use ngx::ffi::{
    ngx_array_push, ngx_http_core_main_conf_t, ngx_http_handler_pt, ngx_http_request_t, ngx_int_t,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

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

/// Moves `r` past the rest of the rewrite phase it is in: when its handler then returns
/// `NGX_DECLINED`, the next phase's first handler runs. `None` (nothing moved) without a
/// phase engine.
pub fn skip_rest_of_phase(r: &mut ngx_http_request_t) -> Option<()> {
    let cmcf = NgxHttpCoreModule::main_conf(r)?;
    let current = usize::try_from(r.phase_handler).ok()?;
    // SAFETY: the phase engine's handlers array covers every index `phase_handler` takes.
    let ph = unsafe { cmcf.phase_engine.handlers.add(current).as_ref()? };
    r.phase_handler = ngx_int_t::try_from(ph.next.checked_sub(1)?).ok()?;
    Some(())
}

/// The index among HTTP modules (`ctx_index`) of the module named `name`, if nginx has it.
pub fn module_index(cycle: &ngx::ffi::ngx_cycle_t, name: &str) -> Option<usize> {
    let mut m = cycle.modules;
    if m.is_null() {
        return None;
    }
    // SAFETY: `modules` is a NULL-terminated array of the cycle's modules, each with a
    // NUL-terminated name.
    unsafe {
        while let Some(module) = (*m).as_ref() {
            if !module.name.is_null()
                && core::ffi::CStr::from_ptr(module.name).to_bytes() == name.as_bytes()
            {
                return Some(module.ctx_index);
            }
            m = m.add(1);
        }
    }
    None
}
