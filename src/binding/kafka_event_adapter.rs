//! Native half of `KafkaEventAdapter` (JS class in `lib/kafka.js`, event semantics in `lib/events.js`).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Function;
use napi_derive::napi;

use super::events_common::{deliver, delivery_callback, route_log, NativeLag, NativeSubscription, OnDeliveries};
use super::guard::{run, run_sync};
use crate::core::events::{encode_results, settle_rows, Outcome};
use crate::core::kafka::client::KafkaClient;
use crate::core::kafka::config::KafkaConfig;
use crate::core::kafka::producer::Row;
use crate::error::AdapterError;

/// Internal: an idempotent producer and one consumer per subscription.
#[napi]
pub struct NativeKafka {
    client: Arc<KafkaClient>,
    on_deliveries: Arc<OnDeliveries>,
}

#[napi]
impl NativeKafka {
    /// `config` is the JSON of the normalised adapter config; `on_deliveries([subscriptionId, 0, json])`
    /// receives batches of messages (weak: never keeps Node alive).
    #[allow(clippy::type_complexity)] // the napi callback signatures, spelled out for the typings
    #[napi(constructor)]
    pub fn new(
        config: String,
        on_deliveries: Function<(u32, u32, String), ()>,
        on_log: Option<Function<(u32, String, Option<String>), ()>>,
    ) -> napi::Result<Self> {
        let on_deliveries = delivery_callback(on_deliveries)?;
        let native = run_sync(move || {
            let config = KafkaConfig::from_json(&config)?;
            let client = napi::bindgen_prelude::within_runtime_if_available(|| KafkaClient::new(config))?;
            Ok(NativeKafka { client, on_deliveries })
        })?;
        route_log(native.client.log(), on_log)?;
        Ok(native)
    }

    /// Produces rows `(topic, key or "", body, timestampMs)` as batch `seq` (0, 1, 2… in call order);
    /// resolves a JSON array with `[0,null]` per delivered message or `[1, code, message]`.
    #[napi]
    pub async fn publish(
        &self,
        seq: f64,
        topics: Vec<String>,
        keys: Vec<String>,
        bodies: Vec<String>,
        timestamps: Vec<f64>,
    ) -> napi::Result<String> {
        run(async {
            let n = topics.len();
            if keys.len() != n || bodies.len() != n || timestamps.len() != n {
                return Err(AdapterError::Internal("publish arrays differ in length".into()));
            }
            let rows: Vec<Row<'_>> = (0..n)
                .map(|i| Row {
                    topic: &topics[i],
                    key: if keys[i].is_empty() {
                        None
                    } else {
                        Some(keys[i].as_str())
                    },
                    body: &bodies[i],
                    timestamp: timestamps[i] as i64,
                })
                .collect();
            let results = self.client.publish(seq as u64, &rows).await;
            Ok(encode_results(&results))
        })
        .await
    }

    /// Starts the consumer of group `${groupId}.${stepName}` on `topic`; returns the subscription id at once.
    /// At most `limit` messages are unsettled at a time.
    #[napi]
    pub fn subscribe(&self, topic: String, step_name: String, limit: u32) -> napi::Result<u32> {
        run_sync(|| {
            let deliver = deliver(&self.on_deliveries);
            let client = self.client.clone();
            napi::bindgen_prelude::within_runtime_if_available(move || {
                client.subscribe(&topic, &step_name, limit, deliver)
            })
        })
    }

    /// RFC form: group `${groupId}.${queue}` with `queue`, else a fresh fan-out group `${groupId}.fanout.${uuid}`
    /// that starts at the end of the topic. Returns the id and the group at once.
    #[napi]
    pub fn subscribe_group(
        &self,
        topic: String,
        queue: Option<String>,
        limit: u32,
    ) -> napi::Result<NativeSubscription> {
        run_sync(|| {
            let deliver = deliver(&self.on_deliveries);
            let client = self.client.clone();
            let (id, name) = napi::bindgen_prelude::within_runtime_if_available(move || {
                client.subscribe_group(&topic, queue.as_deref(), limit, deliver)
            })?;
            Ok(NativeSubscription { id, name })
        })
    }

    /// The subscription's backlog as the broker tells it.
    #[napi]
    pub async fn lag(&self, id: u32) -> napi::Result<NativeLag> {
        run(async { Ok(self.client.lag(id).await?.into()) }).await
    }

    /// `null` once partitions are assigned; the error text while still trying; rejects on a permanent error.
    #[napi]
    pub async fn wait_ready(&self, id: u32, timeout_ms: f64) -> napi::Result<Option<String>> {
        run(async {
            let r = self
                .client
                .wait_ready(id, Duration::from_millis(timeout_ms.max(0.0) as u64))
                .await?;
            Ok(r.map(|e| e.js_message()))
        })
        .await
    }

    /// Rows `(subscriptionId, generation (unused), token, outcome)`; outcome 0 ack, 1 dead-letter, 2 leave
    /// uncommitted. Acks are applied before this returns.
    #[napi]
    pub fn settle(
        &self,
        subs: Vec<u32>,
        generations: Vec<u32>,
        tokens: Vec<f64>,
        outcomes: Vec<u32>,
    ) -> napi::Result<()> {
        run_sync(|| {
            let rows: Vec<(u32, u64, Outcome)> = settle_rows(&subs, &generations, &tokens, &outcomes)?
                .into_iter()
                .map(|(sub, _, token, outcome)| (sub, token, outcome))
                .collect();
            let client = self.client.clone();
            napi::bindgen_prelude::within_runtime_if_available(move || client.settle(&rows));
            Ok(())
        })
    }

    #[napi]
    pub fn stop(&self, id: u32) {
        self.client.stop(id);
    }

    /// Commits what was handled, leaves the group.
    #[napi]
    pub async fn remove(&self, id: u32) -> napi::Result<()> {
        run(async {
            self.client.remove(id).await;
            Ok(())
        })
        .await
    }

    /// Whether the brokers answer a metadata request within `timeout_ms`.
    #[napi]
    pub async fn ping(&self, timeout_ms: f64) -> bool {
        self.client
            .ping(std::time::Duration::from_millis(timeout_ms.clamp(1.0, 60_000.0) as u64))
            .await
    }

    #[napi]
    pub async fn shutdown(&self) -> napi::Result<()> {
        run(async {
            self.client.shutdown().await;
            Ok(())
        })
        .await
    }
}
