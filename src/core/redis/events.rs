//! Motia events on Redis Streams: the native half of `RedisEventAdapter` (JS in `lib/redis-events.js`; retries,
//! FIFO per message group and concurrency are the shared event core's, `lib/events.js`). Keys: [`EventKeys`].
//!
//! - **A stream per (topic, step)** with one consumer group. A registry per topic (SET of steps, durable; ZSET of
//!   RFC fan-out subscribers, expiring unless refreshed) lets `emit` from any process reach every step of the
//!   fleet, including steps no local code subscribes to. One Lua script writes the entry to every step's stream
//!   atomically; `emit` resolves when Redis answered it.
//! - **Consuming**: one task per subscription reads with `XREADGROUP … COUNT <free slots> BLOCK` on its own
//!   connection, so nothing is read ahead of free handler slots. Handled entries are `XACK`ed and `XDEL`ed
//!   (the stream holds only unhandled events; nothing is trimmed).
//! - **Crashes**: the task refreshes the idle time of what it holds (`XCLAIM … JUSTID`), so a slow handler is not
//!   stolen; entries idle longer than `visibilityTimeout` belong to a dead consumer and are claimed by a live one
//!   (`XPENDING IDLE` + `XCLAIM` with the same min-idle, so two claimers never both win). An entry delivered
//!   `maxDeliveries` times without being settled (its handler kills the process) is dead-lettered.
//! - **Dead letters** go to the step's `dlq` stream with the reason and attempt count, atomically with the ack
//!   (`MULTI`). A requeued entry (the subscription stopped before running it) is re-added, then acked.
//! - **fifo** steps have one consumer at a time across the fleet (a lease renewed from this Rust task, so a busy
//!   JS thread never loses it); a new owner first takes over what the old one held, so order holds.
//! - A consumer is deleted from the group only when it holds nothing.
//!
//! At-least-once: a command resent after a dropped connection (see `RedisHandle::ride`) can write an emit or a
//! dead letter twice; nothing acknowledged is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use tokio::sync::{watch, Notify};

use super::connection::{classify, RedisHandle};
use super::keys::{EventKeys, EVENTS_GROUP};
use super::scripts;
use crate::core::events::{backoff, push_delivery, wait_readiness, Deliver, Lag, Log, Outcome, Readiness};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// How long one `XREADGROUP` blocks: the longest a stop waits for the read in flight.
const BLOCK_MS: u64 = 500;

/// Unsettled events per consumer when a subscription sets no `concurrency`/`prefetch`.
pub const DEFAULT_PREFETCH: u64 = 10;
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// `RedisEventAdapter` options (besides the connection), defaults filled, checked.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisEventsOptions {
    pub key_prefix: String,
    pub prefetch: u32,
    /// How long `subscribe` waits for its consumer to be ready before it resolves anyway (ms).
    pub connection_timeout: u64,
    /// How long `shutdown`/`unsubscribe` wait for running handlers (ms).
    pub shutdown_timeout: u64,
}

impl RedisEventsOptions {
    pub fn from_json(text: &str) -> Result<Self> {
        let o = crate::core::options::Options::from_json(text, "options")?;
        let key_prefix = match o.get("keyPrefix") {
            None => super::keys::DEFAULT_EVENTS_PREFIX.to_string(),
            Some(serde_json::Value::String(p)) if p.is_empty() => super::keys::DEFAULT_EVENTS_PREFIX.to_string(),
            Some(serde_json::Value::String(p)) => p.clone(),
            Some(_) => return Err(AdapterError::config("keyPrefix", "must be a string")),
        };
        Ok(RedisEventsOptions {
            key_prefix,
            prefetch: o.int("prefetch", 1, 65_535, DEFAULT_PREFETCH)? as u32,
            connection_timeout: o.int("connectionTimeout", 0, 3_600_000, DEFAULT_CONNECTION_TIMEOUT_MS)?,
            shutdown_timeout: o.int("shutdownTimeout", 0, 3_600_000, DEFAULT_SHUTDOWN_TIMEOUT_MS)?,
        })
    }
}
/// An RFC fan-out subscriber's registration lives this long unless refreshed (it is, every maintenance round).
const FANOUT_TTL_MS: u64 = 30_000;
/// The fifo consumer's lease: a dead owner frees its step within this.
pub const FIFO_LEASE_MS: u64 = 10_000;
/// ms: this consumer's own pending entries that JS never got (a reply lost with a connection) are taken back
/// after this idle time.
const ORPHAN_IDLE_MS: u64 = 1_000;
/// How often a subscription looks for consumers of stopped processes, and how long one must have been idle.
const GC_EVERY: Duration = Duration::from_secs(60);
const GC_IDLE_MS: u64 = 600_000;

