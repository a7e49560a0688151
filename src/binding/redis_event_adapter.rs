//! Native half of `RedisEventAdapter` (JS class in `lib/redis-events.js`, event semantics in `lib/events.js`).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Function;
use napi_derive::napi;

use super::events_common::{deliver, delivery_callback, route_log, NativeLag, NativeSubscription, OnDeliveries};
use super::guard::{run, run_sync};
use crate::core::events::{encode_results, settle_rows};
use crate::core::redis::connection::{RedisConnectionConfig, RedisHandle};
use crate::core::redis::events::{Membership, RedisEvents, SubSpec};
use crate::error::AdapterError;

/// Internal: one Redis connection for emits and settles, one blocking reader per subscription.
#[napi]
pub struct NativeRedisEvents {
    inner: Arc<RedisEvents>,
    on_deliveries: Arc<OnDeliveries>,
}

/// How a subscription consumes (the JS side normalised and validated it).
#[napi(object)]
pub struct NativeRedisSubscribe {
    pub topic: String,
    /// The step, or the RFC queue; `None`: an RFC fan-out subscriber (a fresh name is made up).
    pub name: Option<String>,
    pub fifo: bool,
    pub visibility_timeout_s: f64,
    pub limit: u32,
    pub max_deliveries: u32,
}

#[napi]
impl NativeRedisEvents {
    /// `connection`: the normalised connection JSON; `on_deliveries([subscriptionId, 0, json])` receives
    /// batches (weak: never keeps Node alive).
    #[allow(clippy::type_complexity)] // the napi callback signatures, spelled out for the typings
    #[napi(constructor)]
    pub fn new(
        connection: String,
        key_prefix: String,
        on_deliveries: Function<(u32, u32, String), ()>,
        on_log: Option<Function<(u32, String, Option<String>), ()>>,
    ) -> napi::Result<Self> {
        let on_deliveries = delivery_callback(on_deliveries)?;
        let native = run_sync(move || {
            let config = RedisConnectionConfig::from_json(&connection)?;
            let handle = Arc::new(RedisHandle::new(&config)?);
            Ok(NativeRedisEvents {
                inner: RedisEvents::new(handle, key_prefix),
                on_deliveries,
            })
        })?;
        route_log(native.inner.log(), on_log)?;
        Ok(native)
    }

    /// Emits rows `(topic, body)`; resolves a JSON array with `[0,null]` per event Redis has, or `[1, code, message]`.
    #[napi]
    pub async fn publish(&self, topics: Vec<String>, bodies: Vec<String>) -> napi::Result<String> {
        run(async {
            if topics.len() != bodies.len() {
                return Err(AdapterError::Internal("publish arrays differ in length".into()));
            }
            let rows: Vec<(&str, &str)> = topics
                .iter()
                .map(String::as_str)
                .zip(bodies.iter().map(String::as_str))
                .collect();
            Ok(encode_results(&self.inner.publish(&rows).await))
        })
        .await
    }

    /// Starts a consumer; returns its id and stream name at once.
    #[napi]
    pub fn subscribe(&self, spec: NativeRedisSubscribe) -> napi::Result<NativeSubscription> {
        run_sync(|| {
            let (name, membership) = match spec.name {
                Some(n) => (n, Membership::Step),
                None => (format!("fanout.{}", uuid::Uuid::new_v4()), Membership::Fanout),
            };
            let spec = SubSpec {
                topic: spec.topic,
                name,
                membership,
                limit: spec.limit,
                fifo: spec.fifo,
                visibility: Duration::from_secs_f64(spec.visibility_timeout_s.clamp(0.1, 86_400.0 * 365.0)),
                max_deliveries: spec.max_deliveries.max(1),
            };
            let name = spec.name.clone();
            let deliver = deliver(&self.on_deliveries);
            let inner = self.inner.clone();
            let id = napi::bindgen_prelude::within_runtime_if_available(move || inner.subscribe(spec, deliver))?;
            Ok(NativeSubscription { id, name })
        })
    }

    /// The subscription's backlog as the broker tells it.
    #[napi]
    pub async fn lag(&self, id: u32) -> napi::Result<NativeLag> {
        run(async { Ok(self.inner.lag(id).await?.into()) }).await
    }

    /// `null` once consuming; the error text while still trying; rejects on a permanent error.
    #[napi]
    pub async fn wait_ready(&self, id: u32, timeout_ms: f64) -> napi::Result<Option<String>> {
        run(async {
            let r = self
                .inner
                .wait_ready(id, Duration::from_millis(timeout_ms.max(0.0) as u64))
                .await?;
            Ok(r.map(|e| e.js_message()))
        })
        .await
    }

    /// Rows `(subscriptionId, generation (unused), tag, outcome, note)`; `note` carries a dead letter's
    /// `{attempts, reason}` JSON. Written in the background (see `settled`).
    #[napi]
    pub fn settle(
        &self,
        subs: Vec<u32>,
        generations: Vec<u32>,
        tags: Vec<f64>,
        outcomes: Vec<u32>,
        notes: Option<Vec<String>>,
    ) -> napi::Result<()> {
        run_sync(|| {
            let rows = settle_rows(&subs, &generations, &tags, &outcomes)?;
            let mut notes = notes.unwrap_or_default().into_iter();
            let rows = rows
                .into_iter()
                .map(|(sub, _, tag, outcome)| (sub, tag, outcome, notes.next().unwrap_or_default()))
                .collect();
            let inner = self.inner.clone();
            napi::bindgen_prelude::within_runtime_if_available(move || inner.settle(rows));
            Ok(())
        })
    }

    /// Resolves when every settle so far is written.
    #[napi]
    pub async fn settled(&self) -> napi::Result<()> {
        run(async {
            self.inner.settled().await;
            Ok(())
        })
        .await
    }

    #[napi]
    pub fn stop(&self, id: u32) {
        self.inner.stop(id);
    }

    #[napi]
    pub async fn remove(&self, id: u32) -> napi::Result<()> {
        run(async {
            self.inner.remove(id).await;
            Ok(())
        })
        .await
    }

    /// Topics with subscribers registered anywhere in the fleet, sorted.
    #[napi]
    pub async fn topics(&self) -> napi::Result<Vec<String>> {
        run(self.inner.topics()).await
    }

    /// `PING`; true when Redis answers.
    #[napi]
    pub async fn ping(&self) -> napi::Result<bool> {
        run(self.inner.redis().ping()).await
    }

    #[napi]
    pub async fn shutdown(&self) -> napi::Result<()> {
        run(async {
            self.inner.shutdown().await;
            Ok(())
        })
        .await
    }
}

super::redis_class_common!(NativeRedisEvents);
