//! What the cron lock backends (Redis, PostgreSQL) share: the lock record, the tick an
//! acquisition is for, and the rule that makes each tick run once without skipping the next.
//!
//! Motia core calls `acquireLock(step, 300000)` on every replica when the step's timer fires and
//! `releaseLock` as soon as the job ends. A lock keyed by job name alone either lets a late
//! replica run the same tick again (if release frees it) or blocks the next tick (if release
//! keeps it for a fixed time). So every acquisition names its **tick**:
//!
//! - with `{ scheduledAt }` (our `CronScheduler`) the tick is exact;
//! - otherwise it is the call time floored to the second. Cron ticks fall on whole seconds of the
//!   replica's own clock and node-cron fires them 0–1 s late, so every replica whose timer fires
//!   less than a second late computes the same tick, whatever the skew between replicas' clocks.
//!
//! The stored record carries its tick. A *released* record refuses only the same tick: another
//! instance's call whose tick is less than the same-tick window `W` after the record's tick
//! (see [`same_tick_window`]); any later tick overwrites it at once, and the instance that
//! released it may always take it again. An *unreleased* record is a job still running: every
//! call is refused (as upstream), and the first call of a later tick is reported as a skipped
//! tick. `W` is 1 s until a period is known, then the shortest period seen between the job's
//! ticks (learned per instance from Motia's successive calls, [`TickTracker`], and carried in the
//! record so new replicas learn it), capped by `releaseGuard`: a call whose tick is less than one
//! period after the record's is the same tick, so a timer that fires so late that its call falls in
//! the next second (seen under CPU load: node-cron fires up to ~1 s late) still counts for its own
//! tick, and the next tick (at least one period later) is never mistaken for the same one.
//!
//! The Redis script and the PostgreSQL statement implement this rule atomically on the server;
//! [`same_tick_window`] is its one definition in Rust, and the scripts' copies follow it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// `lockTTL`: used when `acquireLock` gets no ttl (Motia core always passes 300000).
pub const DEFAULT_LOCK_TTL_MS: u64 = 300_000;
/// The longest lock TTL accepted (ms, ~31 years): larger values are config errors.
pub const MAX_LOCK_TTL_MS: f64 = 1e12;
/// `releaseGuard`: the upper bound of the same-tick window.
pub const DEFAULT_RELEASE_GUARD_MS: u64 = 5_000;
/// The same-tick window before a period is known, and its floor: the resolution of cron schedules.
pub const TICK_RESOLUTION_MS: u64 = 1_000;
/// How long a released estimated-tick record outlives its window in Redis (late timers, clock skew).
pub const RELEASED_MARGIN_MS: u64 = 3_000;
/// Locks asked for longer than this are held as a lease of this length, renewed from a Rust task
/// while the owning process lives, up to the requested TTL: a holder killed with -9 frees its job
/// within one lease instead of Motia's 300000 ms, and a job that blocks the JS thread keeps it.
pub const LEASE_MS: u64 = 10_000;
/// How often a lease is renewed.
pub const LEASE_RENEW_EVERY_MS: u64 = LEASE_MS / 3;
/// Jobs an instance keeps tick history for (bounded against callers inventing job names).
const MAX_TRACKED_JOBS: usize = 10_000;

/// `lockRetryDelay` default (ms) of the RFC's lock adapters.
pub const DEFAULT_LOCK_RETRY_DELAY_MS: f64 = 1_000.0;
/// The most `lockRetryAttempts` accepted.
pub const MAX_LOCK_RETRY_ATTEMPTS: u64 = 1_000;

/// The options every cron lock adapter shares (plus the backend's `keyPrefix` / `tableName` and, for the
/// SQL ones, `connectionString`), defaults filled, checked. `autoRenew`, `onLockLost`, `logger` and
/// `enableHealthCheck` are JavaScript values the JS class keeps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronOptions {
    #[serde(rename = "lockTTL")]
    pub lock_ttl: f64,
    pub lock_retry_delay: f64,
    pub lock_retry_attempts: u64,
    pub release_guard: f64,
    /// Default `motia-<uuid v4>`.
    pub instance_id: String,
    pub key_prefix: String,
    pub table_name: String,
    pub connection_string: Option<String>,
}

