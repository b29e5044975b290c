//! JSON parsing that refuses duplicate object keys.
//!
//! serde_json keeps the last of two equal keys, while other JWT libraries keep
//! the first: a token `{"alg":"HS256","alg":"none"}` would then mean different
//! things to different readers. Such input is refused at every nesting level.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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
        .map_err(|err| match err.classify() {
            // Every JSON type is accepted by the visitor, so data errors can
            // only be ours (duplicate key, out-of-range number).
            serde_json::error::Category::Data => err.to_string(),
            serde_json::error::Category::Eof => "truncated JSON".to_owned(),
            _ => format!(
                "invalid JSON at line {} column {}",
                err.line(),
                err.column()
            ),
        })
}

/// Like `parse`, for documents that must be a JSON object.
pub(crate) fn parse_object(input: &[u8]) -> Result<Map<String, Value>, String> {
    match parse(input)? {
        Value::Object(map) => Ok(map),
        _ => Err("not a JSON object".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
        let deep = "{\"a\":".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
