//! Loading verification keys: HMAC secrets, PEM/DER public keys, JWK and JWKS.
//!
//! Every key is bound to exactly one algorithm when it is loaded, and the crypto
//! library's key objects are built here, once: an RSA key's Montgomery constants,
//! an EC point's validation and an HMAC's padded key are computed at load, so a
//! request only verifies.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::{digest, hmac, signature};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::alg::{Algorithm, Family, URL_SAFE_LENIENT};
use crate::der::{self, DerError, Reader};
use crate::error::KeyError;
use crate::json;
use crate::text::quoted;

impl std::error::Error for KeyError {}

impl From<DerError> for KeyError {
    fn from(err: DerError) -> Self {
        KeyError(format!("invalid public key: {}", err.0))
    }
}

const MIN_RSA_BITS: usize = 2048;
/// The most keys a JWK set may hold: each key parsed costs memory in every worker (an HMAC key
/// over a kilobyte), and an identity provider publishes a handful.
pub const MAX_JWKS_KEYS: usize = 10_000;
const MAX_RSA_BITS: usize = 8192;

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Refuses `alg` for a key of `family`: a key never serves another family's algorithms.
fn check_family(family: Family, alg: Algorithm) -> Result<(), KeyError> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(KeyError(format!(
            "{} cannot be used with {}",
            family.describe(),
            alg
        )))
    }
}

/// Public key material in the form the crypto library parses, before it is bound to an algorithm.
struct PublicKey {
    family: Family,
    /// PKCS#1 RSAPublicKey DER, an uncompressed EC point, or raw Ed25519 bytes.
    bytes: Vec<u8>,
}

/// The size of each coordinate of an uncompressed point on the family's curve.
fn coordinate_size(family: Family) -> usize {
    match family {
        Family::EcP384 => 48,
        Family::EcP521 => 66,
        _ => 32,
    }
}

#[derive(Clone)]
pub(crate) enum Verifier {
    // Boxed: aws-lc's key holds its HMAC context inline, over a kilobyte.
    Hmac(Box<hmac::Key>),
    Public {
        key: signature::ParsedPublicKey,
        /// The algorithm's hash, taken on the stack before the key is used; `None` for EdDSA,
        /// which signs the message itself. aws-lc's one-call check hashes through a heap
        /// digest context it then copies: four allocations more per check.
        prehash: Option<&'static digest::Algorithm>,
    },
}

impl Verifier {
    pub(crate) fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            // hmac::verify compares in constant time.
            Verifier::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            Verifier::Public { key, prehash: None } => key.verify_sig(message, sig).is_ok(),
            Verifier::Public {
                key,
                prehash: Some(hash),
            } => key
                .verify_digest_sig(&digest::digest(hash, message), sig)
                .is_ok(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) verifier: Verifier,
    /// SHA-256 of the key material: what tells two key sets apart without keeping the bytes.
    digest: [u8; 32],
}

