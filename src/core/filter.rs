//! `StateFilter` evaluation with the semantics of `@motiadev/adapter-redis-state@0.17`
//! (`matchesFilter`), reproduced on `serde_json::Value` including JavaScript's comparison rules:
//! - the compared value is `item.value[valueKey]` when the item value is an object or array,
//!   otherwise the item value itself;
//! - `eq`/`neq` are strict (`===` against the filter's string), so numbers never equal;
//! - `gt`/`gte`/`lt`/`lte` follow JS relational comparison (strings by UTF-16 code units,
//!   otherwise numerically after `ToNumber`; `NaN` compares false), see [`crate::core::js`];
//! - `contains`/`notContains`/`startsWith`/`endsWith` only match string values;
//! - `isNull`/`isNotNull` treat a missing field like `null`.

use serde::Deserialize;
use serde_json::Value;
use std::cmp::Ordering;

use crate::core::js::js_compare;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    IsNotNull,
    IsNull,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFilter {
    pub value_key: String,
    pub operation: Operation,
    #[serde(default)]
    pub value: String,
}

/// The field a filter looks at; `None` is JavaScript's `undefined`.
fn field<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    match item {
        Value::Object(map) => map.get(key),
        Value::Array(arr) => {
            if key == "length" {
                None // handled by the caller through `array_length`
            } else if key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())) {
                key.parse::<usize>().ok().and_then(|i| arr.get(i))
            } else {
                None
            }
        }
        other => Some(other),
    }
}
impl StateFilter {
    pub fn matches(&self, item: &Value) -> bool {
        let length;
        let f = match item {
            Value::Array(a) if self.value_key == "length" => {
                length = Value::from(a.len());
                Some(&length)
            }
            _ => field(item, &self.value_key),
        };
        let as_str = || match f {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let v = self.value.as_str();
        match self.operation {
            Operation::Eq => as_str() == Some(v),
            Operation::Neq => as_str() != Some(v),
            Operation::Gt => js_compare(f, v) == Some(Ordering::Greater),
            Operation::Gte => matches!(js_compare(f, v), Some(Ordering::Greater | Ordering::Equal)),
            Operation::Lt => js_compare(f, v) == Some(Ordering::Less),
            Operation::Lte => matches!(js_compare(f, v), Some(Ordering::Less | Ordering::Equal)),
            Operation::Contains => as_str().is_some_and(|s| s.contains(v)),
            Operation::NotContains => as_str().is_some_and(|s| !s.contains(v)),
            Operation::StartsWith => as_str().is_some_and(|s| s.starts_with(v)),
            Operation::EndsWith => as_str().is_some_and(|s| s.ends_with(v)),
            Operation::IsNull => matches!(f, None | Some(Value::Null)),
            Operation::IsNotNull => !matches!(f, None | Some(Value::Null)),
        }
    }
}
/// A stored value parsed for filtering. Filters look at top-level fields only, so a value nested
/// deeper than serde_json's recursion limit (128) is still matched: its top level is split into raw
/// fields (skipping nested JSON is not depth-limited) and each field deeper than the limit stands in
/// as an empty object or array — which only changes a comparison *on that field* (JS would compare
/// its `String(...)`), never whether the item can be read.
pub fn parse_for_filter(text: &str) -> serde_json::Result<Value> {
    let err = match serde_json::from_str::<Value>(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !err.to_string().contains("recursion limit") {
        return Err(err);
    }
    let field = |raw: &serde_json::value::RawValue| {
        serde_json::from_str::<Value>(raw.get()).unwrap_or_else(|_| match raw.get().trim_start().as_bytes().first() {
            Some(b'[') => Value::Array(Vec::new()),
            _ => Value::Object(serde_json::Map::new()),
        })
    };
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {
            let map: Vec<(String, Box<serde_json::value::RawValue>)> =
                serde_json::from_str::<std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>>(text)?
                    .into_iter()
                    .collect();
            Ok(Value::Object(map.into_iter().map(|(k, v)| (k, field(&v))).collect()))
        }
        Some(b'[') => {
            let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(text)?;
            Ok(Value::Array(items.iter().map(|v| field(v)).collect()))
        }
        _ => Err(err),
    }
}
/// All filters must match (AND), as in 0.17.
pub fn matches_all(filters: &[StateFilter], item: &Value) -> bool {
    filters.iter().all(|f| f.matches(item))
}

/// `StateItem.type` of a JSON text, from its first significant byte (no parse needed).
pub fn json_type(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_deeper_than_the_parser_limit_are_still_filtered() {
        let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        let text = format!(r#"{{"name":"a","deep":{deep},"n":3}}"#);
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let v = parse_for_filter(&text).unwrap();
        assert_eq!(v["name"], json!("a"));
        assert_eq!(v["n"], json!(3));
        assert_eq!(v["deep"], json!([]));
        let arr = parse_for_filter(&format!("[{deep},{deep}]")).unwrap();
        assert_eq!(arr.as_array().map(|a| a.len()), Some(2));
        assert!(parse_for_filter("{not json").is_err());
    }

    fn f(key: &str, op: &str, value: &str) -> StateFilter {
        serde_json::from_value(json!({"valueKey": key, "operation": op, "value": value})).unwrap()
    }

    #[test]
    fn eq_is_strict_like_js() {
        assert!(f("name", "eq", "bob").matches(&json!({"name": "bob"})));
        assert!(!f("age", "eq", "3").matches(&json!({"age": 3})));
        assert!(f("age", "neq", "3").matches(&json!({"age": 3})));
        assert!(!f("name", "neq", "bob").matches(&json!({"name": "bob"})));
        // primitives compare the value itself
        assert!(f("ignored", "eq", "x").matches(&json!("x")));
    }

    #[test]
    fn relational_uses_js_rules() {
        assert!(f("age", "gt", "20").matches(&json!({"age": 30})));
        assert!(!f("age", "gt", "30").matches(&json!({"age": 30})));
        assert!(f("age", "gte", "30").matches(&json!({"age": 30})));
        assert!(f("age", "lt", "1e2").matches(&json!({"age": 30})));
        assert!(f("age", "lte", "0x1e").matches(&json!({"age": 30})));
        assert!(!f("age", "gt", "abc").matches(&json!({"age": 30}))); // NaN
        assert!(!f("age", "lt", "abc").matches(&json!({"age": 30})));
        // string vs string: lexicographic
        assert!(f("name", "gt", "abc").matches(&json!({"name": "b"})));
        assert!(f("name", "lt", "10").matches(&json!({"name": "1"})));
        assert!(f("name", "gt", "10").matches(&json!({"name": "9"})));
        // booleans and null become numbers
        assert!(f("ok", "gt", "0").matches(&json!({"ok": true})));
        assert!(f("n", "gte", "").matches(&json!({"n": null})));
        // missing -> undefined -> NaN
        assert!(!f("missing", "gte", "0").matches(&json!({"age": 1})));
        // "Infinity" is a number in JS, "inf" is not
        assert!(f("age", "lt", "Infinity").matches(&json!({"age": 1})));
        assert!(!f("age", "lt", "inf").matches(&json!({"age": 1})));
    }

    #[test]
    fn string_operations_only_on_strings() {
        let item = json!({"s": "hello world", "n": 5});
        assert!(f("s", "contains", "lo w").matches(&item));
        assert!(!f("s", "notContains", "lo w").matches(&item));
        assert!(f("s", "notContains", "xyz").matches(&item));
        assert!(f("s", "startsWith", "hell").matches(&item));
        assert!(f("s", "endsWith", "world").matches(&item));
        assert!(!f("n", "contains", "5").matches(&item));
        assert!(!f("n", "notContains", "x").matches(&item));
    }

    #[test]
    fn null_checks() {
        let item = json!({"a": null, "b": 0});
        assert!(f("a", "isNull", "").matches(&item));
        assert!(f("missing", "isNull", "").matches(&item));
        assert!(!f("b", "isNull", "").matches(&item));
        assert!(f("b", "isNotNull", "").matches(&item));
        assert!(f("x", "isNull", "").matches(&json!(null)));
    }

    #[test]
    fn arrays_index_like_js() {
        let item = json!(["a", "b"]);
        assert!(f("1", "eq", "b").matches(&item));
        assert!(f("length", "gt", "1").matches(&item));
        assert!(f("5", "isNull", "").matches(&item));
    }

    #[test]
    fn all_must_match() {
        let item = json!({"a": "x", "b": 2});
        assert!(matches_all(&[f("a", "eq", "x"), f("b", "gt", "1")], &item));
        assert!(!matches_all(&[f("a", "eq", "x"), f("b", "gt", "2")], &item));
        assert!(matches_all(&[], &item));
    }

    #[test]
    fn types_from_raw_json() {
        assert_eq!(json_type("{}"), "object");
        assert_eq!(json_type("[1]"), "array");
        assert_eq!(json_type("\"s\""), "string");
        assert_eq!(json_type("true"), "boolean");
        assert_eq!(json_type("null"), "null");
        assert_eq!(json_type("-1.5"), "number");
    }
}
