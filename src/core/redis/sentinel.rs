//! Redis Sentinel: which server is the master of a monitored group right now.
//!
//! Both connection paths (the tokio [`super::connection::RedisHandle`] and the event-loop
//! [`super::loop_conn::LoopConn`]) ask the sentinels on **every** (re)connect, never cache the
//! answer, and check with `ROLE` that the server they reached is the master. A connection that is
//! dropped, refused, or answered `READONLY` (the server was demoted) is replaced by a new one to
//! the address the sentinels give then. So after a failover no command is sent to the old master,
//! even if it comes back believing it still is one (redis-rs resolves once and does not follow
//! `+switch-master`, redis-rs #1438; see the README "Redis Sentinel").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, IntoConnectionInfo};
use serde::Deserialize;
use tokio::sync::watch;

use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// Longest wait for one sentinel (connect + answer) before the next one is asked.
pub const SENTINEL_QUERY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// One sentinel address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelNode {
    pub host: String,
    pub port: u16,
}

/// node-redis `createSentinel` options after the JS layer normalised them: the sentinels, the
/// monitored group's `name`, and the credentials of the sentinels themselves
/// (`sentinelClientOptions`); the data nodes' credentials, database and TLS are the connection's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SentinelConfig {
    pub nodes: Vec<SentinelNode>,
    pub name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS to the sentinels (`sentinelClientOptions.socket.tls`).
    #[serde(default)]
    pub tls: bool,
    /// `sentinelClientOptions.socket.rejectUnauthorized: false`: any certificate is accepted.
    #[serde(default)]
    pub tls_insecure: bool,
    /// `sentinelClientOptions.socket.ca` (PEM): the roots their certificates are checked against
    /// (else the public web roots).
    #[serde(default)]
    pub ca: Option<String>,
}

impl SentinelConfig {
    pub fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(AdapterError::config(
                "sentinelRootNodes",
                "must name at least one sentinel",
            ));
        }
        if self.name.is_empty() {
            return Err(AdapterError::config("name", "must name the monitored master group"));
        }
        Ok(())
    }

    /// Asks the sentinels in order (blocking; call it off the JS thread and off tokio workers) and
    /// returns the first master address one of them knows.
    pub fn resolve_master(&self, budget: Duration) -> Result<(String, u16)> {
        let per = budget.min(SENTINEL_QUERY_TIMEOUT).max(Duration::from_millis(10));
        let mut unknown = 0usize;
        let mut last = String::new();
        for node in &self.nodes {
            match self.ask(node, per) {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => unknown += 1,
                Err(e) => last = e.to_string(),
            }
        }
        if unknown == self.nodes.len() {
            return Err(AdapterError::config(
                "name",
                format!("no sentinel monitors a master named `{}`", self.name),
            ));
        }
        Err(AdapterError::Connect(format!(
            "no sentinel of {} told the master of `{}`: {}",
            self.nodes.len(),
            self.name,
            if last.is_empty() { "they do not know it" } else { &last }
        )))
    }

    fn sentinel_client(&self, node: &SentinelNode) -> redis::RedisResult<redis::Client> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: node.host.clone(),
                port: node.port,
                insecure: self.tls_insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(node.host.clone(), node.port)
        };
        let info = addr.into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let info = info.set_redis_settings(settings);
        match (&self.ca, self.tls) {
            (Some(ca), true) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone().into_bytes()),
                },
            ),
            _ => redis::Client::open(info),
        }
    }

    fn ask(&self, node: &SentinelNode, timeout: Duration) -> redis::RedisResult<Option<(String, u16)>> {
        let mut con = self.sentinel_client(node)?.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.name)
            .query(&mut con)
    }
}

/// What the sentinels of one group announce, for every connection to that group in this process:
///
/// - the **epoch** counts master switches (`+switch-master`, deduplicated by the new address; also
///   a changed answer after a watcher had to resubscribe). A connection made at epoch `e` is
///   replaced once the epoch is past `e`: a master demoted while alive keeps accepting writes until
///   the sentinels reconfigure it (up to their 10 s INFO period), and every write it takes then is
///   lost when it becomes a replica.
/// - the **hold**: from `+failover-state-send-slaveof-noone` (the leader is about to promote a
///   replica) until the switch or `-failover-abort-*`, connections send nothing (each at most for
///   its `connectTimeout`), so writes are not taken by a master that is being replaced.
///
/// One thread per sentinel (only the failover's leader announces its steps), blocked in a pub/sub
/// read with a 1 s timeout; they end when the last adapter of the group dropped its handle.
#[derive(Debug)]
pub struct SentinelWatch {
    epoch: watch::Sender<u64>,
    hold: Mutex<Option<Instant>>,
    /// The master address last announced or answered (`ip port`), to count each switch once.
    master: Mutex<Option<String>>,
}

