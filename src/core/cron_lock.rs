//! What the cron lock backends (Redis, PostgreSQL) share: the lock record, time, and the
//! release guard window that makes a tick run once even when replicas' timers drift.
//!
//! Motia core calls `acquireLock(step, 300000)` on every replica at each tick and `releaseLock`
//! as soon as the job ends. If release freed the lock at once, a replica whose timer fires a bit
//! later would acquire it again and run the same tick twice. So `release` keeps the lock until
//! `acquiredAt + releaseGuard` (when that is still in the future) and marks it released; only
//! then does it disappear. `releaseGuard` must cover the timer skew between replicas and be
//! shorter than the shortest schedule period.

use serde::{Deserialize, Serialize};

use crate::error::{AdapterError, Result};

pub const DEFAULT_LOCK_TTL_MS: u64 = 300_000;
pub const DEFAULT_RELEASE_GUARD_MS: u64 = 5_000;

/// The lock as JS sees it; field order matches `@motiadev/adapter-redis-cron@0.17`'s JSON, with
/// our extra fields after (readable by upstream, which only looks at lockId and instanceId).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronLock {
    pub job_name: String,
    pub lock_id: String,
    pub acquired_at: i64,
    pub expires_at: i64,
    pub instance_id: String,
    /// Increases with every acquisition of this job (fencing token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    /// Set when the holder released it; the record only guards against late replicas now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<i64>,
}

impl CronLock {
    /// A lock handed back by JS (ours or an upstream adapter's), validated.
    pub fn from_json(text: &str) -> Result<Self> {
        let lock: CronLock =
            serde_json::from_str(text).map_err(|e| AdapterError::config("lock", format!("not a CronLock: {e}")))?;
        if lock.job_name.is_empty() {
            return Err(AdapterError::config("lock.jobName", "must not be empty"));
        }
        Ok(lock)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `{jobName, instanceId, acquiredAt, expiresAt}` (CronLockInfo).
    pub fn info_json(&self) -> serde_json::Value {
        serde_json::json!({
            "jobName": self.job_name,
            "instanceId": self.instance_id,
            "acquiredAt": self.acquired_at,
            "expiresAt": self.expires_at,
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a released lock must still be kept: until `acquired_at + guard`, or 0 to free it now.
pub fn guard_remaining_ms(acquired_at: i64, guard_ms: u64, now: i64) -> u64 {
    let until = acquired_at.saturating_add(guard_ms as i64);
    if until > now {
        (until - now) as u64
    } else {
        0
    }
}

pub fn check_ttl(ttl: f64, field: &str) -> Result<u64> {
    if !ttl.is_finite() || ttl < 1.0 || ttl > 1e12 {
        return Err(AdapterError::config(field, "must be a positive number of milliseconds"));
    }
    Ok(ttl as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_upstream_field_order_and_reads_upstream_locks() {
        let lock = CronLock {
            job_name: "job".into(),
            lock_id: "id".into(),
            acquired_at: 1,
            expires_at: 2,
            instance_id: "i".into(),
            fencing_token: Some(7),
            released_at: None,
        };
        assert_eq!(
            lock.to_json(),
            r#"{"jobName":"job","lockId":"id","acquiredAt":1,"expiresAt":2,"instanceId":"i","fencingToken":7}"#
        );
        let upstream =
            CronLock::from_json(r#"{"jobName":"j","lockId":"l","acquiredAt":1,"expiresAt":2,"instanceId":"x"}"#)
                .unwrap();
        assert_eq!(upstream.fencing_token, None);
    }

    #[test]
    fn guard_window() {
        assert_eq!(guard_remaining_ms(1000, 5000, 1500), 4500);
        assert_eq!(guard_remaining_ms(1000, 5000, 7000), 0);
        assert_eq!(guard_remaining_ms(1000, 0, 1000), 0);
    }

    #[test]
    fn ttl_validation() {
        assert_eq!(check_ttl(300000.0, "ttl").unwrap(), 300000);
        assert!(check_ttl(0.0, "ttl").is_err());
        assert!(check_ttl(f64::NAN, "ttl").is_err());
    }
}

/// What both lock backends provide; the napi classes share one implementation over it
/// (`binding::cron_common`).
pub trait CronLocks: Send + Sync + 'static {
    /// One atomic attempt; `None` when another holder has the job.
    fn try_acquire(&self, job: &str, ttl_ms: u64)
        -> impl std::future::Future<Output = Result<Option<CronLock>>> + Send;
    /// Releases an owned lock (kept as a guard for the release window). False if not owned.
    fn release(&self, lock: &CronLock) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Extends an owned, unreleased lock to now + ttl. False when ownership was lost.
    fn renew(&self, lock: &CronLock, ttl_ms: u64) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Held locks as a JSON array of CronLockInfo.
    fn active_locks(&self) -> impl std::future::Future<Output = Result<String>> + Send;
    fn ping(&self) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Frees this instance's unreleased locks and closes the connection.
    fn shutdown(&self) -> impl std::future::Future<Output = Result<()>> + Send;
}
