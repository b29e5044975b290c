//! What verifies a token: the settings that define it, compiled into one `Auth` per distinct
//! configuration.
//!
//! Every directive that changes how a token is verified has its field in `VerifyConf`, and
//! `Auth` is compiled from `VerifyConf` alone: a location that writes any of these settings
//! compiles its own `Auth`, one that writes none shares its parent's, and no other setting can
//! reach a verification.

use core::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use jwt_core::refresh::Timing;
use jwt_core::{Algorithm, KeySet, Policy, Source, SourceKind};
use ngx::ffi::ngx_shm_zone_t;

use crate::ngx::conf::{ComplexValue, Pos};
use crate::token::describe_source;

use super::keys::{scope_of, KeyRegistry, KeySource, ServerPos};
use super::settings::{settings, At, MergeError, Warnings};

settings! {
    /// The settings that define verification, as written at one level.
    pub struct VerifyConf {
        /// `auth_jwt_key`.
        key: Rc<KeySource>,
        /// `auth_jwt_use_keyfile`.
        use_keyfile: At<bool>,
        /// `auth_jwt_keyfile_path`.
        keyfile: Rc<KeySource>,
        /// `auth_jwt_algorithm`.
        algorithm: Algorithm,
        /// `auth_jwt_location`, or `auth_jwt`'s token source.
        tokens: Tokens,
        /// Which family of key directives applies.
        keys_from: At<KeyFamily>,
        /// `auth_jwt_key_file`, each in the order written.
        key_files: Vec<Rc<KeySource>>,
        /// `auth_jwt_key_request`, each in the order written.
        key_requests: Vec<Rc<KeySource>>,
        /// `auth_jwt_key_cache`.
        key_cache: Timing,
        /// `auth_jwt_leeway`, in seconds.
        leeway: u64,
        /// `auth_jwt_issuer`.
        issuers: Vec<String>,
        /// `auth_jwt_audience`.
        audiences: Vec<String>,
        /// `auth_jwt_validate_sub`.
        require_sub: bool,
        /// `auth_jwt_revocation`: the zone's name, `None` for `off`.
        revocation: At<Option<String>>,
        /// `auth_jwt_revocation_request`: the URI and the interval, in seconds.
        revocation_request: At<(String, u64)>,
    }
}

/// Where the token is read from.
#[derive(Clone)]
pub enum Tokens {
    /// The sources of `auth_jwt_location`, in order (`auth_jwt` without `token=`: the
    /// `Authorization` header).
    Sources(Vec<Source>),
    /// `auth_jwt … token=$variable`: the value, and the text written, for log lines.
    Variable(ComplexValue, String),
}

impl Tokens {
    /// TeslaGov's and NGINX Plus's default: the `Authorization` header.
    pub fn authorization() -> Tokens {
        Tokens::Sources(default_sources().to_vec())
    }
}

/// The two families of key directives, which are not mixed at one level.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// `auth_jwt_key`, `auth_jwt_keyfile_path`, `auth_jwt_use_keyfile`.
    TeslaGov,
    /// `auth_jwt_key_file`.
    Plus,
}

/// What verifying a token needs, compiled once per distinct configuration.
pub struct Auth {
    /// The verified-token cache's scope: the same for every location whose keys and policy
    /// are identical, so that their tokens share entries.
    pub scope: u64,
    pub keys: Arc<KeySet>,
    pub policy: Policy,
    /// The token sources, when `variable` is `None`.
    pub sources: Vec<Source>,
    /// `auth_jwt … token=$variable`: the token is the variable's value.
    pub variable: Option<ComplexValue>,
    /// The token may change during the request (a `QUERY=` source, whose arguments a rewrite
    /// changes, or a variable): a verdict is reused only for the same token bytes.
    pub volatile: bool,
    /// What a request without a token is logged with: `no token in header "Authorization"`.
    pub missing: String,
    /// Keys fetched over HTTP (`auth_jwt_key_request`), used with `keys`.
    pub fetched: Option<Fetched>,
    /// `auth_jwt_revocation`: the list a valid token is checked against.
    pub revocation: Option<Revocation>,
}

impl Auth {
    /// Whether a request may have to fetch before its token is judged: keys of
    /// `auth_jwt_key_request`, or a followed revocation list.
    pub fn fetches(&self) -> bool {
        self.fetched.is_some() || self.revocation.as_ref().is_some_and(|r| r.follow.is_some())
    }
}

/// The key requests of an `Auth`: `keys` and `scope` then hold only the keys of files, and
/// each request combines them with the sets fetched (see `key_request`).
pub struct Fetched {
    /// Identifies this `Auth` among the worker's combined key sets: 0, 1, 2... in each
    /// configuration.
    pub id: u64,
    pub sources: Vec<FetchSource>,
    pub timing: Timing,
    /// `auth_jwt_algorithm`: fetched sets are read for it, as key files are.
    pub algorithm: Option<Algorithm>,
}

