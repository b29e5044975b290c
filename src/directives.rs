//! The directives: one table, and below it the setter of each.
//!
//! A setter records and checks what one directive says, with nginx's file and line in its
//! error; merging levels and compiling what a request needs happen later, in `conf`.

use core::ffi::{c_char, c_void};
use core::ptr;

use jwt_core::refresh::Timing;
use jwt_core::{loose_name_eq, Algorithm, SecretEncoding, Source};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_FLAG,
    NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_CONF_TAKE2, NGX_HTTP_LIF_CONF, NGX_HTTP_LMT_CONF,
    NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET,
    NGX_HTTP_SRV_CONF,
};
use ngx::ngx_string;

use crate::conf::{
    is_enabled_value, At, ClaimHeader, Enabled, FieldSet, KeyFamily, KeyOrigin, KeySource, LocConf,
    MainConf, Realm, Require, Tokens, ZoneConf, DEFAULT_KEY_CACHE, DEFAULT_TTL,
};
use crate::ngx::conf::{run_setter, ConfArgs};
use crate::ngx::shm::{add_zone, previous_block};
use crate::revocation::zone::capacity;
use crate::revocation::{init_zone, state, TAG};

/// `http`, `server` and `location`.
const ANY_LEVEL: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;
/// `auth_jwt_enabled` may also sit inside a location's `if`, whose configuration nginx applies
/// to the request. Not inside a server's `if`: nginx runs only its rewrite directives and
/// ignores every other, which for a switch like this one would fail open.
const ANY_LEVEL_IF: u32 = ANY_LEVEL | NGX_HTTP_LIF_CONF;

/// A directive of the location configuration (`LocConf`), set by `$setter`; writing it marks
/// the level as one where the module applies.
macro_rules! loc_command {
    ($name:literal, $args:expr, $setter:path) => {{
        unsafe extern "C" fn set(
            cf: *mut ngx_conf_t,
            _: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            run_setter(cf, conf, |conf: &mut LocConf, args| {
                conf.touched = true;
                $setter(conf, args)
            })
        }
        ngx_command_t {
            name: ngx_string!($name),
            type_: ($args) as ngx_uint_t,
            set: Some(set),
            conf: NGX_HTTP_LOC_CONF_OFFSET,
            offset: 0,
            post: ptr::null_mut(),
        }
    }};
}

/// A directive of the `http{}` configuration (`MainConf`), set by `$setter`.
macro_rules! main_command {
    ($name:literal, $args:expr, $setter:path) => {{
        unsafe extern "C" fn set(
            cf: *mut ngx_conf_t,
            _: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            run_setter(cf, conf, $setter)
        }
        ngx_command_t {
            name: ngx_string!($name),
            type_: (NGX_HTTP_MAIN_CONF | $args) as ngx_uint_t,
            set: Some(set),
            conf: NGX_HTTP_MAIN_CONF_OFFSET,
            offset: 0,
            post: ptr::null_mut(),
        }
    }};
}