/// How long a consumer that holds nothing must have been idle before it is deleted ([`GC_IDLE_MS`];
/// `MOTIA_EVENTS_CONSUMER_GC_IDLE_MS` overrides it).
fn gc_idle_ms() -> u64 {
    static IDLE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *IDLE.get_or_init(|| {
        std::env::var("MOTIA_EVENTS_CONSUMER_GC_IDLE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(GC_IDLE_MS)
    })
}
/// Maintenance (refresh what we hold, claim what dead consumers held, renew leases) runs at least this often.
const MAINTAIN_MAX: Duration = Duration::from_secs(3);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One emit as the [`scripts::EVENT_EMIT`] call: its KEYS (the topic's step registry and fan-out registry) and
/// ARGV (stream name base, body, now in ms). Built only here, for the tokio and the event-loop path.
pub struct EmitCall {
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

impl EmitCall {
    pub fn new(keys: &EventKeys, topic: &str, body: &str, now: u64) -> Self {
        EmitCall {
            keys: vec![keys.steps(topic), keys.fanout(topic)],
            args: vec![keys.stream_base(topic), body.to_owned(), now.to_string()],
        }
    }

    /// An emit at the current time.
    pub fn now(keys: &EventKeys, topic: &str, body: &str) -> Self {
        Self::new(keys, topic, body, now_ms())
    }
}

/// Where a subscription is registered, so emits reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// A step (or an RFC named queue): durable, stays registered when its processes stop.
    Step,
    /// An RFC subscriber without a queue: every event while it lives; dropped with its stream when it goes.
    Fanout,
}

/// What a subscription consumes and how.
#[derive(Debug, Clone)]
pub struct SubSpec {
    pub topic: String,
    /// The step or queue name (not encoded).
    pub name: String,
    pub membership: Membership,
    /// Handler slots: at most this many entries are held unsettled.
    pub limit: u32,
    pub fifo: bool,
    /// Entries a consumer held this long without refreshing are claimed by another.
    pub visibility: Duration,
    /// An entry delivered this many times without being settled is dead-lettered.
    pub max_deliveries: u32,
}

struct Held {
    id: String,
    body: Vec<u8>,
    prior: u32,
}

struct Sub {
    id: u32,
    spec: SubSpec,
    stream: String,
    dlq: String,
    owner: String,
    registry: String,
    member: String,
    consumer: String,
    held: Mutex<HashMap<u64, Held>>,
    next_tag: AtomicU64,
    freed: Notify,
    gc_at: Mutex<tokio::time::Instant>,
    stop: watch::Sender<bool>,
    ready: watch::Sender<Readiness>,
    finished: watch::Sender<bool>,
}

impl Sub {
    fn free(&self) -> usize {
        (self.spec.limit as usize).saturating_sub(self.held.lock_ok().len())
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// One entry read from a stream: id, body (`d` field; empty when missing), prior failures (`n` field).
type Entry = (String, Vec<u8>, u32);

/// A Redis event adapter's connection, registry writes and subscriptions (see the module docs).
pub struct RedisEvents {
    redis: Arc<RedisHandle>,
    keys: EventKeys,
    instance: String,
    subs: Mutex<HashMap<u32, Arc<Sub>>>,
    next_sub: AtomicU32,
    closed: AtomicBool,
    settles: watch::Sender<u64>,
    emit: redis::Script,
    own: redis::Script,
    forget: redis::Script,
    log: Log,
}

impl RedisEvents {
    pub fn new(redis: Arc<RedisHandle>, prefix: String) -> Arc<Self> {
        Arc::new(RedisEvents {
            keys: EventKeys::new(prefix).clustered(redis.is_cluster()),
            redis,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            subs: Mutex::new(HashMap::new()),
            next_sub: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            settles: watch::channel(0).0,
            emit: redis::Script::new(scripts::EVENT_EMIT),
            own: redis::Script::new(scripts::EVENT_OWN),
            forget: redis::Script::new(scripts::EVENT_FORGET_CONSUMERS),
            log: Log::new("redis-events"),
        })
    }

    /// This client's log (the binding points it at the adapter's logger).
    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn redis(&self) -> &Arc<RedisHandle> {
        &self.redis
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AdapterError::Closed("the adapter was shut down".into()));
        }
        Ok(())
    }

    /// Emits `(topic, body)` rows in one pipeline (one atomic script per event); one result per row.
    pub async fn publish(&self, rows: &[(&str, &str)]) -> Vec<Result<()>> {
        if let Err(e) = self.check_open() {
            return rows.iter().map(|_| Err(e.clone())).collect();
        }
        let now = now_ms();
        let calls: Vec<EmitCall> = rows.iter().map(|(t, b)| EmitCall::new(&self.keys, t, b, now)).collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for c in &calls {
            pipe.cmd("EVALSHA")
                .arg(self.emit.get_hash())
                .arg(c.keys.len())
                .arg(&c.keys)
                .arg(&c.args);
        }
        let replies: Vec<Value> = match self.redis.query(&pipe).await {
            Ok(r) => r,
            Err(e) => return rows.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(rows.len());
        for (c, reply) in calls.iter().zip(replies) {
            out.push(match reply {
                Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                    let mut inv = self.emit.prepare_invoke();
                    inv.key(&c.keys).arg(&c.args);
                    self.redis.invoke::<i64>(&inv).await.map(|_| ())
                }
                Value::ServerError(e) => Err(AdapterError::Backend(format!("emit: {e}"))),
                _ => Ok(()),
            });
        }
        out
    }

    /// Every topic with a step or fan-out subscriber registered anywhere in the fleet (a SCAN of the registries).
    pub async fn topics(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let mut out = std::collections::BTreeSet::new();
        for pattern in self.keys.registry_patterns() {
            for key in self.redis.scan_all(&pattern, 1000).await? {
                out.extend(self.keys.topic_of(&key));
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The step's backlog across the fleet: handled entries are deleted, so the stream holds exactly the waiting
    /// entries plus the pending (read, unsettled) ones.
    pub async fn lag(&self, id: u32) -> Result<Lag> {
        let sub = self.subs.lock_ok().get(&id).cloned();
        let Some(sub) = sub else {
            return Err(AdapterError::Closed(format!("subscription {id} was removed")));
        };
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(&sub.stream);
        pipe.cmd("XPENDING").arg(&sub.stream).arg(EVENTS_GROUP);
        let (len, pending): (u64, Value) = self.redis.query(&pipe).await?;
        let unsettled = match pending {
            Value::Array(v) => v.first().and_then(|c| match c {
                Value::Int(n) => Some(*n as u64),
                _ => None,
            }),
            _ => None,
        }
        .unwrap_or(0);
        Ok(Lag {
            waiting: len.saturating_sub(unsettled),
            unsettled: Some(unsettled),
        })
    }

    /// Registers and starts a consumer; returns its id at once (it connects, and reconnects, in the background).
    pub fn subscribe(self: &Arc<Self>, spec: SubSpec, deliver: Deliver) -> Result<u32> {
        self.check_open()?;
        if spec.limit == 0 {
            return Err(AdapterError::config("prefetch", "must be at least 1"));
        }
        let id = self.next_sub.fetch_add(1, Ordering::SeqCst);
        let member = EventKeys::encode(&spec.name);
        let registry = match spec.membership {
            Membership::Step => self.keys.steps(&spec.topic),
            Membership::Fanout => self.keys.fanout(&spec.topic),
        };
        let sub = Arc::new(Sub {
            id,
            stream: self.keys.stream(&spec.topic, &member),
            dlq: self.keys.dlq(&spec.topic, &member),
            owner: self.keys.owner(&spec.topic, &member),
            registry,
            member,
            consumer: format!("{}-{id}", self.instance),
            spec,
            held: Mutex::new(HashMap::new()),
            next_tag: AtomicU64::new(1),
            freed: Notify::new(),
            gc_at: Mutex::new(tokio::time::Instant::now()),
            stop: watch::channel(false).0,
            ready: watch::channel(Readiness::Pending(None)).0,
            finished: watch::channel(false).0,
        });
        self.subs.lock_ok().insert(id, sub.clone());
        tokio::spawn(self.clone().run(sub, deliver));
        Ok(id)
    }

    /// `None` once consuming; the last error while still trying after `timeout`; `Err` when permanent.
    pub async fn wait_ready(&self, id: u32, timeout: Duration) -> Result<Option<AdapterError>> {
        let sub = self.subs.lock_ok().get(&id).cloned();
        let Some(sub) = sub else {
            return Err(AdapterError::Closed(format!("subscription {id} was removed")));
        };
        wait_readiness(&sub.ready, timeout, || None, "Redis not reachable yet").await
    }

    async fn run(self: Arc<Self>, sub: Arc<Sub>, deliver: Deliver) {
        let mut attempt = 0u32;
        while !sub.stopped() {
            match self.consume(&sub, &deliver, &mut attempt).await {
                Ok(()) => break,
                Err(e) => {
                    self.log.error(&format!("consumer of {}", sub.stream), &e);
                    let was_ready = matches!(*sub.ready.borrow(), Readiness::Ready);
                    if !was_ready {
                        sub.ready.send_replace(Readiness::Pending(Some(e)));
                    }
                    let mut stop = sub.stop.subscribe();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(attempt, 1000)) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
        sub.finished.send_replace(true);
    }

    /// One connected session of a consumer: set up, then read until stopped (`Ok`) or an error (`Err`).
    async fn consume(&self, sub: &Arc<Sub>, deliver: &Deliver, attempt: &mut u32) -> Result<()> {
        self.setup(sub).await?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.redis.connect_timeout()))
            .set_response_timeout(Some(Duration::from_millis(BLOCK_MS) + self.redis.command_timeout()));
        // on a cluster: the node that serves the stream's slot
        let mut conn = self
            .redis
            .client_for_key(&sub.stream)
            .await?
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(classify)?;
        sub.ready.send_replace(Readiness::Ready);
        if *attempt > 0 {
            self.log.recovered(&format!("consumer of {} is back", sub.stream));
        }
        *attempt = 0;
        let every = (sub.spec.visibility / 3).clamp(Duration::from_millis(200), MAINTAIN_MAX);
        let mut next_maintain = tokio::time::Instant::now();
        let mut owner = !sub.spec.fifo;
        let mut stop = sub.stop.subscribe();
        let watch = self.redis.sentinel_watch().cloned();
        let epoch = watch.as_ref().map(|w| w.epoch());
        loop {
            if sub.stopped() {
                return Ok(());
            }
            if watch.as_ref().map(|w| w.epoch()) != epoch {
                // the sentinels announced a new master: read from it (this one gets no new entries)
                return Err(AdapterError::Connect(format!(
                    "{}: the Redis master switched",
                    sub.stream
                )));
            }
            if tokio::time::Instant::now() >= next_maintain {
                owner = self.maintain(sub, deliver, owner).await?;
                next_maintain = tokio::time::Instant::now() + every;
            }
            let free = sub.free();
            if !owner || free == 0 {
                tokio::select! {
                    _ = sub.freed.notified(), if owner => {}
                    _ = tokio::time::sleep_until(next_maintain) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                continue;
            }
            let reply: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(EVENTS_GROUP)
                .arg(&sub.consumer)
                .arg("COUNT")
                .arg(free)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&sub.stream)
                .arg(">")
                .query_async(&mut conn)
                .await
                .map_err(|e| {
                    if e.code() == Some("NOGROUP") {
                        AdapterError::Backend(format!(
                            "{}: the consumer group is gone (Redis lost its data?)",
                            sub.stream
                        ))
                    } else {
                        classify(e)
                    }
                })?;
            let entries = read_reply(reply);
            self.hand_over(sub, deliver, entries, false);
        }
    }

    /// Creates the stream and its group (from the first entry), then registers the subscription.
    async fn setup(&self, sub: &Sub) -> Result<()> {
        let created: Result<Value> = self
            .redis
            .cmd(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&sub.stream)
                    .arg(EVENTS_GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(AdapterError::Backend(m)) if m.contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.register(sub).await
    }

    async fn register(&self, sub: &Sub) -> Result<()> {
        match sub.spec.membership {
            Membership::Step => {
                self.redis
                    .cmd::<Value>(redis::cmd("SADD").arg(&sub.registry).arg(&sub.member))
                    .await?
            }
            Membership::Fanout => {
                self.redis
                    .cmd::<Value>(
                        redis::cmd("ZADD")
                            .arg(&sub.registry)
                            .arg(now_ms() + FANOUT_TTL_MS)
                            .arg(&sub.member),
                    )
                    .await?
            }
        };
        Ok(())
    }

    /// Keeps registrations, leases and held entries fresh and claims what dead consumers held.
    /// Returns whether this consumer may read (always, unless a fifo step's lease is another's).
    async fn maintain(&self, sub: &Arc<Sub>, deliver: &Deliver, was_owner: bool) -> Result<bool> {
        if sub.spec.membership == Membership::Fanout {
            self.register(sub).await?;
        }
        let mut min_idle = sub.spec.visibility.as_millis() as u64;
        let owner = if sub.spec.fifo {
            let mut inv = self.own.key(&sub.owner);
            inv.arg(&sub.consumer).arg(FIFO_LEASE_MS);
            let r: i64 = self.redis.invoke(&inv).await?;
            if r == 2 || (r == 1 && !was_owner) {
                // a new owner: what the previous owner held comes first, whatever its idle time
                min_idle = 0;
            }
            r != 0
        } else {
            true
        };
        let held: Vec<String> = sub.held.lock_ok().values().map(|h| h.id.clone()).collect();
        if !held.is_empty() {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&sub.stream).arg(EVENTS_GROUP).arg(&sub.consumer).arg(0);
            for id in &held {
                cmd.arg(id);
            }
            cmd.arg("JUSTID");
            self.redis.cmd::<Value>(&cmd).await?;
        }
        if owner {
            self.reclaim(sub, deliver, min_idle).await?;
        }
        let gc_due = {
            let mut at = sub.gc_at.lock_ok();
            let now = tokio::time::Instant::now();
            let due = now >= *at;
            if due {
                *at = now + GC_EVERY;
            }
            due
        };
        if gc_due {
            self.forget_idle_consumers(sub).await?;
        }
        Ok(owner)
    }

    /// Deletes consumers of the group that hold nothing and were idle for [`gc_idle_ms`] (processes that stopped or
    /// died; each start adds one per subscription). Harmless for a live one: its next read creates it again.
    async fn forget_idle_consumers(&self, sub: &Sub) -> Result<()> {
        let info: Value = self
            .redis
            .cmd(redis::cmd("XINFO").arg("CONSUMERS").arg(&sub.stream).arg(EVENTS_GROUP))
            .await?;
        let Value::Array(consumers) = info else { return Ok(()) };
        let mut gone = Vec::new();
        for c in consumers {
            let (mut name, mut pending, mut idle) = (None, None, None);
            for (k, v) in pairs(c) {
                let int = match &v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                };
                match bytes(&k).as_deref() {
                    Some(b"name") => name = bytes(&v).map(|b| String::from_utf8_lossy(&b).into_owned()),
                    Some(b"pending") => pending = int,
                    Some(b"idle") => idle = int,
                    _ => {}
                }
            }
            if let (Some(name), Some(0), Some(idle)) = (name, pending, idle) {
                if idle as u64 >= gc_idle_ms() && name != sub.consumer {
                    gone.push(name);
                }
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        // checked again inside the script: a consumer that read something meanwhile keeps its entries
        let mut inv = self.forget.key(&sub.stream);
        inv.arg(EVENTS_GROUP);
        for name in &gone {
            inv.arg(name);
        }
        self.redis.invoke::<i64>(&inv).await.map(|_| ())
    }

    /// Claims up to the free slots: entries idle for `min_idle` ms (held by a dead consumer), then this consumer's
    /// own entries that never reached JS (the read reply, or a settle, was lost with a connection), and hands
    /// them over; those delivered `max_deliveries` times already are dead-lettered instead.
    async fn reclaim(&self, sub: &Arc<Sub>, deliver: &Deliver, min_idle: u64) -> Result<()> {
        let free = sub.free();
        if free == 0 {
            return Ok(());
        }
        let theirs: Vec<(String, u64)> = self
            .pending(sub, min_idle, free, None)
            .await?
            .into_iter()
            .filter(|p| p.1 != sub.consumer)
            .map(|p| (p.0, p.3))
            .collect();
        let mut claimed = self.claim(sub, &theirs, min_idle).await?;
        if claimed.len() < free {
            let held: std::collections::HashSet<String> = sub.held.lock_ok().values().map(|h| h.id.clone()).collect();
            let orphans: Vec<(String, u64)> = self
                .pending(sub, ORPHAN_IDLE_MS, free - claimed.len(), Some(&sub.consumer))
                .await?
                .into_iter()
                .filter(|p| !held.contains(&p.0))
                .map(|p| (p.0, p.3))
                .collect();
            claimed.extend(self.claim(sub, &orphans, ORPHAN_IDLE_MS).await?);
        }
        let (crashed, redeliver): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .partition(|(_, deliveries)| *deliveries > sub.spec.max_deliveries as u64);
        if !crashed.is_empty() {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for ((id, body, prior), deliveries) in &crashed {
                let reason = format!(
                    "delivered {deliveries} times without being settled (the consumer died each time; its handler may crash the process)"
                );
                self.dead_letter_cmds(&mut pipe, sub, id, body, prior + 1, &reason);
            }
            self.redis.query::<Value>(&pipe).await?;
            self.log.info(&format!(
                "{}: dead-lettered {} entries that crashed their consumers",
                sub.stream,
                crashed.len()
            ));
        }
        self.hand_over(sub, deliver, redeliver.into_iter().map(|(e, _)| e).collect(), true);
        Ok(())
    }

    /// `XPENDING … IDLE min_idle - + count [consumer]`: `(id, consumer, idle ms, deliveries)`.
    async fn pending(
        &self,
        sub: &Sub,
        min_idle: u64,
        count: usize,
        consumer: Option<&str>,
    ) -> Result<Vec<(String, String, u64, u64)>> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&sub.stream)
            .arg(EVENTS_GROUP)
            .arg("IDLE")
            .arg(min_idle)
            .arg("-")
            .arg("+")
            .arg(count);
        if let Some(c) = consumer {
            cmd.arg(c);
        }
        self.redis.cmd(&cmd).await
    }

    /// `XCLAIM` of `(id, deliveries so far)` with `min_idle` (so of two claimers only one wins an entry);
    /// returns the entries with their delivery count including this one.
    async fn claim(&self, sub: &Sub, ids: &[(String, u64)], min_idle: u64) -> Result<Vec<(Entry, u64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let counts: HashMap<&str, u64> = ids.iter().map(|(id, n)| (id.as_str(), *n)).collect();
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&sub.stream).arg(EVENTS_GROUP).arg(&sub.consumer).arg(min_idle);
        for (id, _) in ids {
            cmd.arg(id);
        }
        let claimed: Value = self.redis.cmd(&cmd).await?;
        Ok(entries_of(claimed)
            .into_iter()
            .map(|e| {
                let n = counts.get(e.0.as_str()).copied().unwrap_or(0) + 1;
                (e, n)
            })
            .collect())
    }

    fn hand_over(&self, sub: &Sub, deliver: &Deliver, entries: Vec<Entry>, redelivered: bool) {
        if entries.is_empty() {
            return;
        }
        let mut out = String::with_capacity(64 + entries.iter().map(|e| e.1.len() + 24).sum::<usize>());
        out.push('[');
        {
            let mut held = sub.held.lock_ok();
            for (i, (id, body, prior)) in entries.into_iter().enumerate() {
                let tag = sub.next_tag.fetch_add(1, Ordering::SeqCst);
                if i > 0 {
                    out.push(',');
                }
                push_delivery(&mut out, tag, prior, redelivered, &body);
                held.insert(tag, Held { id, body, prior });
            }
        }
        out.push(']');
        deliver(sub.id, 0, out);
    }

    fn dead_letter_cmds(
        &self,
        pipe: &mut redis::Pipeline,
        sub: &Sub,
        id: &str,
        body: &[u8],
        attempts: u32,
        reason: &str,
    ) {
        pipe.cmd("XADD")
            .arg(&sub.dlq)
            .arg("*")
            .arg("d")
            .arg(body)
            .arg("reason")
            .arg(reason)
            .arg("attempts")
            .arg(attempts)
            .arg("id")
            .arg(id)
            .arg("failedAt")
            .arg(now_ms())
            .ignore();
        pipe.cmd("XACK").arg(&sub.stream).arg(EVENTS_GROUP).arg(id).ignore();
        pipe.cmd("XDEL").arg(&sub.stream).arg(id).ignore();
    }

    fn requeue_cmds(pipe: &mut redis::Pipeline, sub: &Sub, held: &Held) {
        pipe.cmd("XADD")
            .arg(&sub.stream)
            .arg("*")
            .arg("d")
            .arg(&held.body)
            .arg("n")
            .arg(held.prior)
            .ignore();
        pipe.cmd("XACK")
            .arg(&sub.stream)
            .arg(EVENTS_GROUP)
            .arg(&held.id)
            .ignore();
        pipe.cmd("XDEL").arg(&sub.stream).arg(&held.id).ignore();
    }

    /// Applies JS's outcomes `(subscription, tag, outcome, note)` in one MULTI (in the background; `settled`
    /// waits for it). `note` is `{"attempts":n,"reason":"…"}` for a dead letter, else empty.
    pub fn settle(self: &Arc<Self>, rows: Vec<(u32, u64, Outcome, String)>) {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut touched = Vec::new();
        let mut any = false;
        // the acks of one stream go as one XACK and one XDEL with every id
        let mut acks: Vec<(Arc<Sub>, Vec<String>)> = Vec::new();
        for (sub_id, tag, outcome, note) in rows {
            let sub = self.subs.lock_ok().get(&sub_id).cloned();
            let Some(sub) = sub else { continue };
            let held = sub.held.lock_ok().remove(&tag);
            let Some(held) = held else { continue };
            any = true;
            match outcome {
                Outcome::Ack => match acks.iter_mut().find(|(s, _)| s.id == sub.id) {
                    Some((_, ids)) => ids.push(held.id),
                    None => acks.push((sub.clone(), vec![held.id])),
                },
                Outcome::DeadLetter => {
                    let (attempts, reason) = parse_note(&note, held.prior);
                    self.dead_letter_cmds(&mut pipe, &sub, &held.id, &held.body, attempts, &reason);
                }
                Outcome::Requeue => Self::requeue_cmds(&mut pipe, &sub, &held),
            }
            touched.push(sub);
        }
        if !any {
            return;
        }
        for (sub, ids) in &acks {
            pipe.cmd("XACK").arg(&sub.stream).arg(EVENTS_GROUP).arg(ids).ignore();
            pipe.cmd("XDEL").arg(&sub.stream).arg(ids).ignore();
        }
        // the handler slots are free now (JS is done with these entries): read more while the acks fly
        for sub in &touched {
            sub.freed.notify_one();
        }
        self.settles.send_modify(|n| *n += 1);
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.redis.query::<Value>(&pipe).await {
                // the entries stay pending under this consumer: refreshed no longer, another claims them
                me.log.error("settle (the entries are delivered again)", &e);
            }
            me.settles.send_modify(|n| *n -= 1);
        });
    }

    /// Resolves when every settle handed over so far has been written.
    pub async fn settled(&self) {
        let mut rx = self.settles.subscribe();
        let _ = tokio::time::timeout(self.redis.connect_timeout() * 2, rx.wait_for(|n| *n == 0)).await;
    }

    pub fn stop(&self, id: u32) {
        if let Some(sub) = self.subs.lock_ok().get(&id) {
            sub.stop.send_replace(true);
        }
    }

    /// Stops the consumer, waits for its read in flight, requeues what JS never settled, drops the consumer
    /// from the group when it holds nothing, and unregisters a fan-out subscriber (deleting its stream).
    pub async fn remove(&self, id: u32) {
        let sub = self.subs.lock_ok().get(&id).cloned();
        let Some(sub) = sub else { return };
        sub.stop.send_replace(true);
        let mut finished = sub.finished.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_millis(BLOCK_MS) + self.redis.command_timeout(),
            finished.wait_for(|f| *f),
        )
        .await;
        self.settled().await;
        self.subs.lock_ok().remove(&id);
        let left: Vec<Held> = sub.held.lock_ok().drain().map(|(_, h)| h).collect();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for h in &left {
            Self::requeue_cmds(&mut pipe, &sub, h);
        }
        if sub.spec.membership == Membership::Fanout {
            pipe.cmd("ZREM").arg(&sub.registry).arg(&sub.member).ignore();
            pipe.cmd("DEL").arg(&sub.stream).ignore();
        } else if sub.spec.fifo {
            // give the lease up only if it is ours (a compare-and-delete would need a script; expiring it is enough)
            pipe.cmd("PEXPIRE").arg(&sub.owner).arg(1).arg("XX").ignore();
        }
        if !pipe.is_empty() {
            if let Err(e) = self.redis.query::<Value>(&pipe).await {
                self.log.error(&format!("unsubscribe of {}", sub.stream), &e);
            }
        }
        if sub.spec.membership == Membership::Step {
            self.drop_consumer_if_empty(&sub).await;
        }
    }

    async fn drop_consumer_if_empty(&self, sub: &Sub) {
        let pending: Result<Vec<Value>> = self
            .redis
            .cmd(
                redis::cmd("XPENDING")
                    .arg(&sub.stream)
                    .arg(EVENTS_GROUP)
                    .arg("-")
                    .arg("+")
                    .arg(1)
                    .arg(&sub.consumer),
            )
            .await;
        if matches!(pending, Ok(ref p) if p.is_empty()) {
            let _ = self
                .redis
                .cmd::<Value>(
                    redis::cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(&sub.stream)
                        .arg(EVENTS_GROUP)
                        .arg(&sub.consumer),
                )
                .await;
        }
    }

    /// Removes every subscription (in parallel), then closes the connection.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let ids: Vec<u32> = self.subs.lock_ok().keys().copied().collect();
        for id in &ids {
            self.stop(*id);
        }
        futures::future::join_all(ids.into_iter().map(|id| self.remove(id))).await;
        self.redis.close();
    }
}

