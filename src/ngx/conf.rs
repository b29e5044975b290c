//! What directive setters and configuration callbacks need from nginx: the directive's
//! arguments and position, nginx's parsers for paths, times and sizes, complex values, and
//! errors in nginx's wording.

use core::ffi::{c_char, c_void};
use core::ptr::NonNull;

use ngx::ffi::{
    ngx_conf_full_name, ngx_conf_t, ngx_http_compile_complex_value,
    ngx_http_compile_complex_value_t, ngx_http_complex_value_t, ngx_int_t, ngx_parse_time,
    ngx_pcalloc, ngx_str_t, NGX_LOG_EMERG, NGX_OK,
};

use super::guard::guard;
use super::pool::pool_str;
use super::string::bytes;

/// Where a directive was written, for errors reported after parsing (at merge).
#[derive(Clone, Debug, Default)]
pub struct Pos {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A compiled `ngx_http_complex_value_t`, allocated in the configuration pool.
#[derive(Clone, Copy)]
pub struct ComplexValue(pub NonNull<ngx_http_complex_value_t>);

/// The arguments of the directive being parsed, and the services setters need from `cf`.
pub struct ConfArgs {
    cf: NonNull<ngx_conf_t>,
}

impl ConfArgs {
    /// # Safety
    /// `cf` is the configuration being read, valid while the value is used.
    pub unsafe fn new(cf: NonNull<ngx_conf_t>) -> ConfArgs {
        ConfArgs { cf }
    }

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
        let arg = self.get(i).unwrap_or(&[]).to_vec();
        self.full_name_of(&arg)
    }

    /// `arg` as a path, a relative one resolved against nginx's prefix.
    pub fn full_name_of(&mut self, arg: &[u8]) -> Result<String, String> {
        if arg.is_empty() {
            return Err("needs a path".into());
        }
        let mut name = pool_str(self.pool(), arg).ok_or("out of memory")?;
        // SAFETY: `cf->cycle` is the cycle being configured; `name` lives in its pool.
        let rc = unsafe { ngx_conf_full_name(self.cf.as_ref().cycle, &mut name, 0) };
        if rc != NGX_OK as ngx_int_t {
            return Err("cannot resolve the path".into());
        }
        String::from_utf8(bytes(&name).to_vec()).map_err(|_| "path is not valid UTF-8".into())
    }

    /// Argument `i` as an nginx time (`30s`, `5m`), in seconds.
    pub fn parse_time(&mut self, i: usize) -> Result<u64, String> {
        self.parse_time_in(i, 0)
    }

    /// Argument `i` from byte `skip` (past a `name=`) as an nginx time, in seconds.
    pub fn parse_time_in(&mut self, i: usize, skip: usize) -> Result<u64, String> {
        let arg = self.get(i).unwrap_or(&[]).get(skip..).unwrap_or(&[]);
        let mut s = pool_str(self.pool(), arg).ok_or("out of memory")?;
        // SAFETY: `s` is a pool copy; ngx_parse_time only reads it.
        let secs = unsafe { ngx_parse_time(&mut s, 1) };
        u64::try_from(secs)
            .map_err(|_| format!("invalid time \"{}\"", String::from_utf8_lossy(arg)))
    }

    /// Argument `i` as an nginx size (`512k`, `2m`), in bytes.
    pub fn parse_size(&mut self, i: usize) -> Result<usize, String> {
        let arg = self.get(i).unwrap_or(&[]).to_vec();
        self.parse_size_of(&arg)
    }

    /// `arg` as an nginx size (`512k`, `2m`), in bytes.
    pub fn parse_size_of(&mut self, arg: &[u8]) -> Result<usize, String> {
        let mut s = pool_str(self.pool(), arg).ok_or("out of memory")?;
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
        let mut text = pool_str(pool, value).ok_or("out of memory")?;
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

    /// The configuration being read, for what nginx records in it (a shared zone).
    pub fn cf(&self) -> NonNull<ngx_conf_t> {
        self.cf
    }

    fn pool(&self) -> *mut ngx::ffi::ngx_pool_t {
        // SAFETY: `cf` is valid for the callback.
        unsafe { self.cf.as_ref().pool }
    }
}

pub type Setter<T> = fn(&mut T, &mut ConfArgs) -> Result<(), String>;

/// Runs a safe setter and reports its error as nginx does:
/// `"auth_jwt_key" directive <message> in /etc/nginx/nginx.conf:12`.
pub fn run_setter<T>(cf: *mut ngx_conf_t, conf: *mut c_void, setter: Setter<T>) -> *mut c_char {
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

/// Logs a configuration message naming the directive's position when known (at merge time
/// `cf` only knows the end of the enclosing block).
pub fn log_at(cf: *mut ngx_conf_t, level: u32, message: &str, pos: Option<&Pos>) {
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
