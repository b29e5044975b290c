//! Configuration: directive setters, merge, and the key sources they name.
//!
//! Setters only record and check what one directive says (with nginx's file:line in errors).
//! Merge combines the levels and compiles everything a request needs, once: the key set, the
//! validation policy and the token sources, shared by `Arc` with every location that does not
//! change them. Key files are read and parsed once per configuration, whatever the number of
//! locations naming them; a key directive that no level ends up using fails the configuration.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jwt_core::{loose_name_eq, Algorithm, KeySet, Policy, SecretEncoding, Source, SourceKind};

use crate::glue::{ComplexValue, ConfArgs};

/// Where a directive was written, for errors reported after parsing (at merge).
#[derive(Clone, Debug)]
pub struct Pos {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// `auth_jwt_enabled`: a constant, or a value with variables evaluated per request.
#[derive(Clone)]
pub enum Enabled {
    Static(bool),
    Variable(ComplexValue),
}

/// One `auth_jwt_key` or `auth_jwt_keyfile_path` directive.
pub struct KeySource {
    origin: KeyOrigin,
    pos: Pos,
    /// Some level takes its key from here.
    used: Cell<bool>,
    /// Why a level that inherits it takes its key elsewhere, for the error if none uses it.
    passed_over: RefCell<Option<String>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum KeyOrigin {
    /// `auth_jwt_key`: a decoded secret, or key material (PEM, JWK) given as text.
    Inline { bytes: Vec<u8>, material: bool },
    /// `auth_jwt_keyfile_path`, resolved against the prefix.
    File { path: String },
}

impl KeySource {
    fn directive(&self) -> &'static str {
        match self.origin {
            KeyOrigin::Inline { .. } => "auth_jwt_key",
            KeyOrigin::File { .. } => "auth_jwt_keyfile_path",
        }
    }

    fn describe(&self) -> String {
        match &self.origin {
            KeyOrigin::Inline { .. } => format!("the key of \"auth_jwt_key\" in {}", self.pos),
            KeyOrigin::File { path } => format!("the key file \"{path}\""),
        }
    }
}

/// A claim passed on as a `JWT-<claim>` header.
#[derive(Clone, Debug)]
pub struct ClaimHeader {
    pub claim: String,
    /// `JWT-<claim>` as written in the configuration.
    pub name: Vec<u8>,
    /// Lowercase `name`, as nginx keys request headers.
    pub lowcase: Vec<u8>,
}

/// What verifying a token needs, compiled once per distinct configuration.
pub struct Auth {
    /// The verified-token cache's scope: the same for every location whose keys and policy
    /// are identical, so that their tokens share entries.
    pub scope: u64,
    pub keys: Arc<KeySet>,
    pub policy: Policy,
    pub sources: Vec<Source>,
    /// A `QUERY=` source is among them: the token may change with the arguments.
    pub query: bool,
    /// What a request without a token is logged with: `no token in header "Authorization"`.
    pub missing: String,
}

/// The settings of one level (`http`, `server`, `location`, `if` in location), as written,
/// then merged with the enclosing level's.
#[derive(Default)]
pub struct LocConf {
    enabled: Option<Enabled>,
    enabled_pos: Option<Pos>,
    key: Option<Rc<KeySource>>,
    use_keyfile: Option<bool>,
    use_keyfile_pos: Option<Pos>,
    keyfile: Option<Rc<KeySource>>,
    algorithm: Option<Algorithm>,
    sources: Option<Vec<Source>>,
    redirect: Option<bool>,
    redirect_pos: Option<Pos>,
    loginurl: Option<ComplexValue>,
    validate_sub: Option<bool>,
    request_claims: Option<Vec<ClaimHeader>>,
    response_claims: Option<Vec<ClaimHeader>>,
    bypass_options: Option<bool>,
    /// `Bearer realm="…"`, the realm escaped once, at the directive.
    challenge: Option<String>,
    leeway: Option<u64>,
    issuers: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    /// A directive of this module is written here or at an enclosing level.
    touched: bool,

