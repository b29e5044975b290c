//! Location configuration: directive setters and merge.
//!
//! Setters only record and check what one directive says (with nginx's file:line in errors).
//! Merge combines the levels and compiles everything a request needs, once: the key set, the
//! validation policy and the token sources, shared by `Arc` with every location that does not
//! change them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jwt_core::{Algorithm, KeySet, Policy, SecretEncoding, Source, SourceKind};

use crate::glue::{ComplexValue, ConfArgs};

/// Where a directive was written, for errors reported after parsing (at merge).
#[derive(Clone, Debug)]
pub struct Pos {
    pub file: String,
    pub line: usize,
}

/// `auth_jwt_enabled`: a constant, or a value with variables evaluated per request.
#[derive(Clone)]
pub enum Enabled {
    Static(bool),
    Variable(ComplexValue),
}

/// Key material from `auth_jwt_key`, decoded at the directive.
#[derive(Clone)]
pub struct InlineKey {
    bytes: Vec<u8>,
    /// The text is a PEM or JWK (given without encoding): parsed as key material, not a secret.
    material: bool,
    pos: Pos,
}

/// `auth_jwt_keyfile_path`, resolved against the prefix; read at merge when in use.
#[derive(Clone)]
pub struct KeyFile {
    path: String,
    pos: Pos,
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
    /// Unique for the life of the process, across reloads: what a cached verdict is tagged
    /// with, so it is never reused under other keys or another policy.
    pub scope: u64,
    pub keys: KeySet,
    pub policy: Policy,
    pub sources: Vec<Source>,
    /// A `QUERY=` source is among them: the token may change with the arguments.
    pub query: bool,
    /// What a request without a token is logged with: `no token in header "Authorization"`.
    pub missing: String,
}

#[derive(Default)]
pub struct LocConf {
    enabled: Option<Enabled>,
    key: Option<InlineKey>,
    use_keyfile: Option<bool>,
    use_keyfile_pos: Option<Pos>,
    keyfile: Option<KeyFile>,
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

    /// Compiled at merge. `None`: no key here (the module is inert unless enabled explicitly).
    pub auth: Option<Arc<Auth>>,
    /// Why a configured key could not be used here (only when the algorithm was left to its
    /// default: an explicit mismatch fails `nginx -t` instead).
    pub key_error: Option<String>,
    merged: bool,
}

/// The challenge of `auth_jwt_realm Restricted`, the default.
pub const DEFAULT_CHALLENGE: &str = "Bearer realm=\"Restricted\"";

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// Per-`http{}` settings.
pub struct MainConf {
    /// `auth_jwt_cache`: bytes per worker, 0 for off; `None` until set.
    cache_size: Option<usize>,
    /// `$scheme://$http_host$request_uri`: the URL the client asked for.
    pub return_url: Option<ComplexValue>,
    /// `$scheme://$host$request_uri`, for clients that sent no Host header (HTTP/1.0).
    pub return_url_no_host: Option<ComplexValue>,
}

/// 2 MiB per worker: about two thousand typical tokens.
pub const DEFAULT_CACHE_SIZE: usize = 2 * 1024 * 1024;

impl MainConf {
    pub fn new() -> MainConf {
        MainConf {
            cache_size: None,
            return_url: None,
            return_url_no_host: None,
        }
    }

    pub fn cache_size(&self) -> usize {
        self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE)
    }
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

pub fn cmd_enabled(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let value = args.get(1).unwrap_or(&[]).to_vec();
    let enabled = match args.compile(&value)? {
        Some(cv) => Enabled::Variable(cv),
        None => Enabled::Static(is_enabled_value(&value)),
    };
    set_once(&mut conf.enabled, enabled)
}

/// `off`, `0`, `false` or empty disable the check; anything else enables it.
pub fn is_enabled_value(value: &[u8]) -> bool {
    !(value.is_empty()
        || value == b"0"
        || value.eq_ignore_ascii_case(b"off")
        || value.eq_ignore_ascii_case(b"false"))
}

pub fn cmd_key(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let text = args.get(1).unwrap_or(&[]);
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
    let key = InlineKey {
        bytes,
        material,
        pos: args.pos(),
    };
    set_once(&mut conf.key, key)
}

pub fn cmd_use_keyfile(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    set_once(&mut conf.use_keyfile, on)?;
    conf.use_keyfile_pos = Some(args.pos());
    Ok(())
}

pub fn cmd_keyfile_path(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let path = args.full_name(1)?;
    let pos = args.pos();
    set_once(&mut conf.keyfile, KeyFile { path, pos })
}

pub fn cmd_algorithm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
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
    let mut sources = Vec::new();
    for i in 1..args.len() {
        sources.push(Source::parse(utf8_arg(args, i)?)?);
    }
    set_once(&mut conf.sources, sources)
}

pub fn cmd_redirect(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    set_once(&mut conf.redirect, on)?;
    conf.redirect_pos = Some(args.pos());
    Ok(())
}

pub fn cmd_loginurl(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let value = args.get(1).unwrap_or(&[]).to_vec();
    if value.is_empty() {
        return Err("needs a non-empty URL".into());
    }
    let cv = args.compile_always(&value)?;
    set_once(&mut conf.loginurl, cv)
}

pub fn cmd_validate_sub(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let on = flag(args)?;
    set_once(&mut conf.validate_sub, on)
}

/// Accepted for TeslaGov compatibility: every claim has a `$jwt_claim_NAME` variable anyway.
pub fn cmd_extract_var_claims(_conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    claim_list(args).map(drop)
}

pub fn cmd_extract_request_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let claims = claim_list(args)?;
    set_once(&mut conf.request_claims, claims)
}

