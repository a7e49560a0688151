//! RabbitMQ adapter configuration (the JS class fills defaults and validates types; this checks the rest).

use serde::Deserialize;

use crate::error::{AdapterError, Result};

#[derive(Debug, Clone, Deserialize)]
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
    pub dead_letter_exchange: String,
    pub dead_letter_routing_key: String,
    /// How long `emit` waits for a connection and a confirm before it rejects (ms).
    pub publish_timeout: u64,
    /// PEM CA bundle for `amqps://` servers signed by a private CA.
    #[serde(default)]
    pub ca: Option<String>,
}

impl AmqpConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let c: AmqpConfig = serde_json::from_str(text).map_err(|e| AdapterError::config("config", e.to_string()))?;
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
        if !matches!(self.exchange_type.as_str(), "direct" | "topic" | "fanout" | "headers") {
            return Err(AdapterError::config(
                "exchangeType",
                "must be one of 'direct', 'topic', 'fanout', 'headers'",
            ));
        }
        if self.exchange_name.is_empty() {
            return Err(AdapterError::config("exchangeName", "must be a non-empty string"));
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
        format!(
            r#"{{"url":"{url}","exchangeName":"e","exchangeType":"{kind}","durable":true,"autoDelete":false,
            "connectionTimeout":1000,"reconnectDelay":1000,"prefetch":1,"deadLetterExchange":"e.dlq",
            "deadLetterRoutingKey":"dlq","publishTimeout":1000}}"#
        )
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