/// The module's directives; nginx only reads this table.
pub static mut COMMANDS: [ngx_command_t; 31] = [
    loc_command!(
        "auth_jwt_enabled",
        ANY_LEVEL_IF | NGX_CONF_TAKE1,
        cmd_enabled
    ),
    loc_command!("auth_jwt_key", ANY_LEVEL | NGX_CONF_TAKE12, cmd_key),
    loc_command!(
        "auth_jwt_use_keyfile",
        ANY_LEVEL | NGX_CONF_FLAG,
        cmd_use_keyfile
    ),
    loc_command!(
        "auth_jwt_keyfile_path",
        ANY_LEVEL | NGX_CONF_TAKE1,
        cmd_keyfile_path
    ),
    loc_command!(
        "auth_jwt_algorithm",
        ANY_LEVEL | NGX_CONF_TAKE1,
        cmd_algorithm
    ),
    loc_command!(
        "auth_jwt_location",
        ANY_LEVEL | NGX_CONF_1MORE,
        cmd_location
    ),
    loc_command!("auth_jwt_redirect", ANY_LEVEL | NGX_CONF_FLAG, cmd_redirect),
    loc_command!(
        "auth_jwt_loginurl",
        ANY_LEVEL | NGX_CONF_TAKE1,
        cmd_loginurl
    ),
    loc_command!(
        "auth_jwt_validate_sub",
        ANY_LEVEL | NGX_CONF_FLAG,
        cmd_validate_sub
    ),
    loc_command!(
        "auth_jwt_extract_var_claims",
        ANY_LEVEL | NGX_CONF_1MORE,
        cmd_extract_var_claims
    ),
    loc_command!(
        "auth_jwt_extract_request_claims",
        ANY_LEVEL | NGX_CONF_1MORE,
        cmd_extract_request_claims
    ),
    loc_command!(
        "auth_jwt_extract_response_claims",
        ANY_LEVEL | NGX_CONF_1MORE,
        cmd_extract_response_claims
    ),
    loc_command!(
        "auth_jwt_bypass_options",
        ANY_LEVEL | NGX_CONF_FLAG,
        cmd_bypass_options
    ),
    loc_command!("auth_jwt_realm", ANY_LEVEL | NGX_CONF_TAKE1, cmd_realm),
    loc_command!("auth_jwt_leeway", ANY_LEVEL | NGX_CONF_TAKE1, cmd_leeway),
    loc_command!("auth_jwt_issuer", ANY_LEVEL | NGX_CONF_1MORE, cmd_issuer),
    loc_command!(
        "auth_jwt_audience",
        ANY_LEVEL | NGX_CONF_1MORE,
        cmd_audience
    ),
    loc_command!(
        "auth_jwt",
        ANY_LEVEL | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE12,
        cmd_auth_jwt
    ),
    loc_command!(
        "auth_jwt_key_file",
        ANY_LEVEL | NGX_CONF_TAKE12,
        cmd_key_file
    ),
    loc_command!(
        "auth_jwt_key_request",
        ANY_LEVEL | NGX_CONF_TAKE1,
        cmd_key_request
    ),
    loc_command!(
        "auth_jwt_key_cache",
        ANY_LEVEL | NGX_CONF_TAKE12,
        cmd_key_cache
    ),
    loc_command!("auth_jwt_type", ANY_LEVEL | NGX_CONF_TAKE1, cmd_type),
    loc_command!(
        "auth_jwt_require",
        ANY_LEVEL | NGX_HTTP_LMT_CONF | NGX_CONF_1MORE,
        cmd_require
    ),
    loc_command!(
        "auth_jwt_revocation",
        ANY_LEVEL | NGX_CONF_TAKE1,
        cmd_revocation
    ),
    loc_command!(
        "auth_jwt_revocation_request",
        ANY_LEVEL | NGX_CONF_TAKE2,
        cmd_revocation_request
    ),
    loc_command!(
        "auth_jwt_revocation_api",
        NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
        cmd_revocation_api
    ),
    main_command!("auth_jwt_cache", NGX_CONF_TAKE1, cmd_cache),
    main_command!(
        "auth_jwt_revocation_zone",
        NGX_CONF_1MORE,
        cmd_revocation_zone
    ),
    main_command!("auth_jwt_claim_set", NGX_CONF_2MORE, cmd_claim_set),
    main_command!("auth_jwt_header_set", NGX_CONF_2MORE, cmd_header_set),
    ngx_command_t::empty(),
];

/// The largest `auth_jwt_leeway`: clocks a day apart are not a skew to tolerate.
const MAX_LEEWAY: u64 = 24 * 60 * 60;

type SetResult = Result<(), String>;

fn cmd_enabled(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let value = args.get(1).unwrap_or(&[]).to_vec();
    let enabled = match args.compile(&value)? {
        Some(cv) => Enabled::Variable(cv),
        None => Enabled::Static(is_enabled_value(&value)),
    };
    let pos = args.pos();
    set_enabled(
        conf,
        At {
            value: enabled,
            pos,
        },
    )
}

