//! Topics: created once when missing (`numPartitions`, `replicationFactor`), forgotten when they vanish.

use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use super::client::KafkaClient;
use super::error::classify;
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

impl KafkaClient {
    /// Creates the topics that do not exist yet (`numPartitions`, `replicationFactor`).
    pub async fn ensure_topics(&self, names: &[&str]) -> Result<()> {
        let missing: Vec<&str> = {
            let known = self.known_topics.lock_ok();
            names.iter().copied().filter(|n| !known.contains(*n)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.config.num_partitions,
                    TopicReplication::Fixed(self.config.replication_factor),
                )
            })
            .collect();
        let timeout = Duration::from_millis(self.config.connection_timeout.max(1000));
        let opts = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        let results = match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            self.admin.create_topics(&topics, &opts),
        )
        .await
        {
            Err(_) => {
                return Err(AdapterError::Timeout(format!(
                    "creating Kafka topics took longer than connectionTimeout ({} ms)",
                    self.config.connection_timeout
                )))
            }
            Ok(r) => r.map_err(|e| classify(&e))?,
        };
        let mut known = self.known_topics.lock_ok();
        for r in results {
            match r {
                Ok(name) => {
                    known.insert(name);
                }
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    known.insert(name);
                }
                Err((name, code)) => {
                    return Err(AdapterError::Backend(format!(
                        "cannot create Kafka topic '{name}' ({code})"
                    )));
                }
            }
        }
        Ok(())
    }

    pub(super) fn forget_topics(&self, names: &[&str]) {
        let mut known = self.known_topics.lock_ok();
        for n in names {
            known.remove(*n);
        }
    }
}