impl CronOptions {
    /// `sql`: the PostgreSQL/MySQL form, where `connectionString` is required.
    pub fn from_json(text: &str, sql: bool) -> Result<Self> {
        use crate::core::options::Options;
        let o = Options::from_json(text, "config")?;
        let ms = "must be a non-negative number of milliseconds";
        // 0 means the default, as `ttl || lockTTL` upstream
        let lock_ttl = match o.get("lockTTL").and_then(|v| v.as_f64()) {
            Some(0.0) => None,
            _ => o.opt_number(
                "lockTTL",
                1.0,
                MAX_LOCK_TTL_MS,
                &format!("must be a number of milliseconds from 1 to {MAX_LOCK_TTL_MS}"),
            )?,
        };
        let instance_id = match o.get("instanceId") {
            None => format!("motia-{}", uuid::Uuid::new_v4()),
            Some(serde_json::Value::String(s)) if s.is_empty() => format!("motia-{}", uuid::Uuid::new_v4()),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(AdapterError::config("instanceId", "must be a string")),
        };
        let table_name = match o.get("tableName") {
            None => crate::core::postgres::cron::DEFAULT_TABLE.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(AdapterError::config("tableName", "must be a string")),
        };
        let connection_string = if sql {
            Some(o.string("connectionString", None)?)
        } else {
            None
        };
        Ok(CronOptions {
            lock_ttl: lock_ttl.unwrap_or(DEFAULT_LOCK_TTL_MS as f64),
            // 0 means the default here too (`|| 1000` in 0.17)
            lock_retry_delay: match o.opt_number("lockRetryDelay", 0.0, f64::MAX, ms)? {
                Some(d) if d > 0.0 => d,
                _ => DEFAULT_LOCK_RETRY_DELAY_MS,
            },
            lock_retry_attempts: o.int("lockRetryAttempts", 0, MAX_LOCK_RETRY_ATTEMPTS, 0)?,
            release_guard: o
                .opt_number("releaseGuard", 0.0, f64::MAX, ms)?
                .unwrap_or(DEFAULT_RELEASE_GUARD_MS as f64),
            instance_id,
            key_prefix: o.prefix("keyPrefix", crate::core::redis::keys::DEFAULT_CRON_PREFIX)?,
            table_name,
            connection_string,
        })
    }
}

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
    /// The tick estimated from the call time (ms, whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<i64>,
    /// The exact tick the caller passed (`{ scheduledAt }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<i64>,
    /// Shortest period (ms) seen between this job's ticks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// Increases with every acquisition of this job (fencing token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    /// Set when the holder released it; the record only refuses its own tick now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<i64>,
}

/// Which tick an acquisition is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRequest {
    /// Nominal tick time, ms since the epoch.
    pub tick: i64,
    /// True when the caller passed the tick (`scheduledAt`), false when it is estimated.
    pub exact: bool,
    /// Shortest period this instance has seen for the job (estimated ticks only).
    pub period: Option<u64>,
}

impl TickRequest {
    /// `scheduled_at` when the caller passed one, else `called_at` floored to the second.
    pub fn new(called_at: i64, scheduled_at: Option<i64>, period: Option<u64>) -> Self {
        match scheduled_at {
            Some(t) => TickRequest {
                tick: t,
                exact: true,
                period: None,
            },
            None => TickRequest {
                tick: floor_tick(called_at),
                exact: false,
                period,
            },
        }
    }
}

/// What one acquisition attempt found.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquisition {
    Acquired(CronLock),
    /// Another holder has this tick, or the job is still running.
    Refused,
    /// The job is still running from an earlier tick (`running_tick`): this tick is skipped.
    /// Reported to the first caller of the tick only, so it is logged once across the fleet.
    Skipped {
        running_tick: i64,
    },
}

