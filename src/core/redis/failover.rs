//! A primary/secondary pair of independent Redis servers (the multi-Redis plan): every call goes to
//! the primary while it is healthy; a prober PINGs both every `probeInterval`, switches to the
//! secondary after `failAfter` failed probes of the primary in a row (when the secondary answers),
//! and back once the primary has answered every probe for `recoverAfter` (or at once when the
//! secondary fails the same way while the primary answers).
//!
//! The two servers do not replicate: a switch leaves behind everything written on the other one
//! since the last switch (state, stream items, pending events), and brings back whatever was
//! written on the new one before. Cron stays safe: after a switch, acquisitions on the new server
//! are refused for one lock TTL (a job taken on the old server may still be running elsewhere).
//! Each switch starts a new epoch (see [`SentinelWatch::switched`]): connections made before are
//! replaced, dedicated ones (pub/sub, blocking reads) included.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::connection::RedisConnectionConfig;
use super::sentinel::SentinelWatch;
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 1_000;
pub const DEFAULT_FAIL_AFTER: u64 = 3;
pub const DEFAULT_RECOVER_AFTER_MS: u64 = 30_000;
const FAILOVER_KEYS: [&str; 5] = ["primary", "secondary", "probeInterval", "failAfter", "recoverAfter"];

/// The `failover` connection shape after the JS layer normalised both servers' shapes.
#[derive(Debug, Clone)]
pub struct FailoverSpec {
    pub primary: Box<RedisConnectionConfig>,
    pub secondary: Box<RedisConnectionConfig>,
    pub probe_interval: Duration,
    pub fail_after: u32,
    pub recover_after: Duration,
}

impl FailoverSpec {
    pub fn from_value(v: serde_json::Value) -> Result<Self> {
        let serde_json::Value::Object(map) = v else {
            return Err(AdapterError::config("failover", "must be { primary, secondary, … }"));
        };
        if let Some(k) = map.keys().find(|k| !FAILOVER_KEYS.contains(&k.as_str())) {
            return Err(AdapterError::config(
                format!("failover.{k}"),
                format!("is not an option we know ({})", FAILOVER_KEYS.join(", ")),
            ));
        }
        let server = |name: &str| -> Result<Box<RedisConnectionConfig>> {
            let v = map
                .get(name)
                .ok_or_else(|| AdapterError::config(format!("failover.{name}"), "is required"))?;
            let c = RedisConnectionConfig::from_json(&v.to_string())?;
            if c.sentinel.is_some() || c.cluster.is_some() || c.failover.is_some() {
                return Err(AdapterError::config(
                    format!("failover.{name}"),
                    "must be one server (url, socket or host/port), not sentinels, a cluster or another pair",
                ));
            }
            Ok(Box::new(c))
        };
        let o = crate::core::options::Options::from_map(map.clone());
        let num = |key: &str, min: u64, max: u64, default: u64| {
            o.int(key, min, max, default).map_err(|_| {
                AdapterError::config(
                    format!("failover.{key}"),
                    format!("must be an integer between {min} and {max}"),
                )
            })
        };
        Ok(FailoverSpec {
            primary: server("primary")?,
            secondary: server("secondary")?,
            probe_interval: Duration::from_millis(num("probeInterval", 10, 3_600_000, DEFAULT_PROBE_INTERVAL_MS)?),
            fail_after: num("failAfter", 1, 1_000, DEFAULT_FAIL_AFTER)? as u32,
            recover_after: Duration::from_millis(num("recoverAfter", 0, 86_400_000, DEFAULT_RECOVER_AFTER_MS)?),
        })
    }
}

/// What the probes saw so far: failures in a row, and since when each server answers every probe.
#[derive(Debug, Default)]
pub struct Health {
    fails: [u32; 2],
    healthy_since: [Option<Instant>; 2],
}

impl Health {
    /// Records one round of probes (`ok[0]` the primary's) and says which server to switch to, if any.
    pub fn observe(&mut self, active: usize, ok: [bool; 2], now: Instant, spec: &FailoverSpec) -> Option<usize> {
        for (i, ok) in ok.iter().enumerate() {
            if *ok {
                self.fails[i] = 0;
                self.healthy_since[i].get_or_insert(now);
            } else {
                self.fails[i] = self.fails[i].saturating_add(1);
                self.healthy_since[i] = None;
            }
        }
        let other = 1 - active;
        if self.fails[active] >= spec.fail_after && ok[other] {
            return Some(other);
        }
        if active == 1 && self.healthy_since[0].is_some_and(|t| now.duration_since(t) >= spec.recover_after) {
            return Some(0);
        }
        None
    }
}

/// The pair at run time: which server is active, and the prober.
pub struct Failover {
    clients: [redis::Client; 2],
    spec: FailoverSpec,
    active: AtomicUsize,
    watch: Arc<SentinelWatch>,
    switched_at: Mutex<Option<Instant>>,
    /// Switches so far (both directions).
    switches: std::sync::atomic::AtomicU64,
    probing: AtomicBool,
    closed: AtomicBool,
}

impl Failover {
    pub fn new(spec: &FailoverSpec) -> Result<Arc<Self>> {
        Ok(Arc::new(Failover {
            clients: [spec.primary.client()?, spec.secondary.client()?],
            spec: spec.clone(),
            active: AtomicUsize::new(0),
            watch: SentinelWatch::detached(),
            switched_at: Mutex::new(None),
            switches: std::sync::atomic::AtomicU64::new(0),
            probing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }))
    }