/// How long a watcher blocks in one read before it checks whether it is still needed.
const WATCH_READ_TIMEOUT: Duration = Duration::from_millis(1_000);
const WATCH_RETRY: Duration = Duration::from_millis(100);
/// How often a held connection looks whether the hold is over.
pub const HOLD_POLL: Duration = Duration::from_millis(2);

fn watches() -> &'static Mutex<HashMap<SentinelConfig, Weak<SentinelWatch>>> {
    static WATCHES: OnceLock<Mutex<HashMap<SentinelConfig, Weak<SentinelWatch>>>> = OnceLock::new();
    WATCHES.get_or_init(Default::default)
}

impl SentinelWatch {
    /// The watcher of this group, started on first use.
    pub fn of(spec: &SentinelConfig) -> Result<Arc<SentinelWatch>> {
        let mut map = watches().lock_ok();
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(w) = map.get(spec).and_then(Weak::upgrade) {
            return Ok(w);
        }
        let (epoch, _) = watch::channel(0u64);
        let w = Arc::new(SentinelWatch {
            epoch,
            hold: Mutex::new(None),
            master: Mutex::new(None),
        });
        let spec = Arc::new(spec.clone());
        for i in 0..spec.nodes.len() {
            let (weak, spec) = (Arc::downgrade(&w), spec.clone());
            std::thread::Builder::new()
                .name("motia-sentinel-watch".into())
                .spawn(move || watch_loop(&spec, i, weak))
                .map_err(|e| AdapterError::Internal(format!("cannot start the sentinel watcher: {e}")))?;
        }
        map.insert((*spec).clone(), Arc::downgrade(&w));
        Ok(w)
    }

    /// A switch counter without sentinels behind it: [`SentinelWatch::switched`] moves it (the
    /// primary/secondary pair's prober does), and every connection made before is replaced.
    pub fn detached() -> Arc<SentinelWatch> {
        let (epoch, _) = watch::channel(0u64);
        Arc::new(SentinelWatch {
            epoch,
            hold: Mutex::new(None),
            master: Mutex::new(None),
        })
    }

    /// A new epoch: the server to use changed.
    pub fn switched(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    pub fn epoch(&self) -> u64 {
        *self.epoch.borrow()
    }

    /// Changes whenever the epoch moves (for tasks that wait on a dedicated connection).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// Since when a failover is under way (connections hold their commands), if one is.
    pub fn held_since(&self) -> Option<Instant> {
        *self.hold.lock_ok()
    }

    /// Whether a connection with this `connect_timeout` must hold its commands now.
    pub fn holding(&self, now: Instant, connect_timeout: Duration) -> bool {
        self.held_since().is_some_and(|t| now < t + connect_timeout)
    }

    fn start_hold(&self) {
        self.hold.lock_ok().get_or_insert_with(Instant::now);
    }

    fn end_hold(&self) {
        *self.hold.lock_ok() = None;
    }

    /// The master is at `addr` now: a new epoch if it was elsewhere before.
    fn master_is(&self, addr: String) {
        let mut m = self.master.lock_ok();
        let moved = m.as_ref().is_some_and(|old| *old != addr);
        *m = Some(addr);
        drop(m);
        if moved {
            self.end_hold();
            self.epoch.send_modify(|e| *e += 1);
        }
    }
}

/// One announcement of a sentinel about group `name`, from its pub/sub channel and payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Announcement {
    /// `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`: the new master's `ip port`.
    Switched(String),
    /// `+failover-state-send-slaveof-noone <replica> … @ <name> …`: a replica is being promoted.
    Promoting,
    /// `-failover-abort-*` for the master of `name`.
    Aborted,
}

pub fn announcement(channel: &str, payload: &str, name: &str) -> Option<Announcement> {
    let words: Vec<&str> = payload.split(' ').collect();
    match channel {
        "+switch-master" if words.len() >= 5 && words[0] == name => {
            Some(Announcement::Switched(format!("{} {}", words[3], words[4])))
        }
        "+failover-state-send-slaveof-noone" => {
            let at = words.iter().position(|w| *w == "@")?;
            (words.get(at + 1) == Some(&name)).then_some(Announcement::Promoting)
        }
        c if c.starts_with("-failover-abort") => {
            let named = words.get(1) == Some(&name) || words.iter().skip_while(|w| **w != "@").nth(1) == Some(&name);
            named.then_some(Announcement::Aborted)
        }
        _ => None,
    }
}

