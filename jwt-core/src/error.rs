//! Why a token is refused, and why a key cannot be loaded.

use std::fmt;

/// Why a token was refused, in categories stable enough for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Missing,
    Malformed,
    TooLarge,
    Algorithm,
    Key,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Subject,
    Claim,
    /// A valid token that does not meet a requirement of the location (`auth_jwt_require`);
    /// never produced by verification itself.
    Require,
    /// The keys of an `auth_jwt_key_request` could not be had (the provider failed, and no
    /// keys fetched earlier may still serve): a server problem, not the token's; never
    /// produced by verification itself.
    KeysUnavailable,
    /// A valid token on the revocation list (`auth_jwt_revocation`); never produced by
    /// verification itself.
    Revoked,
}

impl Reason {
    pub fn word(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::Algorithm => "algorithm",
            Reason::Key => "key",
            Reason::Signature => "signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Issuer => "issuer",
            Reason::Audience => "audience",
            Reason::Subject => "subject",
            Reason::Claim => "claim",
            Reason::Require => "require",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::Revoked => "revoked",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A refused token. `detail` never holds token or key bytes; claim values are
/// quoted, truncated and escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub reason: Reason,
    pub detail: String,
}

impl Error {
    // Out of line: a refusal is the rare path, and its formatting code would otherwise sit
    // between the instructions a valid token runs, in the cache lines they need.
    #[cold]
    #[inline(never)]
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Error {
        Error {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.word(), self.detail)
    }
}

impl std::error::Error for Error {}

/// A key that could not be loaded. The message never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl KeyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        KeyError(message.into())
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
