//! What verifies a token: the settings that define it, compiled into one `Auth` per distinct
//! configuration.
//!
//! Every directive that changes how a token is verified has its field in `VerifyConf`, and
//! `Auth` is compiled from `VerifyConf` alone: a location that writes any of these settings
//! compiles its own `Auth`, one that writes none shares its parent's, and no other setting can
//! reach a verification.

use std::rc::Rc;
use std::sync::Arc;

use jwt_core::{Algorithm, KeySet, Policy, Source, SourceKind};

use crate::ngx::conf::Pos;
use crate::token::describe_source;

use super::keys::{scope_of, KeyRegistry, KeySource};
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
        /// `auth_jwt_location`.
        sources: Vec<Source>,
        /// `auth_jwt_leeway`, in seconds.
        leeway: u64,
        /// `auth_jwt_issuer`.
        issuers: Vec<String>,
        /// `auth_jwt_audience`.
        audiences: Vec<String>,
        /// `auth_jwt_validate_sub`.
        require_sub: bool,
    }
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

impl VerifyConf {
    /// The claim checks; an unset setting checks nothing.
    fn policy(&self) -> Policy {
        Policy {
            leeway: self.leeway.unwrap_or(0),
            issuers: self.issuers.clone().unwrap_or_default(),
            audiences: self.audiences.clone().unwrap_or_default(),
            require_sub: self.require_sub.unwrap_or(false),
        }
    }

    /// The token sources; TeslaGov's default is the `Authorization` header.
    pub fn sources(&self) -> Vec<Source> {
        self.sources.clone().unwrap_or_else(|| {
            vec![Source {
                kind: SourceKind::Authorization,
                name: "Authorization".into(),
            }]
        })
    }

    /// Compiles the merged settings with `key`, the key source `choose_key` chose; `None`
    /// when there is none (the module is inert unless enabled explicitly).
    pub fn compile(
        &self,
        key: Option<Rc<KeySource>>,
        keys: &KeyRegistry,
        warnings: &mut Warnings,
    ) -> Result<Option<Arc<Auth>>, MergeError> {
        let Some(key) = key else {
            return Ok(None);
        };
        let loaded = keys
            .load(&key, self.algorithm, warnings)
            .map_err(|message| MergeError {
                message,
                pos: Some(key.pos.clone()),
            })?;
        let policy = self.policy();
        let sources = self.sources();
        let names: Vec<String> = sources.iter().map(describe_source).collect();
        Ok(Some(Arc::new(Auth {
            scope: scope_of(loaded.fingerprint, &policy),
            keys: loaded.keys,
            missing: format!("no token in {}", names.join(", ")),
            query: sources.iter().any(|s| s.kind == SourceKind::Query),
            policy,
            sources,
        })))
    }

    /// The key source this level verifies with, marked used; the others it inherits are
    /// marked passed over, with why (the last level merged says it, whether it compiles its
    /// own `Auth` or shares its parent's).
    pub fn choose_key(&self) -> Result<Option<Rc<KeySource>>, MergeError> {
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
        Ok(chosen.cloned())
    }

    /// The key directives written at this level.
    pub fn key_sources(&self) -> impl Iterator<Item = &Rc<KeySource>> {
        self.key.iter().chain(self.keyfile.iter())
    }

    /// Where this level names its key, when it does.
    pub fn key_written_at(&self) -> Option<Pos> {
        self.use_keyfile
            .as_ref()
            .map(|u| u.pos.clone())
            .or_else(|| self.key.as_ref().map(|k| k.pos.clone()))
            .or_else(|| self.keyfile.as_ref().map(|k| k.pos.clone()))
    }
}