/// One `auth_jwt_key_request` as a server uses it.
pub struct FetchSource {
    /// The subrequest's URI and arguments.
    pub uri: String,
    pub args: String,
    /// The server block and URI, hashed: the source's slot in the shared zone.
    pub id: u64,
}

/// `auth_jwt_revocation NAME` as compiled into an `Auth`.
pub struct Revocation {
    pub shm: NonNull<ngx_shm_zone_t>,
    /// The zone's `ttl=`, in seconds.
    pub ttl: i64,
    /// The zone's index in `MainConf::revocation_zones`.
    pub zone: usize,
    /// `auth_jwt_revocation_request`.
    pub follow: Option<Follow>,
}

/// A list followed: where it is fetched, and how often.
pub struct Follow {
    pub source: FetchSource,
    pub interval_ms: u64,
}

/// `auth_jwt_key_cache`'s default: no reuse beyond the fetch a request shares (NGINX Plus's
/// default, which fetches for every request), and keys used up to an hour past it while the
/// provider fails.
pub const DEFAULT_KEY_CACHE: Timing = Timing {
    cache_ms: 0,
    stale_ms: 3_600_000,
};

impl VerifyConf {
    /// The claim checks; an unset setting checks nothing.
    fn policy(&self) -> Policy {
        Policy {
            leeway: self.leeway.unwrap_or(0),
            issuers: self.issuers.clone().unwrap_or_default(),
            audiences: self.audiences.clone().unwrap_or_default(),
            require_sub: self.require_sub.unwrap_or(false),
            // NGINX Plus checks `exp` when present; the C module's family requires it.
            exp_optional: self.keys_from_plus(),
        }
    }

    /// The keys come from `auth_jwt_key_file`.
    pub fn keys_from_plus(&self) -> bool {
        matches!(
            self.keys_from,
            Some(At {
                value: KeyFamily::Plus,
                ..
            })
        )
    }

    /// The header, cookie and argument sources; none when the token is a variable.
    pub fn sources(&self) -> &[Source] {
        match &self.tokens {
            Some(Tokens::Sources(sources)) => sources,
            Some(Tokens::Variable(..)) => &[],
            None => default_sources(),
        }
    }

    /// Compiles the merged settings with `chosen`, the key sources `choose_key` chose; `None`
    /// when there is none (the module is inert unless enabled explicitly).
    pub fn compile(
        &self,
        chosen: Vec<Rc<KeySource>>,
        revocation: Option<(usize, NonNull<ngx_shm_zone_t>, i64)>,
        keys: &KeyRegistry,
        server: &ServerPos,
        warnings: &mut Warnings,
    ) -> Result<Option<Rc<Auth>>, MergeError> {
        let (requests, chosen): (Vec<_>, Vec<_>) =
            chosen.into_iter().partition(|k| k.request_uri().is_some());
        let mut sets = Vec::new();
        for key in &chosen {
            let loaded = keys
                .load(key, self.algorithm, warnings)
                .map_err(|message| MergeError {
                    message,
                    pos: Some(key.pos.clone()),
                })?;
            sets.push(loaded);
        }
        let loaded = match sets.len() {
            0 if requests.is_empty() => return Ok(None),
            0 => keys
                .combine(&[])
                .map_err(|message| MergeError { message, pos: None })?,
            1 => sets.swap_remove(0),
            _ => keys.combine(&sets).map_err(|message| MergeError {
                message,
                pos: chosen.last().map(|k| k.pos.clone()),
            })?,
        };
        let policy = self.policy();
        let sources = self.sources().to_vec();
        let variable = match &self.tokens {
            Some(Tokens::Variable(cv, _)) => Some(*cv),
            _ => None,
        };
        let missing = match &self.tokens {
            Some(Tokens::Variable(_, text)) => format!("no token in \"{text}\""),
            _ => {
                let names: Vec<String> = sources.iter().map(describe_source).collect();
                format!("no token in {}", names.join(", "))
            }
        };
        let fetched = (!requests.is_empty()).then(|| Fetched {
            id: keys.next_fetched_id(),
            sources: requests
                .iter()
                .filter_map(|k| k.request_uri())
                .map(|uri| fetch_source(server, uri, keys))
                .collect(),
            timing: self.key_cache.unwrap_or(DEFAULT_KEY_CACHE),
            algorithm: self.algorithm,
        });
        let revocation = revocation.map(|(zone, shm, ttl)| Revocation {
            shm,
            ttl,
            zone,
            follow: self.revocation_request.as_ref().map(
                |At {
                     value: (uri, secs), ..
                 }| Follow {
                    source: fetch_source(server, uri, keys),
                    interval_ms: secs.saturating_mul(1000),
                },
            ),
        });
        Ok(Some(Rc::new(Auth {
            fetched,
            revocation,
            scope: scope_of(loaded.fingerprint, &policy),
            keys: loaded.keys,
            missing,
            volatile: variable.is_some() || sources.iter().any(|s| s.kind == SourceKind::Query),
            variable,
            policy,
            sources,
        })))
    }

