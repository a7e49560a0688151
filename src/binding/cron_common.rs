//! The methods both native cron classes expose, written once over `core::cron_lock::CronLocks`.

use super::guard::run;
use crate::core::cron_lock::{check_ttl, CronLock, CronLocks};

pub async fn try_acquire<L: CronLocks>(l: &L, job_name: String, ttl: f64) -> napi::Result<Option<String>> {
    run(async {
        let ttl = check_ttl(ttl, "ttl")?;
        Ok(l.try_acquire(&job_name, ttl).await?.map(|lock| lock.to_json()))
    })
    .await
}

pub async fn release<L: CronLocks>(l: &L, lock: String) -> napi::Result<bool> {
    run(async { l.release(&CronLock::from_json(&lock)?).await }).await
}

pub async fn renew<L: CronLocks>(l: &L, lock: String, ttl: f64) -> napi::Result<bool> {
    run(async {
        let ttl = check_ttl(ttl, "ttl")?;
        l.renew(&CronLock::from_json(&lock)?, ttl).await
    })
    .await
}

pub async fn active_locks<L: CronLocks>(l: &L) -> napi::Result<String> {
    run(l.active_locks()).await
}

pub async fn ping<L: CronLocks>(l: &L) -> napi::Result<bool> {
    run(l.ping()).await
}

pub async fn shutdown<L: CronLocks>(l: &L) -> napi::Result<()> {
    run(l.shutdown()).await
}

/// The release guard option (ms) as a number of milliseconds, 0 when unset or not positive.
pub fn guard_ms(release_guard_ms: f64) -> u64 {
    if release_guard_ms.is_finite() && release_guard_ms > 0.0 {
        release_guard_ms as u64
    } else {
        0
    }
}
