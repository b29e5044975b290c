//! JSON parsing that refuses duplicate object keys.
//!
//! serde_json keeps the last of two equal keys, while other JWT libraries keep
//! the first: a token `{"alg":"HS256","alg":"none"}` would then mean different
//! things to different readers. Such input is refused at every nesting level.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::text::quoted;

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    quoted(&key)
                )));
            }
            let Strict(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses one JSON document, refusing duplicate keys anywhere in it. The error
/// is a short description that never repeats the input, apart from a duplicate
/// key's name (quoted and escaped).
pub(crate) fn parse(input: &[u8]) -> Result<Value, String> {
    // serde_json's recursion limit applies to deserialize_any too, so deep
    // nesting is an error rather than a stack overflow.
    serde_json::from_slice::<Strict>(input)
        .map(|Strict(value)| value)
        .map_err(|err| describe(&err))
}

fn describe(err: &serde_json::Error) -> String {
    match err.classify() {
        // Every JSON type is accepted by the visitors, so data errors can
        // only be ours (duplicate key, out-of-range number).
        serde_json::error::Category::Data => err.to_string(),
        serde_json::error::Category::Eof => "truncated JSON".to_owned(),
        _ => format!(
            "invalid JSON at line {} column {}",
            err.line(),
            err.column()
        ),
    }
}

/// Like `parse`, for documents that must be a JSON object.
pub(crate) fn parse_object(input: &[u8]) -> Result<Map<String, Value>, String> {
    match parse(input)? {
        Value::Object(map) => Ok(map),
        _ => Err("not a JSON object".to_owned()),
    }
}

/// A top-level member read by `scan_object`. Strings borrow from the input unless they hold
/// escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    /// An array of strings only.
    Strs(Vec<Cow<'a, str>>),
    /// An array holding something else than a string.
    Mixed,
    /// null, a bool or an object.
    Other,
}

/// Checks `input` exactly as `parse_object` does (same errors, in the same order) and
/// returns the top-level members named in `names`, at the same positions; it builds nothing
/// else, so a token's header and claims are checked without a map or a string per member.
pub(crate) fn scan_object<'a, const N: usize>(
    input: &'a [u8],
    names: [&str; N],
) -> Result<[Option<Field<'a>>; N], String> {
    let mut found = [const { None }; N];
    match scan_flat(input, &names, &mut found) {
        Some(()) => Ok(found),
        None => scan_any(input, names),
    }
}

/// `scan_object` through serde_json: any document.
fn scan_any<'a, const N: usize>(
    input: &'a [u8],
    names: [&str; N],
) -> Result<[Option<Field<'a>>; N], String> {
    let mut found = [const { None }; N];
    let mut de = serde_json::Deserializer::from_slice(input);
    let is_object = TopLevel {
        names: &names,
        found: &mut found,
    }
    .deserialize(&mut de)
    .and_then(|is_object| de.end().map(|()| is_object))
    .map_err(|err| describe(&err))?;
    if is_object {
        Ok(found)
    } else {
        Err("not a JSON object".to_owned())
    }
}

/// Bytes a string can hold and still be read by `scan_flat`: printable ASCII but `"` and `\\`.
static PLAIN: [bool; 256] = plain_table();

// Evaluated while compiling: an index out of range would fail the build, not a request.
#[allow(clippy::indexing_slicing)]
const fn plain_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    table
}

