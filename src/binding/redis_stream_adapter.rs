//! Native half of `RedisStreamAdapterManager` / `RedisStreamAdapter` (JS classes in `lib/streams.js`).

use std::sync::Arc;

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::guard::{run, run_sync};
use crate::core::redis::connection::{RedisConnectionConfig, RedisHandle};
use crate::core::redis::pubsub::Subscriber;
use crate::core::redis::stream::{RedisStreams, StreamOp, StreamOpKind, StreamQuery};
use crate::error::AdapterError;

type OnMessage = ThreadsafeFunction<(String, String), (), (String, String), napi::Status, false, true>;

/// Internal: one connection + one pub/sub connection shared by every stream of a manager.
#[napi]
pub struct NativeRedisStreams {
    inner: Arc<RedisStreams>,
    subscriber: Arc<Subscriber>,
}

#[napi]
impl NativeRedisStreams {
    /// `on_message(channel, payload)` receives pub/sub messages (weak: never keeps Node alive).
    #[napi(constructor)]
    pub fn new(
        connection: String,
        key_prefix: String,
        on_message: Function<(String, String), ()>,
    ) -> napi::Result<Self> {
        let tsfn: OnMessage = on_message
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let tsfn = Arc::new(tsfn);
        run_sync(move || {
            let config = RedisConnectionConfig::from_json(&connection)?;
            let handle = Arc::new(RedisHandle::new(&config)?);
            let deliver = {
                let tsfn = tsfn.clone();
                Arc::new(move |channel: String, payload: String| {
                    tsfn.call((channel, payload), ThreadsafeFunctionCallMode::NonBlocking);
                })
            };
            let subscriber = Subscriber::new(handle.clone(), deliver);
            Ok(NativeRedisStreams {
                inner: Arc::new(RedisStreams::new(handle, key_prefix)),
                subscriber,
            })
        })
    }

    #[napi]
    pub fn warm_up(&self) {
        super::guard::warm_up(self.inner.redis().clone());
    }

    /// `PING`; true when Redis answers.
    #[napi]
    pub async fn ping(&self) -> napi::Result<bool> {
        run(self.inner.redis().ping()).await
    }

    /// Coalesced get/set/delete calls (kinds: 0 get, 1 set, 2 set filling `_createdAt`, 3 delete).
    #[napi]
    pub async fn batch(
        &self,
        kinds: Vec<u32>,
        streams: Vec<String>,
        groups: Vec<String>,
        ids: Vec<String>,
        payloads: Vec<String>,
        nows: Vec<f64>,
    ) -> napi::Result<String> {
        run(async {
            let n = kinds.len();
            if [streams.len(), groups.len(), ids.len(), payloads.len(), nows.len()]
                .iter()
                .any(|l| *l != n)
            {
                return Err(AdapterError::Internal("batch arrays differ in length".into()));
            }
            let mut ops = Vec::with_capacity(n);
            for i in 0..n {
                ops.push(StreamOp {
                    kind: StreamOpKind::from_code(kinds[i])?,
                    stream: &streams[i],
                    group: &groups[i],
                    id: &ids[i],
                    payload: &payloads[i],
                    now: nows[i] as i64,
                });
            }
            self.inner.batch(&ops).await
        })
        .await
    }

    #[napi]
    pub async fn get_group(&self, stream: String, group_id: String) -> napi::Result<String> {
        run(self.inner.get_group(&stream, &group_id)).await
    }

    /// `query` is the JSON of `{where, whereUndefined, orderBy, orderDirection, limit, offset}`.
    #[napi]
    pub async fn query(&self, stream: String, group_id: String, query: String) -> napi::Result<String> {
        run(async {
            let q: StreamQuery =
                serde_json::from_str(&query).map_err(|e| AdapterError::config("filter", e.to_string()))?;
            self.inner.query(&stream, &group_id, &q).await
        })
        .await
    }

    #[napi]
    pub async fn clear(&self, stream: String, group_id: String) -> napi::Result<()> {
        run(self.inner.clear(&stream, &group_id)).await
    }

    #[napi]
    pub async fn send(&self, stream: String, group_id: String, id: Option<String>, event: String) -> napi::Result<()> {
        run(self.inner.send(&stream, &group_id, id.as_deref(), &event)).await
    }

    #[napi]
    pub async fn subscribe(&self, channel: String) -> napi::Result<()> {
        let sub = self.subscriber.clone();
        run(async move { sub.subscribe(&channel).await }).await
    }

    #[napi]
    pub async fn unsubscribe(&self, channel: String) -> napi::Result<()> {
        run(self.subscriber.unsubscribe(&channel)).await
    }

    /// Closes the data and pub/sub connections.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.redis().close();
        self.subscriber.stop().await;
        Ok(())
    }
}

super::redis_class_common!(NativeRedisStreams);
