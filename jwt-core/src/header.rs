//! A token's JOSE header: what verification reads from it, and the last one a thread read.
//!
//! An issuer puts the same header on every token it signs (`{"alg":"RS256","typ":"JWT"}`, the
//! same `kid` until it rotates), so a token never seen before almost always carries a header
//! seen a moment ago. Decoding and scanning it again took about 0.5 µs of a never-seen RS256
//! token's time in nginx (clock laps around it), on caches the previous request had emptied;
//! keeping it took the module from 1.111× to 1.103× its in-worker RSA check (medians of 12
//! alternated rounds of timing builds). The last header read is kept,
//! keyed by its exact base64url text, with what reading that text gave: reusing it answers
//! exactly what reading it again would. Only headers that passed are kept, and what they say
//! of keys is matched against the key set afresh each time.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

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

/// Longest header kept, as base64url text and decoded: room for an `alg`, a `typ` and a
/// `kid` of some 80 characters.
const MEMO_B64: usize = 192;
const MEMO_JSON: usize = MEMO_B64 / 4 * 3;

/// The last header read in full, inline: keeping it allocates nothing.
struct Memo {
    b64: [u8; MEMO_B64],
    b64_len: usize,
    json: [u8; MEMO_JSON],
    json_len: usize,
    alg: Algorithm,
    /// Where `kid` sits in `json`.
    kid: Option<Range<usize>>,
}

thread_local! {
    // Empty until a header is kept: a header segment is never empty.
    static LAST: RefCell<Memo> = const {
        RefCell::new(Memo {
            b64: [0; MEMO_B64],
            b64_len: 0,
            json: [0; MEMO_JSON],
            json_len: 0,
            alg: Algorithm::HS256,
            kid: None,
        })
    };
}

/// The header `b64` encodes, when it is the last one kept: its JSON copied into `buf`, and
/// where in it the `kid` is.
pub(crate) fn recall(
    b64: &[u8],
    buf: &mut [u8],
) -> Option<(usize, Algorithm, Option<Range<usize>>)> {
    LAST.try_with(|last| {
        let last = last.try_borrow().ok()?;
        if last.b64.get(..last.b64_len)? != b64 {
            return None;
        }
        let json = last.json.get(..last.json_len)?;
        buf.get_mut(..json.len())?.copy_from_slice(json);
        Some((json.len(), last.alg, last.kid.clone()))
    })
    .ok()
    .flatten()
}

/// Keeps `header`, read from `json`, decoded from `b64`, for the next token's `recall`.
pub(crate) fn remember(b64: &[u8], json: &[u8], header: &Header) {
    if b64.len() > MEMO_B64 || json.len() > MEMO_JSON {
        return;
    }
    // A kid without escapes borrows from `json`; one with escapes is decoded elsewhere and
    // the header is not kept (`recall` hands back a slice of the JSON).
    let kid = match &header.kid {
        None => None,
        Some(Cow::Borrowed(kid)) => {
            let start = (kid.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
            let range = start..start.saturating_add(kid.len());
            if json.get(range.clone()) != Some(kid.as_bytes()) {
                return;
            }
            Some(range)
        }
        Some(Cow::Owned(_)) => return,
    };
    let _ = LAST.try_with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return;
        };
        let last = &mut *last;
        match (
            last.b64.get_mut(..b64.len()),
            last.json.get_mut(..json.len()),
        ) {
            (Some(b64_to), Some(json_to)) => {
                b64_to.copy_from_slice(b64);
                json_to.copy_from_slice(json);
            }
            _ => return,
        }
        last.b64_len = b64.len();
        last.json_len = json.len();
        last.alg = header.alg;
        last.kid = kid;
    });
}
