//! `$jwt_sub`, `$jwt_claim_NAME`, `$jwt_header_NAME`, `$jwt_payload`, `$jwt_error`.
//!
//! All read the request's shared verdict (see `verdict`), judged with the configuration of the
//! location that reads them, so they agree with that location's check and cost one
//! verification per request and key set at most, in any phase and in subrequests. They are
//! non-cacheable on purpose: nginx would otherwise keep a value across an internal redirect to
//! a location with other keys, or from a subrequest, which shares its parent's variables.
//!
//! A value is header-safe or not found: a claim with a control character (a CR or LF that
//! would split a header built from it) is withheld, with one log line per request; the
//! payload's line breaks become spaces.

use std::borrow::Cow;

use jwt_core::{Claims, Reason};

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_get_variable_pt, ngx_http_request_t, ngx_int_t,
    ngx_str_t, ngx_variable_value_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_HTTP_VAR_PREFIX,
    NGX_LOG_EMERG, NGX_LOG_WARN, NGX_OK,
};
use ngx::ngx_string;

use crate::conf::{FieldSet, Lookup};
use crate::key_request::is_fetch;
use crate::ngx::guard::guard;
use crate::ngx::pool::pool_str;
use crate::ngx::request::{log, set_not_found, set_variable};
use crate::ngx::string::bytes_unbound;
use crate::verdict::{refused_unmet, Verdict, Verdicts};

const CLAIM_PREFIX: &[u8] = b"jwt_claim_";
const HEADER_PREFIX: &[u8] = b"jwt_header_";

type Getter =
    unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_variable_value_t, usize) -> ngx_int_t;

/// Adds the variables; called from preconfiguration.
pub fn register<L: Lookup>(cf: *mut ngx_conf_t) -> Result<(), ()> {
    let vars: [(ngx_str_t, u32, Getter); 6] = [
        (ngx_string!("jwt_sub"), 0, get_sub::<L>),
        (ngx_string!("jwt_payload"), 0, get_payload::<L>),
        (ngx_string!("jwt_error"), 0, get_error::<L>),
        (ngx_string!("jwt_cache_status"), 0, get_cache_status::<L>),
        (
            ngx_string!("jwt_claim_"),
            NGX_HTTP_VAR_PREFIX,
            get_claim::<L>,
        ),
        (
            ngx_string!("jwt_header_"),
            NGX_HTTP_VAR_PREFIX,
            get_header::<L>,
        ),
    ];
    for (name, flags, get) in vars {
        add(cf, name, flags, get, 0).map_err(drop)?;
    }
    Ok(())
}

/// Adds the variables of `auth_jwt_claim_set` and `auth_jwt_header_set`; called from
/// postconfiguration, before nginx resolves the variables the configuration uses.
pub fn register_field_sets<L: Lookup>(cf: *mut ngx_conf_t, sets: &[FieldSet]) -> Option<()> {
    for (i, set) in sets.iter().enumerate() {
        // SAFETY: `cf` is the configuration being read; its pool outlives the cycle's use.
        let name = pool_str(unsafe { (*cf).pool }, set.variable.as_bytes())?;
        match add(cf, name, 0, get_field_set::<L>, i) {
            Ok(()) => {}
            Err(Added::Refused) => return None,
            Err(Added::Taken) => {
                ngx::ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"${}\" of \"auth_jwt_{}_set\" is already defined (by \"set\", \"map\" or a \
                 module); give the variable a name of its own",
                    set.variable,
                    if set.header { "header" } else { "claim" }
                );
                return None;
            }
        }
    }
    Some(())
}

/// Why a variable could not be added.
#[derive(PartialEq, Eq)]
enum Added {
    /// nginx refused it (and said why).
    Refused,
    /// Another definition has it (`set`, `map`): nginx hands back that variable.
    Taken,
}

fn add(
    cf: *mut ngx_conf_t,
    mut name: ngx_str_t,
    flags: u32,
    get: Getter,
    data: usize,
) -> Result<(), Added> {
    // SAFETY: `cf` is the configuration being read; nginx copies the name.
    let v = unsafe {
        ngx_http_add_variable(cf, &mut name, (flags | NGX_HTTP_VAR_NOCACHEABLE) as usize)
    };
    // SAFETY: NULL (a duplicate name, logged by nginx) or the variable nginx just added.
    let v = unsafe { v.as_mut() }.ok_or(Added::Refused)?;
    if v.get_handler.is_some() {
        return Err(Added::Taken);
    }
    let handler: ngx_http_get_variable_pt = Some(get);
    v.get_handler = handler;
    v.data = data;
    Ok(())
}

unsafe extern "C" fn get_field_set<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |r, verdict| {
        let set = L::main(r).and_then(|main| main.field_sets.get(data));
        match (verdict.map(|v| &v.outcome), set) {
            (Some(Ok(claims)), Some(set)) => {
                let value = if set.header {
                    claims.header_path(&set.path)
                } else {
                    claims.claim_path(&set.path)
                };
                let what = if set.header { "header field" } else { "claim" };
                let name = set.path.join(".");
                rendered(r, claims, what, &name, value.map(jwt_core::render))
            }
            _ => Value::NotFound,
        }
    })
}

