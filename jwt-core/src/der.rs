//! A small strict DER reader and writer: just what SubjectPublicKeyInfo and
//! PKCS#1 RSAPublicKey need. Every length is checked against what is left, so
//! a truncated or hostile key file gives an error, never a panic.

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError(pub &'static str);

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element with the given tag and returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        let (&actual, rest) = self.rest.split_first().ok_or(DerError("truncated DER"))?;
        if actual != tag {
            return Err(DerError("unexpected DER tag"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError("truncated DER"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form: DER demands the shortest encoding, and nothing in a
            // public key needs more than four length bytes.
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(DerError("indefinite DER length"));
            }
            if count > 4 {
                return Err(DerError("DER length too large"));
            }
            let (bytes, after) = rest
                .split_at_checked(count)
                .ok_or(DerError("truncated DER"))?;
            rest = after;
            if bytes.first() == Some(&0) {
                return Err(DerError("non-minimal DER length"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(DerError("non-minimal DER length"));
            }
            len
        };
        let (content, after) = rest
            .split_at_checked(len)
            .ok_or(DerError("truncated DER"))?;
        self.rest = after;
        Ok(content)
    }

    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError("trailing data after DER"))
        }
    }
}

/// Checks a DER INTEGER's contents for a positive, minimally encoded value and
/// returns its magnitude without the sign byte.
pub(crate) fn positive_integer(content: &[u8]) -> Result<&[u8], DerError> {
    match content {
        [] => Err(DerError("empty DER integer")),
        [0, next, ..] if *next < 0x80 => Err(DerError("non-minimal DER integer")),
        [first, ..] if *first >= 0x80 => Err(DerError("negative DER integer")),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(content),
    }
}

/// Bit length of an unsigned big-endian magnitude.
pub(crate) fn bit_length(magnitude: &[u8]) -> usize {
    let mut bytes = magnitude.iter().skip_while(|&&b| b == 0);
    match bytes.next() {
        None => 0,
        Some(&first) => {
            let rest = bytes.count();
            rest.saturating_mul(8)
                .saturating_add(8 - first.leading_zeros() as usize)
        }
    }
}

/// Renders an OID in dotted form for messages; None when malformed.
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut pending = false;
    for &b in content {
        if !pending && b == 0x80 {
            return None;
        }
        value = value.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        pending = b & 0x80 != 0;
        if !pending {
            if arcs.is_empty() {
                let (first, second) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if pending || arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn write_element(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(&significant);
    }
    out.extend_from_slice(content);
}

fn write_positive_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    match trimmed.first() {
        None => content.push(0),
        Some(&first) => {
            if first >= 0x80 {
                content.push(0);
            }
            content.extend_from_slice(&trimmed);
        }
    }
    write_element(out, TAG_INTEGER, &content);
}

/// PKCS#1 RSAPublicKey DER, the form ring verifies with.
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    write_positive_integer(&mut body, n);
    write_positive_integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 8);
    write_element(&mut out, TAG_SEQUENCE, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x02, 0x01, 0x05, 0x05, 0x00]);
        assert_eq!(r.read(TAG_INTEGER).unwrap(), [5]);
        assert_eq!(r.peek_tag(), Some(TAG_NULL));
        assert_eq!(r.read(TAG_NULL).unwrap(), [] as [u8; 0]);
        assert!(r.finish().is_ok());

        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        assert_eq!(Reader::new(&long).read(0x04).unwrap().len(), 0x80);
        let mut long2 = vec![0x04, 0x82, 0x01, 0x00];
        long2.extend([7u8; 0x100]);
        assert_eq!(Reader::new(&long2).read(0x04).unwrap().len(), 0x100);
    }

    #[test]
    fn rejects_bad_encodings() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "truncated DER"),
            (&[0x02], "truncated DER"),
            (&[0x03, 0x01, 0x00], "unexpected DER tag"),
            (&[0x02, 0x02, 0x00], "truncated DER"),
            (&[0x02, 0x80], "indefinite DER length"),
            (&[0x02, 0x85, 1, 1, 1, 1, 1], "DER length too large"),
            (&[0x02, 0x81, 0x05, 0, 0, 0, 0, 0], "non-minimal DER length"),
            (&[0x02, 0x82, 0x00, 0x80], "non-minimal DER length"),
            (&[0x02, 0x82, 0x01], "truncated DER"),
            (&[0x02, 0x84, 0xff, 0xff, 0xff, 0xff], "truncated DER"),
        ];
        for (input, message) in cases {
            assert_eq!(
                Reader::new(input).read(TAG_INTEGER).unwrap_err().0,
                *message,
                "{input:?}"
            );
        }
        let mut r = Reader::new(&[0x05, 0x00, 0x00]);
        r.read(TAG_NULL).unwrap();
        assert_eq!(r.finish().unwrap_err().0, "trailing data after DER");
    }

    #[test]
    fn integers() {
        assert_eq!(positive_integer(&[0x00, 0x80]).unwrap(), [0x80]);
        assert_eq!(positive_integer(&[0x7f]).unwrap(), [0x7f]);
        assert_eq!(positive_integer(&[0x00]).unwrap(), [] as [u8; 0]);
        assert!(positive_integer(&[]).is_err());
        assert!(positive_integer(&[0x00, 0x7f]).is_err());
        assert!(positive_integer(&[0x80]).is_err());
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f; 256]), 2047);
    }

    #[test]
    fn oids() {
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]).unwrap(),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(oid_to_string(&[0x2b, 0x65, 0x70]).unwrap(), "1.3.101.112");
        assert_eq!(oid_to_string(&[0x2b, 0x86]), None);
        assert_eq!(oid_to_string(&[0x80, 0x01]), None);
        assert_eq!(oid_to_string(&[]), None);
        assert_eq!(oid_to_string(&[0xff; 20]), None);
    }

    #[test]
    fn writes_rsa_public_key() {
        let der = rsa_public_key(&[0, 0, 0x80, 1], &[1, 0, 1]);
        assert_eq!(
            der,
            [0x30, 0x0a, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01]
        );
        let big = rsa_public_key(&[0xc0; 256], &[3]);
        assert_eq!(&big[..4], &[0x30, 0x82, 0x01, 0x08]);
        let mut r = Reader::new(&big);
        let mut seq = Reader::new(r.read(TAG_SEQUENCE).unwrap());
        assert_eq!(
            positive_integer(seq.read(TAG_INTEGER).unwrap()).unwrap(),
            [0xc0; 256]
        );
        assert_eq!(
            positive_integer(seq.read(TAG_INTEGER).unwrap()).unwrap(),
            [3]
        );
        assert!(seq.finish().is_ok());
        assert!(r.finish().is_ok());
    }
}