/// `t` floored to the whole second.
pub fn floor_tick(t: i64) -> i64 {
    t.div_euclid(TICK_RESOLUTION_MS as i64) * TICK_RESOLUTION_MS as i64
}

/// The same-tick window: a call whose tick is less than this after a released record's tick is
/// the same tick. `cap` is `releaseGuard` (0: no window, upstream behaviour); `period` the
/// shortest known period of the job (the smaller of the caller's and the record's).
pub fn same_tick_window(period: Option<u64>, exact: bool, cap: u64) -> u64 {
    if cap == 0 {
        0
    } else if exact {
        1
    } else {
        match period {
            None | Some(0) => TICK_RESOLUTION_MS,
            Some(p) => p.clamp(TICK_RESOLUTION_MS, cap.max(TICK_RESOLUTION_MS)),
        }
    }
}

/// How long (ms from `now`) a released record must stay in a store whose records expire
/// (Redis): an exact tick until its lock's TTL; an estimated tick until its window (plus a
/// margin) has passed; 0 means delete it now.
pub fn released_keep_ms(lock: &CronLock, cap: u64, now: i64) -> u64 {
    if cap == 0 {
        return 0;
    }
    let until = match lock.scheduled_at {
        Some(_) => lock.expires_at,
        None => {
            let tick = lock.tick.unwrap_or_else(|| floor_tick(lock.acquired_at));
            let w = same_tick_window(lock.period, false, cap);
            tick.saturating_add((w + RELEASED_MARGIN_MS) as i64)
        }
    };
    until.saturating_sub(now).max(1) as u64
}

/// The store-side expiry of a lock asked for `ttl_ms`: the whole TTL when short, else one lease.
pub fn lease_ms(ttl_ms: u64) -> u64 {
    ttl_ms.min(LEASE_MS)
}

/// Renews one lease by `px` ms; `Ok(false)` when the lock is no longer owned.
pub type RenewFn = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

struct Lease {
    /// The requested TTL's end (ms since the epoch).
    until: i64,
    renew: RenewFn,
}

/// The leased locks an adapter holds, kept alive by **one** tokio task per adapter (started with the
/// first lease, ended when none is left): every [`LEASE_RENEW_EVERY_MS`] it extends each lease by
/// one lease, or what is left of its TTL, until it is forgotten (released), lost (`Ok(false)`) or
/// its TTL is over. Acquiring a lock therefore wakes no thread (a task per lock cost two
/// cross-thread wake-ups per acquire+release). A failed renewal (backend down) is retried at the
/// next beat; the task runs on the tokio runtime, so a blocked JS thread does not stop it, and it
/// ends with the process.
#[derive(Default)]
pub struct LeaseBook {
    leases: Mutex<HashMap<String, Lease>>,
    keeper_running: AtomicBool,
}

impl LeaseBook {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Lease>) -> R) -> R {
        let mut leases = self.leases.lock_ok();
        f(&mut leases)
    }

    /// Holds `lock_id` as a lease until `until`, renewed by `renew` (the adapter's keeper task is
    /// started if it is not running: call inside the tokio runtime).
    pub fn keep<F, Fut>(self: &Arc<Self>, lock_id: &str, until: i64, renew: F)
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool>> + Send + 'static,
    {
        let renew: RenewFn = Arc::new(move |px| Box::pin(renew(px)));
        let start = self.with(|l| {
            l.insert(lock_id.to_string(), Lease { until, renew });
            !self.keeper_running.swap(true, Ordering::SeqCst)
        });
        if start {
            tokio::spawn(Self::keeper(self.clone()));
        }
    }

    async fn keeper(book: Arc<Self>) {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(LEASE_RENEW_EVERY_MS)).await;
            let due: Vec<(String, i64, RenewFn)> = book.with(|l| {
                let due: Vec<_> = l.iter().map(|(id, x)| (id.clone(), x.until, x.renew.clone())).collect();
                if due.is_empty() {
                    // decided under the lock, so a `keep` racing with this starts a new keeper
                    book.keeper_running.store(false, Ordering::SeqCst);
                }
                due
            });
            if due.is_empty() {
                return;
            }
            for (id, until, renew) in due {
                let left = until - now_ms();
                if left <= 0 {
                    book.forget(&id);
                    continue;
                }
                if let Ok(false) = renew(lease_ms(left as u64)).await {
                    book.forget(&id);
                }
            }
        }
    }

    pub fn until(&self, lock_id: &str) -> Option<i64> {
        self.with(|l| l.get(lock_id).map(|x| x.until))
    }

    pub fn forget(&self, lock_id: &str) {
        self.with(|l| l.remove(lock_id));
    }

    pub fn clear(&self) {
        self.with(|l| l.clear());
    }
}