    /// 0: the primary, 1: the secondary.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// A client of the server to use now.
    pub fn client(&self) -> redis::Client {
        self.clients[self.active()].clone()
    }

    /// The switch counter (a new epoch per switch).
    pub fn watch(&self) -> &Arc<SentinelWatch> {
        &self.watch
    }

    /// When the last switch happened, if one did.
    pub fn switched_at(&self) -> Option<Instant> {
        *self.switched_at.lock_ok()
    }

    /// Switches so far (both directions).
    pub fn switches(&self) -> u64 {
        self.switches.load(Ordering::Acquire)
    }

    fn switch_to(&self, to: usize) {
        self.active.store(to, Ordering::Release);
        *self.switched_at.lock_ok() = Some(Instant::now());
        self.switches.fetch_add(1, Ordering::AcqRel);
        self.watch.switched();
        // the process log shows every switch (an adapter's `metrics()` counts them: `redisSwitches`)
        let why = if to == 1 {
            "the secondary now: the primary failed its probes"
        } else {
            "the primary again: it answered every probe for recoverAfter, or the secondary failed its probes"
        };
        eprintln!("motia-native-adapters [redis] primary/secondary pair: calls go to {why}");
    }

    /// Starts the prober on first use (inside the tokio runtime); it ends after [`Failover::close`]
    /// or once the pair is dropped.
    pub fn ensure_probing(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(probe_loop(Arc::downgrade(self), self.spec.probe_interval));
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

async fn probe_loop(pair: Weak<Failover>, every: Duration) {
    let mut conns: [Option<MultiplexedConnection>; 2] = [None, None];
    let mut health = Health::default();
    loop {
        tokio::time::sleep(every).await;
        let Some(f) = pair.upgrade() else { return };
        if f.closed.load(Ordering::Acquire) {
            return;
        }
        let (a, b) = conns.split_at_mut(1);
        let (p, s) = tokio::join!(
            probe(&f.clients[0], &mut a[0], every),
            probe(&f.clients[1], &mut b[0], every)
        );
        if let Some(to) = health.observe(f.active(), [p, s], Instant::now(), &f.spec) {
            f.switch_to(to);
        }
    }
}

/// One PING within `within` on a kept connection (made again after a failure).
async fn probe(client: &redis::Client, conn: &mut Option<MultiplexedConnection>, within: Duration) -> bool {
    if conn.is_none() {
        *conn = match tokio::time::timeout(within, client.get_multiplexed_async_connection()).await {
            Ok(Ok(c)) => Some(c),
            _ => None,
        };
    }
    let Some(c) = conn.as_mut() else { return false };
    let ok = matches!(
        tokio::time::timeout(within, redis::cmd("PING").query_async::<String>(c)).await,
        Ok(Ok(ref pong)) if pong == "PONG"
    );
    if !ok {
        *conn = None;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FailoverSpec {
        FailoverSpec::from_value(serde_json::json!({
            "primary": {"url": "redis://127.0.0.1:1"},
            "secondary": {"url": "redis://127.0.0.1:2"},
            "probeInterval": 100, "failAfter": 3, "recoverAfter": 1000
        }))
        .unwrap()
    }

    #[test]
    fn switches_after_fail_after_probes_and_back_after_recover_after() {
        let s = spec();
        let mut h = Health::default();
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        assert_eq!(h.observe(0, [true, true], at(0), &s), None);
        assert_eq!(h.observe(0, [false, true], at(100), &s), None);
        assert_eq!(h.observe(0, [false, true], at(200), &s), None);
        assert_eq!(h.observe(0, [false, true], at(300), &s), Some(1));
        // the secondary down too: stay (nowhere better to go)
        let mut both = Health::default();
        for i in 0..5 {
            assert_eq!(both.observe(0, [false, false], at(i * 100), &s), None);
        }
        // back on the primary only after it answered every probe for recoverAfter
        assert_eq!(h.observe(1, [true, true], at(400), &s), None);
        assert_eq!(h.observe(1, [false, true], at(500), &s), None);
        assert_eq!(h.observe(1, [true, true], at(600), &s), None);
        assert_eq!(h.observe(1, [true, true], at(1500), &s), None);
        assert_eq!(h.observe(1, [true, true], at(1600), &s), Some(0));
        // on the secondary, its own failures send calls back to a healthy primary at once
        let mut h2 = Health::default();
        for i in 0..2 {
            assert_eq!(h2.observe(1, [true, false], at(i * 100), &s), None);
        }
        assert_eq!(h2.observe(1, [true, false], at(200), &s), Some(0));
    }

    #[test]
    fn the_spec_is_checked() {
        let s = spec();
        assert_eq!(s.probe_interval, Duration::from_millis(100));
        assert_eq!(s.fail_after, 3);
        let bad = |v: serde_json::Value, field: &str| {
            let e = FailoverSpec::from_value(v).unwrap_err().to_string();
            assert!(e.contains(field), "{e} should name {field}");
        };
        bad(
            serde_json::json!({"primary": {"url": "redis://a"}}),
            "failover.secondary",
        );
        bad(
            serde_json::json!({"primary": {"url": "redis://a"}, "secondary": {"url": "redis://b"}, "failAfter": 0}),
            "failover.failAfter",
        );
        bad(
            serde_json::json!({"primary": {"url": "redis://a"}, "secondary": {"url": "redis://b"}, "probe": 1}),
            "failover.probe",
        );
        bad(
            serde_json::json!({"primary": {"url": "redis://a", "cluster": {"nodes": []}}, "secondary": {"url": "redis://b"}}),
            "failover.primary",
        );
    }
}