impl Key {
    fn secret(kid: Option<String>, secret: &[u8], alg: Algorithm) -> Result<Key, KeyError> {
        let hmac_alg = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => {
                return Err(KeyError(format!(
                    "a secret key cannot be used with {alg}; give the public key"
                )))
            }
        };
        if secret.is_empty() {
            return Err(KeyError::new("empty secret key"));
        }
        Ok(Key {
            kid,
            alg,
            verifier: Verifier::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))),
            digest: sha256(secret),
        })
    }

    fn public(kid: Option<String>, key: PublicKey, alg: Algorithm) -> Result<Key, KeyError> {
        check_family(key.family, alg)?;
        let (verify_alg, prehash): (&'static dyn signature::VerificationAlgorithm, _) = match alg {
            Algorithm::RS256 => (
                &signature::RSA_PKCS1_2048_8192_SHA256,
                Some(&digest::SHA256),
            ),
            Algorithm::RS384 => (
                &signature::RSA_PKCS1_2048_8192_SHA384,
                Some(&digest::SHA384),
            ),
            Algorithm::RS512 => (
                &signature::RSA_PKCS1_2048_8192_SHA512,
                Some(&digest::SHA512),
            ),
            Algorithm::PS256 => (&signature::RSA_PSS_2048_8192_SHA256, Some(&digest::SHA256)),
            Algorithm::PS384 => (&signature::RSA_PSS_2048_8192_SHA384, Some(&digest::SHA384)),
            Algorithm::PS512 => (&signature::RSA_PSS_2048_8192_SHA512, Some(&digest::SHA512)),
            Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED, Some(&digest::SHA256)),
            Algorithm::ES384 => (&signature::ECDSA_P384_SHA384_FIXED, Some(&digest::SHA384)),
            Algorithm::ES512 => (&signature::ECDSA_P521_SHA512_FIXED, Some(&digest::SHA512)),
            Algorithm::EdDSA => (&signature::ED25519, None),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(KeyError(format!(
                    "a public key cannot be used with {alg}; give the secret"
                )))
            }
        };
        // Parsed here, once: a point off its curve is refused at load, not on every request.
        let parsed = signature::ParsedPublicKey::new(verify_alg, &key.bytes).map_err(|_| {
            let why = match key.family {
                Family::EcP256 | Family::EcP384 | Family::EcP521 => "not a point on the curve",
                _ => "refused by the crypto library",
            };
            KeyError(format!("invalid {}: {why}", key.family.describe()))
        })?;
        Ok(Key {
            kid,
            alg,
            verifier: Verifier::Public {
                key: parsed,
                prehash,
            },
            digest: sha256(&key.bytes),
        })
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let hash = digest::digest(&digest::SHA256, data);
    for (o, b) in out.iter_mut().zip(hash.as_ref()) {
        *o = *b;
    }
    out
}

/// The keys one location verifies with. Each key serves exactly one algorithm.
#[derive(Clone)]
pub struct KeySet {
    pub(crate) keys: Vec<Key>,
    /// Where each `kid` sits in `keys`: a set of thousands of keys is searched in one probe.
    by_kid: HashMap<String, usize>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of logs: only kid and algorithm are shown.
        f.debug_list()
            .entries(self.keys.iter().map(|key| {
                format!(
                    "{}{}",
                    key.alg,
                    key.kid
                        .as_deref()
                        .map(|kid| format!(" kid={}", quoted(kid)))
                        .unwrap_or_default()
                )
            }))
            .finish()
    }
}

/// A key set and what loading it has to say: skipped JWKS entries, keys that can never be
/// selected, secrets shorter than their hash.
pub type Loaded = (KeySet, Vec<String>);

