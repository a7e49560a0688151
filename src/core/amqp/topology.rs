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

/// The queue of an RFC `subscribe(topic, handler, {queue})` group: `motia.${topic}.${queue}`, named like a
/// step's queue (a group is to an RFC subscriber what a step is to Motia core), so subscribers with the same
/// `queue` on one topic compete for its events, on every replica.
pub fn group_queue_name(topic: &str, group: &str) -> String {
    queue_name(topic, group)
}

/// The queue of an RFC `subscribe(topic, handler)` without `queue` (fan-out): `motia.${topic}.fanout.${id}`,
/// unique per subscriber (`id` is a fresh UUID), exclusive to its connection and deleted with it.
pub fn fanout_queue_name(topic: &str, id: &str) -> String {
    format!("motia.{topic}.fanout.{id}")
}

/// The dead-letter queue of a step queue: `${queue}.dlq`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// The routing key dead-lettered messages carry: `${queue}.${deadLetterRoutingKey}` (default `….dlq`).
pub fn dead_letter_routing_key(queue: &str, dead_letter_routing_key: &str) -> String {
    format!("{queue}.{dead_letter_routing_key}")
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
    /// `None`: the adapter's `durable` (step queues, as upstream).
    pub durable: Option<bool>,
    /// Only this connection may consume (and the queue goes with it).
    pub exclusive: bool,
    /// `None`: `!durable` (as upstream).
    pub auto_delete: Option<bool>,
    /// Whether failed messages go to `${queue}.dlq` (declared with the queue); without, they are dropped.
    pub dead_letter: bool,
}

/// What an RFC subscriber asks for in `{queue, exclusive, durable}` (prefetch is per channel).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscribeOptions {
    pub queue: Option<String>,
    pub exclusive: Option<bool>,
    pub durable: Option<bool>,
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
            durable: None,
            exclusive: false,
            auto_delete: None,
            dead_letter: true,
        }
    }

    /// The queue of an RFC subscriber.
    ///
    /// - With `queue` (a competing-consumer group): `motia.${topic}.${queue}`, declared like a step queue (same
    ///   arguments and dead-letter queue, so it may be shared with a step of that name); `durable` defaults to the
    ///   adapter's, `exclusive` to false.
    /// - Without (fan-out): `motia.${topic}.fanout.${unique}`, exclusive (unless `exclusive: false`), auto-delete,
    ///   not durable unless `durable: true`, no dead-letter queue (nothing would read one: its name is random).
    pub fn for_subscriber(
        topic: &str,
        opts: &SubscribeOptions,
        unique: &str,
        fifo: bool,
        visibility_timeout_secs: f64,
        dead_letter_exchange: &str,
        dead_letter_routing_key: &str,
    ) -> Self {
        match &opts.queue {
            Some(group) => {
                let mut spec = QueueSpec::new(
                    topic,
                    group,
                    fifo,
                    visibility_timeout_secs,
                    dead_letter_exchange,
                    dead_letter_routing_key,
                );
                spec.queue = group_queue_name(topic, group);
                spec.durable = opts.durable;
                spec.exclusive = opts.exclusive.unwrap_or(false);
                spec
            }
            None => QueueSpec {
                queue: fanout_queue_name(topic, unique),
                topic: topic.to_string(),
                fifo,
                visibility_timeout_secs,
                dead_letter_exchange: dead_letter_exchange.to_string(),
                dead_letter_routing_key: String::new(),
                durable: Some(opts.durable.unwrap_or(false)),
                exclusive: opts.exclusive.unwrap_or(true),
                auto_delete: Some(true),
                dead_letter: false,
            },
        }
    }

    /// Durable, given the adapter's `durable`.
    pub fn is_durable(&self, adapter_durable: bool) -> bool {
        self.durable.unwrap_or(adapter_durable)
    }

    /// Auto-delete, given the adapter's `durable`.
    pub fn is_auto_delete(&self, adapter_durable: bool) -> bool {
        self.auto_delete.unwrap_or(!self.is_durable(adapter_durable))
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
        if !self.dead_letter {
            return args;
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
    fn subscriber_queues() {
        let group = SubscribeOptions {
            queue: Some("billing".into()),
            ..Default::default()
        };
        let spec = QueueSpec::for_subscriber("order.created", &group, "u1", false, 900.0, "x.dlq", "dlq");
        // a group is named and declared like a step of that name
        assert_eq!(
            spec,
            QueueSpec::new("order.created", "billing", false, 900.0, "x.dlq", "dlq")
        );
        assert_eq!(spec.queue, "motia.order.created.billing");
        assert!(spec.is_durable(true) && !spec.is_auto_delete(true) && !spec.exclusive);
        let opts = SubscribeOptions {
            queue: Some("billing".into()),
            exclusive: Some(true),
            durable: Some(false),
        };
        let spec = QueueSpec::for_subscriber("t", &opts, "u1", false, 900.0, "x.dlq", "dlq");
        assert!(!spec.is_durable(true) && spec.is_auto_delete(true) && spec.exclusive);

        let fan = QueueSpec::for_subscriber("t", &SubscribeOptions::default(), "u1", false, 900.0, "x.dlq", "dlq");
        assert_eq!(fan.queue, "motia.t.fanout.u1");
        assert!(!fan.is_durable(true) && fan.is_auto_delete(true) && fan.exclusive && !fan.dead_letter);
        let args = fan.arguments();
        assert!(args.inner().get("x-dead-letter-exchange").is_none());
        assert_eq!(
            args.inner().get("x-consumer-timeout"),
            Some(&AMQPValue::LongInt(900_000))
        );
        let durable_fan = SubscribeOptions {
            durable: Some(true),
            exclusive: Some(false),
            ..Default::default()
        };
        let fan = QueueSpec::for_subscriber("t", &durable_fan, "u2", false, 0.0, "x.dlq", "dlq");
        assert!(fan.is_durable(false) && fan.is_auto_delete(false) && !fan.exclusive);
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
