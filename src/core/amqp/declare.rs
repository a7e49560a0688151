//! Topology declared on the broker: a step's dead-letter exchange and queue, its queue and their bindings.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};

use super::client::AmqpClient;
use super::topology::QueueSpec;
use crate::core::sync::LockExt;

impl AmqpClient {
    /// Declares a step's dead-letter exchange and queue and its queue with their bindings, as upstream does.
    pub(super) async fn declare(&self, ch: &Channel, spec: &QueueSpec) -> std::result::Result<(), lapin::Error> {
        let cfg = &self.config;
        if spec.dead_letter {
            ch.exchange_declare(
                ShortString::from(cfg.dead_letter_exchange.as_str()),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: cfg.durable,
                    auto_delete: cfg.auto_delete,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            let dlq = spec.dead_letter_queue();
            // the dead-letter queue keeps the adapter's durability (as upstream), whatever the queue's
            let dlq_opts = QueueDeclareOptions {
                durable: cfg.durable,
                exclusive: false,
                auto_delete: !cfg.durable,
                ..Default::default()
            };
            ch.queue_declare(ShortString::from(dlq.as_str()), dlq_opts, FieldTable::default())
                .await?;
            ch.queue_bind(
                ShortString::from(dlq.as_str()),
                ShortString::from(cfg.dead_letter_exchange.as_str()),
                ShortString::from(spec.dead_letter_routing_key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        let queue_opts = QueueDeclareOptions {
            durable: spec.is_durable(cfg.durable),
            exclusive: spec.exclusive,
            auto_delete: spec.is_auto_delete(cfg.durable),
            ..Default::default()
        };
        ch.queue_declare(ShortString::from(spec.queue.as_str()), queue_opts, spec.arguments())
            .await?;
        ch.queue_bind(
            ShortString::from(spec.queue.as_str()),
            ShortString::from(cfg.exchange_name.as_str()),
            ShortString::from(spec.topic.as_str()),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    }

    /// After (re)connecting and before publishing anything: the queues of every local subscription exist, so
    /// an event emitted during an outage is routed even if its consumer's channel is not open yet.
    pub(super) async fn declare_all(&self, conn: &Connection) {
        let specs: Vec<QueueSpec> = self.subs.lock_ok().values().map(|s| s.spec.clone()).collect();
        let mut ch: Option<Channel> = None;
        for spec in specs {
            if ch.as_ref().map(|c| !c.status().connected()).unwrap_or(true) {
                ch = conn.create_channel().await.ok();
            }
            let Some(c) = ch.as_ref() else { return };
            // a conflict (406) closes this channel; the subscription's own task reports it
            let _ = self.declare(c, &spec).await;
        }
        if let Some(c) = ch {
            let _ = c.close(200, ShortString::from("declared")).await;
        }
    }
}