impl KeySet {
    fn new(keys: Vec<Key>) -> KeySet {
        let by_kid = keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| key.kid.clone().map(|kid| (kid, i)))
            .collect();
        KeySet { keys, by_kid }
    }

    /// An HMAC secret for an HS* algorithm.
    ///
    /// Refused: an empty secret, a non-HS algorithm, and a secret that is really a public key
    /// (PEM, JWK, DER, or the hex or base64 text of one), which anyone holding that public key
    /// could sign with. A secret shorter than the algorithm's hash gets a warning (RFC 7518
    /// §3.2).
    pub fn from_secret(secret: &[u8], alg: Algorithm) -> Result<Loaded, KeyError> {
        if let Some(what) = public_key_form(secret) {
            return Err(KeyError(format!(
                "the secret is {what}: as an {alg} secret anyone holding that public key could \
                 sign tokens; configure the key's algorithm instead"
            )));
        }
        let key = Key::secret(None, secret, alg)?;
        let warnings = short_secret(secret.len(), alg).into_iter().collect();
        Ok((KeySet::new(vec![key]), warnings))
    }

    /// Key material as found in a key file or an inline `auth_jwt_key`: a PEM
    /// public key ("PUBLIC KEY" SPKI with RSA / EC P-256 / P-384 / P-521 / Ed25519,
    /// or "RSA PUBLIC KEY" PKCS#1), DER SPKI (or DER PKCS#1), a single JWK
    /// object, or a JWKS `{"keys":[...]}`.
    ///
    /// `alg` is the configured algorithm: every key must be of its family (a single key of
    /// another family is an error, a JWKS entry is skipped with a warning), and serves it
    /// unless the key's own `alg` names another of the family. `None` (no algorithm
    /// configured): each key serves its own `alg`, or its family's default algorithm.
    ///
    /// Returns the set and warnings, one per skipped JWKS entry, per JWKS key that can never be
    /// selected, per short secret.
    pub fn from_material(data: &[u8], alg: Option<Algorithm>) -> Result<Loaded, KeyError> {
        let trimmed = trim_start(data);
        let key = if trimmed.starts_with(b"-----BEGIN ") {
            parse_pem(trimmed)?
        } else if trimmed.starts_with(b"{") {
            return from_json(trimmed, alg);
        } else if data.first() == Some(&der::TAG_SEQUENCE) {
            parse_der(data)?
        } else {
            return Err(KeyError::new(
                "key file is neither PEM, DER nor JSON (JWK/JWKS)",
            ));
        };
        let alg = alg.unwrap_or_else(|| key.family.default_algorithm());
        if alg.is_hmac() {
            return Err(KeyError(format!(
                "{} cannot be used with {alg}; give the secret, or configure the key's algorithm",
                key.family.describe()
            )));
        }
        Ok((KeySet::new(vec![Key::public(None, key, alg)?]), Vec::new()))
    }

    /// The keys of several sets as one (`auth_jwt_key_file` given several times). A key in
    /// two sets is kept once; two different keys under one `kid` are refused, since a token
    /// naming that `kid` would have two keys.
    pub fn combine<'a>(sets: impl IntoIterator<Item = &'a KeySet>) -> Result<KeySet, KeyError> {
        let mut keys: Vec<Key> = Vec::new();
        let mut by_kid: HashMap<&str, &Key> = HashMap::new();
        let mut anonymous: Vec<&Key> = Vec::new();
        for key in sets.into_iter().flat_map(|set| set.keys.iter()) {
            let same = |k: &Key| k.alg == key.alg && k.digest == key.digest;
            match &key.kid {
                Some(kid) => match by_kid.get(kid.as_str()) {
                    Some(k) if same(k) => continue,
                    Some(_) => {
                        return Err(KeyError(format!(
                            "two different keys have kid {}",
                            quoted(kid)
                        )))
                    }
                    None => {
                        by_kid.insert(kid, key);
                    }
                },
                None if anonymous.iter().any(|k| same(k)) => continue,
                None => anonymous.push(key),
            }
            keys.push(key.clone());
        }
        if keys.len() > MAX_JWKS_KEYS {
            return Err(KeyError(format!(
                "the key sets hold more than {MAX_JWKS_KEYS} keys together"
            )));
        }
        Ok(KeySet::new(keys))
    }

    /// The keys of `self` and those of `extra` that do not contradict them: a key of `extra`
    /// whose `kid` names another key here is left out, with why. `extra` comes from elsewhere
    /// (a key set fetched at run time) and never replaces a key of `self`.
    pub fn with_extra(&self, extra: &KeySet) -> Result<(KeySet, Vec<String>), KeyError> {
        let mut skipped = Vec::new();
        let kept: Vec<Key> = extra
            .keys
            .iter()
            .filter(|key| {
                let Some(kid) = &key.kid else {
                    return true;
                };
                let mine = self.by_kid.get(kid).and_then(|&i| self.keys.get(i));
                let clash = mine.is_some_and(|k| k.alg != key.alg || k.digest != key.digest);
                if clash {
                    skipped.push(format!(
                        "skipping the key with kid {}: another key has that kid",
                        quoted(kid)
                    ));
                }
                !clash
            })
            .cloned()
            .collect();
        let combined = KeySet::combine([self, &KeySet::new(kept)])?;
        Ok((combined, skipped))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithms the set's keys serve, one entry per key, in set order.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.keys.iter().map(|key| key.alg)
    }

    /// A digest of every key's `kid`, algorithm and material: equal for two sets that verify
    /// exactly the same tokens.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for key in &self.keys {
            ctx.update(key.alg.name().as_bytes());
            ctx.update(&[0]);
            match &key.kid {
                Some(kid) => {
                    ctx.update(&(kid.len() as u64).to_le_bytes());
                    ctx.update(kid.as_bytes());
                }
                None => ctx.update(&u64::MAX.to_le_bytes()),
            }
            ctx.update(&key.digest);
        }
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(ctx.finish().as_ref()) {
            *o = *b;
        }
        out
    }

    /// Picks the one key a token may be verified with: never several.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&Key, String> {
        let only = match self.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        };
        match kid {
            // A kid names one key; it falls back only to a set's single anonymous key (a PEM).
            Some(kid) => self
                .by_kid
                .get(kid)
                .and_then(|&i| self.keys.get(i))
                .or(only.filter(|key| key.kid.is_none()))
                .ok_or_else(|| format!("no key with kid {}", quoted(kid))),
            // Without a kid, only an unambiguous set is usable: never try several keys.
            None => only.ok_or_else(|| {
                format!(
                    "token has no kid and the set holds {} keys",
                    self.keys.len()
                )
            }),
        }
    }
}

