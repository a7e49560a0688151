//! Kafka adapter configuration (the JS class fills defaults; this checks the rest).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{AdapterError, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConfig {
    pub client_id: String,
    pub brokers: Vec<String>,
    pub group_id: String,
    pub num_partitions: i32,
    pub replication_factor: i32,
    pub connection_timeout: u64,
    pub publish_timeout: u64,
    /// Extra librdkafka properties for every client (SASL/SSL for managed Kafka, tuning).
    #[serde(default)]
    pub rdkafka: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let c: KafkaConfig = serde_json::from_str(text).map_err(|e| AdapterError::config("config", e.to_string()))?;
        if c.brokers.is_empty() || c.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(AdapterError::config("brokers", "must list at least one host:port"));
        }
        if c.num_partitions < 1 {
            return Err(AdapterError::config("numPartitions", "must be at least 1"));
        }
        if c.replication_factor < 1 {
            return Err(AdapterError::config("replicationFactor", "must be at least 1"));
        }
        Ok(c)
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