/// `scan_object` for what most tokens' header and claims are: one object of at most 16
/// members, its keys and strings printable ASCII without escapes, its numbers integers of at
/// most 18 digits, its other values `true`, `false` and `null`.
///
/// `None` for anything else, valid or not: `scan_any` then reads it, so that the errors, and
/// what counts as one, stay serde_json's. This only ever answers for valid JSON, and then what
/// `scan_any` would, which the property tests below check against serde_json. It exists
/// because nearly every token's header and claims have this shape, which needs none of a
/// general parser's work.
///
/// Not generic over the number of names: the header's scan and the payload's share one copy of
/// this code, which a never-seen token runs on either side of its signature check.
fn scan_flat<'a>(input: &'a [u8], names: &[&str], found: &mut [Option<Field<'a>>]) -> Option<()> {
    let mut keys: [&[u8]; 16] = [b""; 16];
    // Checked once here, so that each string is a slice of text already known to be UTF-8.
    let mut text = Flat {
        input: std::str::from_utf8(input).ok()?,
        at: 0,
    };
    text.skip_space();
    text.eat(b'{')?;
    text.skip_space();
    if text.eat(b'}').is_none() {
        for n in 0.. {
            text.eat(b'"')?;
            let key = text.string()?;
            if keys.get(..n)?.contains(&key.as_bytes()) {
                return None;
            }
            *keys.get_mut(n)? = key.as_bytes();
            text.skip_space();
            text.eat(b':')?;
            text.skip_space();
            let value = text.value()?;
            if let Some(slot) = names.iter().position(|name| *name == key) {
                *found.get_mut(slot)? = Some(value);
            }
            text.skip_space();
            if text.eat(b'}').is_some() {
                break;
            }
            text.eat(b',')?;
            text.skip_space();
        }
    }
    text.skip_space();
    (text.at == input.len()).then_some(())
}

/// A position in the text `scan_flat` reads.
struct Flat<'a> {
    input: &'a str,
    at: usize,
}

impl<'a> Flat<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The rest of a string whose opening quote was read.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let rest = self.input.as_bytes().get(start..)?;
        let plain = |b: &u8| PLAIN.get(usize::from(*b)).copied().unwrap_or(false);
        let len = rest.iter().position(|b| !plain(b))?;
        (rest.get(len) == Some(&b'"')).then_some(())?;
        self.at = start + len + 1;
        self.input.get(start..start + len)
    }

    fn value(&mut self) -> Option<Field<'a>> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string().map(|s| Field::Str(Cow::Borrowed(s)))
            }
            b'-' | b'0'..=b'9' => self.integer().map(Field::Num),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => None,
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<Field<'a>> {
        let end = self.at.checked_add(word.len())?;
        (self.input.as_bytes().get(self.at..end)? == word).then_some(())?;
        self.at = end;
        Some(Field::Other)
    }

    /// As serde_json reads it: a positive integer as a u64, a negative one as an i64. `-0`,
    /// a fraction or an exponent make a float, and a leading zero an error: all left to it.
    fn integer(&mut self) -> Option<Number> {
        let negative = self.eat(b'-').is_some();
        let rest = self.input.as_bytes().get(self.at..)?;
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let digits = rest.get(..len)?;
        if len == 0 || len > 18 || digits.first() == Some(&b'0') && (len > 1 || negative) {
            return None;
        }
        self.at += len;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some(if negative {
            Number::from(-i64::try_from(value).ok()?)
        } else {
            Number::from(value)
        })
    }
}

/// The keys of one object so far: on the stack while there are few, in a tree past that
/// (a 16 KB token could hold thousands, and a linear search per key would be quadratic).
struct Seen<'a> {
    few: [Cow<'a, str>; 16],
    len: usize,
    many: BTreeSet<Cow<'a, str>>,
}

impl<'a> Seen<'a> {
    fn new() -> Seen<'a> {
        Seen {
            few: [const { Cow::Borrowed("") }; 16],
            len: 0,
            many: BTreeSet::new(),
        }
    }

    /// Adds `key`, or fails as `parse` does when the object already has it.
    fn add<E: de::Error>(&mut self, key: Cow<'a, str>) -> Result<(), E> {
        let few = self.few.get(..self.len).unwrap_or_default();
        if few.contains(&key) || self.many.contains(&key) {
            return Err(E::custom(format_args!("duplicate key {}", quoted(&key))));
        }
        match self.few.get_mut(self.len) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
            }
            None => {
                self.many.insert(key);
            }
        }
        Ok(())
    }
}

