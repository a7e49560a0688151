//! Native half of `RabbitMQEventAdapter` (JS class in `lib/rabbitmq.js`, event semantics in `lib/events.js`).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Function;
use napi_derive::napi;

use super::events_common::{deliver, delivery_callback, route_log, NativeLag, NativeSubscription, OnDeliveries};
use super::guard::{run, run_sync};
use crate::core::amqp::client::AmqpClient;
use crate::core::amqp::config::AmqpConfig;
use crate::core::amqp::topology::{QueueSpec, SubscribeOptions};
use crate::core::events::{encode_results, settle_rows};
use crate::error::AdapterError;

/// Internal: one supervised RabbitMQ connection with its consumers.
#[napi]
pub struct NativeRabbitMQ {
    client: Arc<AmqpClient>,
    on_deliveries: Arc<OnDeliveries>,
}

#[napi]
impl NativeRabbitMQ {
    /// `config` is the JSON of the normalised adapter config. `on_deliveries([subscriptionId, generation,
    /// json])` receives batches of deliveries (weak: never keeps Node alive).
    #[allow(clippy::type_complexity)] // the napi callback signatures, spelled out for the typings
    #[napi(constructor)]
    pub fn new(
        config: String,
        on_deliveries: Function<(u32, u32, String), ()>,
        on_log: Option<Function<(u32, String, Option<String>), ()>>,
    ) -> napi::Result<Self> {
        let on_deliveries = delivery_callback(on_deliveries)?;
        let native = run_sync(move || {
            let config = AmqpConfig::from_json(&config)?;
            // The supervisor task needs the runtime: start it from inside it.
            let client = napi::bindgen_prelude::within_runtime_if_available(|| AmqpClient::start(config));
            Ok(NativeRabbitMQ { client, on_deliveries })
        })?;
        route_log(native.client.log(), on_log)?;
        Ok(native)
    }

    /// Publishes rows `(topic, body, timestampMs)` as batch number `seq` (0, 1, 2… in call order); resolves a JSON array with `[0,null]` per confirmed
    /// message or `[1, code, message]`.
    #[napi]
    pub async fn publish(
        &self,
        seq: f64,
        topics: Vec<String>,
        bodies: Vec<String>,
        timestamps: Vec<f64>,
    ) -> napi::Result<String> {
        run(async {
            if topics.len() != bodies.len() || topics.len() != timestamps.len() {
                return Err(AdapterError::Internal("publish arrays differ in length".into()));
            }
            let rows: Vec<(&str, &str, u64)> = (0..topics.len())
                .map(|i| (topics[i].as_str(), bodies[i].as_str(), timestamps[i].max(0.0) as u64))
                .collect();
            let results = self.client.publish(seq as u64, &rows).await;
            Ok(encode_results(&results))
        })
        .await
    }

    /// Starts consuming `motia.${topic}.${stepName}`; returns the subscription id at once.
    #[napi]
    pub fn subscribe(
        &self,
        topic: String,
        step_name: String,
        fifo: bool,
        visibility_timeout: f64,
        prefetch: u32,
    ) -> napi::Result<u32> {
        run_sync(|| {
            let cfg = self.client_config();
            let spec = QueueSpec::new(&topic, &step_name, fifo, visibility_timeout, &cfg.0, &cfg.1);
            let deliver = deliver(&self.on_deliveries);
            let client = self.client.clone();
            napi::bindgen_prelude::within_runtime_if_available(move || {
                client.subscribe(spec, prefetch.clamp(1, u32::from(u16::MAX)) as u16, deliver)
            })
        })
    }

    /// RFC form: consumes from the queue of group `queue` (`motia.${topic}.${queue}`), or without `queue` from a
    /// fresh exclusive auto-delete queue `motia.${topic}.fanout.${uuid}` (fan-out). Returns the id and queue at once.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe_queue(
        &self,
        topic: String,
        queue: Option<String>,
        exclusive: Option<bool>,
        durable: Option<bool>,
        fifo: bool,
        visibility_timeout: f64,
        prefetch: u32,
    ) -> napi::Result<NativeSubscription> {
        run_sync(|| {
            let cfg = self.client_config();
            let opts = SubscribeOptions {
                queue,
                exclusive,
                durable,
            };
            let unique = uuid::Uuid::new_v4().to_string();
            let spec = QueueSpec::for_subscriber(&topic, &opts, &unique, fifo, visibility_timeout, &cfg.0, &cfg.1);
            let name = spec.queue.clone();
            let deliver = deliver(&self.on_deliveries);
            let client = self.client.clone();
            let id = napi::bindgen_prelude::within_runtime_if_available(move || {
                client.subscribe(spec, prefetch.clamp(1, u32::from(u16::MAX)) as u16, deliver)
            })?;
            Ok(NativeSubscription { id, name })
        })
    }

    /// The subscription's backlog as the broker tells it.
    #[napi]
    pub async fn lag(&self, id: u32) -> napi::Result<NativeLag> {
        run(async { Ok(self.client.lag(id).await?.into()) }).await
    }

    /// Resolves `null` once consuming, the error text while the broker is still unreachable (the
    /// subscription keeps trying), and rejects on a permanent error (credentials, 406 topology conflict).
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

    /// Rows `(subscriptionId, generation, deliveryTag, outcome)`; outcome 0 ack, 1 dead-letter, 2 requeue.
    /// Returns at once (no promise round trip on the hot path); `settled()` waits for what was queued.
    #[napi]
    pub fn settle(
        &self,
        subs: Vec<u32>,
        generations: Vec<u32>,
        tags: Vec<f64>,
        outcomes: Vec<u32>,
    ) -> napi::Result<()> {
        run_sync(|| {
            self.client
                .settle_later(settle_rows(&subs, &generations, &tags, &outcomes)?);
            Ok(())
        })
    }

    /// Resolves when every settle queued so far has been handed to the broker.
    #[napi]
    pub async fn settled(&self) -> napi::Result<()> {
        run(async {
            self.client.settled().await;
            Ok(())
        })
        .await
    }

    /// Stops deliveries to a subscription; in-flight deliveries can still be settled.
    #[napi]
    pub fn stop(&self, id: u32) {
        self.client.stop(id);
    }

    /// Removes a subscription and closes its channel.
    #[napi]
    pub async fn remove(&self, id: u32) -> napi::Result<()> {
        run(async {
            self.client.remove(id).await;
            Ok(())
        })
        .await
    }

    #[napi]
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Closes every channel and the connection; the supervisor stops reconnecting.
    #[napi]
    pub async fn shutdown(&self) -> napi::Result<()> {
        run(async {
            self.client.shutdown().await;
            Ok(())
        })
        .await
    }
}

impl NativeRabbitMQ {
    fn client_config(&self) -> (String, String) {
        let c = self.client.config();
        (c.dead_letter_exchange.clone(), c.dead_letter_routing_key.clone())
    }
}
