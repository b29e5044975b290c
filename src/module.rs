//! The module as nginx sees it: its definition, its configuration callbacks, and `Module`, the
//! one type that knows the module's index among nginx's modules (everything that needs the
//! module's state in nginx's per-module arrays is generic over `Lookup`, which it implements).

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use ngx::ffi::{
    ngx_conf_t, ngx_cycle_t, ngx_http_module_t, ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
    ngx_http_phases_NGX_HTTP_POST_READ_PHASE, ngx_http_phases_NGX_HTTP_PREACCESS_PHASE,
    ngx_http_phases_NGX_HTTP_REWRITE_PHASE, ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
    ngx_http_request_t, ngx_int_t, ngx_module_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_MODULE,
    NGX_LOG_EMERG, NGX_LOG_ERR, NGX_LOG_WARN, NGX_OK,
};
use ngx::http::{
    HttpModule, HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule,
};

use crate::access::{
    access_handler, access_last_handler, keys_handler, keys_server_handler, subrequest_handler,
    subrequest_preaccess_handler,
};
use crate::conf::{LocConf, Lookup, MainConf, MergeCtx, MergeError, ServerPos, SrvConf, UrlParts};
use crate::directives::COMMANDS;
use crate::headers::{install_header_filter, strip_handler, strip_handler_redirected};
use crate::key_zone::{Zone, SLOTS, ZONE_SIZE};
use crate::ngx::conf::{log_at, ConfArgs};
use crate::ngx::guard::guard;
use crate::ngx::phases::{add_handler, add_handler_last, module_index, Handler};
use crate::ngx::pool::pool_box;
use crate::ngx::shm::add_zone;
use crate::revocation;

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(preconfiguration),
    postconfiguration: Some(postconfiguration),
    create_main_conf: Some(create_main_conf),
    init_main_conf: None,
    create_srv_conf: Some(create_srv_conf),
    merge_srv_conf: None,
    create_loc_conf: Some(create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

ngx::ngx_modules!(ngx_http_auth_jwt_module);

#[used]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_auth_jwt_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(MODULE_CTX) as *mut c_void,
    // nginx only reads the command table.
    commands: ptr::addr_of_mut!(COMMANDS) as *mut _,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_module: Some(init_module),
    init_process: Some(init_process),
    ..ngx_module_t::default()
};

/// This module, for ngx's configuration accessors.
pub struct Module;

impl HttpModule for Module {
    fn module() -> &'static ngx_module_t {
        // SAFETY: nginx writes the module's indexes before any configuration or request
        // callback runs and never after; reads thereafter see a fixed value.
        unsafe { &*ptr::addr_of!(ngx_http_auth_jwt_module) }
    }
}

// SAFETY: create_main_conf, create_srv_conf and create_loc_conf below create these types.
unsafe impl HttpModuleMainConf for Module {
    type MainConf = MainConf;
}
// SAFETY: as above.
unsafe impl HttpModuleServerConf for Module {
    type ServerConf = SrvConf;
}
// SAFETY: as above.
unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = LocConf;
}

impl Lookup for Module {
    fn main(r: &ngx_http_request_t) -> Option<&'static MainConf> {
        Module::main_conf(r)
    }

    fn srv(r: &ngx_http_request_t) -> Option<&'static SrvConf> {
        Module::server_conf(r)
    }

    fn loc(r: &ngx_http_request_t) -> Option<&'static LocConf> {
        Module::location_conf(r)
    }

    fn ctx_slot(r: &ngx_http_request_t) -> Option<NonNull<*mut c_void>> {
        // SAFETY: every request points at its main request, whose `ctx` holds one slot per
        // HTTP module.
        unsafe { NonNull::new(r.main.as_ref()?.ctx.add(Module::module().ctx_index)) }
    }
}

unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let pool = unsafe { (*cf).pool };
    pool_box(pool, MainConf::default()).map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

