//! Cron locks in Redis, wire-compatible with `@motiadev/adapter-redis-cron@0.17`
//! (STRING `${keyPrefix}${jobName}` = lock JSON, `PX` expiry), plus fencing tokens and the
//! tick rule (see `core::cron_lock`).

use std::sync::Arc;

use redis::{Script, Value};

use super::connection::RedisHandle;
use super::keys::CronKeys;
use super::scripts;
use crate::core::cron_lock::{
    lease_ms, now_ms, released_keep_ms, Acquisition, CronLock, LeaseBook, TickRequest, LEASE_MS,
};
use crate::error::Result;

/// One acquisition attempt prepared by [`RedisCronLocks::acquire_call`].
pub struct AcquireCall {
    pub keys: [String; 2],
    pub args: Vec<String>,
    lock: CronLock,
    ttl_ms: u64,
}

pub struct RedisCronLocks {
    redis: Arc<RedisHandle>,
    keys: CronKeys,
    instance_id: String,
    release_guard_ms: u64,
    acquire: Script,
    release: Script,
    renew: Script,
    lease: Script,
    shutdown: Script,
    leases: Arc<LeaseBook>,
}

impl RedisCronLocks {
    pub fn new(redis: Arc<RedisHandle>, prefix: String, instance_id: String, release_guard_ms: u64) -> Self {
        RedisCronLocks {
            keys: CronKeys::new(prefix).clustered(redis.is_cluster()),
            redis,
            instance_id,
            release_guard_ms,
            acquire: Script::new(scripts::ACQUIRE),
            release: Script::new(&scripts::release()),
            renew: Script::new(&scripts::renew()),
            lease: Script::new(&scripts::lease()),
            shutdown: Script::new(scripts::SHUTDOWN),
            leases: Arc::new(LeaseBook::default()),
        }
    }

    pub fn redis(&self) -> &Arc<RedisHandle> {
        &self.redis
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// One atomic attempt for `tick` (the rule in `core::cron_lock`, run by the script).
    pub async fn try_acquire(&self, job: &str, ttl_ms: u64, tick: TickRequest) -> Result<Acquisition> {
        // a primary/secondary pair just switched: a job taken on the other server may still run
        // for one lock TTL, and this server knows nothing of it
        if let Some(at) = self.redis.switched_at() {
            if at.elapsed() < std::time::Duration::from_millis(ttl_ms) {
                return Ok(Acquisition::Refused);
            }
        }
        let call = self.acquire_call(job, ttl_ms, tick);
        let mut inv = self.acquire.prepare_invoke();
        inv.key(&call.keys[0]).key(&call.keys[1]).arg(&call.args);
        let reply: Vec<i64> = self.redis.invoke(&inv).await?;
        Ok(self.acquire_outcome(call, &reply))
    }

    /// The lock, KEYS and ARGV of one acquisition attempt (shared by the tokio and event-loop paths).
    pub fn acquire_call(&self, job: &str, ttl_ms: u64, tick: TickRequest) -> AcquireCall {
        let now = now_ms();
        let lock = CronLock {
            job_name: job.to_string(),
            lock_id: uuid::Uuid::new_v4().to_string(),
            acquired_at: now,
            expires_at: now + ttl_ms as i64,
            instance_id: self.instance_id.clone(),
            tick: (!tick.exact).then_some(tick.tick),
            scheduled_at: tick.exact.then_some(tick.tick),
            period: None,
            fencing_token: None,
            released_at: None,
        };
        let json = lock.to_json();
        let open = json[..json.len() - 1].to_string(); // without the closing brace; the script appends the rest
        let args = vec![
            open,
            ttl_ms.to_string(),
            self.instance_id.clone(),
            tick.tick.to_string(),
            if tick.exact { "1" } else { "0" }.to_string(),
            tick.period.unwrap_or(0).to_string(),
            self.release_guard_ms.to_string(),
            lease_ms(ttl_ms).to_string(),
            lock.lock_id.clone(),
        ];
        AcquireCall {
            keys: [self.keys.lock(job), self.keys.fence(job)],
            args,
            lock,
            ttl_ms,
        }
    }

    /// What the acquire script's reply means; keeps a long lock leased (spawns a tokio task: call
    /// it inside the runtime).
    pub fn acquire_outcome(&self, call: AcquireCall, reply: &[i64]) -> Acquisition {
        let AcquireCall { mut lock, ttl_ms, .. } = call;
        match reply {
            [1, token, period, ..] => {
                lock.fencing_token = Some(*token);
                lock.period = (*period > 0).then_some(*period as u64);
                if ttl_ms > LEASE_MS {
                    self.keep_leased(&lock, lock.expires_at);
                }
                Acquisition::Acquired(lock)
            }
            [2, running, ..] => Acquisition::Skipped { running_tick: *running },
            _ => Acquisition::Refused,
        }
    }

    /// SHA1 of the acquire and release scripts (for `EVALSHA` by the event-loop path).
    pub fn script_hashes(&self) -> (&str, &str) {
        (self.acquire.get_hash(), self.release.get_hash())
    }

    /// Holds `lock` as a lease until `until`, renewed by the adapter's keeper task (see
    /// `core::cron_lock::LeaseBook`).
    fn keep_leased(&self, lock: &CronLock, until: i64) {
        let (redis, script, key) = (self.redis.clone(), self.lease.clone(), self.keys.lock(&lock.job_name));
        let (lock_id, instance_id) = (lock.lock_id.clone(), self.instance_id.clone());
        self.leases.keep(&lock.lock_id, until, move |px| {
            let (redis, script, key) = (redis.clone(), script.clone(), key.clone());
            let (lock_id, instance_id) = (lock_id.clone(), instance_id.clone());
            async move {
                let r: i64 = redis
                    .invoke(script.key(key).arg(lock_id).arg(instance_id).arg(px))
                    .await?;
                Ok(r == 1)
            }
        });
    }

    /// Releases a lock this instance owns; keeps it (marked released) as the record of its tick.
    /// False if not owned.
    pub async fn release(&self, lock: &CronLock) -> Result<bool> {
        let (key, args) = self.release_call(lock);
        let mut inv = self.release.prepare_invoke();
        inv.key(&key).arg(&args);
        let r: i64 = self.redis.invoke(&inv).await?;
        Ok(r > 0)
    }

    /// KEYS[1] and ARGV of a release (the script's reply > 0 means released); stops its lease.
    pub fn release_call(&self, lock: &CronLock) -> (String, Vec<String>) {
        let now = now_ms();
        self.leases.forget(&lock.lock_id);
        let keep = released_keep_ms(lock, self.release_guard_ms, now);
        let mut released = lock.clone();
        released.released_at = Some(now);
        released.expires_at = now + keep as i64;
        (
            self.keys.lock(&lock.job_name),
            vec![
                lock.lock_id.clone(),
                self.instance_id.clone(),
                keep.to_string(),
                released.to_json(),
            ],
        )
    }

    /// Extends a lock this instance owns, unreleased, to `now + ttl`. False when ownership was lost.
    pub async fn renew(&self, lock: &CronLock, ttl_ms: u64) -> Result<bool> {
        let mut renewed = lock.clone();
        renewed.expires_at = now_ms() + ttl_ms as i64;
        let r: i64 = self
            .redis
            .invoke(
                self.renew
                    .key(self.keys.lock(&lock.job_name))
                    .arg(&lock.lock_id)
                    .arg(&self.instance_id)
                    .arg(renewed.to_json())
                    .arg(lease_ms(ttl_ms)),
            )
            .await?;
        if r != 1 {
            self.leases.forget(&lock.lock_id);
            return Ok(false);
        }
        if ttl_ms > LEASE_MS {
            self.keep_leased(&renewed, renewed.expires_at);
        } else {
            self.leases.forget(&lock.lock_id);
        }
        Ok(true)
    }

    async fn scan_lock_keys(&self) -> Result<Vec<String>> {
        self.redis.scan_all(&self.keys.all_pattern(), 1000).await
    }

    /// Locks currently held (released-but-guarded records are not listed), as CronLockInfo JSON.
    pub async fn active_locks(&self) -> Result<String> {
        let keys = self.scan_lock_keys().await?;
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let mut cmd = redis::cmd("MGET");
            cmd.arg(chunk);
            let values: Vec<Value> = self.redis.cmd(&cmd).await?;
            for (key, v) in chunk.iter().zip(values) {
                let Value::BulkString(bytes) = v else { continue };
                let Ok(lock) = serde_json::from_slice::<CronLock>(&bytes) else {
                    continue;
                };
                if lock.released_at.is_some() || self.keys.job_of(key).is_none() {
                    continue;
                }
                out.push(lock.info_json());
            }
        }
        Ok(serde_json::Value::Array(out).to_string())
    }