fn cmd_key(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let text = args.get(1).unwrap_or(&[]);
    if has_variable(text) {
        return Err("does not support variables: the key is decoded once, at load".into());
    }
    let encoding = match args.get(2) {
        None => None,
        Some(word) => Some(
            std::str::from_utf8(word)
                .ok()
                .and_then(SecretEncoding::from_name)
                .ok_or_else(|| {
                    format!(
                        "invalid key encoding \"{}\", it must be \"hex\", \"utf8\" or \"base64\"",
                        String::from_utf8_lossy(word)
                    )
                })?,
        ),
    };
    let trimmed = text.trim_ascii_start();
    let material =
        encoding.is_none() && (trimmed.starts_with(b"-----BEGIN") || trimmed.starts_with(b"{"));
    let bytes = if material {
        text.to_vec()
    } else {
        jwt_core::decode_secret(text, encoding.unwrap_or(SecretEncoding::Hex))
            .map_err(|e| e.to_string())?
    };
    key_family(conf, KeyFamily::TeslaGov, args)?;
    let source = KeySource::new(
        KeyOrigin::Inline { bytes, material },
        "auth_jwt_key",
        args.pos(),
    );
    set_once(&mut conf.verify.key, source)
}

/// `$name` or `${name}`: what nginx would take for a variable where variables are allowed.
fn has_variable(text: &[u8]) -> bool {
    text.windows(2).any(|w| {
        matches!(w, [b'$', next] if next.is_ascii_alphanumeric() || *next == b'_' || *next == b'{')
    })
}

fn cmd_use_keyfile(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    key_family(conf, KeyFamily::TeslaGov, args)?;
    let pos = args.pos();
    set_once(&mut conf.verify.use_keyfile, At { value: on, pos })
}

fn cmd_keyfile_path(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let path = args.full_name(1)?;
    key_family(conf, KeyFamily::TeslaGov, args)?;
    let source = KeySource::new(
        KeyOrigin::File { path },
        "auth_jwt_keyfile_path",
        args.pos(),
    );
    set_once(&mut conf.verify.keyfile, source)
}

fn cmd_algorithm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let name = utf8_arg(args, 1)?;
    let alg = Algorithm::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!(
            "invalid algorithm \"{name}\", it must be one of {}",
            all.join(", ")
        )
    })?;
    set_once(&mut conf.verify.algorithm, alg)
}

fn cmd_location(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let mut sources = Vec::new();
    for i in 1..args.len() {
        sources.push(Source::parse(utf8_arg(args, i)?)?);
    }
    set_tokens(conf, Tokens::Sources(sources))
}

fn cmd_redirect(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    let pos = args.pos();
    set_once(&mut conf.check.redirect, At { value: on, pos })
}

fn cmd_loginurl(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let value = args.get(1).unwrap_or(&[]).to_vec();
    if value.is_empty() {
        return Err("needs a non-empty URL".into());
    }
    let cv = args.compile_always(&value)?;
    set_once(&mut conf.check.loginurl, cv)
}

fn cmd_validate_sub(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    set_once(&mut conf.verify.require_sub, on)
}

/// Accepted for TeslaGov compatibility: every claim has a `$jwt_claim_NAME` variable anyway.
fn cmd_extract_var_claims(_: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    claim_list(args).map(drop)
}

/// Repeatable: each directive adds its claims to the level's list.
fn cmd_extract_request_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let claims = claim_list(args)?;
    add_claims(&mut conf.check.request_claims, claims)
}

/// Repeatable: each directive adds its claims to the level's list.
fn cmd_extract_response_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let claims = claim_list(args)?;
    add_claims(&mut conf.check.response_claims, claims)
}

fn add_claims(list: &mut Option<Vec<ClaimHeader>>, claims: Vec<ClaimHeader>) -> SetResult {
    let list = list.get_or_insert_with(Vec::new);
    for claim in claims {
        if list.iter().any(|c| loose_name_eq(&c.name, &claim.name)) {
            return Err(format!(
                "names claim \"{}\" twice: header \"{}\" would be set twice",
                claim.claim,
                String::from_utf8_lossy(&claim.name)
            ));
        }
        list.push(claim);
    }
    Ok(())
}

/// Claim names become header names, so they must be HTTP tokens.
fn claim_list(args: &ConfArgs) -> Result<Vec<ClaimHeader>, String> {
    let mut out = Vec::new();
    for i in 1..args.len() {
        let claim = utf8_arg(args, i)?;
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if claim.is_empty() || !claim.bytes().all(is_tchar) {
            return Err(format!(
                "invalid claim name \"{claim}\", it must be usable in a header name"
            ));
        }
        let name = format!("JWT-{claim}").into_bytes();
        let lowcase = name.to_ascii_lowercase();
        out.push(ClaimHeader {
            claim: claim.to_string(),
            name,
            lowcase,
        });
    }
    Ok(out)
}

