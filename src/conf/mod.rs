//! The module's configuration at each level, and how levels merge.
//!
//! Setters (in `directives`) record what one directive says. Merge takes each setting a level
//! does not write from the enclosing level, and compiles once what a request needs: the `Auth`
//! of `verify`, shared by `Rc` with every location that writes none of its settings.

mod keys;
mod revocation;
mod settings;
mod verify;

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::NonNull;
use std::rc::Rc;

use jwt_core::SourceKind;
use ngx::ffi::ngx_http_request_t;

use crate::ngx::conf::{ComplexValue, Pos};

pub use keys::{KeyOrigin, KeyRegistry, KeySource, ServerPos};
pub use revocation::{ZoneConf, DEFAULT_TTL};
use settings::settings;
pub use settings::{At, MergeError, Warnings};
pub use verify::{
    Auth, FetchSource, Fetched, KeyFamily, Revocation, Tokens, VerifyConf, DEFAULT_KEY_CACHE,
};

/// `auth_jwt_enabled`: a constant, or a value with variables evaluated per request.
#[derive(Clone)]
pub enum Enabled {
    Static(bool),
    Variable(ComplexValue),
}

/// Only `off` (any case) disables the check; anything else, the empty string included,
/// enables it: a `map` without a default, or a variable that is not set, fails closed.
pub fn is_enabled_value(value: &[u8]) -> bool {
    !value.eq_ignore_ascii_case(b"off")
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

settings! {
    /// When the check applies, how it answers, and what it passes on: never what verifies a
    /// token (see `VerifyConf`).
    pub struct CheckConf {
        /// `auth_jwt_enabled`.
        enabled: At<Enabled>,
        /// `auth_jwt_redirect`.
        redirect: At<bool>,
        /// `auth_jwt_loginurl`.
        loginurl: ComplexValue,
        /// `auth_jwt_extract_request_claims`.
        request_claims: Vec<ClaimHeader>,
        /// `auth_jwt_extract_response_claims`.
        response_claims: Vec<ClaimHeader>,
        /// `auth_jwt_bypass_options`.
        bypass_options: bool,
        /// `auth_jwt_realm`, or `auth_jwt`'s realm.
        realm: Realm,
        /// `auth_jwt_require`, each directive in the order written.
        requires: Vec<Require>,
    }
}

/// The settings of one level (`http`, `server`, `location`, `if` in location), as written,
/// then merged with the enclosing level's.
#[derive(Default)]
pub struct LocConf {
    pub verify: VerifyConf,
    pub check: CheckConf,
    /// A directive of this module is written here or at an enclosing level.
    pub touched: bool,
    /// `auth_jwt_revocation_api`: the zone's name as written; its index in
    /// `MainConf::revocation_zones`, found at merge.
    pub api_name: Option<At<String>>,
    pub api: Option<usize>,
    /// Compiled at merge. `None`: no key here.
    pub auth: Option<Rc<Auth>>,
    merged: bool,
}

/// One `auth_jwt_require`: values that must all be non-empty and not `0` once the token is
/// valid, and the status that refuses the request otherwise.
#[derive(Clone)]
pub struct Require {
    /// Each value, and its text as written (for the log line).
    pub values: Vec<(ComplexValue, String)>,
    /// 401 or 403.
    pub error: u16,
}

/// The realm of the `WWW-Authenticate` challenge.
#[derive(Clone)]
pub enum Realm {
    /// The whole challenge, `Bearer realm="…"`, the realm escaped once, at the directive.
    Text(String),
    /// A realm with variables (`auth_jwt $server_name`), escaped per request.
    Variable(ComplexValue),
}

impl Realm {
    pub fn text(realm: &str) -> Realm {
        Realm::Text(format!("Bearer realm=\"{}\"", jwt_core::quote_param(realm)))
    }
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
    /// Which `server{}` block this is: with a URI, it identifies an `auth_jwt_key_request`
    /// source, whose subrequest this server answers.
    pub position: ServerPos,
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

/// Finds this module's state in nginx's per-module arrays. Implemented by `module::Module`,
/// the one type that knows the module's index; everything else is generic over it.
pub trait Lookup {
    fn main(r: &ngx_http_request_t) -> Option<&'static MainConf>;
    fn srv(r: &ngx_http_request_t) -> Option<&'static SrvConf>;
    fn loc(r: &ngx_http_request_t) -> Option<&'static LocConf>;
    /// This module's context slot of `r`'s main request.
    fn ctx_slot(r: &ngx_http_request_t) -> Option<NonNull<*mut c_void>>;

    /// The configuration `r` runs under: its location's, and the `http{}` one.
    fn conf(r: &ngx_http_request_t) -> Option<RequestConf<'static>> {
        Some(RequestConf {
            main: Self::main(r)?,
            loc: Self::loc(r)?,
        })
    }
}

/// The configuration a request runs under: its location's, and the `http{}` one.
#[derive(Clone, Copy)]
pub struct RequestConf<'c> {
    pub main: &'c MainConf,
    pub loc: &'c LocConf,
}