    /// Compiled at merge. `None`: no key here (the module is inert unless enabled explicitly).
    pub auth: Option<Arc<Auth>>,
    merged: bool,
}

/// The challenge of `auth_jwt_realm Restricted`, the default.
pub const DEFAULT_CHALLENGE: &str = "Bearer realm=\"Restricted\"";

/// Per-`server{}` state, gathered while its locations merge.
#[derive(Default)]
pub struct SrvConf {
    /// A directive of this module applies somewhere in the server: client headers named
    /// `JWT-*` are removed from its requests on arrival.
    pub guarded: bool,
    /// Names of the `JWT-*` headers that are token sources somewhere in the server, which are
    /// kept: exactly these names, in any case.
    pub source_headers: Vec<Vec<u8>>,
}

impl SrvConf {
    /// Whether a client header is one the module removes on arrival: `JWT` and a character
    /// that is not a letter or digit (`-`, `_`, and the `.` or space that CGI-style upstreams,
    /// PHP among them, turn into `_`), but a token source (by its exact name: a `JWT_Token`
    /// next to a `JWT-Token` source goes, as an application may read it for the source).
    pub fn removes(&self, name: &[u8]) -> bool {
        let jwt = name
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"jwt"));
        let separated = name.get(3).is_some_and(|b| !b.is_ascii_alphanumeric());
        jwt && separated
            && !self
                .source_headers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
    }
}

/// Per-`http{}` settings and the configuration's key sources.
pub struct MainConf {
    /// `auth_jwt_cache`: bytes per worker, 0 for off; `None` until set.
    cache_size: Option<usize>,
    /// `$scheme`, `$host`, `$server_addr`, `$server_port`: the parts of `return_url` nginx knows.
    pub scheme: Option<ComplexValue>,
    pub host: Option<ComplexValue>,
    pub server_addr: Option<ComplexValue>,
    pub server_port: Option<ComplexValue>,
    /// Every key directive of the configuration: each must be used by some level.
    key_sources: Vec<Rc<KeySource>>,
    /// Key sets by origin and algorithm: a file that fifty locations name is read and parsed
    /// once.
    loaded: RefCell<HashMap<LoadKey, Result<ParsedKeys, String>>>,
}

/// A key source's bytes and the algorithm asked of them.
type LoadKey = (KeyOrigin, Option<Algorithm>);

/// A parsed key set and the digest that identifies it.
#[derive(Clone)]
struct ParsedKeys {
    keys: Arc<KeySet>,
    fingerprint: [u8; 32],
}

/// 2 MiB per worker: about two thousand typical tokens.
pub const DEFAULT_CACHE_SIZE: usize = 2 * 1024 * 1024;

/// The largest key file read: a JWK set of some ten thousand RSA keys.
const MAX_KEY_FILE: u64 = 16 * 1024 * 1024;

/// The largest `auth_jwt_leeway`: clocks a day apart are not a skew to tolerate.
const MAX_LEEWAY: u64 = 24 * 60 * 60;

impl MainConf {
    pub fn new() -> MainConf {
        MainConf {
            cache_size: None,
            scheme: None,
            host: None,
            server_addr: None,
            server_port: None,
            key_sources: Vec::new(),
            loaded: RefCell::new(HashMap::new()),
        }
    }

    pub fn cache_size(&self) -> usize {
        self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE)
    }

    /// The error for each key directive that no level uses, with its position.
    pub fn unused_key_sources(&self) -> Vec<(String, Pos)> {
        self.key_sources
            .iter()
            .filter(|s| !s.used.get())
            .map(|s| {
                let why = s
                    .passed_over
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "no server or location inherits it".to_owned());
                (
                    format!("\"{}\" is not used anywhere: {why}", s.directive()),
                    s.pos.clone(),
                )
            })
            .collect()
    }

    /// Reads and parses a key source for `alg` (or each key's own algorithm), once.
    fn load(
        &self,
        source: &KeySource,
        alg: Option<Algorithm>,
        warn: &mut Warnings,
    ) -> Result<ParsedKeys, String> {
        let id = (source.origin.clone(), alg);
        if let Some(done) = self.loaded.borrow().get(&id) {
            return done.clone();
        }
        let result = load_keys(source, alg).map(|(keys, warnings)| {
            warn.extend(warnings.into_iter().map(|w| (w, source.pos.clone())));
            ParsedKeys {
                fingerprint: keys.fingerprint(),
                keys: Arc::new(keys),
            }
        });
        self.loaded.borrow_mut().insert(id, result.clone());
        result
    }
}