fn parse_note(note: &str, prior: u32) -> (u32, String) {
    let v: serde_json::Value = serde_json::from_str(note).unwrap_or(serde_json::Value::Null);
    let attempts = v
        .get("attempts")
        .and_then(|a| a.as_u64())
        .map(|a| a as u32)
        .unwrap_or(prior + 1);
    let reason = v
        .get("reason")
        .and_then(|r| r.as_str())
        .unwrap_or("dead-lettered by the handler's subscription")
        .to_string();
    (attempts, reason)
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

fn pairs(v: Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m,
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len() / 2);
            let mut it = a.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// `[[id, [field, value, …]], …]` (XCLAIM, the entries of one XREADGROUP stream) → entries. An entry deleted
/// meanwhile (`[id, nil]`) is skipped.
fn entries_of(v: Value) -> Vec<Entry> {
    let Value::Array(items) = v else { return Vec::new() };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else { continue };
        if parts.len() < 2 {
            continue;
        }
        let fields = parts.pop().unwrap_or(Value::Nil);
        let Some(id) = parts.pop().as_ref().and_then(bytes) else {
            continue;
        };
        if matches!(fields, Value::Nil) {
            continue;
        }
        let mut body = Vec::new();
        let mut prior = 0;
        for (k, v) in pairs(fields) {
            match bytes(&k).as_deref() {
                Some(b"d") => body = bytes(&v).unwrap_or_default(),
                Some(b"n") => {
                    prior = bytes(&v)
                        .and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()))
                        .unwrap_or(0)
                }
                _ => {}
            }
        }
        out.push((String::from_utf8_lossy(&id).into_owned(), body, prior));
    }
    out
}

