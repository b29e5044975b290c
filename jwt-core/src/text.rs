use std::fmt::Write as _;

/// RFC 3986 component encoding: keeps ALPHA / DIGIT / "-" / "." / "_" / "~",
/// writes `%XX` (uppercase) for every other byte.
pub fn percent_encode_component(input: &[u8], out: &mut String) {
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// For a quoted-string header parameter (realm, error_description): backslash-escapes
/// `"` and `\`, drops control characters (a CR/LF would split the header).
pub fn quote_param(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A URL fit for a `Location` header: bytes that cannot stand in a URI (controls, space, DEL,
/// non-ASCII, and `"<>\^`{|}`) percent-encoded, the rest (RFC 3986's unreserved and reserved
/// characters, and `%`) as it is. A CR or LF from a variable can then never end the header.
pub fn safe_url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Maximum number of characters of a token-supplied string quoted in a message.
const QUOTE_MAX_CHARS: usize = 64;

/// Quotes a string that came from a token or a key file for an error message:
/// truncated, with quotes, backslashes and non-printable characters escaped so
/// that a log line cannot be forged or split.
pub(crate) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(QUOTE_MAX_CHARS) + 2);
    out.push('"');
    let mut chars = value.chars();
    for c in chars.by_ref().take(QUOTE_MAX_CHARS) {
        if c.is_ascii_graphic() || c == ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else if c.is_ascii() || c.is_control() || c.is_whitespace() || is_invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}

// Characters that render as nothing or reorder text: escaped so a quoted value
// shows what it really holds.
fn is_invisible(c: char) -> bool {
    matches!(u32::from(c), 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(input: &[u8]) -> String {
        let mut out = String::new();
        percent_encode_component(input, &mut out);
        out
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(enc(b""), "");
        assert_eq!(enc(b"AZaz09-._~"), "AZaz09-._~");
        assert_eq!(enc(b"a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(enc(b"\x00\xff\n%+"), "%00%FF%0A%25%2B");
        assert_eq!(enc("\u{e9}".as_bytes()), "%C3%A9");
        let mut out = String::from("x=");
        percent_encode_component(b"!", &mut out);
        assert_eq!(out, "x=%21");
    }

    #[test]
    fn quoting_params() {
        assert_eq!(quote_param("plain realm"), "plain realm");
        assert_eq!(quote_param(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(quote_param("a\r\nb\tc\x7f\u{85}d"), "abcd");
        assert_eq!(quote_param("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn urls_for_location() {
        assert_eq!(
            safe_url(b"https://e.com/a?b=c&d=%41"),
            "https://e.com/a?b=c&d=%41"
        );
        assert_eq!(
            safe_url(b"/x\r\nSet-Cookie: a=b"),
            "/x%0D%0ASet-Cookie:%20a=b"
        );
        assert_eq!(
            safe_url("/caf\u{e9}\u{7f}\t".as_bytes()),
            "/caf%C3%A9%7F%09"
        );
    }

    #[test]
    fn quoting_values_for_messages() {
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("a\"b\\"), r#""a\"b\\""#);
        assert_eq!(quoted("a\nb\x00"), r#""a\u{a}b\u{0}""#);
        assert_eq!(quoted("caf\u{e9}\u{202e}"), "\"caf\u{e9}\\u{202e}\"");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("\"{}\"...", "x".repeat(64)));
        assert_eq!(quoted(&"x".repeat(64)), format!("\"{}\"", "x".repeat(64)));
    }
}
