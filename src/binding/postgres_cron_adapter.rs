//! Native half of `PostgresCronAdapter` (JS class in `lib/cron.js`).

use std::sync::Arc;

use napi_derive::napi;

use super::guard::{run, run_sync};
use crate::core::cron_lock::check_ttl;
use crate::core::postgres::cron::PgCronLocks;
use crate::core::redis::cron::parse_lock;

/// Internal: the native lock store behind `PostgresCronAdapter`. Use `PostgresCronAdapter` instead.
#[napi]
pub struct NativePostgresCron {
    inner: Arc<PgCronLocks>,
}

#[napi]
impl NativePostgresCron {
    #[napi(constructor)]
    pub fn new(
        connection_string: String,
        table_name: String,
        instance_id: String,
        release_guard_ms: f64,
    ) -> napi::Result<Self> {
        run_sync(|| {
            let guard = if release_guard_ms.is_finite() && release_guard_ms > 0.0 {
                release_guard_ms as u64
            } else {
                0
            };
            Ok(NativePostgresCron {
                inner: Arc::new(PgCronLocks::new(&connection_string, &table_name, instance_id, guard)?),
            })
        })
    }

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
    pub async fn ping(&self) -> napi::Result<bool> {
        run(self.inner.ping()).await
    }

    /// Frees this instance's held locks and closes the connection.
    #[napi]
    pub async fn shutdown(&self) -> napi::Result<i64> {
        run(async { Ok(self.inner.shutdown().await? as i64) }).await
    }
}
