//! Output helpers: `render` of arbitrary JSON, `percent_encode_component` and
//! `quote_param`.
#![no_main]

use jwt_core::{percent_encode_component, quote_param, render};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn render_all(value: &Value, depth: usize) {
    let text = render(value);
    match value {
        Value::Null => assert_eq!(text, ""),
        Value::String(s) => assert_eq!(text, s.as_str()),
        Value::Bool(_) | Value::Number(_) => assert_eq!(text, value.to_string()),
        Value::Object(_) => assert_eq!(text, value.to_string()),
        Value::Array(items) => {
            if items.iter().any(|v| v.is_array() || v.is_object()) {
                assert_eq!(text, value.to_string());
            }
        }
    }
    if depth < 64 {
        match value {
            Value::Array(items) => items.iter().for_each(|v| render_all(v, depth + 1)),
            Value::Object(map) => map.values().for_each(|v| render_all(v, depth + 1)),
            _ => {}
        }
    }
}

fn unhex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'F' => b - b'A' + 10,
        _ => panic!("not an uppercase hex digit: {b:#x}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        render_all(&value, 0);
    }

    // percent_encode_component appends, only unreserved characters and %XX,
    // and decodes back to the input.
    let mut out = String::from("p=");
    percent_encode_component(data, &mut out);
    let encoded = out.strip_prefix("p=").expect("appends");
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            decoded.push(unhex(bytes[i + 1]) << 4 | unhex(bytes[i + 2]));
            i += 3;
        } else {
            assert!(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            decoded.push(b);
            i += 1;
        }
    }
    assert_eq!(decoded, data);

    // quote_param: no control characters, every '"' and '\' escaped, and
    // unescaping gives the input without its control characters.
    let text = String::from_utf8_lossy(data);
    let quoted = quote_param(&text);
    assert!(!quoted.chars().any(char::is_control));
    let mut unescaped = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => unescaped.push(chars.next().expect("escape is followed by a character")),
            '"' => panic!("unescaped quote in {quoted:?}"),
            c => unescaped.push(c),
        }
    }
    let expected: String = text.chars().filter(|c| !c.is_control()).collect();
    assert_eq!(unescaped, expected);
});