/// An object key, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Walks any value, refusing duplicate keys at every depth; builds nothing.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        finite(v).map(|_| ())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<(), A::Error> {
        walk_object(access, &[], &mut [])
    }
}

/// Walks an object's members, refusing a duplicate key; the value of a member named in
/// `names` is kept in `found` at the same position, the others are only checked.
fn walk_object<'a, A: MapAccess<'a>>(
    mut access: A,
    names: &[&str],
    found: &mut [Option<Field<'a>>],
) -> Result<(), A::Error> {
    let mut seen = Seen::new();
    while let Some(key) = access.next_key_seed(Key)? {
        let slot = names
            .iter()
            .position(|name| *name == key)
            .and_then(|i| found.get_mut(i));
        seen.add(key)?;
        match slot {
            Some(slot) => *slot = Some(access.next_value_seed(FieldSeed)?),
            None => access.next_value_seed(Check)?,
        }
    }
    Ok(())
}

fn finite<E: de::Error>(v: f64) -> Result<Number, E> {
    Number::from_f64(v).ok_or_else(|| E::custom("number out of range"))
}

/// The document: an object whose named members are kept (`true`), or any other value,
/// walked all the same so that its errors come first (`false`).
struct TopLevel<'n, 'a, const N: usize> {
    names: &'n [&'n str; N],
    found: &'n mut [Option<Field<'a>>; N],
}

impl<'a, const N: usize> DeserializeSeed<'a> for TopLevel<'_, 'a, N> {
    type Value = bool;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a, const N: usize> Visitor<'a> for TopLevel<'_, 'a, N> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        finite(v).map(|_| false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<bool, A::Error> {
        Check.visit_seq(seq).map(|()| false)
    }

    fn visit_map<A: MapAccess<'a>>(self, access: A) -> Result<bool, A::Error> {
        walk_object(access, self.names, self.found).map(|()| true)
    }
}

/// A named member's value.
struct FieldSeed;

