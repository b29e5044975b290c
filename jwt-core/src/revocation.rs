//! The revocation list's entries and their JSON, apart from nginx: what the API accepts, what
//! it lists, what a state file and a fleet's published list hold (one format for all four).
//!
//! An entry names a token (`{"jti": "…", "exp": T}`: refused until `T`, the token's own
//! expiry) or a subject (`{"sub": "…", "cutoff": T}`: every token of the subject issued before
//! `T` is refused, and one without `iat` too, until `T` plus the zone's `ttl`).

use serde_json::{Map, Value};

use crate::json;
use crate::text::quoted;

/// The longest `sub` or `jti` an entry holds, in bytes (OpenID Connect's longest `sub`): an
/// entry has a fixed size in the zone.
pub const MAX_VALUE: usize = 255;

/// What an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Sub,
    Jti,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sub => "sub",
            Kind::Jti => "jti",
        }
    }

    /// The member holding an entry's time.
    fn time_name(self) -> &'static str {
        match self {
            Kind::Sub => "cutoff",
            Kind::Jti => "exp",
        }
    }

    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Sub),
            2 => Some(Kind::Jti),
            _ => None,
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            Kind::Sub => 1,
            Kind::Jti => 2,
        }
    }
}

/// One revocation: a subject's cutoff or a token's expiry, in seconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub value: String,
    pub time: i64,
}

impl Entry {
    /// When the entry stops mattering: a token at its `exp`; a subject's cutoff `ttl` seconds
    /// on, when every token issued before it has expired (`ttl` being the longest lifetime).
    pub fn expires(&self, ttl: i64) -> i64 {
        match self.kind {
            Kind::Jti => self.time,
            Kind::Sub => self.time.saturating_add(ttl),
        }
    }

    /// Of two entries for the same value, the one kept: the later time revokes more.
    pub fn merged(time: i64, other: i64) -> i64 {
        time.max(other)
    }
}

/// How entries without a time are completed: the API's `{"sub": "alice"}` means "cut off now",
/// `{"jti": "…"}` "until `ttl` from now". A state file or a fleet's list has every time.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub now: i64,
    pub ttl: i64,
}

/// Reads a JSON object or array of entries; `defaults` completes missing times, and without
/// it every entry needs its time. The error is one line naming the entry (from 1) and what is
/// wrong; the input is never echoed but for a member's name.
pub fn parse_entries(body: &[u8], defaults: Option<Defaults>) -> Result<Vec<Entry>, String> {
    if body.trim_ascii().is_empty() {
        return Err("the body is empty".into());
    }
    let items = match json::parse(body)? {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err("not a JSON object or array".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| entry(item, defaults).map_err(|e| format!("entry {}: {e}", i + 1)))
        .collect()
}

/// Reads the one entry a `DELETE` names: `{"sub": "…"}` or `{"jti": "…"}`.
pub fn parse_name(body: &[u8]) -> Result<(Kind, String), String> {
    let Value::Object(map) = json::parse(body)? else {
        return Err("not a JSON object".into());
    };
    let (kind, value) = named(&map)?;
    if let Some(other) = map.keys().find(|k| *k != kind.name()) {
        return Err(format!("unexpected member {}", quoted(other)));
    }
    Ok((kind, value))
}

fn entry(item: &Value, defaults: Option<Defaults>) -> Result<Entry, String> {
    let Value::Object(map) = item else {
        return Err("not a JSON object".into());
    };
    let (kind, value) = named(map)?;
    let time_name = kind.time_name();
    if let Some(other) = map.keys().find(|k| *k != kind.name() && *k != time_name) {
        return Err(format!("unexpected member {}", quoted(other)));
    }
    let time = match (map.get(time_name), defaults) {
        (Some(t), _) => t
            .as_i64()
            .filter(|t| *t >= 0)
            .ok_or_else(|| format!("\"{time_name}\" is not a time in whole seconds"))?,
        (None, Some(d)) => match kind {
            Kind::Sub => d.now,
            Kind::Jti => d.now.saturating_add(d.ttl),
        },
        (None, None) => return Err(format!("\"{time_name}\" is missing")),
    };
    Ok(Entry { kind, value, time })
}

/// The `sub` or `jti` of an object, exactly one of them, a non-empty string of at most
/// `MAX_VALUE` bytes.
fn named(map: &Map<String, Value>) -> Result<(Kind, String), String> {
    let kind = match (map.get("sub"), map.get("jti")) {
        (Some(_), Some(_)) => return Err("has both \"sub\" and \"jti\"".into()),
        (Some(_), None) => Kind::Sub,
        (None, Some(_)) => Kind::Jti,
        (None, None) => return Err("has neither \"sub\" nor \"jti\"".into()),
    };
    let name = kind.name();
    let value = map
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("\"{name}\" is not a string"))?;
    if value.is_empty() {
        return Err(format!("\"{name}\" is empty"));
    }
    if value.len() > MAX_VALUE {
        return Err(format!("\"{name}\" is longer than {MAX_VALUE} bytes"));
    }
    Ok((kind, value.to_owned()))
}

