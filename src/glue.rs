//! The module as nginx sees it: module table, directives, configuration callbacks.
//!
//! Each `extern "C"` entry converts its pointers and hands off at once to safe code returning
//! `Result`; errors are logged here, in nginx's wording, with the file and line.

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use ngx::ffi::{
    ngx_array_push, ngx_command_t, ngx_conf_full_name, ngx_conf_t, ngx_cycle_t,
    ngx_http_compile_complex_value, ngx_http_compile_complex_value_t, ngx_http_complex_value_t,
    ngx_http_core_main_conf_t, ngx_http_core_module, ngx_http_handler_pt, ngx_http_module_t,
    ngx_http_phases_NGX_HTTP_ACCESS_PHASE, ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
    ngx_http_phases_NGX_HTTP_PREACCESS_PHASE, ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
    ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE, ngx_int_t, ngx_module_t, ngx_parse_time,
    ngx_pcalloc, ngx_str_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_TAKE1,
    NGX_CONF_TAKE12, NGX_ERROR, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG, NGX_LOG_NOTICE, NGX_LOG_WARN, NGX_OK,
};
use ngx::ngx_string;

use crate::conf::{self, LocConf, MainConf, Pos, SrvConf};
use crate::ngx_util::{bytes, guard, pool_box};

/// A compiled `ngx_http_complex_value_t`, allocated in the configuration pool.
#[derive(Clone, Copy)]
pub struct ComplexValue(pub NonNull<ngx_http_complex_value_t>);

/// The arguments of the directive being parsed, and the services setters need from `cf`.
pub struct ConfArgs {
    cf: NonNull<ngx_conf_t>,
}

impl ConfArgs {
    fn args(&self) -> &[ngx_str_t] {
        // SAFETY: during a directive callback `cf->args` is an array of `nelts` ngx_str_t.
        unsafe {
            let a = &*self.cf.as_ref().args;
            if a.elts.is_null() {
                return &[];
            }
            core::slice::from_raw_parts(a.elts.cast::<ngx_str_t>(), a.nelts)
        }
    }