    /// Deletes the unreleased locks this instance holds (atomically per batch). Returns the count.
    pub async fn release_all_owned(&self) -> Result<i64> {
        let keys = self.scan_lock_keys().await?;
        // on a cluster one script call touches one slot
        let groups: Vec<Vec<String>> = if self.redis.is_cluster() {
            let mut by_slot: std::collections::HashMap<redis::cluster_routing::Slot, Vec<String>> = Default::default();
            for k in keys {
                by_slot
                    .entry(redis::cluster_routing::Slot::for_key(&k))
                    .or_default()
                    .push(k);
            }
            by_slot.into_values().collect()
        } else {
            vec![keys]
        };
        let mut total = 0;
        for chunk in groups.iter().flat_map(|g| g.chunks(200)) {
            let mut inv = self.shutdown.prepare_invoke();
            for k in chunk {
                inv.key(k);
            }
            inv.arg(&self.instance_id);
            let n: i64 = self.redis.invoke(&inv).await?;
            total += n;
        }
        Ok(total)
    }

    pub async fn ping(&self) -> Result<bool> {
        let pong: String = self.redis.cmd(&redis::cmd("PING")).await?;
        Ok(pong == "PONG")
    }
}

impl crate::core::cron_lock::CronLocks for RedisCronLocks {
    fn try_acquire(
        &self,
        job: &str,
        ttl_ms: u64,
        tick: TickRequest,
    ) -> impl std::future::Future<Output = Result<Acquisition>> + Send {
        RedisCronLocks::try_acquire(self, job, ttl_ms, tick)
    }
    fn release(&self, lock: &CronLock) -> impl std::future::Future<Output = Result<bool>> + Send {
        RedisCronLocks::release(self, lock)
    }
    fn renew(&self, lock: &CronLock, ttl_ms: u64) -> impl std::future::Future<Output = Result<bool>> + Send {
        RedisCronLocks::renew(self, lock, ttl_ms)
    }
    fn active_locks(&self) -> impl std::future::Future<Output = Result<String>> + Send {
        RedisCronLocks::active_locks(self)
    }
    fn ping(&self) -> impl std::future::Future<Output = Result<bool>> + Send {
        RedisCronLocks::ping(self)
    }
    async fn shutdown(&self) -> Result<()> {
        // Redis down: held locks simply expire (within one lease)
        self.leases.clear();
        let _ = self.release_all_owned().await;
        self.redis.close();
        Ok(())
    }
}
