//! Kafka adapter configuration: defaults and checks (the JS class only splits a comma list of brokers).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::core::options::Options;
use crate::error::{AdapterError, Result};

pub const DEFAULT_CLIENT_ID: &str = "motia";
pub const DEFAULT_GROUP_ID: &str = "motia-default";
pub const DEFAULT_NUM_PARTITIONS: u64 = 3;
pub const DEFAULT_REPLICATION_FACTOR: u64 = 1;
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_PUBLISH_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
/// Unsettled events per consumer when a subscription sets no `concurrency`/`prefetch`.
pub const DEFAULT_PREFETCH: u64 = 10;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConfig {
    pub client_id: String,
    pub brokers: Vec<String>,
    pub group_id: String,
    pub num_partitions: i32,
    pub replication_factor: i32,
    pub connection_timeout: u64,
    pub publish_timeout: u64,
    /// Read by the JS event core (drain bound of `shutdown`/`unsubscribe`, ms).
    pub shutdown_timeout: u64,
    pub prefetch: u32,
    /// Extra librdkafka properties for every client (SASL/SSL for managed Kafka, tuning).
    pub rdkafka: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let o = Options::from_json(text, "config")?;
        let brokers = match o.get("brokers") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|b| b.as_str().map(str::trim).filter(|b| !b.is_empty()).map(String::from))
                .collect::<Option<Vec<String>>>()
                .filter(|b| !b.is_empty()),
            _ => None,
        }
        .ok_or_else(|| AdapterError::config("brokers", "must be a non-empty array of \"host:port\" strings"))?;
        let mut rdkafka = BTreeMap::new();
        match o.get("rdkafka") {
            None => {}
            Some(Value::Object(props)) => {
                for (k, v) in props {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(AdapterError::config(
                                format!("rdkafka.{k}"),
                                "must be a string, number or boolean",
                            ))
                        }
                    };
                    rdkafka.insert(k.clone(), text);
                }
            }
            Some(_) => {
                return Err(AdapterError::config(
                    "rdkafka",
                    "must be an object of librdkafka properties",
                ))
            }
        }
        Ok(KafkaConfig {
            client_id: o.string("clientId", Some(DEFAULT_CLIENT_ID))?,
            brokers,
            group_id: o.string("groupId", Some(DEFAULT_GROUP_ID))?,
            num_partitions: o.int("numPartitions", 1, i32::MAX as u64, DEFAULT_NUM_PARTITIONS)? as i32,
            replication_factor: o.int("replicationFactor", 1, i16::MAX as u64, DEFAULT_REPLICATION_FACTOR)? as i32,
            connection_timeout: o.int("connectionTimeout", 0, u64::MAX, DEFAULT_CONNECTION_TIMEOUT_MS)?,
            publish_timeout: o.int("publishTimeout", 1, u64::MAX, DEFAULT_PUBLISH_TIMEOUT_MS)?,
            shutdown_timeout: o.int("shutdownTimeout", 0, u64::MAX, DEFAULT_SHUTDOWN_TIMEOUT_MS)?,
            prefetch: o.int("prefetch", 1, u32::MAX as u64, DEFAULT_PREFETCH)? as u32,
            rdkafka,
        })
    }

    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }

    /// Base librdkafka settings, then the user's (which win).
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c.set("client.id", &self.client_id);
        c.set(
            "socket.connection.setup.timeout.ms",
            self.connection_timeout.max(1000).to_string(),
        );
        c.set("log_level", "3");
        for (k, v) in &self.rdkafka {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_defaults_and_names_bad_options() {
        let c = KafkaConfig::from_json(
            r#"{"brokers":["127.0.0.1:9092"],"rdkafka":{"linger.ms":5,"enable.idempotence":true}}"#,
        )
        .unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.group_id.as_str()),
            (DEFAULT_CLIENT_ID, DEFAULT_GROUP_ID)
        );
        assert_eq!((c.num_partitions, c.prefetch), (3, 10));
        assert_eq!(c.rdkafka["linger.ms"], "5");
        assert_eq!(c.rdkafka["enable.idempotence"], "true");
        for (bad, field) in [
            (r#"{}"#, "`brokers`"),
            (r#"{"brokers":[" "]}"#, "`brokers`"),
            (r#"{"brokers":["h:1"],"numPartitions":0}"#, "`numPartitions`"),
            (r#"{"brokers":["h:1"],"rdkafka":{"x":{}}}"#, "`rdkafka.x`"),
            (r#"{"brokers":["h:1"],"groupId":""}"#, "`groupId`"),
        ] {
            let e = KafkaConfig::from_json(bad).unwrap_err();
            assert!(e.js_message().contains(field), "{bad}: {}", e.js_message());
        }
    }
}
