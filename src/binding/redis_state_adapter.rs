//! Native half of `RedisStateAdapter` (the JS class in `lib/state.js` batches calls into this).

use std::sync::Arc;

use napi_derive::napi;

use super::guard::{run, run_sync};
use crate::core::filter::StateFilter;
use crate::core::redis::connection::{RedisConnectionConfig, RedisHandle};
use crate::core::redis::state::RedisState;
use crate::error::AdapterError;

/// Internal: the native state store behind `RedisStateAdapter`. Use `RedisStateAdapter` instead.
#[napi]
pub struct NativeRedisState {
    inner: Arc<RedisState>,
}

#[napi]
impl NativeRedisState {
    /// `connection` is the normalised connection JSON built by `lib/config.js`.
    #[napi(constructor)]
    pub fn new(connection: String, key_prefix: String, ttl: Option<u32>) -> napi::Result<Self> {
        run_sync(|| {
            let config = RedisConnectionConfig::from_json(&connection)?;
            let handle = Arc::new(RedisHandle::new(&config)?);
            Ok(NativeRedisState {
                inner: Arc::new(RedisState::new(handle, key_prefix, ttl.map(u64::from))),
            })
        })
    }

    /// Opens the connection in the background so the first call does not pay for it.
    #[napi]
    pub fn warm_up(&self) {
        super::guard::warm_up(self.inner.redis().clone());
    }

    /// Coalesced get/set/delete/exists calls; see `core::redis::state::RedisState::batch`.
    #[napi]
    pub async fn batch(
        &self,
        kinds: Vec<u32>,
        trace_ids: Vec<String>,
        keys: Vec<String>,
        values: Vec<String>,
    ) -> napi::Result<String> {
        run(self.inner.batch(&kinds, &trace_ids, &keys, &values)).await
    }

    #[napi]
    pub async fn get_many(&self, trace_id: String, keys: Vec<String>) -> napi::Result<String> {
        run(self.inner.get_many(&trace_id, &keys)).await
    }

    #[napi]
    pub async fn set_many(&self, trace_id: String, keys: Vec<String>, values: Vec<String>) -> napi::Result<()> {
        run(self.inner.set_many(&trace_id, &keys, &values)).await
    }

    #[napi]
    pub async fn get_group(&self, trace_id: String) -> napi::Result<String> {
        run(self.inner.get_group(&trace_id)).await
    }

    #[napi]
    pub async fn clear(&self, trace_id: String) -> napi::Result<()> {
        run(self.inner.clear(&trace_id)).await
    }

    #[napi]
    pub async fn keys(&self, trace_id: String) -> napi::Result<Vec<String>> {
        run(self.inner.keys(&trace_id)).await
    }

    #[napi]
    pub async fn trace_ids(&self) -> napi::Result<Vec<String>> {
        run(self.inner.trace_ids()).await
    }

    /// `filters` is the JSON text of a `StateFilter[]` (or empty).
    #[napi]
    pub async fn items(&self, group_id: Option<String>, filters: Option<String>) -> napi::Result<String> {
        run(async {
            let filters: Vec<StateFilter> = match filters.as_deref() {
                None | Some("") => Vec::new(),
                Some(text) => serde_json::from_str(text).map_err(|e| AdapterError::config("filter", e.to_string()))?,
            };
            self.inner.items(group_id.as_deref(), &filters).await
        })
        .await
    }

    #[napi]
    pub async fn ping(&self) -> napi::Result<bool> {
        run(self.inner.redis().ping()).await
    }

    /// Closes the connection; later calls reject with `MOTIA_CLOSED`.
    #[napi]
    pub fn close(&self) {
        self.inner.redis().close();
    }
}

super::redis_class_common!(NativeRedisState);