/// The periods of the jobs this instance is asked to lock, learned from the ticks of
/// successive estimated-tick calls (Motia calls once per tick on every replica).
#[derive(Default)]
pub struct TickTracker {
    jobs: Mutex<HashMap<String, JobTicks>>,
}

#[derive(Clone, Copy)]
struct JobTicks {
    last: i64,
    shortest_gap: Option<u64>,
}

impl TickTracker {
    /// Records a call for `job` at `tick`; returns the shortest gap seen between its ticks.
    /// The shortest gap, never the latest: underestimating only narrows the window, while
    /// overestimating could make the next tick look like the same one.
    pub fn observe(&self, job: &str, tick: i64) -> Option<u64> {
        let Ok(mut jobs) = self.jobs.lock() else { return None };
        if let Some(j) = jobs.get_mut(job) {
            if tick > j.last {
                let gap = (tick - j.last) as u64;
                j.shortest_gap = Some(j.shortest_gap.map_or(gap, |g| g.min(gap)));
                j.last = tick;
            }
            return j.shortest_gap;
        }
        if jobs.len() >= MAX_TRACKED_JOBS {
            jobs.clear();
        }
        jobs.insert(
            job.to_string(),
            JobTicks {
                last: tick,
                shortest_gap: None,
            },
        );
        None
    }
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

pub fn check_ttl(ttl: f64, field: &str) -> Result<u64> {
    if !(1.0..=MAX_LOCK_TTL_MS).contains(&ttl) {
        return Err(AdapterError::config(field, "must be a positive number of milliseconds"));
    }
    Ok(ttl as u64)
}

/// A time in ms since the epoch passed from JS (`scheduledAt`, call time), validated.
pub fn check_time(t: f64, field: &str) -> Result<i64> {
    if !t.is_finite() || !(0.0..=8.64e15).contains(&t) {
        return Err(AdapterError::config(
            field,
            "must be a time in milliseconds since the epoch",
        ));
    }
    Ok(t as i64)
}

/// What the lock backends (Redis, PostgreSQL, MySQL) provide; the napi classes share one implementation over it
/// (`binding::cron_common`). Ownership is always checked against the adapter's own instance id,
/// never the one a lock object claims.
pub trait CronLocks: Send + Sync + 'static {
    /// One atomic attempt for `tick` (the rule in the module docs).
    fn try_acquire(
        &self,
        job: &str,
        ttl_ms: u64,
        tick: TickRequest,
    ) -> impl std::future::Future<Output = Result<Acquisition>> + Send;
    /// Releases an owned lock (kept as the record of its tick). False if not owned.
    fn release(&self, lock: &CronLock) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Extends an owned, unreleased lock to now + ttl. False when ownership was lost.
    fn renew(&self, lock: &CronLock, ttl_ms: u64) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Held locks as a JSON array of CronLockInfo.
    fn active_locks(&self) -> impl std::future::Future<Output = Result<String>> + Send;
    fn ping(&self) -> impl std::future::Future<Output = Result<bool>> + Send;
    /// Frees this instance's unreleased locks and closes the connection.
    fn shutdown(&self) -> impl std::future::Future<Output = Result<()>> + Send;
}

