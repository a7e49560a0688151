//! JSON bytes from the backend, and the reply encoding of coalesced batches — in one place.
//!
//! Stored values are never re-serialised: they are checked to be one valid JSON value and then
//! embedded as they are into the JSON text handed to JS (one `JSON.parse` there).

use serde::de::IgnoredAny;

use crate::error::{AdapterError, Result};

/// `raw` as text if it is exactly one JSON value; `MOTIA_DECODE` naming `what()` otherwise.
/// `what` is only evaluated on failure (no allocation on the hot path).
pub fn json_str(raw: &[u8], what: impl FnOnce() -> String) -> Result<&str> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(AdapterError::Decode(format!(
            "{} is not UTF-8 JSON (written by something else?)",
            what()
        )));
    };
    match serde_json::from_str::<IgnoredAny>(text) {
        Ok(_) => Ok(text),
        Err(e) => Err(AdapterError::Decode(format!(
            "{} is not valid JSON ({e}); written by something else?",
            what()
        ))),
    }
}

/// Owned variant of [`json_str`] (takes the reply's bytes without copying them).
pub fn json_string(raw: Vec<u8>, what: impl FnOnce() -> String) -> Result<String> {
    json_str(&raw, what)?;
    // validated as UTF-8 just above
    String::from_utf8(raw).map_err(|_| AdapterError::Internal("utf-8 changed".into()))
}

/// Batch reply of a successful op: `[0,<json>]`.
pub fn push_ok(out: &mut String, json: &str) {
    out.push_str("[0,");
    out.push_str(json);
    out.push(']');
}

/// Batch reply of a failed op: `[1,"CODE","[CODE] message"]`.
pub fn push_err(out: &mut String, e: &AdapterError) {
    out.push_str("[1,");
    out.push_str(&serde_json::Value::from(e.code()).to_string());
    out.push(',');
    out.push_str(&serde_json::Value::from(e.js_message()).to_string());
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_without_copying_and_names_the_value_lazily() {
        assert_eq!(
            json_str(br#"{"a":[1,null]}"#, || unreachable!()).unwrap(),
            r#"{"a":[1,null]}"#
        );
        let e = json_str(b"not json", || "key \"k\"".into()).unwrap_err();
        assert_eq!(e.code(), "MOTIA_DECODE");
        assert!(e.js_message().contains("key \"k\""));
        assert!(json_str(&[0xff, 0xfe], || "bin".into()).is_err());
        assert!(json_str(b"1 2", || "two values".into()).is_err()); // one value only: safe to embed
        assert_eq!(json_string(b"\"s\"".to_vec(), || unreachable!()).unwrap(), "\"s\"");
    }

    #[test]
    fn reply_encoding() {
        let mut out = String::new();
        push_ok(&mut out, "null");
        out.push(',');
        push_err(&mut out, &AdapterError::Decode("x \"y\"".into()));
        assert_eq!(out, r#"[0,null],[1,"MOTIA_DECODE","[MOTIA_DECODE] x \"y\""]"#);
    }
}
