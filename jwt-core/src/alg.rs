use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::error::KeyError;

/// The JWS algorithms this module verifies. `none` is deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// Exact, case-sensitive JOSE name: a token saying `hs256` is not an HS256 token.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        self.family() == Family::Hmac
    }

    /// The kind of key the algorithm verifies with.
    pub fn family(self) -> Family {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 => Family::EcP256,
            Algorithm::ES384 => Family::EcP384,
            Algorithm::ES512 => Family::EcP521,
            Algorithm::EdDSA => Family::Ed25519,
        }
    }

    /// Bytes of the HMAC's hash output: RFC 7518 §3.2 asks for a secret at least that long.
    pub fn hmac_size(self) -> Option<usize> {
        match self {
            Algorithm::HS256 => Some(32),
            Algorithm::HS384 => Some(48),
            Algorithm::HS512 => Some(64),
            _ => None,
        }
    }
}

/// A family of algorithms: those one kind of key can serve. A key never serves another family,
/// so a public key can never be taken for an HMAC secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

impl Family {
    /// What a key of the family is called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Family::Hmac => "secret key",
            Family::Rsa => "RSA key",
            Family::EcP256 => "EC P-256 key",
            Family::EcP384 => "EC P-384 key",
            Family::EcP521 => "EC P-521 key",
            Family::Ed25519 => "Ed25519 key",
        }
    }

    /// The algorithm a key of the family serves when nothing names one: RS256 for RSA (the
    /// JOSE default), the one algorithm of its curve for EC and Ed25519, HS256 for a secret.
    pub fn default_algorithm(self) -> Algorithm {
        match self {
            Family::Hmac => Algorithm::HS256,
            Family::Rsa => Algorithm::RS256,
            Family::EcP256 => Algorithm::ES256,
            Family::EcP384 => Algorithm::ES384,
            Family::EcP521 => Algorithm::ES512,
            Family::Ed25519 => Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an HMAC secret is written in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretEncoding {
    Hex,
    Utf8,
    Base64,
}

impl SecretEncoding {
    pub fn from_name(name: &str) -> Option<SecretEncoding> {
        if name.eq_ignore_ascii_case("hex") {
            Some(SecretEncoding::Hex)
        } else if name.eq_ignore_ascii_case("utf8") {
            Some(SecretEncoding::Utf8)
        } else if name.eq_ignore_ascii_case("base64") {
            Some(SecretEncoding::Base64)
        } else {
            None
        }
    }
}

// Secrets are configuration, not attacker input, so padding is optional; the
// trailing-bits check stays on because a non-canonical secret is most likely a
// truncated copy-and-paste.
const fn lenient(alphabet: &'static alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

pub(crate) const STANDARD_LENIENT: GeneralPurpose = lenient(&alphabet::STANDARD);
pub(crate) const URL_SAFE_LENIENT: GeneralPurpose = lenient(&alphabet::URL_SAFE);

/// hex: even length, `[0-9a-fA-F]` only; base64: standard or URL-safe alphabet,
/// padded or not; utf8: bytes as-is. An empty result is an error.
pub fn decode_secret(text: &[u8], encoding: SecretEncoding) -> Result<Vec<u8>, KeyError> {
    let secret = match encoding {
        SecretEncoding::Utf8 => text.to_vec(),
        SecretEncoding::Hex => decode_hex(text)?,
        SecretEncoding::Base64 => {
            let url_safe = text.iter().any(|&b| b == b'-' || b == b'_');
            let engine = if url_safe {
                &URL_SAFE_LENIENT
            } else {
                &STANDARD_LENIENT
            };
            engine
                .decode(text)
                .map_err(|_| KeyError::new("invalid base64 in key"))?
        }
    };
    if secret.is_empty() {
        return Err(KeyError::new("empty secret key"));
    }
    Ok(secret)
}

fn decode_hex(text: &[u8]) -> Result<Vec<u8>, KeyError> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if text.len() % 2 != 0 {
        return Err(KeyError::new("hex key has an odd number of digits"));
    }
    text.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => match (nibble(*hi), nibble(*lo)) {
                (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
                _ => Err(KeyError::new("invalid hex in key")),
            },
            _ => Err(KeyError::new("invalid hex in key")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name("hs256"), None);
        assert_eq!(Algorithm::from_name("EDDSA"), None);
        assert_eq!(Algorithm::from_name(""), None);
        assert_eq!(Algorithm::from_name("HS256 "), None);
        let hmac: Vec<_> = Algorithm::ALL.into_iter().filter(|a| a.is_hmac()).collect();
        assert_eq!(hmac, [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]);
    }

    #[test]
    fn secret_encoding_names() {
        assert_eq!(SecretEncoding::from_name("HEX"), Some(SecretEncoding::Hex));
        assert_eq!(
            SecretEncoding::from_name("Utf8"),
            Some(SecretEncoding::Utf8)
        );
        assert_eq!(
            SecretEncoding::from_name("base64"),
            Some(SecretEncoding::Base64)
        );
        assert_eq!(SecretEncoding::from_name("utf-8"), None);
        assert_eq!(SecretEncoding::from_name("base64url"), None);
    }

    #[test]
    fn hex_secrets() {
        assert_eq!(
            decode_secret(b"00ffA0", SecretEncoding::Hex).unwrap(),
            [0, 255, 160]
        );
        assert_eq!(
            decode_secret(b"abc", SecretEncoding::Hex).unwrap_err().0,
            "hex key has an odd number of digits"
        );
        assert_eq!(
            decode_secret(b"zz", SecretEncoding::Hex).unwrap_err().0,
            "invalid hex in key"
        );
        assert_eq!(
            decode_secret(b"0x00", SecretEncoding::Hex).unwrap_err().0,
            "invalid hex in key"
        );
        assert_eq!(
            decode_secret(b"", SecretEncoding::Hex).unwrap_err().0,
            "empty secret key"
        );
    }

    #[test]
    fn base64_secrets() {
        for text in ["+/8=", "+/8", "-_8", "-_8="] {
            assert_eq!(
                decode_secret(text.as_bytes(), SecretEncoding::Base64).unwrap(),
                [0xfb, 0xff],
                "{text}"
            );
        }
        assert!(decode_secret(b"+_8", SecretEncoding::Base64).is_err());
        assert!(decode_secret(b"a b=", SecretEncoding::Base64).is_err());
        assert!(decode_secret(b"+/9", SecretEncoding::Base64).is_err()); // trailing bits
        assert!(decode_secret(b"", SecretEncoding::Base64).is_err());
    }

    #[test]
    fn utf8_secrets() {
        assert_eq!(
            decode_secret("s\u{e9}cret".as_bytes(), SecretEncoding::Utf8).unwrap(),
            "s\u{e9}cret".as_bytes()
        );
        assert!(decode_secret(b"", SecretEncoding::Utf8).is_err());
    }
}
