//! One idempotent producer and one consumer per subscription (consumer group `${groupId}.${stepName}`).
//!
//! - `publish` creates missing topics once, enqueues in call order and resolves each event on its delivery
//!   report (`acks=all`, idempotence on). A message that is not delivered within `publishTimeout` fails with
//!   `MOTIA_TIMEOUT`.
//! - Consumers never auto-store offsets: an offset is stored only when every earlier message of its
//!   partition was acked or dead-lettered (`OffsetTracker`); librdkafka commits stored offsets every second,
//!   on rebalance and on close. So a crash redelivers what was not finished (at-least-once).
//! - A dead-lettered message is produced to `${topic}.${stepName}.dlq` (with `x-retry-count` and its origin
//!   in headers) before its offset may be committed.
//!
//! [`KafkaClient`] is the one type the bindings use; its methods live with their concern: `producer`
//! (producing and renewing the producer), `admin` (topics), `consumer` (subscriptions) and
//! `settle` (offsets and dead letters).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureProducer;
use rdkafka::util::Timeout;
use tokio::time::Instant;

use super::config::KafkaConfig;
use super::consumer::KafkaSub;
use super::error::classify;
use crate::core::events::{Log, Turnstile};
use crate::core::sync::LockExt;
use crate::error::Result;

/// A Kafka adapter's producer, admin client and subscriptions (see the module docs).
pub struct KafkaClient {
    pub(super) config: KafkaConfig,
    /// Replaced when librdkafka reports a fatal error (e.g. the idempotent producer's state was lost
    /// with a broker's data): a fatal producer never delivers again.
    pub(super) producer: std::sync::RwLock<Arc<FutureProducer>>,
    pub(super) admin: AdminClient<DefaultClientContext>,
    pub(super) known_topics: Mutex<HashSet<String>>,
    pub(super) subs: Mutex<HashMap<u32, Arc<KafkaSub>>>,
    pub(super) next_sub: AtomicU32,
    pub(super) closed: AtomicBool,
    pub(super) turn: Turnstile,
    pub(super) dead_letters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(super) producer_renewed: Mutex<Option<Instant>>,
    pub(super) log: Log,
}

impl KafkaClient {
    pub fn new(config: KafkaConfig) -> Result<Arc<Self>> {
        let producer = Self::make_producer(&config)?;
        let admin: AdminClient<DefaultClientContext> = config.client_config().create().map_err(|e| classify(&e))?;
        Ok(Arc::new(KafkaClient {
            config,
            producer: std::sync::RwLock::new(Arc::new(producer)),
            admin,
            known_topics: Mutex::new(HashSet::new()),
            subs: Mutex::new(HashMap::new()),
            next_sub: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            turn: Turnstile::default(),
            dead_letters: Mutex::new(Vec::new()),
            producer_renewed: Mutex::new(None),
            log: Log::new("kafka"),
        }))
    }

    /// This client's log (the binding points it at the adapter's logger).
    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Removes every subscription and flushes the producer (bounded by `publishTimeout`).
    pub async fn shutdown(self: &Arc<Self>) {
        self.closed.store(true, Ordering::SeqCst);
        let ids: Vec<u32> = self.subs.lock_ok().keys().copied().collect();
        for id in ids {
            self.remove(id).await;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            let _ = me.producer().flush(Timeout::After(Duration::from_millis(
                me.config.publish_timeout.min(10_000),
            )));
        })
        .await;
    }
}