    /// The key source this level verifies with, marked used; the others it inherits are
    /// marked passed over, with why (the last level merged says it, whether it compiles its
    /// own `Auth` or shares its parent's).
    pub fn choose_key(&self) -> Result<Vec<Rc<KeySource>>, MergeError> {
        if let Some(At {
            value: KeyFamily::Plus,
            pos,
        }) = &self.keys_from
        {
            let why = format!("\"auth_jwt_key_file\" applies instead, from {pos}");
            for other in self.key.iter().chain(self.keyfile.iter()) {
                other.mark_passed_over(why.clone());
            }
            let mut files = self.key_files.clone().unwrap_or_default();
            files.extend(self.key_requests.iter().flatten().cloned());
            files.iter().for_each(|f| f.mark_used());
            return Ok(files);
        }
        if let Some(At { pos, .. }) = &self.keys_from {
            let why = format!("the key directives of {pos} apply instead");
            for file in self.key_files.iter().chain(&self.key_requests).flatten() {
                file.mark_passed_over(why.clone());
            }
        }
        let (chosen, other, why) = match &self.use_keyfile {
            Some(At { value: true, pos }) => {
                let Some(file) = &self.keyfile else {
                    return Err(MergeError {
                        message:
                            "\"auth_jwt_use_keyfile\" is on but no \"auth_jwt_keyfile_path\" is set"
                                .into(),
                        pos: Some(pos.clone()),
                    });
                };
                let why = format!(
                    "\"auth_jwt_use_keyfile\" is on in {pos} wherever it applies, so {} is used",
                    file.describe()
                );
                (Some(file), self.key.as_ref(), why)
            }
            _ => {
                let why = match &self.key {
                    Some(key) => format!(
                        "\"auth_jwt_use_keyfile\" is off wherever it applies, so {} is used",
                        key.describe()
                    ),
                    None => "\"auth_jwt_use_keyfile\" is off wherever it applies, so no key is \
                             used and the check cannot be made"
                        .to_owned(),
                };
                (self.key.as_ref(), self.keyfile.as_ref(), why)
            }
        };
        if let Some(chosen) = chosen {
            chosen.mark_used();
        }
        if let Some(other) = other {
            other.mark_passed_over(why);
        }
        Ok(chosen.cloned().into_iter().collect())
    }

    /// The key directives that apply at this level.
    pub fn key_sources(&self) -> impl Iterator<Item = &Rc<KeySource>> {
        self.key
            .iter()
            .chain(self.keyfile.iter())
            .chain(self.key_files.iter().flatten())
            .chain(self.key_requests.iter().flatten())
    }

    /// Where this level names its key, when it does.
    pub fn key_written_at(&self) -> Option<Pos> {
        self.use_keyfile
            .as_ref()
            .map(|u| u.pos.clone())
            .or_else(|| self.key.as_ref().map(|k| k.pos.clone()))
            .or_else(|| self.keyfile.as_ref().map(|k| k.pos.clone()))
            .or_else(|| self.key_files.as_ref()?.first().map(|k| k.pos.clone()))
            .or_else(|| self.key_requests.as_ref()?.first().map(|k| k.pos.clone()))
    }
}

/// TeslaGov's and NGINX Plus's default: the `Authorization` header.
fn default_sources() -> &'static [Source] {
    static DEFAULT: std::sync::OnceLock<Vec<Source>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| {
        vec![Source {
            kind: SourceKind::Authorization,
            name: "Authorization".into(),
        }]
    })
}

/// A key request as a server uses it: the URI splits at `?` into the subrequest's URI and
/// arguments. The source is the URI and the server block: its file, the file's contents, its
/// line and its rank. Keys fetched for it are kept over a reload only while all of these stay
/// the same: an edit of the file (its key location pointed elsewhere, servers reordered)
/// starts afresh.
fn fetch_source(server: &ServerPos, uri: &str, keys: &KeyRegistry) -> FetchSource {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let ServerPos { pos, rank } = server;
    (&pos.file, pos.line, rank, keys.file_digest(&pos.file), uri).hash(&mut hasher);
    // 0 marks a free slot.
    let id = hasher.finish().max(1);
    keys.register_request(id);
    let (path, args) = uri.split_once('?').unwrap_or((uri, ""));
    FetchSource {
        uri: path.to_owned(),
        args: args.to_owned(),
        id,
    }
}