/// The warning for a secret shorter than `alg`'s hash output.
fn short_secret(len: usize, alg: Algorithm) -> Option<String> {
    let size = alg.hmac_size()?;
    (len < size).then(|| {
        format!(
            "the {alg} secret is {len} bytes long; RFC 7518 asks for at least {size} (the \
             size of its hash)"
        )
    })
}

/// What `secret` is, when it is a public key, a certificate, or the text of one, rather than a
/// secret: judged by shape, not by whether this crate could use the key, so an RSA-1024, a
/// secp256k1 or an X25519 key, or a certificate copied from a JWK's `x5c`, is caught too.
fn public_key_form(secret: &[u8]) -> Option<&'static str> {
    if let Some(what) = key_text_form(secret) {
        return Some(what);
    }
    // The same, written as hex or base64 text and given with the `utf8` encoding.
    let compact: Vec<u8> = trim_start(secret)
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    [
        crate::alg::decode_secret(&compact, crate::alg::SecretEncoding::Hex),
        crate::alg::decode_secret(&compact, crate::alg::SecretEncoding::Base64),
    ]
    .into_iter()
    .flatten()
    .find_map(|decoded| key_text_form(&decoded))
    .map(|_| "the text of a public key")
}

/// A PEM, JWK or SSH public key text, or DER of a public key, a certificate or a PKCS#7
/// bundle.
fn key_text_form(data: &[u8]) -> Option<&'static str> {
    let text = trim_start(data);
    if memchr::memmem::find(data, b"-----BEGIN ").is_some() {
        return Some("a PEM key");
    }
    if ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|prefix| text.starts_with(prefix.as_bytes()))
    {
        return Some("an SSH public key");
    }
    // A JWK, a set, or an array of them, strict JSON or not.
    if (text.starts_with(b"{") || text.starts_with(b"["))
        && memchr::memmem::find(text, b"\"kty\"").is_some()
    {
        return Some("a JWK");
    }
    der_key_shape(data).then_some("a DER public key")
}

/// Whether `data` starts with DER shaped as a SubjectPublicKeyInfo (an algorithm identifier
/// and a bit string), a PKCS#1 RSAPublicKey (two integers), an X.509 certificate (a body, an
/// algorithm identifier and a signature) or a PKCS#7 bundle (its content type), whatever the
/// algorithm, and whatever follows it (a chain of certificates, padding).
fn der_key_shape(data: &[u8]) -> bool {
    const OID_PKCS7: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07];
    let shaped = || -> Result<bool, DerError> {
        let mut outer = Reader::new(data);
        let mut seq = Reader::new(outer.read(der::TAG_SEQUENCE)?);
        let algorithm = |content: &[u8]| Reader::new(content).peek_tag() == Some(der::TAG_OID);
        match seq.peek_tag() {
            Some(der::TAG_INTEGER) => {
                seq.read(der::TAG_INTEGER)?;
                seq.read(der::TAG_INTEGER)?;
            }
            Some(der::TAG_OID) => return Ok(seq.read(der::TAG_OID)?.starts_with(OID_PKCS7)),
            Some(der::TAG_SEQUENCE) => {
                let first = seq.read(der::TAG_SEQUENCE)?;
                if seq.peek_tag() == Some(der::TAG_SEQUENCE) {
                    // A certificate: its body, then the signature's algorithm.
                    if !algorithm(seq.read(der::TAG_SEQUENCE)?) {
                        return Ok(false);
                    }
                } else if !algorithm(first) {
                    return Ok(false);
                }
                seq.read(der::TAG_BIT_STRING)?;
            }
            _ => return Ok(false),
        }
        seq.finish()?;
        Ok(true)
    };
    shaped().unwrap_or(false)
}