fn load_keys(source: &KeySource, alg: Option<Algorithm>) -> Result<(KeySet, Vec<String>), String> {
    match &source.origin {
        KeyOrigin::File { path } => {
            let data = read_key_file(path)?;
            KeySet::from_material(&data, alg)
                .map_err(|e| format!("invalid key file \"{path}\": {e}"))
        }
        KeyOrigin::Inline { bytes, material } => {
            let loaded = if *material {
                KeySet::from_material(bytes, alg)
            } else {
                KeySet::from_secret(bytes, alg.unwrap_or(Algorithm::HS256))
            };
            loaded.map_err(|e| format!("invalid \"auth_jwt_key\": {e}"))
        }
    }
}

/// A key file's bytes: a regular file of at most `MAX_KEY_FILE` bytes. Opened without
/// blocking, so that a FIFO given by mistake fails at once instead of hanging `nginx -t`.
fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let cannot = |e: std::io::Error| format!("cannot read key file \"{path}\": {e}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(ngx::ffi::O_NONBLOCK as i32)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("key file \"{path}\" is not a regular file"));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(format!(
            "key file \"{path}\" is larger than {} MiB",
            MAX_KEY_FILE >> 20
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut data)
        .map_err(cannot)?;
    if data.len() as u64 > MAX_KEY_FILE {
        return Err(format!(
            "key file \"{path}\" grew past {} MiB",
            MAX_KEY_FILE >> 20
        ));
    }
    Ok(data)
}

/// The cache scope of a key set and policy: identical settings get the same scope, in every
/// location and across reloads; any difference, another.
fn scope_of(fingerprint: [u8; 32], policy: &Policy) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    type Registry = HashMap<([u8; 32], Policy), u64>;
    static SCOPES: Mutex<Option<Registry>> = Mutex::new(None);
    let Ok(mut scopes) = SCOPES.lock() else {
        // A poisoned registry (a panic while it was held) only costs sharing.
        return NEXT.fetch_add(1, Ordering::Relaxed);
    };
    *scopes
        .get_or_insert_with(HashMap::new)
        .entry((fingerprint, policy.clone()))
        .or_insert_with(|| NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn cmd_cache(conf: &mut MainConf, args: &mut ConfArgs) -> SetResult {
    let size = match args.get(1) {
        Some(v) if v.eq_ignore_ascii_case(b"off") => 0,
        _ => args.parse_size(1)?,
    };
    set_once(&mut conf.cache_size, size)
}

impl LocConf {
    pub fn enabled(&self) -> Option<&Enabled> {
        self.enabled.as_ref()
    }
    pub fn redirect(&self) -> bool {
        self.redirect.unwrap_or(false)
    }
    pub fn loginurl(&self) -> Option<&ComplexValue> {
        self.loginurl.as_ref()
    }
    pub fn bypass_options(&self) -> bool {
        self.bypass_options.unwrap_or(true)
    }
    pub fn challenge(&self) -> &str {
        self.challenge.as_deref().unwrap_or(DEFAULT_CHALLENGE)
    }
    pub fn request_claims(&self) -> &[ClaimHeader] {
        self.request_claims.as_deref().unwrap_or(&[])
    }
    pub fn response_claims(&self) -> &[ClaimHeader] {
        self.response_claims.as_deref().unwrap_or(&[])
    }
    /// Names of `QUERY=` sources, which `return_url` leaves out.
    pub fn query_sources(&self) -> impl Iterator<Item = &str> {
        self.auth
            .iter()
            .flat_map(|auth| auth.sources.iter())
            .filter(|s| s.kind == SourceKind::Query)
            .map(|s| s.name.as_str())
    }
}

type SetResult = Result<(), String>;

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

/// Every setter of a location directive: records that the module is used at this level.
fn touch(conf: &mut LocConf) -> &mut LocConf {
    conf.touched = true;
    conf
}

pub fn cmd_enabled(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let value = args.get(1).unwrap_or(&[]).to_vec();
    let enabled = match args.compile(&value)? {
        Some(cv) => Enabled::Variable(cv),
        None => Enabled::Static(is_enabled_value(&value)),
    };
    set_once(&mut conf.enabled, enabled)?;
    conf.enabled_pos = Some(args.pos());
    Ok(())
}

/// Only `off` (any case) disables the check; anything else, the empty string included,
/// enables it: a `map` without a default, or a variable that is not set, fails closed.
pub fn is_enabled_value(value: &[u8]) -> bool {
    !value.eq_ignore_ascii_case(b"off")
}

pub fn cmd_key(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
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
    let source = register(args, KeyOrigin::Inline { bytes, material })?;
    set_once(&mut conf.key, source)
}

/// A key directive, recorded in the `http{}` configuration for the check that it is used.
fn register(args: &mut ConfArgs, origin: KeyOrigin) -> Result<Rc<KeySource>, String> {
    let source = Rc::new(KeySource {
        origin,
        pos: args.pos(),
        used: Cell::new(false),
        passed_over: RefCell::new(None),
    });
    let main = args.main_conf().ok_or("is not inside an \"http\" block")?;
    main.key_sources.push(Rc::clone(&source));
    Ok(source)
}

/// `$name` or `${name}`: what nginx would take for a variable where variables are allowed.
fn has_variable(text: &[u8]) -> bool {
    text.windows(2).any(|w| {
        matches!(w, [b'$', next] if next.is_ascii_alphanumeric() || *next == b'_' || *next == b'{')
    })
}

pub fn cmd_use_keyfile(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let on = flag(args)?;
    set_once(&mut conf.use_keyfile, on)?;
    conf.use_keyfile_pos = Some(args.pos());
    Ok(())
}

pub fn cmd_keyfile_path(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let path = args.full_name(1)?;
    let source = register(args, KeyOrigin::File { path })?;
    set_once(&mut conf.keyfile, source)
}

pub fn cmd_algorithm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let name = utf8_arg(args, 1)?;
    let alg = Algorithm::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!(
            "invalid algorithm \"{name}\", it must be one of {}",
            all.join(", ")
        )
    })?;
    set_once(&mut conf.algorithm, alg)
}