    /// Argument `i` (0 is the directive name).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.args().get(i).map(bytes)
    }

    pub fn len(&self) -> usize {
        self.args().len()
    }

    /// The file and line of the directive.
    pub fn pos(&self) -> Pos {
        // SAFETY: `conf_file` is set while a configuration file is being parsed.
        unsafe {
            let cf = self.cf.as_ref();
            match cf.conf_file.as_ref() {
                Some(file) => Pos {
                    file: String::from_utf8_lossy(bytes(&file.file.name)).into_owned(),
                    line: file.line,
                },
                None => Pos {
                    file: String::new(),
                    line: 0,
                },
            }
        }
    }

    /// Argument `i` as a path, relative ones resolved against nginx's prefix.
    pub fn full_name(&mut self, i: usize) -> Result<String, String> {
        let arg = self.get(i).unwrap_or(&[]);
        if arg.is_empty() {
            return Err("needs a path".into());
        }
        let mut name = crate::ngx_util::pool_str(self.pool(), arg).ok_or("out of memory")?;
        // SAFETY: `cf->cycle` is the cycle being configured; `name` lives in its pool.
        let rc = unsafe { ngx_conf_full_name(self.cf.as_ref().cycle, &mut name, 0) };
        if rc != NGX_OK as ngx_int_t {
            return Err("cannot resolve the path".into());
        }
        String::from_utf8(bytes(&name).to_vec()).map_err(|_| "path is not valid UTF-8".into())
    }

    /// Argument `i` as an nginx time (`30s`, `5m`), in seconds.
    pub fn parse_time(&mut self, i: usize) -> Result<u64, String> {
        let arg = self.get(i).unwrap_or(&[]);
        let mut s = crate::ngx_util::pool_str(self.pool(), arg).ok_or("out of memory")?;
        // SAFETY: `s` is a pool copy; ngx_parse_time only reads it.
        let secs = unsafe { ngx_parse_time(&mut s, 1) };
        u64::try_from(secs)
            .map_err(|_| format!("invalid time \"{}\"", String::from_utf8_lossy(arg)))
    }

    /// Argument `i` as an nginx size (`512k`, `2m`), in bytes.
    pub fn parse_size(&mut self, i: usize) -> Result<usize, String> {
        let arg = self.get(i).unwrap_or(&[]);
        let mut s = crate::ngx_util::pool_str(self.pool(), arg).ok_or("out of memory")?;
        // SAFETY: `s` is a pool copy; ngx_parse_size only reads it.
        let size = unsafe { ngx::ffi::ngx_parse_size(&mut s) };
        usize::try_from(size).map_err(|_| {
            format!(
                "invalid size \"{}\", it must be a size such as 2m, or \"off\"",
                String::from_utf8_lossy(arg)
            )
        })
    }

    /// Compiles `value` when it contains variables; `Ok(None)` for a constant.
    pub fn compile(&mut self, value: &[u8]) -> Result<Option<ComplexValue>, String> {
        if !value.contains(&b'$') {
            return Ok(None);
        }
        self.compile_always(value).map(Some)
    }

    /// Compiles `value` as a complex value, constant or not.
    pub fn compile_always(&mut self, value: &[u8]) -> Result<ComplexValue, String> {
        let pool = self.pool();
        let mut text = crate::ngx_util::pool_str(pool, value).ok_or("out of memory")?;
        // SAFETY: the pool is the configuration pool; ngx_pcalloc returns zeroed memory or NULL.
        let cv = unsafe {
            ngx_pcalloc(pool, core::mem::size_of::<ngx_http_complex_value_t>())
                .cast::<ngx_http_complex_value_t>()
        };
        let cv = NonNull::new(cv).ok_or("out of memory")?;
        // SAFETY: all-zero is the documented initial state of this struct.
        let mut ccv: ngx_http_compile_complex_value_t = unsafe { core::mem::zeroed() };
        ccv.cf = self.cf.as_ptr();
        ccv.value = &mut text;
        ccv.complex_value = cv.as_ptr();
        // SAFETY: `ccv` is fully initialised; nginx logs its own error on failure.
        if unsafe { ngx_http_compile_complex_value(&mut ccv) } != NGX_OK as ngx_int_t {
            return Err("has an invalid value".into());
        }
        Ok(ComplexValue(cv))
    }

    /// This module's `http{}` configuration, while the http block is being parsed.
    pub fn main_conf(&mut self) -> Option<&mut MainConf> {
        // SAFETY: inside the http block `cf->ctx` is the current level's
        // ngx_http_conf_ctx_t, whose `main_conf` holds one slot per HTTP module; ours was
        // created by create_main_conf before any directive of the block was read.
        unsafe {
            let ctx = self.cf.as_ref().ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
            let main_confs = ctx.as_ref()?.main_conf;
            (*main_confs.add(module().ctx_index))
                .cast::<MainConf>()
                .as_mut()
        }
    }

    fn pool(&self) -> *mut ngx::ffi::ngx_pool_t {
        // SAFETY: `cf` is valid for the callback.
        unsafe { self.cf.as_ref().pool }
    }
}

type Setter<T> = fn(&mut T, &mut ConfArgs) -> Result<(), String>;

/// Runs a safe setter and reports its error as nginx does:
/// `"auth_jwt_key" directive <message> in /etc/nginx/nginx.conf:12`.
fn run_setter<T>(cf: *mut ngx_conf_t, conf: *mut c_void, setter: Setter<T>) -> *mut c_char {
    let (Some(cf), Some(conf)) = (NonNull::new(cf), NonNull::new(conf.cast::<T>())) else {
        return ngx::core::NGX_CONF_ERROR;
    };
    let mut args = ConfArgs { cf };
    // SAFETY: `conf` is this module's configuration of the level the command table names
    // (`LocConf` or `MainConf`), created by `create_loc_conf` / `create_main_conf`.
    let conf = unsafe { &mut *conf.as_ptr() };
    // SAFETY: `cf->log` is the configuration log, valid during configuration.
    let log = unsafe { cf.as_ref().log };
    let panicked = Err("could not be processed".to_string());
    match guard(log, "a directive", panicked, || setter(conf, &mut args)) {
        Ok(()) => ngx::core::NGX_CONF_OK,
        Err(message) => {
            let name = String::from_utf8_lossy(args.get(0).unwrap_or(&[])).into_owned();
            conf_error(cf.as_ptr(), &format!("\"{name}\" directive {message}"));
            ngx::core::NGX_CONF_ERROR
        }
    }
}