/// The entries as a JSON array, one entry per line: what `GET` answers, a state file holds and
/// a fleet's list publishes; `parse_entries` reads it back.
pub fn to_json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let value = Value::String(e.value.clone()).to_string();
        out.push_str(&format!(
            "{{\"{}\":{value},\"{}\":{}}}",
            e.kind.name(),
            e.kind.time_name(),
            e.time
        ));
    }
    out.push_str(if entries.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// An error answer of the API: `{"error":"…"}` and a line end.
pub fn error_json(why: &str) -> String {
    format!("{{\"error\":{}}}\n", Value::from(why))
}

/// The zone's hash of an entry's name: never 0 (a free slot), and seeded per zone so that
/// entries sit differently in every zone.
pub fn hash(kind: Kind, value: &[u8], seed: u64) -> u64 {
    // FNV-1a, 64-bit; the seed is folded into the offset basis.
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for &b in core::iter::once(&kind.byte()).chain(value) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix spreads FNV's weak low bits, which pick the slot.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h.max(1)
}

/// Whether a token of `iat` is refused by a subject's cutoff: issued before it, or with no
/// `iat` to tell.
pub fn cut_off(iat: Option<i64>, cutoff: i64) -> bool {
    iat.map_or(true, |iat| iat < cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Option<Defaults> = Some(Defaults { now: 1000, ttl: 60 });

    #[test]
    fn an_object_or_an_array_completed_with_defaults() {
        let one = parse_entries(br#"{"sub":"alice"}"#, D).unwrap();
        assert_eq!(
            one,
            vec![Entry {
                kind: Kind::Sub,
                value: "alice".into(),
                time: 1000
            }]
        );
        let two = parse_entries(br#"[{"jti":"a"},{"jti":"b","exp":5}]"#, D).unwrap();
        assert_eq!(two[0].time, 1060);
        assert_eq!(two[1].time, 5);
        assert_eq!(parse_entries(b"[]", D).unwrap(), vec![]);
    }

    #[test]
    fn bad_entries_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"3", "not a JSON object or array"),
            (br#"[{"sub":"a"},4]"#, "entry 2: not a JSON object"),
            (
                br#"{"sub":"a","jti":"b"}"#,
                "entry 1: has both \"sub\" and \"jti\"",
            ),
            (
                br#"{"user":"a"}"#,
                "entry 1: has neither \"sub\" nor \"jti\"",
            ),
            (br#"{"sub":7}"#, "entry 1: \"sub\" is not a string"),
            (br#"{"sub":""}"#, "entry 1: \"sub\" is empty"),
            (
                br#"{"sub":"a","exp":3}"#,
                "entry 1: unexpected member \"exp\"",
            ),
            (
                br#"{"jti":"a","exp":1.5}"#,
                "entry 1: \"exp\" is not a time in whole seconds",
            ),
            (
                br#"{"jti":"a","exp":-1}"#,
                "entry 1: \"exp\" is not a time in whole seconds",
            ),
            (br#"{"sub":"a","sub":"b"}"#, "duplicate key \"sub\""),
        ];
        for (body, want) in cases {
            let got = parse_entries(body, D).unwrap_err();
            assert!(
                got.contains(want),
                "{got:?} for {:?}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!(r#"{{"jti":"{}"}}"#, "x".repeat(MAX_VALUE + 1));
        assert!(parse_entries(long.as_bytes(), D)
            .unwrap_err()
            .contains("longer than 255"));
        let at_limit = format!(r#"{{"jti":"{}"}}"#, "x".repeat(MAX_VALUE));
        assert!(parse_entries(at_limit.as_bytes(), D).is_ok());
    }

    #[test]
    fn without_defaults_every_time_is_needed() {
        let err = parse_entries(br#"{"sub":"a"}"#, None).unwrap_err();
        assert_eq!(err, "entry 1: \"cutoff\" is missing");
    }

    #[test]
    fn the_listing_reads_back() {
        let entries = vec![
            Entry {
                kind: Kind::Sub,
                value: "al\"ice\n".into(),
                time: 7,
            },
            Entry {
                kind: Kind::Jti,
                value: "é".into(),
                time: 9,
            },
        ];
        let text = to_json(&entries);
        assert_eq!(parse_entries(text.as_bytes(), None).unwrap(), entries);
        assert_eq!(to_json(&[]), "[]\n");
        assert!(parse_entries(to_json(&[]).as_bytes(), None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_delete_names_one_entry() {
        assert_eq!(
            parse_name(br#"{"jti":"x"}"#).unwrap(),
            (Kind::Jti, "x".to_owned())
        );
        assert!(parse_name(br#"{"jti":"x","exp":3}"#).is_err());
        assert!(parse_name(br#"[{"jti":"x"}]"#).is_err());
    }

    #[test]
    fn cutoffs_and_expiry() {
        assert!(cut_off(None, 10));
        assert!(cut_off(Some(9), 10));
        assert!(!cut_off(Some(10), 10));
        let sub = Entry {
            kind: Kind::Sub,
            value: "a".into(),
            time: 10,
        };
        assert_eq!(sub.expires(5), 15);
        let jti = Entry {
            kind: Kind::Jti,
            ..sub
        };
        assert_eq!(jti.expires(5), 10);
    }

    #[test]
    fn hashes_differ_by_kind_and_seed_and_are_never_zero() {
        assert_ne!(hash(Kind::Sub, b"a", 0), hash(Kind::Jti, b"a", 0));
        assert_ne!(hash(Kind::Sub, b"a", 0), hash(Kind::Sub, b"a", 1));
        assert_ne!(hash(Kind::Sub, b"", 0), 0);
    }
}
