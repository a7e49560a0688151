//! Reading adapter options: every default and every check of a setting is written once, here in Rust.
//!
//! The JS classes only adapt shapes (a node-redis client into its options, a Buffer into PEM text, a
//! comma list into an array) and send the options as JSON; the `resolve` of each backend's config
//! fills the defaults (named constants) and validates, naming the option in a `MOTIA_CONFIG` error,
//! and the JS class reads the resolved values back (`resolveConfig`). `null` means "not set", as an
//! absent field does; the JS side sends non-finite numbers and functions as strings so they are
//! refused here instead of silently becoming "not set".

use serde_json::{Map, Value};

use crate::error::{AdapterError, Result};

/// The options object of one adapter, read field by field.
#[derive(Debug)]
pub struct Options {
    map: Map<String, Value>,
    /// Put before each option's name in errors (e.g. `queueConfig.`).
    label: String,
}

fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

impl Options {
    /// `what` names the whole object in the error when it is not one (e.g. `config`, `options`).
    pub fn from_json(text: &str, what: &str) -> Result<Self> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Self::from_map(map)),
            Ok(Value::Null) => Ok(Self::from_map(Map::new())),
            _ => Err(AdapterError::config(what, "must be an object")),
        }
    }

    /// An object already parsed (e.g. by a caller that rewrites it afterwards).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Options {
            map,
            label: String::new(),
        }
    }

    /// Errors name options as `{label}{key}`.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    fn err(&self, key: &str, problem: impl Into<String>) -> AdapterError {
        AdapterError::config(format!("{}{key}", self.label), problem)
    }

    /// A finite number >= 0; `default` when not set.
    pub fn non_negative(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| self.err(key, "must be a non-negative number")),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        set(self.map.get(key))
    }

    /// An integer in `min..=max`; `default` when not set.
    pub fn int(&self, key: &str, min: u64, max: u64, default: u64) -> Result<u64> {
        Ok(self.opt_int(key, min, max)?.unwrap_or(default))
    }

    /// Numbers, and strings of digits (`process.env` values), are accepted.
    pub fn opt_int(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let digits = v
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
        let n = v.as_u64().or_else(|| digits.and_then(|t| t.parse().ok())).or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 2f64.powi(53))
                .map(|f| f as u64)
        });
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ if max == u64::MAX => Err(self.err(key, format!("must be an integer >= {min}"))),
            _ => Err(self.err(key, format!("must be an integer between {min} and {max}"))),
        }
    }

    pub fn boolean(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(key, "must be a boolean")),
        }
    }

    /// A non-empty string; `default` when not set, required when there is none.
    pub fn string(&self, key: &str, default: Option<&str>) -> Result<String> {
        match (self.opt_string(key)?, default) {
            (Some(s), _) => Ok(s),
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(self.err(key, "is required")),
        }
    }

    pub fn opt_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(self.err(key, "must be a non-empty string")),
        }
    }

    /// A key prefix: a string; not set or empty means `default` (as 0.17's `keyPrefix || default`).
    pub fn prefix(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(p)) if p.is_empty() => Ok(default.to_string()),
            Some(Value::String(p)) => Ok(p.clone()),
            Some(_) => Err(self.err(key, "must be a string")),
        }
    }

    /// A number in `min..=max` (fractions allowed); `None` when not set.
    pub fn opt_number(&self, key: &str, min: f64, max: f64, problem: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(f) if f.is_finite() && (min..=max).contains(&f) => Ok(Some(f)),
                _ => Err(self.err(key, problem)),
            },
        }
    }

    /// One of `allowed`; `default` when not set.
    pub fn choice(&self, key: &str, allowed: &[&str], default: &str) -> Result<String> {
        let v = self.string(key, Some(default))?;
        if allowed.contains(&v.as_str()) {
            return Ok(v);
        }
        let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        Err(self.err(key, format!("must be one of {}", list.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_null_take_the_default_bad_values_name_the_field() {
        let o = Options::from_json(
            r#"{"a":5,"b":null,"c":"x","d":"NaN","e":2.5,"f":true,"g":""}"#,
            "config",
        )
        .unwrap();
        assert_eq!(o.int("a", 1, 10, 3).unwrap(), 5);
        assert_eq!(o.int("b", 1, 10, 3).unwrap(), 3);
        assert_eq!(o.int("missing", 1, 10, 3).unwrap(), 3);
        assert!(o.int("a", 6, 10, 7).unwrap_err().js_message().contains("`a`"));
        assert!(o.int("d", 0, u64::MAX, 0).unwrap_err().js_message().contains(">= 0"));
        assert!(o.int("e", 0, 10, 0).is_err());
        assert!(o.boolean("f", false).unwrap());
        assert!(o.boolean("c", false).is_err());
        assert_eq!(o.string("c", None).unwrap(), "x");
        assert!(o.string("g", Some("d")).is_err());
        assert!(o
            .string("missing", None)
            .unwrap_err()
            .js_message()
            .contains("is required"));
        assert_eq!(o.choice("missing", &["x", "y"], "y").unwrap(), "y");
        assert!(o
            .choice("c", &["p", "q"], "p")
            .unwrap_err()
            .js_message()
            .contains("'p', 'q'"));
        assert!(Options::from_json("[1]", "config")
            .unwrap_err()
            .js_message()
            .contains("`config`"));
        assert!(Options::from_json("null", "config").is_ok());
        let p = Options::from_json(r#"{"a":"","b":"x:","c":3,"n":" 42 "}"#, "options").unwrap();
        assert_eq!(p.prefix("a", "d:").unwrap(), "d:");
        assert_eq!(p.prefix("b", "d:").unwrap(), "x:");
        assert!(p.prefix("c", "d:").is_err());
        assert_eq!(p.int("n", 0, 100, 0).unwrap(), 42);
        let q = Options::from_json(r#"{"v":-1}"#, "queueConfig")
            .unwrap()
            .labelled("queueConfig.");
        assert!(q
            .non_negative("v", 0.0)
            .unwrap_err()
            .js_message()
            .contains("`queueConfig.v`"));
        assert_eq!(q.non_negative("w", 1.5).unwrap(), 1.5);
    }
}