fn conf_error(cf: *mut ngx_conf_t, message: &str) {
    ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{}", message);
}

macro_rules! setter {
    ($shim:ident, $setter:path) => {
        unsafe extern "C" fn $shim(
            cf: *mut ngx_conf_t,
            _cmd: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            run_setter(cf, conf, $setter)
        }
    };
}

setter!(set_enabled, conf::cmd_enabled);
setter!(set_key, conf::cmd_key);
setter!(set_use_keyfile, conf::cmd_use_keyfile);
setter!(set_keyfile_path, conf::cmd_keyfile_path);
setter!(set_algorithm, conf::cmd_algorithm);
setter!(set_location, conf::cmd_location);
setter!(set_redirect, conf::cmd_redirect);
setter!(set_loginurl, conf::cmd_loginurl);
setter!(set_validate_sub, conf::cmd_validate_sub);
setter!(set_extract_var_claims, conf::cmd_extract_var_claims);
setter!(set_extract_request_claims, conf::cmd_extract_request_claims);
setter!(
    set_extract_response_claims,
    conf::cmd_extract_response_claims
);
setter!(set_bypass_options, conf::cmd_bypass_options);
setter!(set_realm, conf::cmd_realm);
setter!(set_leeway, conf::cmd_leeway);
setter!(set_issuer, conf::cmd_issuer);
setter!(set_audience, conf::cmd_audience);
setter!(set_cache, conf::cmd_cache);

const ANY_LEVEL: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;
/// `auth_jwt_enabled` may also sit inside a location's `if`, whose configuration nginx applies
/// to the request. Not inside a server's `if`: nginx runs only its rewrite directives and
/// ignores every other, which for a switch like this one would fail open.
const ANY_LEVEL_IF: u32 = ANY_LEVEL | NGX_HTTP_LIF_CONF;

type Shim = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

const fn command(name: ngx_str_t, args: u32, set: Shim) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: args as ngx_uint_t,
        set: Some(set),
        conf: ngx::ffi::NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    }
}