pub fn cmd_location(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let mut sources = Vec::new();
    for i in 1..args.len() {
        sources.push(Source::parse(utf8_arg(args, i)?)?);
    }
    set_once(&mut conf.sources, sources)
}

pub fn cmd_redirect(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let on = flag(args)?;
    set_once(&mut conf.redirect, on)?;
    conf.redirect_pos = Some(args.pos());
    Ok(())
}

pub fn cmd_loginurl(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let value = args.get(1).unwrap_or(&[]).to_vec();
    if value.is_empty() {
        return Err("needs a non-empty URL".into());
    }
    let cv = args.compile_always(&value)?;
    set_once(&mut conf.loginurl, cv)
}

pub fn cmd_validate_sub(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let on = flag(args)?;
    set_once(&mut conf.validate_sub, on)
}

/// Accepted for TeslaGov compatibility: every claim has a `$jwt_claim_NAME` variable anyway.
pub fn cmd_extract_var_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    touch(conf);
    claim_list(args).map(drop)
}

/// Repeatable: each directive adds its claims to the level's list.
pub fn cmd_extract_request_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let claims = claim_list(args)?;
    add_claims(&mut conf.request_claims, claims)
}

/// Repeatable: each directive adds its claims to the level's list.
pub fn cmd_extract_response_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let claims = claim_list(args)?;
    add_claims(&mut conf.response_claims, claims)
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

pub fn cmd_bypass_options(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let on = flag(args)?;
    set_once(&mut conf.bypass_options, on)
}

pub fn cmd_realm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let realm = jwt_core::quote_param(utf8_arg(args, 1)?);
    set_once(&mut conf.challenge, format!("Bearer realm=\"{realm}\""))
}

pub fn cmd_leeway(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let secs = args.parse_time(1)?;
    if secs > MAX_LEEWAY {
        return Err(format!(
            "value \"{}\" is too large, the most is 1d",
            String::from_utf8_lossy(args.get(1).unwrap_or(&[]))
        ));
    }
    set_once(&mut conf.leeway, secs)
}

pub fn cmd_issuer(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let list = string_list(args)?;
    set_once(&mut conf.issuers, list)
}