fn cmd_bypass_options(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    set_once(&mut conf.check.bypass_options, on)
}

fn cmd_realm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let realm = Realm::text(utf8_arg(args, 1)?);
    set_realm(conf, realm)
}

/// `auth_jwt realm [token=$variable] | off`, as NGINX Plus has it: switches the check on with
/// that realm (variables allowed), the token read from `Authorization: Bearer` or from the
/// variable; `off` switches it off.
fn cmd_auth_jwt(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let first = args.get(1).unwrap_or(&[]).to_vec();
    let pos = args.pos();
    if first == b"off" {
        if args.len() > 2 {
            return Err("takes no parameter after \"off\"".into());
        }
        return set_enabled(
            conf,
            At {
                value: Enabled::Static(false),
                pos,
            },
        );
    }
    set_enabled(
        conf,
        At {
            value: Enabled::Static(true),
            pos,
        },
    )?;
    let realm = match args.compile(&first)? {
        Some(cv) => Realm::Variable(cv),
        None => Realm::text(utf8_arg(args, 1)?),
    };
    set_realm(conf, realm)?;
    let tokens = match args.get(2) {
        None => Tokens::authorization(),
        Some(param) => {
            let Some(value) = param.strip_prefix(b"token=") else {
                return Err(format!(
                    "invalid parameter \"{}\", it must be \"token=$variable\"",
                    String::from_utf8_lossy(param)
                ));
            };
            let value = value.to_vec();
            let Some(cv) = args.compile(&value)? else {
                return Err("needs a variable in \"token=\"".into());
            };
            match variable_source(&value) {
                Some(source) => Tokens::Sources(vec![source]),
                None => Tokens::Variable(cv, String::from_utf8_lossy(&value).into_owned()),
            }
        }
    };
    set_tokens(conf, tokens)
}

/// `$cookie_NAME`, `$arg_NAME` or `$http_NAME` alone, as the token source it reads: the rules
/// of sources then apply (a second, different token under the name refused; a `QUERY=` token
/// left out of `return_url`; a `JWT-*` source header kept on arrival).
fn variable_source(value: &[u8]) -> Option<Source> {
    let name = std::str::from_utf8(value.strip_prefix(b"$")?).ok()?;
    let simple =
        |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let spec = if let Some(n) = name.strip_prefix("cookie_").filter(|n| simple(n)) {
        format!("COOKIE={n}")
    } else if let Some(n) = name.strip_prefix("arg_").filter(|n| simple(n)) {
        format!("QUERY={n}")
    } else if let Some(n) = name.strip_prefix("http_").filter(|n| simple(n)) {
        // nginx's `$http_x_token` is the header `X-Token`.
        format!("HEADER={}", n.replace('_', "-"))
    } else {
        return None;
    };
    Source::parse(&spec).ok()
}

/// `auth_jwt_key_file file [jwks]`: a JWK set (or any key `auth_jwt_keyfile_path` reads);
/// repeated, the keys of every file are used together.
fn cmd_key_file(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    if has_variable(args.get(1).unwrap_or(&[])) {
        return Err("does not support variables: key files are read once, at load".into());
    }
    match args.get(2) {
        // kjdev/nginx-auth-jwt's format parameter: a JWK set is what every file may be.
        None | Some(b"jwks") => {}
        Some(other) => {
            return Err(format!(
                "format \"{}\" is not supported, only \"jwks\"",
                String::from_utf8_lossy(other)
            ))
        }
    }
    let path = args.full_name(1)?;
    plus_key(conf, KeyOrigin::File { path }, "auth_jwt_key_file", args)
}

/// Records a key source of the NGINX Plus family (`auth_jwt_key_file`,
/// `auth_jwt_key_request`), repeatable, in the order written.
fn plus_key(
    conf: &mut LocConf,
    origin: KeyOrigin,
    directive: &'static str,
    args: &ConfArgs,
) -> SetResult {
    key_family(conf, KeyFamily::Plus, args)?;
    let list = match origin {
        KeyOrigin::Request { .. } => &mut conf.verify.key_requests,
        _ => &mut conf.verify.key_files,
    };
    let source = KeySource::new(origin, directive, args.pos());
    list.get_or_insert_with(Vec::new).push(source);
    Ok(())
}

