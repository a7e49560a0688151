//! Native half of `PostgresCronAdapter` (JS class in `lib/cron.js`).

use std::sync::Arc;

use napi_derive::napi;

use super::cron_common as common;
use super::guard::run_sync;
use crate::core::cron_lock::TickTracker;
use crate::core::postgres::cron::PgCronLocks;
use crate::core::postgres::tls::PgSslOptions;

/// Internal: the `ssl` option as the JS class passes it (PEM text already joined).
#[napi(object)]
pub struct NativePgSsl {
    pub ca: Option<String>,
    pub reject_unauthorized: Option<bool>,
}

/// Internal: the native lock store behind `PostgresCronAdapter`. Use `PostgresCronAdapter` instead.
#[napi]
pub struct NativePostgresCron {
    inner: Arc<PgCronLocks>,
    ticks: TickTracker,
}

#[napi]
impl NativePostgresCron {
    #[napi(constructor)]
    pub fn new(
        connection_string: String,
        table_name: String,
        instance_id: String,
        release_guard_ms: f64,
        ssl: Option<NativePgSsl>,
    ) -> napi::Result<Self> {
        run_sync(|| {
            let guard = common::guard_ms(release_guard_ms);
            let ssl = ssl.map(|o| PgSslOptions {
                ca: o.ca,
                reject_unauthorized: o.reject_unauthorized,
            });
            Ok(NativePostgresCron {
                inner: Arc::new(PgCronLocks::new(
                    &connection_string,
                    ssl.as_ref(),
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