pub fn cmd_audience(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let conf = touch(conf);
    let list = string_list(args)?;
    set_once(&mut conf.audiences, list)
}

fn string_list(args: &ConfArgs) -> Result<Vec<String>, String> {
    (1..args.len())
        .map(|i| utf8_arg(args, i).map(str::to_string))
        .collect()
}

fn inherit<T: Clone>(slot: &mut Option<T>, prev: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(prev);
    }
}

/// A configuration error found at merge, with the position of the directive it concerns.
pub struct MergeError {
    pub message: String,
    pub pos: Option<Pos>,
}

/// Warnings to log at merge (skipped JWKS entries, short secrets, a check left off), with
/// their position.
pub type Warnings = Vec<(String, Pos)>;

/// What a merge reads and gathers beyond the two levels: the `http{}` key sources and the
/// server being merged.
pub struct MergeCtx<'a> {
    pub main: &'a MainConf,
    pub srv: &'a mut SrvConf,
    pub warnings: &'a mut Warnings,
}

impl LocConf {
    pub fn merge(&mut self, prev: &LocConf, cx: &mut MergeCtx) -> Result<(), MergeError> {
        // Whether this level changes what verifies a token; if not, share the parent's result.
        let own_auth = self.key.is_some()
            || self.use_keyfile.is_some()
            || self.keyfile.is_some()
            || self.algorithm.is_some()
            || self.sources.is_some()
            || self.validate_sub.is_some()
            || self.leeway.is_some()
            || self.issuers.is_some()
            || self.audiences.is_some();
        let own_key = self.key.is_some() || self.keyfile.is_some() || self.use_keyfile.is_some();
        let own_enabled = self.enabled.is_some();

        inherit(&mut self.enabled, &prev.enabled);
        inherit(&mut self.enabled_pos, &prev.enabled_pos);
        inherit(&mut self.key, &prev.key);
        inherit(&mut self.use_keyfile, &prev.use_keyfile);
        inherit(&mut self.use_keyfile_pos, &prev.use_keyfile_pos);
        inherit(&mut self.keyfile, &prev.keyfile);
        inherit(&mut self.algorithm, &prev.algorithm);
        inherit(&mut self.sources, &prev.sources);
        inherit(&mut self.redirect, &prev.redirect);
        inherit(&mut self.redirect_pos, &prev.redirect_pos);
        inherit(&mut self.loginurl, &prev.loginurl);
        inherit(&mut self.validate_sub, &prev.validate_sub);
        inherit(&mut self.request_claims, &prev.request_claims);
        inherit(&mut self.response_claims, &prev.response_claims);
        inherit(&mut self.bypass_options, &prev.bypass_options);
        inherit(&mut self.challenge, &prev.challenge);
        inherit(&mut self.leeway, &prev.leeway);
        inherit(&mut self.issuers, &prev.issuers);
        inherit(&mut self.audiences, &prev.audiences);
        self.touched |= prev.touched;

        if self.redirect() && self.loginurl.is_none() {
            return Err(MergeError {
                message: "\"auth_jwt_redirect\" is on but no \"auth_jwt_loginurl\" is set".into(),
                pos: self.redirect_pos.clone(),
            });
        }

        let key = self.choose_key()?;
        if own_key && !own_enabled {
            self.warn_if_off(cx.warnings);
        }
        if prev.merged && !own_auth {
            self.auth.clone_from(&prev.auth);
        } else {
            self.build_auth(key, cx)?;
        }
        self.guard_server(cx.srv);
        self.merged = true;
        Ok(())
    }