/// What a variable evaluates to, before it is handed to nginx.
enum Value<'a> {
    NotFound,
    Text(Cow<'a, str>),
}

/// Common shell of every getter: run `f` on the request and store its value.
fn eval<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    f: impl FnOnce(&ngx_http_request_t, Option<&'static Verdict>) -> Value<'static>,
) -> ngx_int_t {
    // SAFETY: nginx calls getters with the request being evaluated and a value slot to fill.
    let (Some(r), Some(v)) = (unsafe { r.as_ref() }, unsafe { v.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: a request's connection and its log outlive the request.
    let log = unsafe { (*r.connection).log };
    let judged = || {
        // A fetch of keys is the server's request: the client's claims are not its to send.
        if is_fetch(r) {
            return None;
        }
        let conf = L::conf(r)?;
        Verdicts::of::<L>(r, &conf)?.verdict(r, conf.loc)
    };
    let Some(value) = guard(log, "a $jwt_* variable", None, || Some(f(r, judged()))) else {
        return NGX_ERROR as ngx_int_t;
    };
    match value {
        Value::NotFound => set_not_found(v),
        // Borrowed text lives in the request's verdict or is static: no copy needed.
        Value::Text(Cow::Borrowed(s)) => set_variable(
            v,
            ngx_str_t {
                len: s.len(),
                data: s.as_ptr().cast_mut(),
            },
        ),
        Value::Text(Cow::Owned(s)) => match pool_str(r.pool, s.as_bytes()) {
            Some(copy) => set_variable(v, copy),
            None => return NGX_ERROR as ngx_int_t,
        },
    }
    NGX_OK as ngx_int_t
}

/// The part of a prefix variable's name after `prefix` (`data` points at the full name).
fn suffix(data: usize, prefix: &[u8]) -> Option<&'static str> {
    // SAFETY: for prefix variables nginx passes the address of the variable's full name, an
    // ngx_str_t in configuration memory that lives as long as the cycle.
    let name: &'static [u8] = unsafe { bytes_unbound(*(data as *const ngx_str_t).as_ref()?) };
    std::str::from_utf8(name.strip_prefix(prefix)?).ok()
}

/// A claim (or header field) rendered for a variable: withheld when it holds a control
/// character, logged once per request.
fn rendered<'a>(
    r: &ngx_http_request_t,
    claims: &Claims,
    what: &str,
    name: &str,
    value: Option<Cow<'a, str>>,
) -> Value<'a> {
    match value {
        Some(text) if jwt_core::header_safe(&text) => Value::Text(text),
        Some(_) => {
            if claims.first_withheld() {
                log(
                    r,
                    NGX_LOG_WARN,
                    format_args!(
                        "auth_jwt: {what} \"{name}\" has control characters, its variable is \
                         left empty"
                    ),
                );
            }
            Value::NotFound
        }
        None => Value::NotFound,
    }
}

unsafe extern "C" fn get_sub<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |r, verdict| match verdict.map(|v| &v.outcome) {
        Some(Ok(claims)) => rendered(r, claims, "claim", "sub", claims.sub().map(Cow::Borrowed)),
        _ => Value::NotFound,
    })
}

unsafe extern "C" fn get_payload<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |_, verdict| match verdict.map(|v| &v.outcome) {
        Some(Ok(claims)) => Value::Text(jwt_core::json_for_header(claims.payload_json())),
        _ => Value::NotFound,
    })
}

unsafe extern "C" fn get_error<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |r, verdict| match verdict.map(|v| &v.outcome) {
        Some(Ok(_)) if refused_unmet(r) => Value::Text(Cow::Borrowed(Reason::Require.word())),
        Some(Ok(_)) => Value::Text(Cow::Borrowed("")),
        Some(Err(e)) => Value::Text(Cow::Borrowed(e.reason.word())),
        None => Value::NotFound,
    })
}

unsafe extern "C" fn get_cache_status<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |_, verdict| match verdict.and_then(|v| v.cache) {
        Some(status) => Value::Text(Cow::Borrowed(status.word())),
        None => Value::NotFound,
    })
}

unsafe extern "C" fn get_claim<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |r, verdict| {
        match (verdict.map(|v| &v.outcome), suffix(data, CLAIM_PREFIX)) {
            (Some(Ok(claims)), Some(name)) => {
                let value = claims.claim(name).map(jwt_core::render);
                rendered(r, claims, "claim", name, value)
            }
            _ => Value::NotFound,
        }
    })
}

unsafe extern "C" fn get_header<L: Lookup>(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    eval::<L>(r, v, |r, verdict| {
        match (verdict.map(|v| &v.outcome), suffix(data, HEADER_PREFIX)) {
            (Some(Ok(claims)), Some(name)) => {
                let value = claims.header(name).map(jwt_core::render);
                rendered(r, claims, "header field", name, value)
            }
            _ => Value::NotFound,
        }
    })
}
