//! Native half of `RedisCronAdapter` (JS class in `lib/cron.js`).

use std::sync::Arc;

use napi_derive::napi;

use super::guard::{run, run_sync};
use crate::core::cron_lock::check_ttl;
use crate::core::redis::connection::{RedisConnectionConfig, RedisHandle};
use crate::core::redis::cron::{parse_lock, RedisCronLocks};

/// Internal: the native lock store behind `RedisCronAdapter`. Use `RedisCronAdapter` instead.
#[napi]
pub struct NativeRedisCron {
    inner: Arc<RedisCronLocks>,
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
            let guard = if release_guard_ms.is_finite() && release_guard_ms > 0.0 {
                release_guard_ms as u64
            } else {
                0
            };
            Ok(NativeRedisCron {
                inner: Arc::new(RedisCronLocks::new(handle, key_prefix, instance_id, guard)),
            })
        })
    }

    /// One acquisition attempt; the lock JSON, or null when another holder has it.
    #[napi]
    pub async fn try_acquire(&self, job_name: String, ttl: f64) -> napi::Result<Option<String>> {
        run(async {
            let ttl = check_ttl(ttl, "ttl")?;
            Ok(self.inner.try_acquire(&job_name, ttl).await?.map(|l| l.to_json()))
        })
        .await
    }

    #[napi]
    pub async fn release(&self, lock: String) -> napi::Result<bool> {
        run(async { self.inner.release(&parse_lock(&lock)?).await }).await
    }

    #[napi]
    pub async fn renew(&self, lock: String, ttl: f64) -> napi::Result<bool> {
        run(async {
            let ttl = check_ttl(ttl, "ttl")?;
            self.inner.renew(&parse_lock(&lock)?, ttl).await
        })
        .await
    }

    #[napi]
    pub async fn active_locks(&self) -> napi::Result<String> {
        run(self.inner.active_locks()).await
    }

    #[napi]
    pub async fn release_all_owned(&self) -> napi::Result<i64> {
        run(self.inner.release_all_owned()).await
    }

    #[napi]
    pub async fn ping(&self) -> napi::Result<bool> {
        run(self.inner.ping()).await
    }

    #[napi]
    pub fn close(&self) {
        self.inner.redis().close();
    }
}