    /// The key source this level verifies with, marked used; the others it inherits are
    /// marked passed over, with why.
    fn choose_key(&self) -> Result<Option<Rc<KeySource>>, MergeError> {
        let use_keyfile = self.use_keyfile == Some(true);
        let (chosen, other, why) = if use_keyfile {
            let Some(file) = &self.keyfile else {
                return Err(MergeError {
                    message:
                        "\"auth_jwt_use_keyfile\" is on but no \"auth_jwt_keyfile_path\" is set"
                            .into(),
                    pos: self.use_keyfile_pos.clone(),
                });
            };
            let pos = self
                .use_keyfile_pos
                .as_ref()
                .map(|p| format!(" in {p}"))
                .unwrap_or_default();
            let why = format!(
                "\"auth_jwt_use_keyfile\" is on{pos} wherever it applies, so {} is used",
                file.describe()
            );
            (Some(file), self.key.as_ref(), why)
        } else {
            let why = match &self.key {
                Some(key) => format!(
                    "\"auth_jwt_use_keyfile\" is off wherever it applies, so {} is used",
                    key.describe()
                ),
                None => "\"auth_jwt_use_keyfile\" is off wherever it applies, so no key is used \
                         and the check cannot be made"
                    .to_owned(),
            };
            (self.key.as_ref(), self.keyfile.as_ref(), why)
        };
        if let Some(chosen) = chosen {
            chosen.used.set(true);
        }
        if let Some(other) = other {
            other.passed_over.replace(Some(why));
        }
        Ok(chosen.cloned())
    }

    /// A level that names its own key but inherits `auth_jwt_enabled off` does not check
    /// tokens; said, since the key suggests otherwise.
    fn warn_if_off(&self, warnings: &mut Warnings) {
        let (Some(Enabled::Static(false)), Some(off)) = (&self.enabled, &self.enabled_pos) else {
            return;
        };
        let Some(source) = self.key_source_written_here() else {
            return;
        };
        warnings.push((
            format!(
                "tokens are not checked here although a key is set: \"auth_jwt_enabled off\" is \
                 inherited from {off}; add \"auth_jwt_enabled on\" (or \"off\") here"
            ),
            source,
        ));
    }

    fn key_source_written_here(&self) -> Option<Pos> {
        self.use_keyfile_pos
            .clone()
            .or_else(|| self.key.as_ref().map(|k| k.pos.clone()))
            .or_else(|| self.keyfile.as_ref().map(|k| k.pos.clone()))
    }

    fn build_auth(
        &mut self,
        key: Option<Rc<KeySource>>,
        cx: &mut MergeCtx,
    ) -> Result<(), MergeError> {
        let Some(key) = key else {
            self.auth = None;
            return Ok(());
        };
        let loaded = cx
            .main
            .load(&key, self.algorithm, cx.warnings)
            .map_err(|message| MergeError {
                message,
                pos: Some(key.pos.clone()),
            })?;
        let policy = Policy {
            leeway: self.leeway.unwrap_or(0),
            issuers: self.issuers.clone().unwrap_or_default(),
            audiences: self.audiences.clone().unwrap_or_default(),
            require_sub: self.validate_sub.unwrap_or(false),
        };
        let sources = self.sources.clone().unwrap_or_else(default_sources);
        let missing = describe_sources(&sources);
        let query = sources.iter().any(|s| s.kind == SourceKind::Query);
        self.auth = Some(Arc::new(Auth {
            scope: scope_of(loaded.fingerprint, &policy),
            keys: loaded.keys,
            missing,
            query,
            policy,
            sources,
        }));
        Ok(())
    }

    /// Records in the server that the module applies there, and which `JWT-*` headers are
    /// token sources.
    fn guard_server(&self, srv: &mut SrvConf) {
        if !self.touched {
            return;
        }
        srv.guarded = true;
        let headers = self
            .sources
            .iter()
            .flatten()
            .filter(|s| s.kind == SourceKind::Header)
            .map(|s| s.name.as_bytes().to_ascii_lowercase());
        for name in headers {
            if !srv.source_headers.contains(&name) {
                srv.source_headers.push(name);
            }
        }
    }
}

fn describe_sources(sources: &[Source]) -> String {
    let names: Vec<String> = sources.iter().map(describe_source).collect();
    format!("no token in {}", names.join(", "))
}

/// A token source as log lines name it: `header "Authorization"`.
pub fn describe_source(source: &Source) -> String {
    match source.kind {
        SourceKind::Header | SourceKind::Authorization => format!("header \"{}\"", source.name),
        SourceKind::Cookie => format!("cookie \"{}\"", source.name),
        SourceKind::Query => format!("argument \"{}\"", source.name),
    }
}

/// TeslaGov's default: the `Authorization` header.
fn default_sources() -> Vec<Source> {
    vec![Source {
        kind: SourceKind::Authorization,
        name: "Authorization".into(),
    }]
}