/// Per-`http{}` settings and the configuration's key sources.
#[derive(Default)]
pub struct MainConf {
    /// `auth_jwt_cache`: bytes per worker, 0 for off; `None` until set.
    pub cache_size: Option<usize>,
    /// `$scheme`, `$host`, `$server_addr`, `$server_port`: the parts of `return_url` nginx
    /// knows, compiled at postconfiguration.
    pub url_parts: Option<UrlParts>,
    pub keys: KeyRegistry,
    /// `auth_jwt_claim_set` and `auth_jwt_header_set`, in the order written; a variable's
    /// data is its index here.
    pub field_sets: Vec<FieldSet>,
    /// The shared zone of `auth_jwt_key_request`'s keys, added at postconfiguration when a
    /// key request is used.
    pub key_zone: Option<NonNull<ngx::ffi::ngx_shm_zone_t>>,
    /// nginx's rewrite module's index (`ctx_index`), if nginx has it: whether a server has
    /// rewrite directives of its own.
    pub rewrite_index: Option<usize>,
    /// `auth_jwt_revocation_zone`, each in the order written, boxed: nginx keeps each one's
    /// address for its zone's initialisation, and the `Vec` may move as it grows.
    #[allow(clippy::vec_box)]
    pub revocation_zones: Vec<Box<ZoneConf>>,
    /// `server{}` blocks read so far, and a digest of each configuration file they are in.
    servers: Cell<u64>,
}

/// One `auth_jwt_claim_set` or `auth_jwt_header_set`: a variable holding the value at a path
/// of the token's claims or JOSE header.
pub struct FieldSet {
    /// The variable's name, without `$`.
    pub variable: String,
    pub path: Vec<String>,
    /// The JOSE header's path rather than the claims'.
    pub header: bool,
}

/// The variables `return_url` is built from.
#[derive(Clone, Copy)]
pub struct UrlParts {
    pub scheme: ComplexValue,
    pub host: ComplexValue,
    pub server_addr: ComplexValue,
    pub server_port: ComplexValue,
}

/// 2 MiB per worker: about two thousand typical tokens.
pub const DEFAULT_CACHE_SIZE: usize = 2 * 1024 * 1024;

impl MainConf {
    pub fn cache_size(&self) -> usize {
        self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE)
    }

    /// Whether `r`'s configuration (its server's, in the server rewrite phase) has rewrite
    /// directives (`if`, `set`, `return`, `rewrite`) of its own; with no rewrite module, none.
    pub fn has_rewrites(&self, r: &ngx_http_request_t) -> bool {
        let Some(index) = self.rewrite_index else {
            return false;
        };
        // SAFETY: `loc_conf` holds one configuration per HTTP module; the rewrite module's
        // starts with `codes`, the array of its compiled directives, NULL where there are
        // none (`ngx_http_rewrite_loc_conf_t`).
        unsafe {
            let conf = *r.loc_conf.add(index);
            !conf.is_null() && !(*conf.cast::<*const c_void>()).is_null()
        }
    }

    /// The `auth_jwt_revocation_zone` named `name`.
    pub fn revocation_zone(&self, name: &str) -> Option<&ZoneConf> {
        self.revocation_zones
            .iter()
            .map(|z| &**z)
            .find(|z| z.name == name)
    }

    /// The zone `name` of `auth_jwt_revocation` or `auth_jwt_revocation_api` written at `pos`.
    fn zone_named(&self, name: &str, directive: &str, pos: &Pos) -> Result<&ZoneConf, MergeError> {
        self.revocation_zone(name).ok_or_else(|| MergeError {
            message: format!(
                "\"{directive}\" names \"{name}\", which no \"auth_jwt_revocation_zone\" declares"
            ),
            pos: Some(pos.clone()),
        })
    }

    /// The `server{}` block starting at `pos`, ranked in the order blocks are read.
    pub fn server_position(&self, pos: Pos) -> ServerPos {
        let rank = self.servers.get();
        self.servers.set(rank + 1);
        ServerPos { pos, rank }
    }
}

impl LocConf {
    pub fn enabled(&self) -> Option<&Enabled> {
        self.check.enabled.as_ref().map(|e| &e.value)
    }
    pub fn redirect(&self) -> bool {
        self.check.redirect.as_ref().is_some_and(|r| r.value)
    }
    pub fn loginurl(&self) -> Option<ComplexValue> {
        self.check.loginurl
    }
    pub fn bypass_options(&self) -> bool {
        self.check.bypass_options.unwrap_or(true)
    }
    /// The keys that apply come from `auth_jwt_key_file`.
    pub fn keys_from_plus(&self) -> bool {
        self.verify.keys_from_plus()
    }

    pub fn requires(&self) -> &[Require] {
        self.check.requires.as_deref().unwrap_or(&[])
    }

