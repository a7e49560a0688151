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
use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SentinelConfig {
    pub nodes: Vec<SentinelNode>,
    pub name: String,
    pub username: Option<String>,
    pub password: Option<String>,
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
        let info = ConnectionAddr::Tcp(node.host.clone(), node.port).into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        redis::Client::open(info.set_redis_settings(settings))
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

/// Counts the master switches of one sentinel group, as the sentinels announce them on their
/// `+switch-master` channel. A connection made at epoch `e` is dropped once the epoch is past `e`:
/// a master demoted while alive keeps accepting writes until the sentinels reconfigure it (up to
/// their 10 s INFO period), and every write it takes then is lost when it becomes a replica.
///
/// One watcher thread per group and process (shared by every adapter using it), blocked in a
/// pub/sub read with a 1 s timeout; it ends when the last adapter of the group dropped its handle.
/// A watcher that lost its sentinel and subscribed again counts one switch (it may have missed one).
#[derive(Debug)]
pub struct SentinelWatch {
    epoch: watch::Sender<u64>,
}

/// How long the watcher blocks in one read before it checks whether it is still needed.
const WATCH_READ_TIMEOUT: Duration = Duration::from_millis(1_000);
const WATCH_RETRY: Duration = Duration::from_millis(100);

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
        let w = Arc::new(SentinelWatch { epoch });
        let (weak, spec_owned) = (Arc::downgrade(&w), spec.clone());
        std::thread::Builder::new()
            .name("motia-sentinel-watch".into())
            .spawn(move || watch_loop(spec_owned, weak))
            .map_err(|e| AdapterError::Internal(format!("cannot start the sentinel watcher: {e}")))?;
        map.insert(spec.clone(), Arc::downgrade(&w));
        Ok(w)
    }

    pub fn epoch(&self) -> u64 {
        *self.epoch.borrow()
    }

    /// Changes whenever the epoch moves (for tasks that wait on a dedicated connection).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    fn bump(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// Whether a `+switch-master` payload (`<name> <old-ip> <old-port> <new-ip> <new-port>`) is about `name`.
pub fn switch_is_for(payload: &str, name: &str) -> bool {
    payload.split(' ').next() == Some(name)
}

fn watch_loop(spec: SentinelConfig, me: Weak<SentinelWatch>) {
    let mut subscribed_before = false;
    let mut next = 0usize;
    loop {
        if me.strong_count() == 0 {
            return;
        }
        let node = &spec.nodes[next % spec.nodes.len()];
        next += 1;
        let session = (|| -> redis::RedisResult<()> {
            let mut con = spec
                .sentinel_client(node)?
                .get_connection_with_timeout(WATCH_READ_TIMEOUT)?;
            con.set_read_timeout(Some(WATCH_READ_TIMEOUT))?;
            let mut pubsub = con.as_pubsub();
            pubsub.subscribe("+switch-master")?;
            if subscribed_before {
                // a switch may have happened while no sentinel was listened to
                if let Some(w) = me.upgrade() {
                    w.bump();
                }
            }
            subscribed_before = true;
            loop {
                let Some(w) = me.upgrade() else {
                    return Ok(());
                };
                drop(w);
                match pubsub.get_message() {
                    Ok(msg) => {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        if switch_is_for(&payload, &spec.name) {
                            if let Some(w) = me.upgrade() {
                                w.bump();
                            }
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => return Err(e),
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
            username: None,
            password: None,
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
    fn switch_messages_are_matched_by_group_name() {
        assert!(switch_is_for("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
        assert!(!switch_is_for("mymaster2 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
        assert!(!switch_is_for("", "mymaster"));
    }

    #[test]
    fn role_check() {
        assert!(is_master_role(b"master"));
        assert!(!is_master_role(b"slave"));
        assert!(!is_master_role(b"sentinel"));
    }
}