/// `auth_jwt_key_request uri`: keys from the JWK set a subrequest to `uri` answers (a
/// location of the same server, usually `internal` and proxying to the identity provider).
/// Repeatable; combined with the level's key files.
fn cmd_key_request(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let uri = local_uri(args, "keys")?;
    let origin = KeyOrigin::Request { uri };
    plus_key(conf, origin, "auth_jwt_key_request", args)
}

/// `auth_jwt_revocation_request uri interval`: the zone of `auth_jwt_revocation` follows the
/// list `uri` answers, fetched again every `interval`.
fn cmd_revocation_request(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let uri = local_uri(args, "revocations")?;
    let interval = args.parse_time(2)?;
    if interval == 0 {
        return Err("needs an interval longer than 0".into());
    }
    let pos = args.pos();
    set_once(
        &mut conf.verify.revocation_request,
        At {
            value: (uri, interval),
            pos,
        },
    )
}

/// Argument 1 as the URI of a fetch of `what`: local, fixed (no variable).
fn local_uri(args: &ConfArgs, what: &str) -> Result<String, String> {
    let uri = utf8_arg(args, 1)?;
    if has_variable(uri.as_bytes()) {
        return Err(format!(
            "does not support variables: {what} come only from the configured source"
        ));
    }
    if !uri.starts_with('/') || uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!(
            "invalid URI \"{}\": it must be a local URI starting with \"/\"",
            uri.escape_debug()
        ));
    }
    Ok(uri.to_owned())
}

/// `auth_jwt_key_cache time [stale=time]`: fetched keys serve `time` after their fetch, and
/// while fetching fails, `stale` past it.
fn cmd_key_cache(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let cache = args.parse_time(1)?;
    let mut timing = Timing {
        cache_ms: cache.saturating_mul(1000),
        ..DEFAULT_KEY_CACHE
    };
    if let Some(stale) = args.get(2) {
        if !stale.starts_with(b"stale=") {
            return Err(format!(
                "invalid parameter \"{}\"",
                String::from_utf8_lossy(stale).escape_debug()
            ));
        }
        timing.stale_ms = args.parse_time_in(2, b"stale=".len())?.saturating_mul(1000);
    }
    set_once(&mut conf.verify.key_cache, timing)
}

/// `auth_jwt_require $value ... [error=401|403]`: once the token is valid, every value must be
/// non-empty and not `0`, or the request is refused with that status. Repeatable: every
/// directive of the level must hold.
fn cmd_require(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let mut values = Vec::new();
    let mut error = 401;
    for i in 1..args.len() {
        let arg = args.get(i).unwrap_or(&[]).to_vec();
        if let Some(code) = arg.strip_prefix(b"error=") {
            if i + 1 != args.len() {
                return Err("takes \"error=\" last".into());
            }
            error = match code {
                b"401" => 401,
                b"403" => 403,
                _ => {
                    return Err(format!(
                        "invalid \"error={}\", it must be 401 or 403",
                        String::from_utf8_lossy(code)
                    ))
                }
            };
            continue;
        }
        let text = String::from_utf8_lossy(&arg).into_owned();
        // A constant would hold, or fail, for every request: a mistake, as in NGINX Plus.
        let Some(cv) = args.compile(&arg)? else {
            return Err(format!("value \"{text}\" has no variable"));
        };
        values.push((cv, text));
    }
    if values.is_empty() {
        return Err("needs at least one value".into());
    }
    let require = Require { values, error };
    conf.check
        .requires
        .get_or_insert_with(Vec::new)
        .push(require);
    Ok(())
}

/// `auth_jwt_claim_set $variable name ...`: the variable holds the claim at that path.
fn cmd_claim_set(conf: &mut MainConf, args: &mut ConfArgs) -> SetResult {
    field_set(conf, args, false)
}

/// `auth_jwt_header_set $variable name ...`: the variable holds the JOSE header field at that
/// path.
fn cmd_header_set(conf: &mut MainConf, args: &mut ConfArgs) -> SetResult {
    field_set(conf, args, true)
}

