//! Kafka names derived from Motia's, in one place.

use crate::error::{AdapterError, Result};

/// The consumer group of a step: `${groupId}.${stepName}`. Replicas of one step share it (they split the
/// partitions); two steps on one topic have two groups, so each gets every event.
pub fn group_id(group_prefix: &str, step: &str) -> String {
    format!("{group_prefix}.{step}")
}

/// The consumer group of an RFC `subscribe(topic, handler, {queue})`: `${groupId}.${queue}`, named like a step's
/// (a group is to an RFC subscriber what a step is to Motia core): subscribers with the same `queue` split the
/// topic's partitions, on every replica. Its failed events go to `${topic}.${queue}.dlq`.
pub fn subscriber_group_id(group_prefix: &str, queue: &str) -> String {
    group_id(group_prefix, queue)
}

/// The consumer group of an RFC `subscribe(topic, handler)` without `queue` (fan-out): `${groupId}.fanout.${id}`,
/// unique per subscriber (`id` is a fresh UUID), starting at the end of the topic; no dead-letter topic.
pub fn fanout_group_id(group_prefix: &str, id: &str) -> String {
    format!("{group_prefix}.fanout.{id}")
}

/// Where a step's failed events go after the last retry: `${topic}.${stepName}.dlq`.
pub fn dead_letter_topic(topic: &str, step: &str) -> String {
    format!("{topic}.{step}.dlq")
}

/// The header that counts failed runs (as in the RabbitMQ adapter).
pub const RETRY_COUNT_HEADER: &str = "x-retry-count";

/// Kafka topic names: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AdapterError::config(
            field,
            format!("'{name}' is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(group_id("motia-default", "Notify"), "motia-default.Notify");
        assert_eq!(dead_letter_topic("order.created", "Notify"), "order.created.Notify.dlq");
        assert_eq!(subscriber_group_id("motia-default", "billing"), "motia-default.billing");
        assert_eq!(fanout_group_id("motia-default", "u1"), "motia-default.fanout.u1");
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic("topic", "order.created_v2-x").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "a*"] {
            let e = validate_topic("topic", bad).unwrap_err();
            assert_eq!(e.code(), "MOTIA_CONFIG");
        }
        assert!(validate_topic("topic", &"a".repeat(250)).is_err());
    }
}
