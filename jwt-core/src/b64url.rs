//! base64url without padding, the spelling of a compact JWS's three segments (RFC 7515 §2).
//!
//! Strict, so that one token has one spelling: no padding, no `+` or `/`, no length of the
//! form 4n+1, no non-zero bits left over in the last character. Those are the rules of the
//! `base64` crate's `URL_SAFE_NO_PAD`, and the property tests below hold this decoder to that
//! crate's answers. It exists for the request path: a token that misses the cache has some
//! 500 characters decoded here, and where that crate checks each character as it goes, this
//! looks up eight, merges them into one word and checks them all at once.

/// What the table holds for a byte outside the alphabet: its high bit marks the failure.
const INVALID: u8 = 0xFF;

static DECODE: [u8; 256] = decode_table();

// Evaluated while compiling: an index out of range would fail the build, not a request.
#[allow(clippy::indexing_slicing)]
const fn decode_table() -> [u8; 256] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
}

fn value(c: u8) -> u8 {
    // A u8 always indexes a 256-entry table: the fallback is never taken.
    DECODE.get(usize::from(c)).copied().unwrap_or(INVALID)
}

/// How many bytes `len` characters decode to; `None` for a length no encoding has (4n+1).
pub(crate) fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        rest => Some(len / 4 * 3 + rest.saturating_sub(1)),
    }
}

/// Decodes `input` into the start of `out`, returning how many bytes it wrote; `None` when
/// `input` is not strict base64url or `out` is too short.
pub(crate) fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    // Every group of 8 characters is 6 bytes, and the remainders match: 8n + r characters
    // (r < 8) are 6n bytes and fewer than 6 more.
    let mut src = input.chunks_exact(8);
    let mut dst = out.chunks_exact_mut(6);
    let mut bad = 0;
    for (group, bytes) in (&mut src).zip(&mut dst) {
        let mut word = 0u64;
        for &c in group {
            let v = value(c);
            bad |= v;
            word = word << 6 | u64::from(v);
        }
        let [_, _, six @ ..] = word.to_be_bytes();
        bytes.copy_from_slice(&six);
    }
    let rest = src.remainder();
    let mut word = 0u64;
    for &c in rest {
        let v = value(c);
        bad |= v;
        word = word << 6 | u64::from(v & 0x3F);
    }
    // 2, 3, 6 or 7 characters leave 4 or 2 bits over, which a canonical encoding zeroes.
    let spare = rest.len() * 6 % 8;
    if word & ((1 << spare) - 1) != 0 || bad & 0x80 != 0 {
        return None;
    }
    let tail = dst.into_remainder();
    let bytes = (word >> spare).to_be_bytes();
    tail.copy_from_slice(bytes.get(bytes.len().checked_sub(tail.len())?..)?);
    Some(len)
}

/// Decodes `input` onto the end of `out`; `None` (and `out` as it was) when `input` is not
/// strict base64url.
pub(crate) fn decode_append(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    out.resize(start.checked_add(decoded_len(input.len())?)?, 0);
    let decoded = out.get_mut(start..).and_then(|tail| decode(input, tail));
    if decoded.is_none() {
        out.truncate(start);
    }
    decoded.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn ours(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode_append(input, &mut out).map(|()| out)
    }

    fn reference(input: &[u8]) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(input).ok()
    }

    /// Characters that matter: each end of each range, the two URL-safe ones, their standard
    /// counterparts, padding, the JWS separator, and bytes outside ASCII.
    const EDGES: &[u8] = b"AQZagz09-_+/=. \x00\x80\xff";

    #[test]
    fn agrees_with_the_base64_crate_on_every_short_input() {
        let mut input = Vec::new();
        for len in 0..=5u32 {
            for n in 0..EDGES.len().pow(len) {
                input.clear();
                let mut k = n;
                for _ in 0..len {
                    input.push(EDGES[k % EDGES.len()]);
                    k /= EDGES.len();
                }
                assert_eq!(ours(&input), reference(&input), "{input:?}");
            }
        }
    }

    #[test]
    fn refuses_what_a_token_may_not_spell() {
        for bad in [
            &b"QQ=="[..],
            b"QQ=",
            b"+/8",
            b"QR",
            b"QUF",
            b"Q",
            b"QUFBQ",
            b"QU.B",
        ] {
            assert_eq!(ours(bad), None, "{bad:?}");
        }
        assert_eq!(ours(b"QUI").as_deref(), Some(&b"AB"[..]));
        assert_eq!(ours(b"").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn leaves_the_vector_as_it_was_on_failure() {
        let mut out = b"kept".to_vec();
        assert_eq!(decode_append(b"QUFB!UFB", &mut out), None);
        assert_eq!(out, b"kept");
        assert_eq!(decode_append(b"QUFBQUFB", &mut out), Some(()));
        assert_eq!(out, b"keptAAAAAA");
    }

    #[test]
    fn needs_room_for_all_it_decodes() {
        let mut out = [0u8; 5];
        assert_eq!(decode(b"QUFBQUFB", &mut out), None);
        let mut out = [0u8; 7];
        assert_eq!(decode(b"QUFBQUFB", &mut out), Some(6));
        assert_eq!(&out[..6], b"AAAAAA");
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate_on_encodings(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = URL_SAFE_NO_PAD.encode(&data);
            prop_assert_eq!(ours(text.as_bytes()), Some(data));
        }

        #[test]
        fn agrees_with_the_base64_crate_on_anything(
            input in proptest::collection::vec(proptest::sample::select(EDGES.to_vec()), 0..40),
        ) {
            prop_assert_eq!(ours(&input), reference(&input));
        }

        #[test]
        fn agrees_with_the_base64_crate_on_one_changed_byte(
            data in proptest::collection::vec(any::<u8>(), 1..300),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut text = URL_SAFE_NO_PAD.encode(&data).into_bytes();
            let i = at.index(text.len());
            text[i] = byte;
            prop_assert_eq!(ours(&text), reference(&text));
        }
    }
}
