//! RabbitMQ names and queue arguments, in one place.
//!
//! They must equal what `@motiadev/adapter-rabbitmq-events@0.17` declares, byte for byte: RabbitMQ answers a
//! re-declaration with different arguments with `406 PRECONDITION_FAILED`, and a mixed fleet of upstream and
//! native pods shares these queues.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// The queue a step consumes from: `motia.${topic}.${stepName}`, the same on every replica (competing consumers).
pub fn queue_name(topic: &str, step: &str) -> String {
    format!("motia.{topic}.{step}")
}

/// The dead-letter queue of a step queue: `${queue}.dlq`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// The routing key dead-lettered messages carry: `${queue}.${deadLetterRoutingKey}` (default `….dlq`).
pub fn dead_letter_routing_key(queue: &str, dead_letter_routing_key: &str) -> String {
    format!("{queue}.{dead_letter_routing_key}")
}

/// The default dead-letter exchange: `${exchangeName}.dlq`.
pub fn default_dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dlq")
}

/// The header that counts failed attempts across pods (upstream re-publishes with it).
pub const RETRY_COUNT_HEADER: &str = "x-retry-count";

/// What a subscription's queue needs, from the step's `QueueConfig` and the adapter config.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub queue: String,
    pub topic: String,
    pub fifo: bool,
    /// `visibilityTimeout` in seconds; `x-consumer-timeout` is set only when > 0.
    pub visibility_timeout_secs: f64,
    pub dead_letter_exchange: String,
    pub dead_letter_routing_key: String,
}

impl QueueSpec {
    pub fn new(
        topic: &str,
        step: &str,
        fifo: bool,
        visibility_timeout_secs: f64,
        dead_letter_exchange: &str,
        dead_letter_routing_key: &str,
    ) -> Self {
        let queue = queue_name(topic, step);
        let dlrk = self::dead_letter_routing_key(&queue, dead_letter_routing_key);
        QueueSpec {
            queue,
            topic: topic.to_string(),
            fifo,
            visibility_timeout_secs,
            dead_letter_exchange: dead_letter_exchange.to_string(),
            dead_letter_routing_key: dlrk,
        }
    }

    pub fn dead_letter_queue(&self) -> String {
        dead_letter_queue(&self.queue)
    }

    /// The main queue's arguments, as upstream builds them (amqplib sends 900000 as a 32-bit int; RabbitMQ
    /// compares integer arguments by value, so the width does not matter for equivalence).
    pub fn arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if self.visibility_timeout_secs > 0.0 {
            let ms = (self.visibility_timeout_secs * 1000.0).round() as i64;
            let value = match i32::try_from(ms) {
                Ok(v) => AMQPValue::LongInt(v),
                Err(_) => AMQPValue::LongLongInt(ms),
            };
            args.insert(ShortString::from("x-consumer-timeout"), value);
        }
        if self.fifo {
            args.insert(ShortString::from("x-single-active-consumer"), AMQPValue::Boolean(true));
        }
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(self.dead_letter_exchange.as_str())),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from(self.dead_letter_routing_key.as_str())),
        );
        args
    }
}

/// Reads `x-retry-count` from message headers, whatever integer type the producer used.
pub fn retry_count(headers: Option<&FieldTable>) -> u32 {
    let Some(h) = headers else { return 0 };
    let Some(v) = h.inner().get(RETRY_COUNT_HEADER) else {
        return 0;
    };
    let n: i64 = match v {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::Float(f) => *f as i64,
        AMQPValue::Double(f) => *f as i64,
        _ => 0,
    };
    n.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_upstream() {
        let spec = QueueSpec::new("order.created", "Notify", false, 900.0, "motia.events.dlq", "dlq");
        assert_eq!(spec.queue, "motia.order.created.Notify");
        assert_eq!(spec.dead_letter_queue(), "motia.order.created.Notify.dlq");
        assert_eq!(spec.dead_letter_routing_key, "motia.order.created.Notify.dlq");
        assert_eq!(default_dead_letter_exchange("motia.events"), "motia.events.dlq");
    }

    #[test]
    fn arguments_match_upstream() {
        let spec = QueueSpec::new("t", "s", true, 900.0, "x.dlq", "dead");
        let args = spec.arguments();
        let m = args.inner();
        assert_eq!(m.get("x-consumer-timeout"), Some(&AMQPValue::LongInt(900_000)));
        assert_eq!(m.get("x-single-active-consumer"), Some(&AMQPValue::Boolean(true)));
        assert_eq!(
            m.get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString(LongString::from("motia.t.s.dead")))
        );
        let standard = QueueSpec::new("t", "s", false, 0.0, "x.dlq", "dlq").arguments();
        assert!(standard.inner().get("x-consumer-timeout").is_none());
        assert!(standard.inner().get("x-single-active-consumer").is_none());
        assert_eq!(standard.inner().len(), 2);
    }

    #[test]
    fn retry_count_reads_any_integer() {
        let mut h = FieldTable::default();
        assert_eq!(retry_count(Some(&h)), 0);
        h.insert(ShortString::from(RETRY_COUNT_HEADER), AMQPValue::ShortShortInt(2));
        assert_eq!(retry_count(Some(&h)), 2);
        h.insert(ShortString::from(RETRY_COUNT_HEADER), AMQPValue::LongLongInt(-4));
        assert_eq!(retry_count(Some(&h)), 0);
        assert_eq!(retry_count(None), 0);
    }
}
