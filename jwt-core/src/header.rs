//! A token's JOSE header: what verification reads from it.

use std::borrow::Cow;

use crate::alg::Algorithm;
use crate::error::{Error, Reason};
use crate::json::{self, Field};
use crate::text::quoted;

/// The members of a header that verification reads.
pub(crate) struct Header<'a> {
    pub alg: Algorithm,
    pub kid: Option<Cow<'a, str>>,
}

/// Reads a decoded header: a string `alg` this crate implements, an optional string `kid`, no
/// `crit` (no extension is understood, so a token that requires one is refused).
pub(crate) fn parse(json: &[u8]) -> Result<Header<'_>, Error> {
    let [alg, kid, crit] = json::scan_object(json, ["alg", "kid", "crit"])
        .map_err(|err| Error::new(Reason::Malformed, format!("header: {err}")))?;
    let alg_name = match &alg {
        Some(Field::Str(name)) => name.as_ref(),
        Some(_) => return Err(Error::new(Reason::Malformed, "header alg is not a string")),
        None => return Err(Error::new(Reason::Malformed, "header has no alg")),
    };
    let alg = match Algorithm::from_name(alg_name) {
        Some(alg) => alg,
        None if alg_name == "none" => {
            return Err(Error::new(
                Reason::Algorithm,
                "token alg \"none\" is refused",
            ))
        }
        None => {
            return Err(Error::new(
                Reason::Algorithm,
                format!("unsupported token alg {}", quoted(alg_name)),
            ))
        }
    };
    if crit.is_some() {
        return Err(Error::new(Reason::Malformed, "unsupported crit header"));
    }
    let kid = match kid {
        None => None,
        Some(Field::Str(kid)) => Some(kid),
        Some(_) => return Err(Error::new(Reason::Malformed, "header kid is not a string")),
    };
    Ok(Header { alg, kid })
}