unsafe extern "C" fn create_srv_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    let Some(cf) = NonNull::new(cf) else {
        return ptr::null_mut();
    };
    // SAFETY: nginx passes a valid `cf` to configuration callbacks; a server's configuration
    // is created as its `server {` line is read.
    let (pool, pos) = unsafe { (cf.as_ref().pool, ConfArgs::new(cf).pos()) };
    // SAFETY: as above; the http block's configuration exists by then.
    let position = match Module::main_conf(unsafe { cf.as_ref() }) {
        Some(main) => main.server_position(pos),
        None => ServerPos { pos, rank: 0 },
    };
    let srv = SrvConf {
        position,
        ..SrvConf::default()
    };
    pool_box(pool, srv).map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let pool = unsafe { (*cf).pool };
    pool_box(pool, LocConf::default()).map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes two location configurations this module created.
    let (prev, conf) = unsafe { (&*parent.cast::<LocConf>(), &mut *child.cast::<LocConf>()) };
    // SAFETY: nginx passes a valid `cf` to configuration callbacks; while servers merge, its
    // context is the http block's, with `srv_conf` pointing at the server being merged.
    let cfr = unsafe { &*cf };
    let (Some(main), Some(srv)) = (Module::main_conf(cfr), Module::server_conf_mut(cfr)) else {
        return ngx::core::NGX_CONF_ERROR;
    };
    let mut warnings = Vec::new();
    let panicked = Err(MergeError {
        message: "internal error".into(),
        pos: None,
    });
    let result = guard(cfr.log, "merging", panicked, || {
        let mut cx = MergeCtx {
            main,
            srv,
            warnings: &mut warnings,
        };
        conf.merge(prev, &mut cx)
    });
    for (warning, pos) in warnings {
        log_at(cf, NGX_LOG_WARN, &warning, Some(&pos));
    }
    match result {
        Ok(()) if conf.api.is_some() => {
            // The location answers the revocation API, as `stub_status` answers its own.
            match NgxHttpCoreModule::location_conf_mut(cfr) {
                Some(clcf) => {
                    clcf.handler = Some(revocation::api::handler::<Module>);
                    ngx::core::NGX_CONF_OK
                }
                None => ngx::core::NGX_CONF_ERROR,
            }
        }
        Ok(()) => ngx::core::NGX_CONF_OK,
        Err(e) => {
            log_at(cf, NGX_LOG_EMERG, &e.message, e.pos.as_ref());
            ngx::core::NGX_CONF_ERROR
        }
    }
}

unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let log = unsafe { (*cf).log };
    match guard(log, "preconfiguration", Err(()), || {
        crate::variables::register::<Module>(cf)
    }) {
        Ok(()) => NGX_OK as ngx_int_t,
        Err(()) => NGX_ERROR as ngx_int_t,
    }
}

unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    let Some(cf) = NonNull::new(cf) else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let log = unsafe { cf.as_ref().log };
    match guard(log, "postconfiguration", None, || install(cf)) {
        Some(()) => NGX_OK as ngx_int_t,
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Checks that every key directive is used, compiles the main configuration's values and
/// installs the handlers: identity headers removed on arrival (post-read, or the first rewrite
/// phase), subrequests checked (at the start of the location's rewrite phase, since nginx skips
/// the access phase for them and an `auth_request` target often answers with `return`, and
/// again in pre-access, after the location's `if` and `set`), main requests checked (access,
/// first, and once more after the other access modules for `satisfy any`), and a challenge
/// withdrawn from a response that is not a 401 (header filter).
fn install(cf: NonNull<ngx_conf_t>) -> Option<()> {
    // SAFETY: during postconfiguration `cf` is valid and its context is the http block's.
    let cfr = unsafe { cf.as_ref() };
    let main = Module::main_conf_mut(cfr)?;
    // An http-level key directive with no server to inherit it was never merged.
    if let Some(http) = Module::location_conf(cfr) {
        http.verify
            .key_sources()
            .for_each(|s| main.keys.register(s));
    }
    let unused = main.keys.unused();
    for (message, pos) in &unused {
        log_at(cf.as_ptr(), NGX_LOG_EMERG, message, Some(pos));
    }
    if !unused.is_empty() {
        return None;
    }
    main.key_zone = key_zone(cf, main.keys.requests())?;
    // SAFETY: during postconfiguration `cf->cycle` is the cycle being configured.
    if let Some(cycle) = unsafe { cfr.cycle.as_ref() } {
        main.rewrite_index = module_index(cycle, "ngx_http_rewrite_module");
    }
    if main.key_zone.is_some() {
        // SAFETY: once per configuration, from postconfiguration.
        unsafe { crate::key_request::install_body_filter() };
    }
    crate::variables::register_field_sets::<Module>(cf.as_ptr(), &main.field_sets)?;
    // SAFETY: as above.
    let mut args = unsafe { ConfArgs::new(cf) };
    let mut compile = |text: &[u8]| args.compile_always(text).ok();
    main.url_parts = Some(UrlParts {
        scheme: compile(b"$scheme")?,
        host: compile(b"$host")?,
        server_addr: compile(b"$server_addr")?,
        server_port: compile(b"$server_port")?,
    });

    let cmcf = NgxHttpCoreModule::main_conf_mut(cfr)?;
    // Client JWT-* headers go on arrival, or in the first rewrite phase of a request that
    // never ran post-read (finalised while reading its headers, then `error_page`).
    add_handler(
        cmcf,
        ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
        strip_handler::<Module>,
    )?;
    let keys: [Handler; 2] = [keys_server_handler::<Module>, keys_handler::<Module>];
    for (phase, keys) in [
        ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
        ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
    ]
    .into_iter()
    .zip(keys)
    {
        add_handler(cmcf, phase, strip_handler_redirected::<Module>)?;
        // Before the rewrite directives, which may read `$jwt_*`: the keys of a key request.
        if main.key_zone.is_some() {
            add_handler(cmcf, phase, keys)?;
        }
    }
    // Subrequests: before the location's `return`, and again after its `if` and `set`.
    add_handler(
        cmcf,
        ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
        subrequest_handler::<Module>,
    )?;
    add_handler(
        cmcf,
        ngx_http_phases_NGX_HTTP_PREACCESS_PHASE,
        subrequest_preaccess_handler::<Module>,
    )?;
    add_handler(
        cmcf,
        ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
        access_handler::<Module>,
    )?;
    add_handler_last(
        cmcf,
        ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
        access_last_handler::<Module>,
    )?;
    // SAFETY: once per configuration, from postconfiguration.
    unsafe { install_header_filter::<Module>() };
    Some(())
}

/// The shared zone of the configuration's `sources` key requests: none without any; `None`
/// (an error, logged) when there are too many or nginx cannot declare it.
fn key_zone(
    cf: NonNull<ngx_conf_t>,
    sources: usize,
) -> Option<Option<NonNull<ngx::ffi::ngx_shm_zone_t>>> {
    if sources == 0 {
        return Some(None);
    }
    if sources > SLOTS {
        let message = format!(
            "too many \"auth_jwt_key_request\" sources: {sources}, the most is {SLOTS} (a URI \
             counts once per server block that uses it)"
        );
        log_at(cf.as_ptr(), NGX_LOG_EMERG, &message, None);
        return None;
    }
    let tag = ptr::addr_of!(ngx_http_auth_jwt_module).cast();
    add_zone(cf, "auth_jwt_keys", ZONE_SIZE, tag, Zone::init, ptr::null()).map(Some)
}

/// Makes the variables whose cached value would mislead the module non-cacheable (see
/// `headers::uncache_variables`); nginx assigns variables their flags only after the modules'
/// postconfiguration.
unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx passes the cycle whose configuration was just read; its log is open.
    let Some(cycle) = (unsafe { cycle.as_ref() }) else {
        return NGX_OK as ngx_int_t;
    };
    guard(cycle.log, "init_module", (), || {
        // No http block: nothing to do.
        if let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(cycle) {
            crate::headers::uncache_variables(cmcf);
        }
    });
    NGX_OK as ngx_int_t
}

/// A worker starting: says at once if it cannot write a revocation zone's state file (its
/// user lacks the directory), rather than at the first change, which it would answer 500.
unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx passes the cycle the worker runs; its log is open.
    let Some(cycle) = (unsafe { cycle.as_ref() }) else {
        return NGX_OK as ngx_int_t;
    };
    guard(cycle.log, "init_process", (), || {
        let Some(main) = Module::main_conf(cycle) else {
            return;
        };
        for zone in &main.revocation_zones {
            if let Some(Err(e)) = zone.state.as_deref().map(revocation::state::writable) {
                ngx::ngx_log_error!(
                    NGX_LOG_ERR,
                    cycle.log,
                    "auth_jwt_revocation_zone \"{}\": {e}: changes through the API will be \
                     refused with 500",
                    zone.name
                );
            }
        }
    });
    NGX_OK as ngx_int_t
}
