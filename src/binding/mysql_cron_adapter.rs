//! Native half of `MySqlCronAdapter` (JS class in `lib/cron.js`).

use std::sync::Arc;

use napi_derive::napi;

use super::cron_common as common;
use super::guard::run_sync;
use crate::core::cron_lock::TickTracker;
use crate::core::mysql::cron::MySqlCronLocks;

/// Internal: the native lock store behind `MySqlCronAdapter`. Use `MySqlCronAdapter` instead.
#[napi]
pub struct NativeMySqlCron {
    inner: Arc<MySqlCronLocks>,
    ticks: TickTracker,
}

#[napi]
impl NativeMySqlCron {
    #[napi(constructor)]
    pub fn new(
        connection_string: String,
        table_name: String,
        instance_id: String,
        release_guard_ms: f64,
    ) -> napi::Result<Self> {
        run_sync(|| {
            let guard = common::guard_ms(release_guard_ms);
            Ok(NativeMySqlCron {
                inner: Arc::new(MySqlCronLocks::new(
                    &connection_string,
                    &table_name,
                    instance_id,
                    guard,
                )?),
                ticks: TickTracker::default(),
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

    /// Frees this instance's held locks and closes the connection.
    #[napi]
    pub async fn shutdown(&self) -> napi::Result<()> {
        common::shutdown(&*self.inner).await
    }
}