/// An XREADGROUP reply for one stream (`nil` on timeout; RESP2 array or RESP3 map) → its entries.
fn read_reply(v: Value) -> Vec<Entry> {
    let streams = match v {
        Value::Nil => return Vec::new(),
        Value::Map(m) => m.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        Value::Array(a) => a
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect(),
        _ => return Vec::new(),
    };
    streams.into_iter().flat_map(entries_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_xreadgroup_replies() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("d"), bulk("{\"a\":1}")])]),
                Value::Array(vec![
                    bulk("2-0"),
                    Value::Array(vec![bulk("d"), bulk("{}"), bulk("n"), bulk("2")]),
                ]),
                Value::Array(vec![bulk("3-0"), Value::Nil]),
                Value::Array(vec![bulk("4-0"), Value::Array(vec![bulk("x"), bulk("y")])]),
            ]),
        ])]);
        let e = read_reply(reply);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], ("1-0".into(), b"{\"a\":1}".to_vec(), 0));
        assert_eq!(e[1].2, 2);
        // a foreign entry without `d`: an empty body, which JS dead-letters as not an event
        assert_eq!(e[2], ("4-0".into(), Vec::new(), 0));
        assert!(read_reply(Value::Nil).is_empty());
    }

    #[test]
    fn dead_letter_notes() {
        assert_eq!(parse_note(r#"{"attempts":4,"reason":"boom"}"#, 0), (4, "boom".into()));
        assert_eq!(parse_note("", 2).0, 3);
    }
}
