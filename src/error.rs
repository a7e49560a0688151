//! One error type for the whole addon, with stable machine-readable codes.
//!
//! Every error that reaches JavaScript goes through [`AdapterError::into_napi`], which
//! prefixes the message with `[CODE]`; the JS layer copies that code into `error.code`.
//! Messages never contain credentials: connection strings are never formatted into them,
//! and [`redact`] scrubs anything that looks like `scheme://user:pass@` from driver text.

use std::fmt;

/// Stable error codes. They are part of the public API (README "Error codes"); never rename one.
pub mod codes {
    pub const CONFIG: &str = "MOTIA_CONFIG";
    pub const CONNECT: &str = "MOTIA_CONNECT";
    pub const AUTH: &str = "MOTIA_AUTH";
    pub const TIMEOUT: &str = "MOTIA_TIMEOUT";
    pub const BACKEND: &str = "MOTIA_BACKEND";
    pub const DECODE: &str = "MOTIA_DECODE";
    pub const SERIALIZE: &str = "MOTIA_SERIALIZE";
    pub const CLOSED: &str = "MOTIA_CLOSED";
    pub const INTERNAL: &str = "MOTIA_INTERNAL";
    /// All of them, in the README's order.
    pub const ALL: [&str; 9] = [
        CONFIG, CONNECT, AUTH, TIMEOUT, BACKEND, DECODE, SERIALIZE, CLOSED, INTERNAL,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterError {
    /// Invalid configuration or argument; `field` names the offending option.
    Config { field: String, message: String },
    /// The server could not be reached (refused, DNS, TLS handshake, ...).
    Connect(String),
    /// The server rejected the credentials.
    Auth(String),
    /// Connecting or a command took longer than its timeout.
    Timeout(String),
    /// The server answered with an error, or the connection broke mid-command.
    Backend(String),
    /// Bytes stored in the backend are not valid JSON.
    Decode(String),
    /// A value cannot be represented as JSON.
    Serialize(String),
    /// The adapter was shut down (`cleanup()` / `shutdown()`).
    Closed(String),
    /// A bug: a panic or a broken invariant inside the addon.
    Internal(String),
}

impl AdapterError {
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        AdapterError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Config { .. } => codes::CONFIG,
            AdapterError::Connect(_) => codes::CONNECT,
            AdapterError::Auth(_) => codes::AUTH,
            AdapterError::Timeout(_) => codes::TIMEOUT,
            AdapterError::Backend(_) => codes::BACKEND,
            AdapterError::Decode(_) => codes::DECODE,
            AdapterError::Serialize(_) => codes::SERIALIZE,
            AdapterError::Closed(_) => codes::CLOSED,
            AdapterError::Internal(_) => codes::INTERNAL,
        }
    }

    fn text(&self) -> String {
        match self {
            AdapterError::Config { field, message } => format!("invalid option `{field}`: {message}"),
            AdapterError::Connect(m)
            | AdapterError::Auth(m)
            | AdapterError::Timeout(m)
            | AdapterError::Backend(m)
            | AdapterError::Decode(m)
            | AdapterError::Serialize(m)
            | AdapterError::Closed(m)
            | AdapterError::Internal(m) => m.clone(),
        }
    }

    /// The text without its code, credentials removed.
    pub fn redacted_text(&self) -> String {
        redact(&self.text())
    }

    /// The message as JS sees it: `[CODE] text`, credentials removed.
    pub fn js_message(&self) -> String {
        format!("[{}] {}", self.code(), self.redacted_text())
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.js_message())
    }
}

impl std::error::Error for AdapterError {}

pub type Result<T> = std::result::Result<T, AdapterError>;

/// Removes `user:password@` from anything that looks like a URL (`scheme://user:pass@host`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // the authority ends at the first '/', whitespace or quote; credentials end at the last '@' in it
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        if let Some(at) = authority.rfind('@') {
            out.push_str("***@");
            out.push_str(&authority[at + 1..]);
        } else {
            out.push_str(authority);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl From<AdapterError> for napi::Error {
    fn from(e: AdapterError) -> Self {
        let status = match e {
            AdapterError::Config { .. } | AdapterError::Serialize(_) => napi::Status::InvalidArg,
            _ => napi::Status::GenericFailure,
        };
        napi::Error::new(status, e.js_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            redact("cannot reach redis://user:s3cret@host:6379/0"),
            "cannot reach redis://***@host:6379/0"
        );
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672 refused"),
            "amqp://***@127.0.0.1:5672 refused"
        );
        assert_eq!(redact("no url here"), "no url here");
        // a password containing '@': the credentials end at the last '@' of the authority
        assert_eq!(redact("redis://u:p@ss@host/0"), "redis://***@host/0");
        assert_eq!(
            redact("redis://host:1 and rediss://:p@x"),
            "redis://host:1 and rediss://***@x"
        );
    }

    #[test]
    fn messages_carry_the_code() {
        let e = AdapterError::config("port", "must be an integer between 1 and 65535");
        assert_eq!(
            e.js_message(),
            "[MOTIA_CONFIG] invalid option `port`: must be an integer between 1 and 65535"
        );
        assert_eq!(AdapterError::Timeout("x".into()).code(), "MOTIA_TIMEOUT");
    }
}
