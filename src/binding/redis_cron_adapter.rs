//! Native half of `RedisCronAdapter` (JS class in `lib/cron.js`).

use std::sync::Arc;

use napi_derive::napi;

use super::cron_common as common;
use super::guard::run_sync;
use crate::core::cron_lock::TickTracker;
use crate::core::redis::connection::{RedisConnectionConfig, RedisHandle};
use crate::core::redis::cron::RedisCronLocks;

/// Internal: the native lock store behind `RedisCronAdapter`. Use `RedisCronAdapter` instead.
#[napi]
pub struct NativeRedisCron {
    inner: Arc<RedisCronLocks>,
    ticks: Arc<TickTracker>,
}

impl NativeRedisCron {
    /// The lock store and tick tracker, shared with the event-loop companion (`redis_cron_loop`).
    pub(crate) fn shared(&self) -> (Arc<RedisCronLocks>, Arc<TickTracker>) {
        (self.inner.clone(), self.ticks.clone())
    }
}

#[napi]
impl NativeRedisCron {
    #[napi(constructor)]
    pub fn new(
        connection: String,
        key_prefix: String,
        instance_id: String,
        release_guard_ms: f64,
    ) -> napi::Result<Self> {
        run_sync(|| {
            let config = RedisConnectionConfig::from_json(&connection)?;
            let handle = Arc::new(RedisHandle::new(&config)?);
            let guard = common::guard_ms(release_guard_ms);
            Ok(NativeRedisCron {
                inner: Arc::new(RedisCronLocks::new(handle, key_prefix, instance_id, guard)),
                ticks: Arc::new(TickTracker::default()),
            })
        })
    }

    /// One acquisition attempt for a tick: `scheduledAt` when the caller knows it, else estimated
    /// from `calledAt` (ms since the epoch, the caller's clock).
    #[napi]
    pub async fn try_acquire(
        &self,
        job_name: String,
        ttl: f64,
        called_at: f64,
        scheduled_at: Option<f64>,
    ) -> napi::Result<common::AcquireResult> {
        common::try_acquire(&*self.inner, &self.ticks, job_name, ttl, called_at, scheduled_at).await
    }

    #[napi]
    pub async fn release(&self, lock: String) -> napi::Result<bool> {
        common::release(&*self.inner, lock).await
    }

    #[napi]
    pub async fn renew(&self, lock: String, ttl: f64) -> napi::Result<bool> {
        common::renew(&*self.inner, lock, ttl).await
    }

    #[napi]
    pub async fn active_locks(&self) -> napi::Result<String> {
        common::active_locks(&*self.inner).await
    }

    #[napi]
    pub async fn ping(&self) -> napi::Result<bool> {
        common::ping(&*self.inner).await
    }

    /// Deletes this instance's unreleased locks and closes the connection.
    #[napi]
    pub async fn shutdown(&self) -> napi::Result<()> {
        common::shutdown(&*self.inner).await
    }
}

super::redis_class_common!(NativeRedisCron);