fn single(key: Key) -> KeySet {
    KeySet::new(vec![key])
}

fn trim_start(data: &[u8]) -> &[u8] {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// PEM and DER

fn parse_pem(data: &[u8]) -> Result<PublicKey, KeyError> {
    let text = std::str::from_utf8(data).map_err(|_| KeyError::new("PEM key is not text"))?;
    let mut lines = text.lines().map(str::trim);
    let begin = lines.next().unwrap_or_default();
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"))
        .ok_or_else(|| KeyError::new("invalid PEM begin line"))?;
    let pkcs1 = match label {
        "PUBLIC KEY" => false,
        "RSA PUBLIC KEY" => true,
        "PRIVATE KEY"
        | "RSA PRIVATE KEY"
        | "EC PRIVATE KEY"
        | "ENCRYPTED PRIVATE KEY"
        | "OPENSSH PRIVATE KEY" => {
            return Err(KeyError::new(
                "PEM holds a private key; give the public key",
            ))
        }
        "CERTIFICATE" => {
            return Err(KeyError::new(
                "PEM certificates are not supported; give the public key",
            ))
        }
        _ => {
            return Err(KeyError(format!(
                "unsupported PEM type {}, expected PUBLIC KEY or RSA PUBLIC KEY",
                quoted(label)
            )))
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            return Err(KeyError::new("PEM headers are not supported"));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(KeyError::new("PEM key has no end line"));
    }
    if lines.any(|line| !line.is_empty()) {
        return Err(KeyError::new("unexpected data after the PEM key"));
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| KeyError::new("invalid base64 in PEM key"))?;
    if pkcs1 {
        parse_pkcs1(&der)
    } else {
        parse_spki(&der)
    }
}

fn parse_der(data: &[u8]) -> Result<PublicKey, KeyError> {
    // SubjectPublicKeyInfo starts with an AlgorithmIdentifier SEQUENCE,
    // PKCS#1 RSAPublicKey with the modulus INTEGER.
    let mut outer = Reader::new(data);
    let inner = Reader::new(outer.read(der::TAG_SEQUENCE)?);
    if inner.peek_tag() == Some(der::TAG_INTEGER) {
        parse_pkcs1(data)
    } else {
        parse_spki(data)
    }
}

fn parse_spki(data: &[u8]) -> Result<PublicKey, KeyError> {
    let mut outer = Reader::new(data);
    let mut spki = Reader::new(outer.read(der::TAG_SEQUENCE)?);
    outer.finish()?;
    let mut alg_id = Reader::new(spki.read(der::TAG_SEQUENCE)?);
    let bits = spki.read(der::TAG_BIT_STRING)?;
    spki.finish()?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(KeyError::new("invalid public key: bad bit string")),
    };
    let oid = alg_id.read(der::TAG_OID)?;
    match oid {
        OID_RSA_ENCRYPTION => {
            // RFC 3279 says NULL parameters; some encoders omit them.
            if !alg_id.is_empty() {
                alg_id.read(der::TAG_NULL)?;
            }
            alg_id.finish()?;
            parse_pkcs1(key)
        }
        OID_EC_PUBLIC_KEY => {
            if alg_id.peek_tag() != Some(der::TAG_OID) {
                return Err(KeyError::new(
                    "EC key without a named curve is not supported",
                ));
            }
            let curve = alg_id.read(der::TAG_OID)?;
            alg_id.finish()?;
            let family = match curve {
                OID_PRIME256V1 => Family::EcP256,
                OID_SECP384R1 => Family::EcP384,
                OID_SECP521R1 => Family::EcP521,
                other => {
                    return Err(KeyError(format!(
                        "unsupported EC curve (OID {}), expected P-256, P-384 or P-521",
                        der::oid_to_string(other).unwrap_or_else(|| "?".to_owned())
                    )))
                }
            };
            ec_point(family, key.to_vec())
        }
        OID_ED25519 => {
            alg_id.finish()?;
            ed25519(key.to_vec())
        }
        other => Err(KeyError(format!(
            "unsupported public key type (OID {})",
            der::oid_to_string(other).unwrap_or_else(|| "?".to_owned())
        ))),
    }
}

fn parse_pkcs1(data: &[u8]) -> Result<PublicKey, KeyError> {
    let mut outer = Reader::new(data);
    let mut seq = Reader::new(outer.read(der::TAG_SEQUENCE)?);
    outer.finish()?;
    let n = der::positive_integer(seq.read(der::TAG_INTEGER)?)?;
    let e = der::positive_integer(seq.read(der::TAG_INTEGER)?)?;
    seq.finish()?;
    rsa(n, e)
}

/// Checks an RSA key against the limits the verification algorithms enforce,
/// so that an unusable key is refused at load rather than failing every request.
fn rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyError> {
    let bits = der::bit_length(n);
    if bits < MIN_RSA_BITS {
        return Err(KeyError(format!(
            "RSA key of {bits} bits is too short, {MIN_RSA_BITS} bits at least"
        )));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError(format!(
            "RSA key of {bits} bits is too long, {MAX_RSA_BITS} bits at most"
        )));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(KeyError::new("invalid RSA key: even modulus"));
    }
    let e_bits = der::bit_length(e);
    let e_low = e.last().copied().unwrap_or(0);
    if !(2..=33).contains(&e_bits) || e_low & 1 == 0 {
        return Err(KeyError::new(
            "invalid RSA key: unsupported public exponent",
        ));
    }
    Ok(PublicKey {
        family: Family::Rsa,
        bytes: der::rsa_public_key(n, e),
    })
}