pub fn cmd_extract_response_claims(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let claims = claim_list(args)?;
    set_once(&mut conf.response_claims, claims)
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
    let on = flag(args)?;
    set_once(&mut conf.bypass_options, on)
}

pub fn cmd_realm(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let realm = jwt_core::quote_param(utf8_arg(args, 1)?);
    set_once(&mut conf.challenge, format!("Bearer realm=\"{realm}\""))
}

pub fn cmd_leeway(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let secs = args.parse_time(1)?;
    set_once(&mut conf.leeway, secs)
}

pub fn cmd_issuer(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
    let list = string_list(args)?;
    set_once(&mut conf.issuers, list)
}

pub fn cmd_audience(conf: &mut LocConf, args: &mut ConfArgs) -> SetResult {
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

/// Warnings to log at merge (skipped JWKS entries), with their position.
pub type Warnings = Vec<(String, Pos)>;

impl LocConf {
    pub fn merge(&mut self, prev: &LocConf, warnings: &mut Warnings) -> Result<(), MergeError> {
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

        inherit(&mut self.enabled, &prev.enabled);
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

        if self.redirect() && self.loginurl.is_none() {
            return Err(MergeError {
                message: "\"auth_jwt_redirect\" is on but no \"auth_jwt_loginurl\" is set".into(),
                pos: self.redirect_pos.clone(),
            });
        }

        if prev.merged && !own_auth {
            self.auth.clone_from(&prev.auth);
            self.key_error.clone_from(&prev.key_error);
        } else {
            self.build_auth(warnings)?;
        }
        self.merged = true;
        Ok(())
    }

    fn build_auth(&mut self, warnings: &mut Warnings) -> Result<(), MergeError> {
        let alg = self.algorithm.unwrap_or(Algorithm::HS256);
        let (loaded, pos) = match self.load_keys(alg) {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.auth = None;
                return Ok(());
            }
            Err((message, pos)) => {
                // With the algorithm left to its default, a good key may be meant for the
                // algorithm a nested location sets: fail closed at request time rather than
                // refuse a configuration TeslaGov accepts. A key no algorithm can use is
                // broken wherever it applies.
                if self.algorithm.is_none() && self.usable_with_some_algorithm() {
                    self.key_error = Some(message);
                    self.auth = None;
                    return Ok(());
                }
                return Err(MergeError { message, pos });
            }
        };
        let (keys, skipped) = loaded;
        warnings.extend(skipped.into_iter().map(|w| (w, pos.clone())));
        let policy = Policy {
            leeway: self.leeway.unwrap_or(0),
            issuers: self.issuers.clone().unwrap_or_default(),
            audiences: self.audiences.clone().unwrap_or_default(),
            require_sub: self.validate_sub.unwrap_or(false),
        };
        let sources = self.sources.clone().unwrap_or_else(default_sources);
        self.key_error = None;
        let missing = describe_sources(&sources);
        let query = sources.iter().any(|s| s.kind == SourceKind::Query);
        self.auth = Some(Arc::new(Auth {
            scope: NEXT_SCOPE.fetch_add(1, Ordering::Relaxed),
            missing,
            query,
            keys,
            policy,
            sources,
        }));
        Ok(())
    }

    fn usable_with_some_algorithm(&self) -> bool {
        Algorithm::ALL
            .iter()
            .any(|&alg| self.load_keys(alg).is_ok())
    }

    /// Loads the key set this level uses: the key file when `auth_jwt_use_keyfile` is on,
    /// otherwise the inline key.
    #[allow(clippy::type_complexity)]
    fn load_keys(
        &self,
        alg: Algorithm,
    ) -> Result<Option<((KeySet, Vec<String>), Pos)>, (String, Option<Pos>)> {
        if self.use_keyfile == Some(true) {
            let Some(file) = &self.keyfile else {
                return Err((
                    "\"auth_jwt_use_keyfile\" is on but no \"auth_jwt_keyfile_path\" is set".into(),
                    self.use_keyfile_pos.clone(),
                ));
            };
            let data = std::fs::read(&file.path).map_err(|e| {
                (
                    format!("cannot read key file \"{}\": {e}", file.path),
                    Some(file.pos.clone()),
                )
            })?;
            let loaded = KeySet::from_material(&data, alg).map_err(|e| {
                (
                    format!("invalid key file \"{}\": {e}", file.path),
                    Some(file.pos.clone()),
                )
            })?;
            return Ok(Some((loaded, file.pos.clone())));
        }
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let loaded = if alg.is_hmac() && !key.material {
            KeySet::from_secret(&key.bytes, alg).map(|set| (set, Vec::new()))
        } else {
            KeySet::from_material(&key.bytes, alg)
        };
        let loaded = loaded.map_err(|e| {
            (
                format!("invalid \"auth_jwt_key\": {e}"),
                Some(key.pos.clone()),
            )
        })?;
        Ok(Some((loaded, key.pos.clone())))
    }
}

fn describe_sources(sources: &[Source]) -> String {
    let names: Vec<String> = sources
        .iter()
        .map(|s| match s.kind {
            SourceKind::Header | SourceKind::Authorization => format!("header \"{}\"", s.name),
            SourceKind::Cookie => format!("cookie \"{}\"", s.name),
            SourceKind::Query => format!("argument \"{}\"", s.name),
        })
        .collect();
    format!("no token in {}", names.join(", "))
}

/// TeslaGov's default: the `Authorization` header.
fn default_sources() -> Vec<Source> {
    vec![Source {
        kind: SourceKind::Authorization,
        name: "Authorization".into(),
    }]
}