fn watch_loop(spec: &SentinelConfig, node: usize, me: Weak<SentinelWatch>) {
    let node = &spec.nodes[node];
    loop {
        if me.strong_count() == 0 {
            return;
        }
        let session = (|| -> redis::RedisResult<()> {
            let client = spec.sentinel_client(node)?;
            // where the master is now (a switch may have happened while this sentinel was not heard)
            let mut ask = client.get_connection_with_timeout(WATCH_READ_TIMEOUT)?;
            ask.set_read_timeout(Some(WATCH_READ_TIMEOUT))?;
            let now: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&spec.name)
                .query(&mut ask)?;
            let mut con = client.get_connection_with_timeout(WATCH_READ_TIMEOUT)?;
            con.set_read_timeout(Some(WATCH_READ_TIMEOUT))?;
            let mut pubsub = con.as_pubsub();
            pubsub.subscribe(&["+switch-master", "+failover-state-send-slaveof-noone"])?;
            pubsub.psubscribe("-failover-abort-*")?;
            if let (Some((ip, port)), Some(w)) = (now, me.upgrade()) {
                w.master_is(format!("{ip} {port}"));
            }
            loop {
                if me.strong_count() == 0 {
                    return Ok(());
                }
                let msg = match pubsub.get_message() {
                    Ok(m) => m,
                    Err(e) if e.is_timeout() => continue,
                    Err(e) => return Err(e),
                };
                let payload: String = msg.get_payload().unwrap_or_default();
                let Some(w) = me.upgrade() else {
                    return Ok(());
                };
                match announcement(msg.get_channel_name(), &payload, &spec.name) {
                    Some(Announcement::Switched(addr)) => w.master_is(addr),
                    Some(Announcement::Promoting) => w.start_hold(),
                    Some(Announcement::Aborted) => w.end_hold(),
                    None => {}
                }
            }
        })();
        if session.is_ok() {
            return; // no adapter needs the watcher any more
        }
        std::thread::sleep(WATCH_RETRY);
    }
}

/// Whether a `ROLE` reply's first element says `master`.
pub fn is_master_role(first: &[u8]) -> bool {
    first.eq_ignore_ascii_case(b"master")
}

/// The error of a connection that reached a server which is not (or no longer) the master.
pub fn not_master(host: &str, port: u16, name: &str) -> AdapterError {
    AdapterError::Connect(format!(
        "Redis at {host}:{port} is not the master of `{name}` (a failover is under way); asking the sentinels again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: Vec<SentinelNode>) -> SentinelConfig {
        SentinelConfig {
            nodes,
            name: "mymaster".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validates_nodes_and_name() {
        assert_eq!(spec(vec![]).validate().unwrap_err().code(), "MOTIA_CONFIG");
        let mut s = spec(vec![SentinelNode {
            host: "127.0.0.1".into(),
            port: 1,
        }]);
        assert!(s.validate().is_ok());
        s.name.clear();
        assert!(s.validate().unwrap_err().js_message().contains("`name`"));
    }

    #[test]
    fn unreachable_sentinels_fail_with_connect() {
        // port 1 on loopback refuses at once
        let s = spec(vec![
            SentinelNode {
                host: "127.0.0.1".into(),
                port: 1,
            };
            2
        ]);
        let e = s.resolve_master(Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.code(), "MOTIA_CONNECT");
        assert!(e.js_message().contains("no sentinel of 2"));
    }

    #[test]
    fn announcements_are_matched_by_group_name() {
        let a = |c, p| announcement(c, p, "mymaster");
        assert_eq!(
            a("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"),
            Some(Announcement::Switched("127.0.0.1 6380".into()))
        );
        assert_eq!(a("+switch-master", "mymaster2 127.0.0.1 6379 127.0.0.1 6380"), None);
        assert_eq!(
            a(
                "+failover-state-send-slaveof-noone",
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379"
            ),
            Some(Announcement::Promoting)
        );
        assert_eq!(
            a(
                "+failover-state-send-slaveof-noone",
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ other 127.0.0.1 6379"
            ),
            None
        );
        assert_eq!(
            a("-failover-abort-no-good-slave", "master mymaster 127.0.0.1 6379"),
            Some(Announcement::Aborted)
        );
        assert_eq!(a("+sdown", "master mymaster 127.0.0.1 6379"), None);
    }

    #[test]
    fn a_switch_counts_once_and_ends_the_hold() {
        let (epoch, _) = watch::channel(0u64);
        let w = SentinelWatch {
            epoch,
            hold: Mutex::new(None),
            master: Mutex::new(None),
        };
        w.master_is("h 1".into());
        assert_eq!(w.epoch(), 0, "the first answer is no switch");
        w.start_hold();
        assert!(w.holding(Instant::now(), Duration::from_secs(1)));
        assert!(!w.holding(Instant::now() + Duration::from_secs(2), Duration::from_secs(1)));
        w.master_is("h 2".into());
        w.master_is("h 2".into()); // every sentinel announces it
        assert_eq!(w.epoch(), 1);
        assert!(w.held_since().is_none());
    }

    #[test]
    fn role_check() {
        assert!(is_master_role(b"master"));
        assert!(!is_master_role(b"slave"));
        assert!(!is_master_role(b"sentinel"));
    }
}