fn ec_point(family: Family, point: Vec<u8>) -> Result<PublicKey, KeyError> {
    let coordinate = coordinate_size(family);
    match point.first() {
        Some(4) if point.len() == 1 + 2 * coordinate => Ok(PublicKey {
            family,
            bytes: point,
        }),
        Some(2 | 3) => Err(KeyError::new("compressed EC points are not supported")),
        _ => Err(KeyError(format!(
            "invalid {}: bad point encoding",
            family.describe()
        ))),
    }
}

fn ed25519(key: Vec<u8>) -> Result<PublicKey, KeyError> {
    if key.len() != 32 {
        return Err(KeyError::new("invalid Ed25519 key: not 32 bytes"));
    }
    Ok(PublicKey {
        family: Family::Ed25519,
        bytes: key,
    })
}

// ---------------------------------------------------------------------------
// JWK and JWKS

fn from_json(data: &[u8], alg: Option<Algorithm>) -> Result<Loaded, KeyError> {
    let object =
        json::parse_object(data).map_err(|err| KeyError(format!("invalid JSON key: {err}")))?;
    let Some(entries) = object.get("keys") else {
        let (key, warning) =
            jwk(&object, alg).map_err(|err| KeyError(format!("unusable JWK: {err}")))?;
        return Ok((single(key), warning.into_iter().collect()));
    };
    let entries = entries
        .as_array()
        .ok_or_else(|| KeyError::new("\"keys\" of the JWK set is not an array"))?;
    if entries.len() > MAX_JWKS_KEYS {
        return Err(KeyError(format!(
            "the JWK set holds {} keys, more than {MAX_JWKS_KEYS}",
            entries.len()
        )));
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut kids = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let number = index.saturating_add(1);
        let label = match entry.get("kid").and_then(Value::as_str) {
            Some(kid) => format!("key #{number} (kid {})", quoted(kid)),
            None => format!("key #{number}"),
        };
        let result = match entry.as_object() {
            Some(object) => jwk(object, alg),
            None => Err("not a JSON object".to_owned()),
        };
        match result {
            Ok((key, warning)) => {
                if let Some(kid) = &key.kid {
                    if !kids.insert(kid.clone()) {
                        return Err(KeyError(format!(
                            "duplicate kid {} in the JWK set",
                            quoted(kid)
                        )));
                    }
                }
                warnings.extend(warning.map(|w| format!("{label}: {w}")));
                keys.push(key);
            }
            Err(err) => warnings.push(format!("skipping {label}: {err}")),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::new("no usable key in the JWK set"));
    }
    if keys.len() > 1 {
        let unreachable = keys.iter().filter(|key| key.kid.is_none()).count();
        if unreachable > 0 {
            warnings.push(format!(
                "{unreachable} key(s) of the JWK set have no kid and can never be selected"
            ));
        }
    }
    Ok((KeySet::new(keys), warnings))
}

