//! RabbitMQ adapter configuration: defaults and checks (the JS class only turns a `tls.ca` Buffer into text).

use serde::Serialize;

use crate::core::options::Options;
use crate::error::{AdapterError, Result};

pub const DEFAULT_EXCHANGE_NAME: &str = "motia.events";
pub const DEFAULT_EXCHANGE_TYPE: &str = "topic";
pub const EXCHANGE_TYPES: [&str; 4] = ["direct", "topic", "fanout", "headers"];
/// Upstream's `prefetch` default (1): one unsettled message per consumer.
pub const DEFAULT_PREFETCH: u64 = 1;
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_RECONNECT_DELAY_MS: u64 = 5_000;
pub const DEFAULT_DEAD_LETTER_ROUTING_KEY: &str = "dlq";
pub const DEFAULT_PUBLISH_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmqpConfig {
    pub url: String,
    pub exchange_name: String,
    pub exchange_type: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub connection_timeout: u64,
    pub reconnect_delay: u64,
    pub prefetch: u16,
    /// Default `${exchangeName}.dlq`.
    pub dead_letter_exchange: String,
    pub dead_letter_routing_key: String,
    /// How long `emit` waits for a connection and a confirm before it rejects (ms).
    pub publish_timeout: u64,
    /// How long `shutdown`/`unsubscribe` wait for running handlers (ms; read by the JS event core).
    pub shutdown_timeout: u64,
    /// PEM CA bundle for `amqps://` servers signed by a private CA.
    pub ca: Option<String>,
}

impl AmqpConfig {
    /// The upstream options (`url` required), defaults filled, checked.
    pub fn from_json(text: &str) -> Result<Self> {
        let o = Options::from_json(text, "config")?;
        if o.get("url").is_none() {
            return Err(AdapterError::config(
                "url",
                "is required (config must be an object with a `url`)",
            ));
        }
        let url = o.string("url", None)?;
        let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
        if !url.contains("://") || !matches!(scheme.as_str(), "amqp" | "amqps") {
            return Err(AdapterError::config("url", "must start with amqp:// or amqps://"));
        }
        let exchange_name = o.string("exchangeName", Some(DEFAULT_EXCHANGE_NAME))?;
        let ca = match o.get("tls") {
            None => None,
            Some(serde_json::Value::Object(t)) => match t.get("ca") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(pem)) => Some(pem.clone()),
                Some(_) => return Err(AdapterError::config("tls.ca", "must be a PEM string or Buffer")),
            },
            Some(_) => return Err(AdapterError::config("tls", "must be an object")),
        };
        let c = AmqpConfig {
            exchange_type: o.choice("exchangeType", &EXCHANGE_TYPES, DEFAULT_EXCHANGE_TYPE)?,
            durable: o.boolean("durable", true)?,
            auto_delete: o.boolean("autoDelete", false)?,
            connection_timeout: o.int("connectionTimeout", 0, u64::MAX, DEFAULT_CONNECTION_TIMEOUT_MS)?,
            reconnect_delay: o.int("reconnectDelay", 0, u64::MAX, DEFAULT_RECONNECT_DELAY_MS)?,
            prefetch: o.int("prefetch", 1, u16::MAX as u64, DEFAULT_PREFETCH)? as u16,
            dead_letter_exchange: o.string("deadLetterExchange", Some(&format!("{exchange_name}.dlq")))?,
            dead_letter_routing_key: o.string("deadLetterRoutingKey", Some(DEFAULT_DEAD_LETTER_ROUTING_KEY))?,
            publish_timeout: o.int("publishTimeout", 0, u64::MAX, DEFAULT_PUBLISH_TIMEOUT_MS)?,
            shutdown_timeout: o.int("shutdownTimeout", 0, u64::MAX, DEFAULT_SHUTDOWN_TIMEOUT_MS)?,
            url,
            exchange_name,
            ca,
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<()> {
        let uri: std::result::Result<lapin::uri::AMQPUri, String> = self.url.parse();
        if let Err(e) = uri {
            return Err(AdapterError::config(
                "url",
                format!("not an amqp:// or amqps:// URL ({})", crate::error::redact(&e)),
            ));
        }
        Ok(())
    }

    pub fn exchange_kind(&self) -> lapin::ExchangeKind {
        match self.exchange_type.as_str() {
            "direct" => lapin::ExchangeKind::Direct,
            "fanout" => lapin::ExchangeKind::Fanout,
            "headers" => lapin::ExchangeKind::Headers,
            _ => lapin::ExchangeKind::Topic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(url: &str, kind: &str) -> String {
        format!(r#"{{"url":"{url}","exchangeType":"{kind}"}}"#)
    }

    #[test]
    fn fills_the_upstream_defaults() {
        let c = AmqpConfig::from_json(r#"{"url":"amqp://h","exchangeName":"ex","prefetch":null}"#).unwrap();
        assert_eq!(c.exchange_type, "topic");
        assert_eq!(c.prefetch, 1);
        assert_eq!(c.dead_letter_exchange, "ex.dlq");
        assert_eq!((c.durable, c.auto_delete), (true, false));
        assert_eq!(c.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT_MS);
        for (bad, field) in [
            (r#"{}"#, "`url`"),
            (r#"{"url":"amqp://h","prefetch":0}"#, "`prefetch`"),
            (r#"{"url":"amqp://h","durable":"yes"}"#, "`durable`"),
            (r#"{"url":"amqp://h","tls":{"ca":5}}"#, "`tls.ca`"),
            (r#"{"url":"amqp://h","publishTimeout":"NaN"}"#, "`publishTimeout`"),
        ] {
            let e = AmqpConfig::from_json(bad).unwrap_err();
            assert!(e.js_message().contains(field), "{bad}: {}", e.js_message());
        }
    }

    #[test]
    fn validates_url_and_exchange_type() {
        assert!(AmqpConfig::from_json(&json("amqp://guest:guest@127.0.0.1:5672", "topic")).is_ok());
        assert!(AmqpConfig::from_json(&json("amqps://h:5671/%2f", "direct")).is_ok());
        let e = AmqpConfig::from_json(&json("http://u:secret@h", "topic")).unwrap_err();
        assert_eq!(e.code(), "MOTIA_CONFIG");
        assert!(!e.js_message().contains("secret"), "{}", e.js_message());
        let e = AmqpConfig::from_json(&json("amqp://h", "bogus")).unwrap_err();
        assert!(e.js_message().contains("exchangeType"));
    }
}