impl<'a> DeserializeSeed<'a> for FieldSeed {
    type Value = Field<'a>;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Field<'a>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for FieldSeed {
    type Value = Field<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field<'a>, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field<'a>, E> {
        Ok(Field::Num(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<'a>, E> {
        Ok(Field::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field<'a>, E> {
        finite(v).map(Field::Num)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<'a>, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Field<'a>, A::Error> {
        let mut strings = Some(Vec::new());
        while let Some(item) = seq.next_element_seed(FieldSeed)? {
            match (item, &mut strings) {
                (Field::Str(s), Some(list)) => list.push(s),
                _ => strings = None,
            }
        }
        Ok(strings.map_or(Field::Mixed, Field::Strs))
    }

    fn visit_map<A: MapAccess<'a>>(self, access: A) -> Result<Field<'a>, A::Error> {
        Check.visit_map(access).map(|()| Field::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scan_flat` with its answer returned, as `scan_object` gets it.
    fn flat<'a, const N: usize>(
        input: &'a [u8],
        names: [&str; N],
    ) -> Option<[Option<Field<'a>>; N]> {
        let mut found = [const { None }; N];
        scan_flat(input, &names, &mut found).map(|()| found)
    }

    #[test]
    fn parses_every_type() {
        let value =
            parse(br#"{"a":[1,-2,3.5,true,false,null,"s",{"b":{}}],"c":18446744073709551615}"#)
                .unwrap();
        let expected: Value = serde_json::from_str(
            r#"{"a":[1,-2,3.5,true,false,null,"s",{"b":{}}],"c":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(value, expected);
        assert_eq!(parse(b"1e300").unwrap(), serde_json::json!(1e300));
    }

    #[test]
    fn refuses_duplicates_everywhere() {
        let err = parse(br#"{"alg":"HS256","alg":"none"}"#).unwrap_err();
        assert!(err.starts_with("duplicate key \"alg\""), "{err}");
        assert!(parse(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse(br#"[{"b":1},{"c":[{"d":1,"d":1}]}]"#).is_err());
        // The same key written with an escape is still the same key.
        assert!(parse(br#"{"alg":1,"\u0061lg":2}"#).is_err());
        // Equal keys in sibling objects are fine.
        assert!(parse(br#"[{"a":1},{"a":1}]"#).is_ok());
    }

    #[test]
    fn errors_do_not_echo_input() {
        let err = parse(b"{\"secret\": tru}").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(parse(b"{\"a\":").unwrap_err(), "truncated JSON");
        assert!(parse(b"{} x").is_err());
        assert!(parse(b"1e400").is_err());
        assert!(parse(b"\"\xff\"").is_err());
        assert_eq!(parse_object(b"[1]").unwrap_err(), "not a JSON object");
    }

    /// What `scan_object` must return, derived from `parse_object`.
    fn scanned_by_parse<const N: usize>(
        input: &[u8],
        names: [&str; N],
    ) -> Result<[Option<Field<'static>>; N], String> {
        fn field(value: &Value) -> Field<'static> {
            match value {
                Value::String(s) => Field::Str(Cow::Owned(s.clone())),
                Value::Number(n) => Field::Num(n.clone()),
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map(|s| Cow::Owned(s.to_owned())))
                    .collect::<Option<Vec<_>>>()
                    .map_or(Field::Mixed, Field::Strs),
                _ => Field::Other,
            }
        }
        let map = parse_object(input)?;
        Ok(names.map(|name| map.get(name).map(field)))
    }

    #[test]
    fn scan_agrees_with_parse() {
        let mut many = (0..40).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>();
        let wide = format!("{{{}}}", many.join(","));
        many.push("\"k3\":0".to_owned());
        let wide_dup_early = format!("{{{}}}", many.join(","));
        many.pop();
        many.push("\"k30\":0".to_owned());
        let wide_dup_late = format!("{{{}}}", many.join(","));
        let inputs: Vec<&[u8]> = vec![
            br#"{"alg":"HS256","typ":"JWT"}"#,
            br#"{"alg":"HS256","kid":"k\u0031","crit":["b64"]}"#,
            br#"{"exp":1,"nbf":2.5,"iss":"i","aud":["a","b"],"sub":"s","x":{"y":[1,{}]}}"#,
            br#"{"aud":[],"sub":null,"iss":true,"exp":"1","nbf":{"a":1}}"#,
            br#"{"aud":["a",1],"exp":18446744073709551615,"nbf":-9223372036854775808}"#,
            br#"{"aud":[["a"]],"sub":"\ud83d\ude00","iss":"\"q\""}"#,
            br#"{"alg":"HS256","alg":"none"}"#,
            br#"{"alg":1,"\u0061lg":2}"#,
            br#"{"a":{"b":1,"b":2}}"#,
            br#"{"aud":[{"b":1,"b":2}]}"#,
            br#"{"exp":{"b":1,"b":2}}"#,
            br#"[{"b":1},{"c":[{"d":1,"d":1}]}]"#,
            br#"[1]"#,
            b"1e300",
            b"1e400",
            br#"{"exp":1e400}"#,
            b"{\"secret\": tru}",
            b"{\"a\":",
            b"{} x",
            b"\"\xff\"",
            b"{\"sub\":\"\xff\"}",
            b"",
            b"  {}  ",
            wide.as_bytes(),
            wide_dup_early.as_bytes(),
            wide_dup_late.as_bytes(),
        ];
        let names = [
            "alg", "kid", "crit", "exp", "nbf", "iss", "aud", "sub", "k35",
        ];
        for input in inputs {
            assert_eq!(
                scan_object(input, names),
                scanned_by_parse(input, names),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// Objects with members from a small set of names (so duplicates are frequent), some
    /// written with an escape, and values of every kind; then the same text cut short.
    fn object_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let name = prop::sample::select(vec![
            "exp",
            "nbf",
            "aud",
            "sub",
            "a",
            "\\u0061",
            "s\\u0075b",
        ]);
        let leaf = prop::sample::select(vec![
            "1",
            "-2",
            "3.5",
            "1e400",
            "18446744073709551616",
            "true",
            "null",
            "\"x\"",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            "{}",
            "[]",
        ]);
        let value = prop_oneof![
            leaf.clone().prop_map(str::to_owned),
            prop::collection::vec(leaf.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((name.clone(), leaf), 0..4).prop_map(|m| {
                let members: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ];
        (
            prop::collection::vec((name, value), 0..24),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(members, cut)| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                let text = format!("{{{}}}", members.join(","));
                // One case in four is cut short.
                if cut.index(4) == 0 {
                    text.get(..cut.index(text.len() + 1))
                        .unwrap_or(&text)
                        .to_owned()
                } else {
                    text
                }
            })
    }

    proptest::proptest! {
        #[test]
        fn scan_agrees_with_parse_on_generated_objects(text in object_text()) {
            let names = ["exp", "nbf", "aud", "sub", "a"];
            proptest::prop_assert_eq!(
                scan_object(text.as_bytes(), names),
                scanned_by_parse(text.as_bytes(), names)
            );
        }
    }

    #[test]
    fn flat_text_is_read_without_serde_json() {
        let header = br#"{"alg":"RS256","typ":"JWT","kid":"k-1"}"#;
        let claims =
            b" {\"sub\" : \"bench\",\n\"exp\":1795463409,\"n\":-42,\"ok\":true,\"x\":null} ";
        let [alg, kid] = flat(header, ["alg", "kid"]).unwrap();
        assert_eq!(alg, Some(Field::Str(Cow::Borrowed("RS256"))));
        assert_eq!(kid, Some(Field::Str(Cow::Borrowed("k-1"))));
        let [sub, exp, n, ok, x] = flat(claims, ["sub", "exp", "n", "ok", "x"]).unwrap();
        assert_eq!(sub, Some(Field::Str(Cow::Borrowed("bench"))));
        assert_eq!(exp, Some(Field::Num(1_795_463_409u64.into())));
        assert_eq!(n, Some(Field::Num((-42i64).into())));
        assert_eq!((ok, x), (Some(Field::Other), Some(Field::Other)));
        assert_eq!(flat(b"{}", ["a"]), Some([None]));
    }

    #[test]
    fn flat_leaves_the_rest_to_serde_json() {
        let others: [&[u8]; 18] = [
            br#"{"a":1.5}"#,
            br#"{"a":1e3}"#,
            br#"{"a":-0}"#,
            br#"{"a":01}"#,
            br#"{"a":1234567890123456789}"#,
            br#"{"a":"\u0061"}"#,
            br#"{"a":[1]}"#,
            br#"{"a":{}}"#,
            br#"{"a":1,"a":2}"#,
            "{\"a\":\"\u{e9}\"}".as_bytes(),
            b"{\"a\":\"\x7f\"}",
            b"{\"a\":\"\t\"}",
            br#"{"a":tru}"#,
            br#"{"a":1,}"#,
            br#"{"a":1} x"#,
            br#"{"a" 1}"#,
            br#"[1]"#,
            b"",
        ];
        for text in others {
            assert_eq!(flat(text, ["a"]), None, "{}", String::from_utf8_lossy(text));
        }
        let wide = format!(
            "{{{}}}",
            (0..17)
                .map(|i| format!("\"k{i}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(flat(wide.as_bytes(), ["k0"]), None);
    }

    /// Flat-looking objects: members whose key, colon, value and comma are most often right,
    /// now and then at the edges of what `scan_flat` reads, or wrong.
    fn flat_text() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let pick = |good: Vec<&'static str>, odd: Vec<&'static str>| prop_oneof![12 => prop::sample::select(good), 1 => prop::sample::select(odd)];
        let key = pick(
            vec!["\"a\"", "\"b\"", "\"exp\"", "\"c d\"", "\"\""],
            vec!["\"x\\\"\"", "\"\\u0061\"", "\"\u{e9}\"", "a", "\"a"],
        );
        let colon = pick(vec![":", " : ", ":\n\t"], vec!["", "::"]);
        let value = pick(
            vec![
                "0",
                "7",
                "-7",
                "123456789012345678",
                "-123456789012345678",
                "true",
                "false",
                "null",
                "\"v\"",
                "\"\"",
                "\" ~!\"",
            ],
            vec![
                "-0",
                "01",
                "-01",
                "1.5",
                "2e3",
                "3E1",
                "1234567890123456789",
                "18446744073709551615",
                "tru",
                "nul",
                "truex",
                "\"\u{e9}\"",
                "\"\x7f\"",
                "\"\t\"",
                "\"\\n\"",
                "[]",
                "{}",
                "\"v",
                "-",
                "",
            ],
        );
        let comma = pick(vec![",", ", ", " ,\r\n"], vec!["", ",,"]);
        let member = (key, colon, value, comma).prop_map(|(k, c, v, s)| [k, c, v, s].concat());
        let end = pick(vec!["}", " } ", "}\n"], vec!["", "}}", "} x", ",}"]);
        (prop::collection::vec(member, 0..12), end, any::<bool>()).prop_map(
            |(members, end, space)| {
                let body = members.concat();
                // The last member's comma goes, but for an odd one out.
                let body = body.trim_end_matches([',', ' ', '\r', '\n']);
                let start = if space { " {" } else { "{" };
                [start, body, end].concat().into_bytes()
            },
        )
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn flat_answers_only_as_serde_json_would(text in flat_text()) {
            let names = ["a", "b", "exp", ""];
            if let Some(found) = flat(&text, names) {
                proptest::prop_assert_eq!(Ok(found), scan_any(&text, names));
            }
        }

        #[test]
        fn flat_answers_for_flat_objects(
            members in proptest::collection::vec(("[a-z]{1,3}", proptest::prop_oneof![
                proptest::prelude::any::<i64>().prop_map(|n| n.to_string()),
                "[ -!#-\\[\\]-~]{0,12}".prop_map(|s| format!("\"{s}\"")),
            ]), 0..16),
        ) {
            let mut seen = std::collections::HashSet::new();
            let members: Vec<String> = members
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            let text = format!("{{{}}}", members.join(","));
            let names = ["a", "b", "ab"];
            let long = text.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() > 18);
            let zero = text.contains(":-0");
            match flat(text.as_bytes(), names) {
                Some(found) => proptest::prop_assert_eq!(Ok(found), scan_any(text.as_bytes(), names)),
                None => proptest::prop_assert!(long || zero, "{}", text),
            }
        }
    }

    #[test]
    fn scan_borrows_plain_strings() {
        let [sub, aud] =
            scan_object(br#"{"sub":"alice","aud":["x","\u0079"]}"#, ["sub", "aud"]).unwrap();
        assert!(matches!(sub, Some(Field::Str(Cow::Borrowed("alice")))));
        match aud {
            Some(Field::Strs(list)) => {
                assert!(matches!(list.first(), Some(Cow::Borrowed("x"))));
                assert!(matches!(list.get(1), Some(Cow::Owned(y)) if y == "y"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
        let deep = "{\"a\":".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(scan_object(deep.as_bytes(), ["a"]).is_err());
        let deep = format!("{{\"a\":{}", "[".repeat(100_000));
        assert!(scan_object(deep.as_bytes(), ["a"]).is_err());
        assert!(scan_object(deep.as_bytes(), ["b"]).is_err());
    }
}
