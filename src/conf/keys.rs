//! Key sources: the `auth_jwt_key` and `auth_jwt_keyfile_path` directives, the keys read
//! from them (once per configuration, whatever the number of locations naming them) and the
//! check that each is used somewhere.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jwt_core::{Algorithm, KeySet, Policy};

use crate::ngx::conf::Pos;

use super::settings::Warnings;

/// One `auth_jwt_key` or `auth_jwt_keyfile_path` directive.
pub struct KeySource {
    origin: KeyOrigin,
    /// The directive that names it.
    directive: &'static str,
    pub pos: Pos,
    /// Its rank in the order directives are read, for errors listed in that order.
    read: u64,
    /// Some level takes its key from here.
    used: Cell<bool>,
    /// Why a level that inherits it takes its key elsewhere, for the error if none uses it.
    passed_over: RefCell<Option<String>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KeyOrigin {
    /// `auth_jwt_key`: a decoded secret, or key material (PEM, JWK) given as text.
    Inline { bytes: Vec<u8>, material: bool },
    /// `auth_jwt_keyfile_path` and `auth_jwt_key_file`, resolved against the prefix.
    File { path: String },
    /// `auth_jwt_key_request`: the JWK set a subrequest to `uri` answers, fetched at run time.
    Request { uri: String },
}

impl KeySource {
    pub fn new(origin: KeyOrigin, directive: &'static str, pos: Pos) -> Rc<KeySource> {
        static READ: AtomicU64 = AtomicU64::new(0);
        Rc::new(KeySource {
            origin,
            directive,
            pos,
            read: READ.fetch_add(1, Ordering::Relaxed),
            used: Cell::new(false),
            passed_over: RefCell::new(None),
        })
    }

    /// Records that a level verifies with this key.
    pub fn mark_used(&self) {
        self.used.set(true);
    }

    /// Records why a level that inherits this key takes its key elsewhere.
    pub fn mark_passed_over(&self, why: String) {
        self.passed_over.replace(Some(why));
    }

    pub fn describe(&self) -> String {
        match &self.origin {
            KeyOrigin::Inline { .. } => format!("the key of \"auth_jwt_key\" in {}", self.pos),
            KeyOrigin::File { path } => format!("the key file \"{path}\""),
            KeyOrigin::Request { uri } => format!("the key request \"{uri}\""),
        }
    }

    /// The URI of an `auth_jwt_key_request`.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.origin {
            KeyOrigin::Request { uri } => Some(uri),
            _ => None,
        }
    }
}

/// Where a `server{}` block starts, and its rank among the configuration's server blocks:
/// with a URI, what identifies an `auth_jwt_key_request` source.
#[derive(Clone, Default)]
pub struct ServerPos {
    pub pos: Pos,
    pub rank: u64,
}

/// Every key directive of a configuration and the keys read from them.
#[derive(Default)]
pub struct KeyRegistry {
    /// Each must be used by some level; gathered as levels merge.
    sources: RefCell<Vec<Rc<KeySource>>>,
    /// Key sets by origin and algorithm: a file that fifty locations name is read and parsed
    /// once.
    loaded: RefCell<HashMap<LoadKey, Parsed>>,
    /// Key sets combined from several (`auth_jwt_key_file` repeated), by their parts'
    /// fingerprints.
    combined: RefCell<HashMap<Vec<[u8; 32]>, Parsed>>,
    /// The id of each distinct `auth_jwt_key_request` source (a server block and a URI).
    requests: RefCell<Vec<u64>>,
    /// How many `Auth`s with key requests were compiled.
    fetched: Cell<u64>,
    /// A digest of each configuration file holding a server with a key request.
    file_digests: RefCell<HashMap<String, u64>>,
}

/// A key set parsed, or why it could not be.
type Parsed = Result<ParsedKeys, String>;

/// A key source's bytes and the algorithm asked of them.
type LoadKey = (KeyOrigin, Option<Algorithm>);

/// A parsed key set and the digest that identifies it.
#[derive(Clone)]
pub struct ParsedKeys {
    pub keys: Arc<KeySet>,
    pub fingerprint: [u8; 32],
}

/// The largest key file read: a JWK set of some ten thousand RSA keys.
const MAX_KEY_FILE: u64 = 16 * 1024 * 1024;

impl KeyRegistry {
    /// Records a key directive, once.
    pub fn register(&self, source: &Rc<KeySource>) {
        let mut sources = self.sources.borrow_mut();
        if !sources.iter().any(|s| Rc::ptr_eq(s, source)) {
            sources.push(Rc::clone(source));
        }
    }

    /// Records a key request source by its id; the number of distinct ones.
    pub fn register_request(&self, id: u64) {
        let mut ids = self.requests.borrow_mut();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// A digest of the contents of configuration file `path` (read once); 0 when it cannot
    /// be read.
    pub fn file_digest(&self, path: &str) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        *self
            .file_digests
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert_with(|| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(path).unwrap_or_default().hash(&mut hasher);
                hasher.finish()
            })
    }

    /// A new id for an `Auth` with key requests.
    pub fn next_fetched_id(&self) -> u64 {
        let id = self.fetched.get();
        self.fetched.set(id + 1);
        id
    }

    /// How many distinct key request sources the configuration has.
    pub fn requests(&self) -> usize {
        self.requests.borrow().len()
    }

    /// The error for each key directive that no level uses, with its position, in the order
    /// of the configuration.
    pub fn unused(&self) -> Vec<(String, Pos)> {
        let mut sources = self.sources.borrow().clone();
        sources.sort_by_key(|s| s.read);
        sources
            .iter()
            .filter(|s| !s.used.get())
            .map(|s| {
                let why = s
                    .passed_over
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "no server or location inherits it".to_owned());
                (
                    format!("\"{}\" is not used anywhere: {why}", s.directive),
                    s.pos.clone(),
                )
            })
            .collect()
    }

    /// The keys of `sets` as one set, combined once per configuration.
    pub fn combine(&self, sets: &[ParsedKeys]) -> Result<ParsedKeys, String> {
        let id: Vec<[u8; 32]> = sets.iter().map(|s| s.fingerprint).collect();
        if let Some(done) = self.combined.borrow().get(&id) {
            return done.clone();
        }
        let result = KeySet::combine(sets.iter().map(|s| &*s.keys))
            .map(|keys| ParsedKeys {
                fingerprint: keys.fingerprint(),
                keys: Arc::new(keys),
            })
            .map_err(|e| format!("invalid \"auth_jwt_key_file\" set: {e}"));
        self.combined.borrow_mut().insert(id, result.clone());
        result
    }

    /// Reads and parses a key source for `alg` (or each key's own algorithm), once.
    pub fn load(
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
        // Fetched at run time; `compile` never loads one.
        KeyOrigin::Request { uri } => Err(format!("the key request \"{uri}\" is fetched later")),
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
pub fn scope_of(fingerprint: [u8; 32], policy: &Policy) -> u64 {
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