#[cfg(test)]
mod tests {
    #[test]
    fn cron_options_defaults_and_errors() {
        let c = CronOptions::from_json(r#"{"lockTTL":0,"lockRetryDelay":0,"instanceId":""}"#, false).unwrap();
        assert_eq!(c.lock_ttl, DEFAULT_LOCK_TTL_MS as f64);
        assert_eq!(c.lock_retry_delay, DEFAULT_LOCK_RETRY_DELAY_MS);
        assert!(c.instance_id.starts_with("motia-"));
        assert_eq!(c.key_prefix, crate::core::redis::keys::DEFAULT_CRON_PREFIX);
        assert_eq!(c.release_guard, DEFAULT_RELEASE_GUARD_MS as f64);
        for (bad, field, sql) in [
            (r#"{"lockTTL":"NaN"}"#, "`lockTTL`", false),
            (r#"{"lockTTL":1e13}"#, "`lockTTL`", false),
            (r#"{"releaseGuard":-1}"#, "`releaseGuard`", false),
            (r#"{"lockRetryAttempts":1001}"#, "`lockRetryAttempts`", false),
            (r#"{"instanceId":5}"#, "`instanceId`", false),
            (r#"{}"#, "`connectionString`", true),
        ] {
            let e = CronOptions::from_json(bad, sql).unwrap_err();
            assert!(e.js_message().contains(field), "{bad}: {}", e.js_message());
        }
    }

    use super::*;

    fn lock() -> CronLock {
        CronLock {
            job_name: "job".into(),
            lock_id: "id".into(),
            acquired_at: 1,
            expires_at: 2,
            instance_id: "i".into(),
            tick: None,
            scheduled_at: None,
            period: None,
            fencing_token: Some(7),
            released_at: None,
        }
    }

    #[test]
    fn json_keeps_upstream_field_order_and_reads_upstream_locks() {
        assert_eq!(
            lock().to_json(),
            r#"{"jobName":"job","lockId":"id","acquiredAt":1,"expiresAt":2,"instanceId":"i","fencingToken":7}"#
        );
        let upstream =
            CronLock::from_json(r#"{"jobName":"j","lockId":"l","acquiredAt":1,"expiresAt":2,"instanceId":"x"}"#)
                .unwrap();
        assert_eq!(upstream.fencing_token, None);
        assert_eq!(upstream.tick, None);
    }

    #[test]
    fn ticks_are_floored_to_the_second_or_exact() {
        assert_eq!(TickRequest::new(10_999, None, None).tick, 10_000);
        assert_eq!(TickRequest::new(10_000, None, None).tick, 10_000);
        let exact = TickRequest::new(10_999, Some(10_500), Some(5000));
        assert_eq!((exact.tick, exact.exact, exact.period), (10_500, true, None));
    }

    #[test]
    fn window_follows_the_period_within_bounds() {
        assert_eq!(same_tick_window(None, false, 5000), 1000);
        assert_eq!(same_tick_window(Some(1000), false, 5000), 1000);
        assert_eq!(same_tick_window(Some(2000), false, 5000), 2000);
        assert_eq!(same_tick_window(Some(5000), false, 5000), 5000);
        assert_eq!(same_tick_window(Some(60_000), false, 5000), 5000);
        assert_eq!(same_tick_window(Some(86_400_000), false, 5000), 5000);
        assert_eq!(same_tick_window(Some(86_400_000), false, 500), 1000);
        assert_eq!(same_tick_window(Some(5000), true, 5000), 1);
        assert_eq!(same_tick_window(Some(5000), false, 0), 0);
    }

    #[test]
    fn the_next_tick_is_never_inside_the_window() {
        // the winner's timer fired up to 999 ms late (floored to the tick), the next tick's
        // earliest caller on time: the distance is the period, never less than the window
        for period in (1000..=120_000).step_by(1000) {
            for cap in [1000, 5000, 60_000] {
                let w = same_tick_window(Some(period), false, cap);
                assert!(period >= w, "period {period} cap {cap}");
                assert!(w >= 1000);
            }
        }
    }

    #[test]
    fn released_records_stay_for_their_window() {
        let mut l = lock();
        l.tick = Some(10_000);
        l.period = Some(5000);
        assert_eq!(released_keep_ms(&l, 5000, 10_200), 5000 + RELEASED_MARGIN_MS - 200);
        assert_eq!(released_keep_ms(&l, 5000, 100_000), 1);
        assert_eq!(released_keep_ms(&l, 0, 10_200), 0);
        l.scheduled_at = Some(10_000);
        l.expires_at = 70_000;
        assert_eq!(released_keep_ms(&l, 5000, 10_000), 60_000);
    }

    #[test]
    fn leases_are_short_and_bounded_by_the_ttl() {
        assert_eq!(lease_ms(1500), 1500);
        assert_eq!(lease_ms(300_000), LEASE_MS);
    }

    #[tokio::test]
    async fn one_keeper_renews_every_lease_until_released_lost_or_over() {
        use std::sync::atomic::AtomicU64;
        let book = Arc::new(LeaseBook::default());
        let (a, b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let far = now_ms() + 3_600_000;
        let ac = a.clone();
        book.keep("a", far, move |_| {
            ac.fetch_add(1, Ordering::SeqCst);
            async { Ok(true) }
        });
        let bc = b.clone();
        book.keep("b", far, move |_| {
            bc.fetch_add(1, Ordering::SeqCst);
            async { Ok(false) } // lost at the first renewal
        });
        assert!(book.keeper_running.load(Ordering::SeqCst));
        let ac = a.clone();
        book.keep("a", far, move |_| {
            ac.fetch_add(1, Ordering::SeqCst);
            async { Ok(true) }
        }); // kept again (renewLock): its end moves, still one lease and one keeper
        assert_eq!(book.until("a"), Some(far));
        tokio::time::sleep(std::time::Duration::from_millis(LEASE_RENEW_EVERY_MS * 2 + 10)).await;
        assert_eq!(a.load(Ordering::SeqCst), 2);
        assert_eq!(b.load(Ordering::SeqCst), 1);
        assert_eq!(book.until("b"), None);
        book.forget("a"); // released
        tokio::time::sleep(std::time::Duration::from_millis(LEASE_RENEW_EVERY_MS + 10)).await;
        assert_eq!(a.load(Ordering::SeqCst), 2);
        assert!(
            !book.keeper_running.load(Ordering::SeqCst),
            "the keeper ends when no lease is left"
        );
    }

    #[test]
    fn tracker_learns_the_shortest_gap() {
        let t = TickTracker::default();
        assert_eq!(t.observe("a", 0), None);
        assert_eq!(t.observe("a", 10_000), Some(10_000));
        assert_eq!(t.observe("a", 20_000), Some(10_000));
        assert_eq!(t.observe("a", 21_000), Some(1000));
        assert_eq!(t.observe("a", 31_000), Some(1000));
        assert_eq!(t.observe("a", 31_000), Some(1000)); // same tick twice: no gap
        assert_eq!(t.observe("b", 5_000), None);
    }

    #[test]
    fn ttl_and_time_validation() {
        assert_eq!(check_ttl(300000.0, "ttl").unwrap(), 300000);
        assert!(check_ttl(0.0, "ttl").is_err());
        assert!(check_ttl(f64::NAN, "ttl").is_err());
        assert_eq!(check_time(1.5e12, "scheduledAt").unwrap(), 1_500_000_000_000);
        assert!(check_time(-1.0, "scheduledAt").is_err());
        assert!(check_time(f64::INFINITY, "scheduledAt").is_err());
    }
}