static mut COMMANDS: [ngx_command_t; 19] = [
    command(
        ngx_string!("auth_jwt_enabled"),
        ANY_LEVEL_IF | NGX_CONF_TAKE1,
        set_enabled,
    ),
    command(
        ngx_string!("auth_jwt_key"),
        ANY_LEVEL | NGX_CONF_TAKE12,
        set_key,
    ),
    command(
        ngx_string!("auth_jwt_use_keyfile"),
        ANY_LEVEL | NGX_CONF_FLAG,
        set_use_keyfile,
    ),
    command(
        ngx_string!("auth_jwt_keyfile_path"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_keyfile_path,
    ),
    command(
        ngx_string!("auth_jwt_algorithm"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_algorithm,
    ),
    command(
        ngx_string!("auth_jwt_location"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_location,
    ),
    command(
        ngx_string!("auth_jwt_redirect"),
        ANY_LEVEL | NGX_CONF_FLAG,
        set_redirect,
    ),
    command(
        ngx_string!("auth_jwt_loginurl"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_loginurl,
    ),
    command(
        ngx_string!("auth_jwt_validate_sub"),
        ANY_LEVEL | NGX_CONF_FLAG,
        set_validate_sub,
    ),
    command(
        ngx_string!("auth_jwt_extract_var_claims"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_extract_var_claims,
    ),
    command(
        ngx_string!("auth_jwt_extract_request_claims"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_extract_request_claims,
    ),
    command(
        ngx_string!("auth_jwt_extract_response_claims"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_extract_response_claims,
    ),
    command(
        ngx_string!("auth_jwt_bypass_options"),
        ANY_LEVEL | NGX_CONF_FLAG,
        set_bypass_options,
    ),
    command(
        ngx_string!("auth_jwt_realm"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_realm,
    ),
    command(
        ngx_string!("auth_jwt_leeway"),
        ANY_LEVEL | NGX_CONF_TAKE1,
        set_leeway,
    ),
    command(
        ngx_string!("auth_jwt_issuer"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_issuer,
    ),
    command(
        ngx_string!("auth_jwt_audience"),
        ANY_LEVEL | NGX_CONF_1MORE,
        set_audience,
    ),
    ngx_command_t {
        conf: ngx::ffi::NGX_HTTP_MAIN_CONF_OFFSET,
        ..command(
            ngx_string!("auth_jwt_cache"),
            NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
            set_cache,
        )
    },
    ngx_command_t::empty(),
];

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
    commands: ptr::addr_of_mut!(COMMANDS) as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_module: Some(init_module),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};

pub fn module() -> &'static ngx_module_t {
    // SAFETY: nginx writes the module's indexes before any request or variable callback runs
    // and never after; reads thereafter see a fixed value.
    unsafe { &*ptr::addr_of!(ngx_http_auth_jwt_module) }
}

/// A timing build (`--features timing`, for scripts/bench.sh) reports where the worker's time
/// went; any other build has nothing to say.
unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    let Some([handler, signature]) = jwt_core::timing::totals() else {
        return;
    };
    // SAFETY: nginx passes the cycle it is leaving; its log is still open.
    let Some(cycle) = (unsafe { cycle.as_ref() }) else {
        return;
    };
    ngx::ngx_log_error!(
        NGX_LOG_NOTICE,
        cycle.log,
        "auth_jwt timing: {} access handler calls in {} ns, {} signature checks in {} ns",
        handler.calls,
        handler.nanos,
        signature.calls,
        signature.nanos
    );
}

unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let pool = unsafe { (*cf).pool };
    pool_box(pool, MainConf::new()).map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

unsafe extern "C" fn create_srv_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let pool = unsafe { (*cf).pool };
    pool_box(pool, SrvConf::default()).map_or(ptr::null_mut(), |p| p.as_ptr().cast())
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
    // SAFETY: while servers merge, `cf->ctx` is the http block's context with `srv_conf`
    // pointing at the server being merged (ngx_http_merge_servers); both slots are ours.
    let (main, srv) = unsafe {
        let ctx = (*cf).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        (
            (*(*ctx).main_conf.add(module().ctx_index))
                .cast::<MainConf>()
                .as_ref(),
            (*(*ctx).srv_conf.add(module().ctx_index))
                .cast::<SrvConf>()
                .as_mut(),
        )
    };
    let (Some(main), Some(srv)) = (main, srv) else {
        return ngx::core::NGX_CONF_ERROR;
    };
    let mut warnings = Vec::new();
    // SAFETY: `cf->log` is the configuration log, valid during configuration.
    let log = unsafe { (*cf).log };
    let panicked = Err(conf::MergeError {
        message: "internal error".into(),
        pos: None,
    });
    let result = guard(log, "merging", panicked, || {
        let mut cx = conf::MergeCtx {
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
        Ok(()) => ngx::core::NGX_CONF_OK,
        Err(e) => {
            log_at(cf, NGX_LOG_EMERG, &e.message, e.pos.as_ref());
            ngx::core::NGX_CONF_ERROR
        }
    }
}

/// Logs a configuration message naming the directive's position when known (at merge time
/// `cf` only knows the end of the enclosing block).
fn log_at(cf: *mut ngx_conf_t, level: u32, message: &str, pos: Option<&Pos>) {
    match pos {
        Some(pos) if pos.line > 0 => {
            // SAFETY: `cf->log` is the configuration log, valid during configuration.
            let log = unsafe { (*cf).log };
            ngx::ngx_log_error!(level, log, "{} in {}:{}", message, pos.file, pos.line);
        }
        _ => {
            ngx::ngx_conf_log_error!(level, cf, "{}", message);
        }
    }
}

unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: nginx passes a valid `cf` to configuration callbacks.
    let log = unsafe { (*cf).log };
    match guard(log, "preconfiguration", Err(()), || {
        crate::variables::register(cf)
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
    let mut args = ConfArgs { cf };
    let mut compile = |text: &[u8]| args.compile_always(text).ok();
    let values = [
        compile(b"$scheme")?,
        compile(b"$host")?,
        compile(b"$server_addr")?,
        compile(b"$server_port")?,
    ];
    // SAFETY: during postconfiguration the http context's main configurations are set.
    unsafe {
        let ctx = (*cf.as_ptr()).ctx.cast::<ngx::ffi::ngx_http_conf_ctx_t>();
        let main_confs = (*ctx).main_conf;
        let ours = (*main_confs.add(module().ctx_index)).cast::<MainConf>();
        let ours = ours.as_mut()?;
        let unused = ours.unused_key_sources();
        for (message, pos) in &unused {
            log_at(cf.as_ptr(), NGX_LOG_EMERG, message, Some(pos));
        }
        if !unused.is_empty() {
            return None;
        }
        let [scheme, host, server_addr, server_port] = values;
        ours.scheme = Some(scheme);
        ours.host = Some(host);
        ours.server_addr = Some(server_addr);
        ours.server_port = Some(server_port);

        let core_index = (*ptr::addr_of!(ngx_http_core_module)).ctx_index;
        let cmcf = (*main_confs.add(core_index)).cast::<ngx_http_core_main_conf_t>();
        let phases = &mut (*cmcf).phases;
        // Client JWT-* headers go on arrival, or in the first rewrite phase of a request that
        // never ran post-read (finalised while reading its headers, then `error_page`).
        add_handler(
            phases,
            ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
            crate::headers::strip_handler,
        )?;
        for phase in [
            ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
            ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
        ] {
            add_handler(phases, phase, crate::headers::strip_handler_redirected)?;
        }
        // Subrequests: before the location's `return`, and again after its `if` and `set`.
        for phase in [
            ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
            ngx_http_phases_NGX_HTTP_PREACCESS_PHASE,
        ] {
            add_handler(phases, phase, crate::handler::subrequest_handler)?;
        }
        // nginx runs a phase's handlers from the last added to the first.
        add_handler(
            phases,
            ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
            crate::handler::access_handler,
        )?;
        add_handler_last(
            phases,
            ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
            crate::handler::access_last_handler,
        )?;
        crate::headers::install_header_filter();
    }
    Some(())
}

type Handler = unsafe extern "C" fn(*mut ngx::ffi::ngx_http_request_t) -> ngx_int_t;

/// Adds `handler` to `phase`, where it runs before the handlers already there.
///
/// # Safety
/// `phases` is the core main configuration's phase array, during postconfiguration.
unsafe fn add_handler(
    phases: &mut [ngx::ffi::ngx_http_phase_t],
    phase: u32,
    handler: Handler,
) -> Option<()> {
    let phase = phases.get_mut(phase as usize)?;
    // SAFETY: `handlers` is an initialised nginx array of handler pointers.
    let h = unsafe { ngx_array_push(&mut phase.handlers) }.cast::<ngx_http_handler_pt>();
    // SAFETY: NULL or a fresh slot of the array.
    unsafe { h.as_mut()? }.replace(handler);
    Some(())
}

/// Adds `handler` to `phase` where it runs after the handlers already there (and after those
/// of modules loaded before this one).
///
/// # Safety
/// As for `add_handler`.
unsafe fn add_handler_last(
    phases: &mut [ngx::ffi::ngx_http_phase_t],
    phase: u32,
    handler: Handler,
) -> Option<()> {
    // SAFETY: as the caller's.
    unsafe { add_handler(phases, phase, handler)? };
    let handlers = &phases.get_mut(phase as usize)?.handlers;
    // SAFETY: the array holds `nelts` initialised handler pointers, the new one last.
    let all = unsafe {
        core::slice::from_raw_parts_mut(handlers.elts.cast::<ngx_http_handler_pt>(), handlers.nelts)
    };
    all.rotate_right(1);
    Some(())
}

/// Makes the variables whose cached value would mislead the module non-cacheable (see
/// `headers::uncache_variables`).
///
/// Runs once the configuration is complete: nginx assigns variables their flags only after
/// the modules' postconfiguration.
unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx passes the cycle whose configuration was just read; its log is open.
    let log = unsafe { cycle.as_ref() }.map_or(ptr::null_mut(), |c| c.log);
    guard(log, "init_module", (), || {
        // SAFETY: as above; the http block's context is NULL when there is no http block.
        unsafe { crate::headers::uncache_variables(cycle) }
    });
    NGX_OK as ngx_int_t
}
