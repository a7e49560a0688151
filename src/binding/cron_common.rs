//! The methods the native cron classes expose, written once over `core::cron_lock::CronLocks`.

use super::guard::run;
use napi_derive::napi;

use crate::core::cron_lock::{check_time, check_ttl, Acquisition, CronLock, CronLocks, TickRequest, TickTracker};

/// What `tryAcquire` resolves to: the lock JSON when acquired; `skippedSince` (the running tick,
/// ms) when this call is the first of a tick skipped because the job is still running.
#[napi(object)]
pub struct AcquireResult {
    pub lock: Option<String>,
    pub skipped_since: Option<f64>,
}

/// One acquisition attempt for the tick `scheduled_at` (exact) or `called_at` (estimated; the
/// job's period is learned from these calls).
pub async fn try_acquire<L: CronLocks>(
    l: &L,
    ticks: &TickTracker,
    job_name: String,
    ttl: f64,
    called_at: f64,
    scheduled_at: Option<f64>,
) -> napi::Result<AcquireResult> {
    run(async {
        let ttl = check_ttl(ttl, "ttl")?;
        let called_at = check_time(called_at, "calledAt")?;
        let scheduled_at = scheduled_at.map(|t| check_time(t, "scheduledAt")).transpose()?;
        let mut tick = TickRequest::new(called_at, scheduled_at, None);
        if !tick.exact {
            tick.period = ticks.observe(&job_name, tick.tick);
        }
        Ok(match l.try_acquire(&job_name, ttl, tick).await? {
            Acquisition::Acquired(lock) => AcquireResult {
                lock: Some(lock.to_json()),
                skipped_since: None,
            },
            Acquisition::Refused => AcquireResult {
                lock: None,
                skipped_since: None,
            },
            Acquisition::Skipped { running_tick } => AcquireResult {
                lock: None,
                skipped_since: Some(running_tick as f64),
            },
        })
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

/// The `releaseGuard` option (ms), 0 when not positive (upstream behaviour: release frees the job).
pub fn guard_ms(release_guard_ms: f64) -> u64 {
    if release_guard_ms.is_finite() && release_guard_ms > 0.0 {
        release_guard_ms as u64
    } else {
        0
    }
}