fn field_set(conf: &mut MainConf, args: &mut ConfArgs, header: bool) -> SetResult {
    let first = utf8_arg(args, 1)?;
    let variable = first
        .strip_prefix('$')
        .filter(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .ok_or_else(|| format!("invalid variable name \"{first}\""))?
        .to_owned();
    let path = (2..args.len())
        .map(|i| utf8_arg(args, i).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    conf.field_sets.push(FieldSet {
        variable,
        path,
        header,
    });
    Ok(())
}

/// `auth_jwt_type signed`: the only kind of token this module verifies.
fn cmd_type(_: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    match args.get(1).unwrap_or(&[]) {
        b"signed" => Ok(()),
        kind @ (b"encrypted" | b"nested") => Err(format!(
            "\"{}\" is not supported: this module verifies signed tokens (JWS) only",
            String::from_utf8_lossy(kind)
        )),
        other => Err(format!(
            "invalid value \"{}\", it must be \"signed\"",
            String::from_utf8_lossy(other)
        )),
    }
}

/// `auth_jwt` and `auth_jwt_enabled` both switch the check: one of them per level.
fn set_enabled(conf: &mut LocConf, enabled: At<Enabled>) -> SetResult {
    if let Some(At { pos, .. }) = &conf.check.enabled {
        return Err(format!(
            "is duplicate: the check is already switched on or off here, in {pos}"
        ));
    }
    conf.check.enabled = Some(enabled);
    Ok(())
}

/// `auth_jwt` and `auth_jwt_realm` both name the realm: one of them per level.
fn set_realm(conf: &mut LocConf, realm: Realm) -> SetResult {
    if conf.check.realm.is_some() {
        return Err("is duplicate: the realm is already set at this level".into());
    }
    conf.check.realm = Some(realm);
    Ok(())
}

/// `auth_jwt` and `auth_jwt_location` both name where the token is read: one of them per
/// level. `auth_jwt` without `token=` reads the `Authorization` header.
fn set_tokens(conf: &mut LocConf, tokens: Tokens) -> SetResult {
    if conf.verify.tokens.is_some() {
        return Err(
            "is duplicate: where the token is read is already set at this level \
             (\"auth_jwt_location\" or \"auth_jwt ... token=\")"
                .into(),
        );
    }
    conf.verify.tokens = Some(tokens);
    Ok(())
}

/// The key directives of the two families are not mixed at one level.
fn key_family(conf: &mut LocConf, family: KeyFamily, args: &ConfArgs) -> SetResult {
    match &conf.verify.keys_from {
        Some(At { value, pos }) if *value != family => Err(format!(
            "cannot be mixed with the key directives of {pos} at one level: use \
             \"auth_jwt_key_file\" or \"auth_jwt_key\"/\"auth_jwt_keyfile_path\""
        )),
        Some(_) => Ok(()),
        None => {
            conf.verify.keys_from = Some(At {
                value: family,
                pos: args.pos(),
            });
            Ok(())
        }
    }
}

fn cmd_leeway(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let secs = args.parse_time(1)?;
    if secs > MAX_LEEWAY {
        return Err(format!(
            "value \"{}\" is too large, the most is 1d",
            String::from_utf8_lossy(args.get(1).unwrap_or(&[]))
        ));
    }
    set_once(&mut conf.verify.leeway, secs)
}

fn cmd_issuer(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let list = string_list(args)?;
    set_once(&mut conf.verify.issuers, list)
}

fn cmd_audience(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let list = string_list(args)?;
    set_once(&mut conf.verify.audiences, list)
}

fn string_list(args: &ConfArgs) -> Result<Vec<String>, String> {
    (1..args.len())
        .map(|i| utf8_arg(args, i).map(str::to_string))
        .collect()
}

fn cmd_cache(conf: &mut MainConf, args: &mut ConfArgs) -> SetResult {
    let size = match args.get(1) {
        Some(v) if v.eq_ignore_ascii_case(b"off") => 0,
        _ => args.parse_size(1)?,
    };
    set_once(&mut conf.cache_size, size)
}

/// `auth_jwt_revocation NAME | off`: valid tokens are checked against the zone's list.
fn cmd_revocation(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let name = utf8_arg(args, 1)?;
    let value = (name != "off").then(|| name.to_owned());
    let pos = args.pos();
    set_once(&mut conf.verify.revocation, At { value, pos })
}

/// `auth_jwt_revocation_api NAME`: the location answers the zone's API.
fn cmd_revocation_api(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let value = utf8_arg(args, 1)?.to_owned();
    let pos = args.pos();
    set_once(&mut conf.api_name, At { value, pos })
}

/// `auth_jwt_revocation_zone zone=NAME:SIZE [state=FILE] [ttl=TIME]`: declares a revocation
/// list in shared memory, and reads its state file now, so that `nginx -t` names a file that
/// cannot be used.
fn cmd_revocation_zone(conf: &mut MainConf, args: &mut ConfArgs) -> SetResult {
    let (mut zone, mut state, mut ttl) = (None, None, None);
    for i in 1..args.len() {
        let arg = args.get(i).unwrap_or(&[]).to_vec();
        if let Some(value) = arg.strip_prefix(b"zone=") {
            let invalid = || {
                format!(
                    "invalid zone \"{}\", it must be zone=NAME:SIZE",
                    String::from_utf8_lossy(value)
                )
            };
            let at = value.iter().rposition(|&b| b == b':').ok_or_else(invalid)?;
            let (name, size) = (
                value.get(..at).unwrap_or(&[]),
                value.get(at + 1..).unwrap_or(&[]),
            );
            let name = std::str::from_utf8(name)
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or_else(invalid)?;
            let size = args.parse_size_of(size).map_err(|_| invalid())?;
            set_once(&mut zone, (name.to_owned(), size))?;
        } else if let Some(path) = arg.strip_prefix(b"state=") {
            let path = args.full_name_of(path)?;
            set_once(&mut state, path)?;
        } else if arg.starts_with(b"ttl=") {
            let secs = args.parse_time_in(i, b"ttl=".len())?;
            if secs == 0 {
                return Err("needs a \"ttl=\" longer than 0".into());
            }
            set_once(
                &mut ttl,
                i64::try_from(secs).map_err(|_| "has a \"ttl=\" too long")?,
            )?;
        } else {
            return Err(format!(
                "invalid parameter \"{}\"",
                String::from_utf8_lossy(&arg).escape_debug()
            ));
        }
    }
    let (name, size) = zone.ok_or("needs \"zone=NAME:SIZE\"")?;
    if conf.revocation_zone(&name).is_some() {
        return Err(format!("declares zone \"{name}\" again"));
    }
    let min = MIN_REVOCATION_ZONE;
    if capacity(size) < capacity(min) {
        return Err(format!(
            "zone \"{name}\" is too small, it must be at least {}k",
            min / 1024
        ));
    }
    let loaded = match &state {
        Some(path) => state::load(path)?,
        None => Vec::new(),
    };
    if loaded.len() > capacity(size) {
        return Err(format!(
            "zone \"{name}\" holds {} entries, fewer than its state file's {}",
            capacity(size),
            loaded.len()
        ));
    }
    let tag: *const c_void = (&TAG as *const u8).cast();
    let previous = previous_block(args.cf(), &name, tag);
    let mut record = Box::new(ZoneConf {
        name,
        size,
        state,
        ttl: ttl.unwrap_or(DEFAULT_TTL),
        loaded,
        shm: None,
        previous,
    });
    let arg: *const ZoneConf = &*record;
    // The record keeps its address in the `Box` while the configuration lives.
    let shm = add_zone(args.cf(), &record.name, size, tag, init_zone, arg.cast())
        .ok_or_else(|| format!("cannot declare zone \"{}\"", record.name))?;
    record.shm = Some(shm);
    conf.revocation_zones.push(record);
    Ok(())
}

/// The smallest revocation zone: 64 entries.
const MIN_REVOCATION_ZONE: usize = 16 * 1024;

fn set_once<T>(slot: &mut Option<T>, value: T) -> SetResult {
    if slot.is_some() {
        return Err("is duplicate".into());
    }
    *slot = Some(value);
    Ok(())
}

fn flag(args: &ConfArgs) -> Result<bool, String> {
    match args.get(1) {
        Some(v) if v.eq_ignore_ascii_case(b"on") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case(b"off") => Ok(false),
        Some(v) => Err(format!(
            "invalid value \"{}\", it must be \"on\" or \"off\"",
            String::from_utf8_lossy(v)
        )),
        None => Err("takes one argument".into()),
    }
}

fn utf8_arg(args: &ConfArgs, i: usize) -> Result<&str, String> {
    let v = args.get(i).unwrap_or(&[]);
    std::str::from_utf8(v).map_err(|_| "argument is not valid UTF-8".to_string())
}