/// Loads one JWK, with a warning for a short secret; the error says why the key is unusable.
///
/// The key's family comes from its `kty` (and `crv`); its own `alg` must be of that family.
/// With an algorithm configured, a key of another family is refused (an RS256 location never
/// holds an HMAC secret), and one without `alg` serves the configured algorithm.
fn jwk(
    object: &Map<String, Value>,
    configured: Option<Algorithm>,
) -> Result<(Key, Option<String>), String> {
    let kid = match object.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("kid is not a string".to_owned()),
    };
    match object.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => return Err(format!("use {} is not \"sig\"", quoted(u))),
        Some(_) => return Err("use is not a string".to_owned()),
    }
    if let Some(ops) = object.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or_else(|| "key_ops is not an array".to_owned())?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("key_ops does not allow \"verify\"".to_owned());
        }
    }
    let pinned = match object.get("alg") {
        None => None,
        Some(Value::String(name)) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None if name == "none" => return Err("alg \"none\" is not allowed".to_owned()),
            None => return Err(format!("unsupported alg {}", quoted(name))),
        },
        Some(_) => return Err("alg is not a string".to_owned()),
    };
    let kty = match object.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        Some(_) => return Err("kty is not a string".to_owned()),
        None => return Err("kty is missing".to_owned()),
    };
    let family = match kty {
        "oct" => Family::Hmac,
        "RSA" => Family::Rsa,
        "EC" => match member_str(object, "crv")? {
            "P-256" => Family::EcP256,
            "P-384" => Family::EcP384,
            "P-521" => Family::EcP521,
            other => return Err(format!("unsupported crv {}", quoted(other))),
        },
        "OKP" => match member_str(object, "crv")? {
            "Ed25519" => Family::Ed25519,
            other => return Err(format!("unsupported crv {}", quoted(other))),
        },
        other => return Err(format!("unsupported kty {}", quoted(other))),
    };
    if let Some(pinned) = pinned {
        check_family(family, pinned).map_err(|e| e.0)?;
    }
    if let Some(configured) = configured {
        if configured.family() != family {
            return Err(format!(
                "{} {}cannot serve the configured {configured}",
                family.describe(),
                pinned.map(|p| format!("(alg {p}) ")).unwrap_or_default()
            ));
        }
    }
    let alg = pinned
        .or(configured)
        .unwrap_or_else(|| family.default_algorithm());
    let key = match family {
        Family::Hmac => {
            let secret = member_bytes(object, "k")?;
            if let Some(what) = public_key_form(&secret) {
                return Err(format!("k is {what}, not a secret"));
            }
            let key = Key::secret(kid, &secret, alg).map_err(|e| e.0)?;
            return Ok((key, short_secret(secret.len(), alg)));
        }
        Family::Rsa => {
            let n = member_bytes(object, "n")?;
            let e = member_bytes(object, "e")?;
            // Some encoders emit a sign byte; the magnitude is what counts.
            rsa(&n, &e).map_err(|e| e.0)?
        }
        Family::EcP256 | Family::EcP384 | Family::EcP521 => {
            let size = coordinate_size(family);
            let x = member_bytes(object, "x")?;
            let y = member_bytes(object, "y")?;
            if x.len() != size || y.len() != size {
                return Err(format!(
                    "x and y of a {} must be {size} bytes",
                    family.describe()
                ));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ec_point(family, point).map_err(|e| e.0)?
        }
        Family::Ed25519 => ed25519(member_bytes(object, "x")?).map_err(|e| e.0)?,
    };
    Ok((Key::public(kid, key, alg).map_err(|e| e.0)?, None))
}

fn member_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match object.get(name) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn member_bytes(object: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = member_str(object, name)?;
    let bytes = URL_SAFE_LENIENT
        .decode(text)
        .map_err(|_| format!("{name} is not valid base64url"))?;
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