    pub fn realm(&self) -> Option<&Realm> {
        self.check.realm.as_ref()
    }
    pub fn request_claims(&self) -> &[ClaimHeader] {
        self.check.request_claims.as_deref().unwrap_or(&[])
    }
    pub fn response_claims(&self) -> &[ClaimHeader] {
        self.check.response_claims.as_deref().unwrap_or(&[])
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

/// What a merge reads and gathers beyond the two levels: the `http{}` configuration and the
/// server being merged.
pub struct MergeCtx<'a> {
    pub main: &'a MainConf,
    pub srv: &'a mut SrvConf,
    pub warnings: &'a mut Warnings,
}

impl LocConf {
    pub fn merge(&mut self, prev: &LocConf, cx: &mut MergeCtx) -> Result<(), MergeError> {
        for source in prev.verify.key_sources().chain(self.verify.key_sources()) {
            cx.main.keys.register(source);
        }
        let own_verify = self.verify.written();
        let own_key = self.verify.key_written_at();
        let own_enabled = self.check.enabled.is_some();
        let own_key_files = self
            .verify
            .key_files
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.pos.clone());
        self.verify.inherit(&prev.verify);
        self.check.inherit(&prev.check);
        self.touched |= prev.touched;

        if let Some(At { value: true, pos }) = &self.check.redirect {
            if self.check.loginurl.is_none() {
                return Err(MergeError {
                    message: "\"auth_jwt_redirect\" is on but no \"auth_jwt_loginurl\" is set"
                        .into(),
                    pos: Some(pos.clone()),
                });
            }
        }
        let key = self.verify.choose_key()?;
        let revocation = match &self.verify.revocation {
            Some(At {
                value: Some(name),
                pos,
            }) => {
                cx.main.zone_named(name, "auth_jwt_revocation", pos)?;
                let index = cx
                    .main
                    .revocation_zones
                    .iter()
                    .position(|z| z.name == *name);
                let zone = index.and_then(|i| cx.main.revocation_zones.get(i));
                let shm = zone.and_then(|z| z.shm);
                let ttl = zone.map_or(0, |z| z.ttl);
                index.zip(shm).map(|(i, shm)| (i, shm, ttl))
            }
            _ => {
                if let Some(At { pos, .. }) = &self.verify.revocation_request {
                    if self.verify.revocation.is_none() {
                        return Err(MergeError {
                            message:
                                "\"auth_jwt_revocation_request\" needs \"auth_jwt_revocation\" \
                                      to name the zone it fills"
                                    .into(),
                            pos: Some(pos.clone()),
                        });
                    }
                }
                None
            }
        };
        if let Some(At { value, pos }) = &self.api_name {
            cx.main.zone_named(value, "auth_jwt_revocation_api", pos)?;
            self.api = cx
                .main
                .revocation_zones
                .iter()
                .position(|z| z.name == *value);
        }
        if let (Some(written), false) = (own_key, own_enabled) {
            self.warn_if_off(written, cx.warnings);
        }
        if prev.merged && !own_verify {
            self.auth.clone_from(&prev.auth);
        } else {
            self.auth = self.verify.compile(
                key,
                revocation,
                &cx.main.keys,
                &cx.srv.position,
                cx.warnings,
            )?;
        }
        if let (Some(pos), false) = (own_key_files, own_enabled) {
            self.warn_if_unchecked(prev, pos, cx.warnings);
        }
        self.guard_server(cx.srv);
        self.merged = true;
        Ok(())
    }

    /// A level that switches to `auth_jwt_key_file` under one checked by the C module's
    /// default (a key, no `auth_jwt_enabled`) is no longer checked, as in NGINX Plus, where
    /// only `auth_jwt` switches the check on; said, since the enclosing level was checked.
    fn warn_if_unchecked(&self, prev: &LocConf, pos: Pos, warnings: &mut Warnings) {
        let prev_checked =
            prev.auth.is_some() && !prev.keys_from_plus() && prev.enabled().is_none();
        if prev_checked && self.enabled().is_none() {
            warnings.push((
                "tokens are not checked here: keys of \"auth_jwt_key_file\" are used where \
                 \"auth_jwt\" applies, and the enclosing level's check came from its key; add \
                 \"auth_jwt\" here (or \"auth_jwt off\")"
                    .to_owned(),
                pos,
            ));
        }
    }

    /// A level that names its own key but inherits `auth_jwt_enabled off` does not check
    /// tokens; said, since the key suggests otherwise.
    fn warn_if_off(&self, key: Pos, warnings: &mut Warnings) {
        if let Some(At {
            value: Enabled::Static(false),
            pos: off,
        }) = &self.check.enabled
        {
            warnings.push((
                format!(
                    "tokens are not checked here although a key is set: \"auth_jwt_enabled off\" \
                     is inherited from {off}; add \"auth_jwt_enabled on\" (or \"off\") here"
                ),
                key,
            ));
        }
    }

    /// Records in the server that the module applies there, and which `JWT-*` headers are
    /// token sources.
    fn guard_server(&self, srv: &mut SrvConf) {
        if !self.touched {
            return;
        }
        srv.guarded = true;
        let headers = self
            .verify
            .sources()
            .iter()
            .filter(|s| s.kind == SourceKind::Header)
            .map(|s| s.name.as_bytes().to_ascii_lowercase());
        for name in headers {
            if !srv.source_headers.contains(&name) {
                srv.source_headers.push(name);
            }
        }
    }
}
