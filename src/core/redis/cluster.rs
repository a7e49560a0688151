//! Redis Cluster on the tokio path: redis-rs' cluster connection, plus what it leaves to us.
//!
//! redis-rs routes single commands by key (and splits MGET/DEL/UNLINK/EXISTS per slot), follows
//! `MOVED`/`ASK` and refreshes its slot map. It refuses pipelines whose keys span slots
//! (`CrossSlot`) and sends an unrouted `SCAN` to one random node, which silently returns only that
//! node's keys, and splits a multi-key command into one command per slot (1,000 GETs for an MGET of
//! 1,000 keys). So [`ClusterConn`] splits every pipeline per master, from its own copy of the slot
//! map (sub-pipelines run concurrently, replies put back in the caller's order; a `MULTI`/`EXEC`
//! pipeline becomes one transaction per slot; `MOVED` replies inside a pipeline, which redis-rs
//! does not follow, are sent again where they point), multi-key commands go per key through that
//! ([`per_key`]), and `RedisHandle::scan_all` runs a SCAN loop on every master. The 0.17 key layout is kept: keys
//! of one trace may live on different nodes, so `setMany` is atomic per slot only (hash-tag the
//! trace id, `{trace}`, for one atomic write). Our own keys that a script touches together with an
//! upstream key are tagged into that key's slot ([`colocated_tag`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use futures::future::{join_all, BoxFuture};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};
use serde::Deserialize;

use super::connection::RedisConnectionConfig;
use super::sentinel::SentinelNode;
use crate::error::{AdapterError, Result};

/// node-redis `createCluster` options after the JS layer normalised them: the seed nodes
/// (`rootNodes`); credentials and TLS (`defaults`) are the connection's and apply to every node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub nodes: Vec<SentinelNode>,
}

impl ClusterSpec {
    pub fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(AdapterError::config("rootNodes", "must name at least one cluster node"));
        }
        Ok(())
    }
}

/// The cluster client, and what dedicated connections (pub/sub) need: plain `SUBSCRIBE` on any
/// node receives what is published on every node, so they take the masters in turn (a lost one is
/// skipped on the next connect), or the seed nodes when no master is known.
pub struct ClusterSource {
    pub client: ClusterClient,
    config: RedisConnectionConfig,
    next: AtomicUsize,
}

impl ClusterSource {
    pub fn new(client: ClusterClient, config: RedisConnectionConfig) -> Self {
        ClusterSource {
            client,
            config,
            next: AtomicUsize::new(0),
        }
    }

    /// A client of the node at `host:port`, with the connection's credentials and TLS.
    pub fn client_at(&self, host: &str, port: u16) -> Result<redis::Client> {
        self.config.client_at(host, port)
    }

    /// A client of one of `masters` (or of the seed nodes when it is empty), in turn.
    pub fn next_node(&self, masters: &[(String, u16)]) -> Result<redis::Client> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let seeds: Vec<(String, u16)>;
        let nodes = if masters.is_empty() {
            seeds = self
                .config
                .cluster
                .iter()
                .flat_map(|c| c.nodes.iter().map(|n| (n.host.clone(), n.port)))
                .collect();
            &seeds
        } else {
            masters
        };
        let (host, port) = nodes
            .get(i % nodes.len().max(1))
            .ok_or_else(|| AdapterError::config("rootNodes", "must name at least one cluster node"))?;
        self.config.client_at(host, *port)
    }
}

/// Builds the cluster client: every seed node with the connection's credentials and TLS.
pub fn build_client(
    infos: Vec<redis::ConnectionInfo>,
    certs: Option<redis::TlsCertificates>,
    connect_timeout: std::time::Duration,
    command_timeout: std::time::Duration,
) -> Result<ClusterClient> {
    let mut b = ClusterClientBuilder::new(infos)
        .connection_timeout(connect_timeout)
        .response_timeout(command_timeout)
        // redis-rs retries MOVED/ASK/TRYAGAIN and lost nodes itself; our ride window does the rest
        .retries(4)
        .min_retry_wait(10)
        .max_retry_wait(200);
    if let Some(c) = certs {
        b = b.certs(c);
    }
    b.build()
        .map_err(|e| AdapterError::config("rootNodes", format!("not a usable cluster configuration: {e}")))
}

/// The key a command is routed by: the first argument, or the first key of a script call
/// (`EVAL`/`EVALSHA`/`FCALL`); `None` for commands without a key (`PING`, `SCAN`).
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|a| match a {
        Arg::Simple(b) => b,
        _ => b"0".as_slice(),
    });
    let name = args.next()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let _script = args.next()?;
            let n: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
            if n == 0 {
                return None;
            }
            args.next()
        }
        b"PING" | b"SCAN" | b"PUBLISH" | b"INFO" | b"ROLE" | b"SCRIPT" | b"CLUSTER" => None,
        // a subcommand first, then the key
        b"XGROUP" | b"XINFO" | b"OBJECT" | b"MEMORY" => args.nth(1),
        _ => args.next(),
    }
}

/// The slot a command's key is in (see [`key_of`]).
pub fn slot_of(cmd: &Cmd) -> Option<Slot> {
    key_of(cmd).map(Slot::for_key)
}

/// How the replies of a multi-key command split per key (see [`per_key`]) are put back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// `MGET`: the values in key order.
    Array,
    /// `UNLINK`/`DEL`/`EXISTS`: the sum of the counts.
    Sum,
}

/// A multi-key command as one command per key in one pipeline, which [`ClusterConn`] sends as one
/// sub-pipeline per master (redis-rs would send one command per slot: ~1,000 for 1,000 keys).
pub fn per_key(cmd: &Cmd) -> Option<(Pipeline, Fold)> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?.to_ascii_uppercase();
    let (single, fold): (&str, Fold) = match name.as_slice() {
        b"MGET" => ("GET", Fold::Array),
        b"UNLINK" => ("UNLINK", Fold::Sum),
        b"DEL" => ("DEL", Fold::Sum),
        b"EXISTS" => ("EXISTS", Fold::Sum),
        _ => return None,
    };
    let keys: Vec<&[u8]> = args.collect();
    if keys.len() < 2 {
        return None;
    }
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd(single).arg(k);
    }
    Some((pipe, fold))
}

/// The reply the multi-key command would have given, from its per-key replies.
pub fn fold(how: Fold, replies: Vec<Value>) -> Value {
    match how {
        Fold::Array => Value::Array(replies),
        Fold::Sum => {
            let mut sum = 0;
            for r in replies {
                match r {
                    Value::Int(n) => sum += n,
                    other => return other,
                }
            }
            Value::Int(sum)
        }
    }
}

/// Where a `MOVED` reply says the slot now lives.
fn moved_to(v: &Value) -> Option<(String, u16)> {
    match v {
        Value::ServerError(e) if e.code() == "MOVED" => {
            let (_slot, addr) = e.details()?.trim().split_once(' ')?;
            let (host, port) = addr.rsplit_once(':')?;
            Some((host.trim_matches(['[', ']']).to_string(), port.parse().ok()?))
        }
        _ => None,
    }
}

/// How often one slot's commands follow `MOVED` before its reply is given back as it is.
const MAX_REDIRECTS: usize = 5;

/// Which master serves each slot, as `CLUSTER SLOTS` last said: pipelines are grouped per node
/// with it (one sub-pipeline per master, not per slot). Loaded on first use and again after a
/// `MOVED` or a failed node; a command whose slot it does not know is routed by redis-rs.
/// A node's address: host and port.
type Node = (String, u16);

#[derive(Default)]
struct SlotTable {
    /// The masters, and for each slot it knows the index of its master (redis-rs' `Slot` does not
    /// give its number out, so the table is keyed by it).
    map: RwLock<(Vec<Node>, HashMap<Slot, usize>)>,
    /// Set once a `CLUSTER SLOTS` answer was read (even one naming no usable address: then every
    /// command is routed by redis-rs, and the map is not asked for again on every pipeline).
    loaded: AtomicBool,
    stale: AtomicBool,
}

impl SlotTable {
    fn node(&self, slot: Slot) -> Option<(String, u16)> {
        let map = self.map.read().ok()?;
        map.1.get(&slot).map(|&i| map.0[i].clone())
    }

    fn needs_load(&self) -> bool {
        self.stale.load(Ordering::Relaxed) || !self.loaded.load(Ordering::Relaxed)
    }

    async fn load(&self, conn: &mut ClusterConnection) {
        self.stale.store(false, Ordering::Relaxed);
        let reply = conn
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await;
        let mut nodes: Vec<Node> = Vec::new();
        let mut slots = HashMap::new();
        if let Ok(Value::Array(entries)) = reply {
            for e in entries {
                let Value::Array(e) = e else { continue };
                let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
                    (e.first(), e.get(1), e.get(2))
                else {
                    continue;
                };
                let host = master
                    .first()
                    .and_then(|h| redis::from_redis_value_ref::<String>(h).ok());
                let port = match master.get(1) {
                    Some(Value::Int(p)) => u16::try_from(*p).ok(),
                    _ => None,
                };
                if let (Some(host), Some(port), Ok(start), Ok(end)) =
                    (host, port, u16::try_from(*start), u16::try_from(*end))
                {
                    // an empty host means "the node you asked": unknown here, left to redis-rs
                    if !host.is_empty() && host != "?" {
                        let node = (host, port);
                        let i = nodes.iter().position(|n| *n == node).unwrap_or_else(|| {
                            nodes.push(node);
                            nodes.len() - 1
                        });
                        slots.extend((start..=end).filter_map(Slot::new).map(|s| (s, i)));
                    }
                }
            }
        } else {
            // no answer: keep what we knew (a stale entry costs a MOVED, then a reload)
            self.stale.store(true, Ordering::Relaxed);
            return;
        }
        if let Ok(mut m) = self.map.write() {
            *m = (nodes, slots);
        }
        self.loaded.store(true, Ordering::Relaxed);
    }
}

/// The cluster connection, splitting pipelines per node and per slot (see the module doc).
#[derive(Clone)]
pub struct ClusterConn {
    pub conn: ClusterConnection,
    slots: Arc<SlotTable>,
}

/// Where a group of a pipeline's commands goes.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Target {
    /// A master known from the slot table (non-transactional pipelines).
    Node(String, u16),
    /// One slot (transactions, and slots the table does not know), or no key at all.
    Slot(Option<Slot>),
}

impl ClusterConn {
    pub fn new(conn: ClusterConnection) -> Self {
        ClusterConn {
            conn,
            slots: Arc::new(SlotTable::default()),
        }
    }

    /// The master serving `key`'s slot, from a fresh read of the slot map.
    pub async fn node_of(&mut self, key: &str) -> Option<Node> {
        self.slots.load(&mut self.conn).await;
        self.slots.node(Slot::for_key(key))
    }

    async fn split(&mut self, pipeline: &Pipeline, atomic: bool) -> redis::RedisResult<Vec<Value>> {
        let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
        if !atomic && self.slots.needs_load() {
            self.slots.load(&mut self.conn).await;
        }
        let mut groups: Vec<(Target, Vec<usize>)> = Vec::new();
        let mut index: HashMap<Target, usize> = HashMap::new();
        for (i, c) in cmds.iter().enumerate() {
            let slot = slot_of(c);
            let target = match slot.and_then(|s| if atomic { None } else { self.slots.node(s) }) {
                Some((host, port)) => Target::Node(host, port),
                None => Target::Slot(slot),
            };
            let g = *index.entry(target.clone()).or_insert_with(|| {
                groups.push((target, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        let runs = groups.iter().map(|(target, idx)| {
            let group: Vec<&Cmd> = idx.iter().map(|&i| cmds[i]).collect();
            let conn = self.conn.clone();
            let slots = self.slots.clone();
            async move {
                match target {
                    Target::Slot(slot) => run_slot(conn, group, *slot, atomic).await,
                    Target::Node(host, port) => run_node(conn, &slots, group, host, *port).await,
                }
            }
        });
        let results = join_all(runs).await;
        let mut out: Vec<Option<Value>> = vec![None; cmds.len()];
        for ((_, idx), r) in groups.iter().zip(results) {
            for (&i, v) in idx.iter().zip(r?) {
                out[i] = Some(v);
            }
        }
        let out: Vec<Value> = out.into_iter().map(|v| v.unwrap_or(Value::Nil)).collect();
        Ok(if atomic { vec![Value::Array(out)] } else { out })
    }
}

/// Commands of several slots that the slot table puts on one master, as one pipeline to it. Those
/// answered `MOVED` (the table was stale: not run there), or all of them when the node is gone from
/// redis-rs' pool (not sent), go again per slot, and the table reloads.
async fn run_node(
    mut conn: ClusterConnection,
    slots: &SlotTable,
    cmds: Vec<&Cmd>,
    host: &str,
    port: u16,
) -> redis::RedisResult<Vec<Value>> {
    let mut sub = redis::pipe();
    for c in &cmds {
        sub.add_command((*c).clone());
    }
    let route = SingleNodeRoutingInfo::ByAddress {
        host: host.to_string(),
        port,
    };
    let (mut values, again): (Vec<Value>, Vec<usize>) = match conn.route_pipeline(sub, 0, cmds.len(), route).await {
        Ok(values) => {
            let moved = (0..values.len()).filter(|&i| moved_to(&values[i]).is_some()).collect();
            (values, moved)
        }
        // the node left redis-rs' pool (it died): nothing was sent, every command goes per slot
        Err(e) if e.kind() == redis::ErrorKind::ClusterConnectionNotFound => {
            (vec![Value::Nil; cmds.len()], (0..cmds.len()).collect())
        }
        Err(e) => {
            slots.stale.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    if again.is_empty() {
        return Ok(values);
    }
    slots.stale.store(true, Ordering::Relaxed);
    let mut per_slot: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
    for &i in &again {
        let slot = slot_of(cmds[i]);
        match per_slot.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, v)) => v.push(i),
            None => per_slot.push((slot, vec![i])),
        }
    }
    let again = per_slot.iter().map(|(slot, idx)| {
        let group: Vec<&Cmd> = idx.iter().map(|&i| cmds[i]).collect();
        run_slot(conn.clone(), group, *slot, false)
    });
    for ((_, idx), r) in per_slot.iter().zip(join_all(again).await) {
        for (&i, v) in idx.iter().zip(r?) {
            values[i] = v;
        }
    }
    Ok(values)
}

/// One slot's commands as one pipeline (one `MULTI`/`EXEC` when `atomic`), one reply per command.
/// A failover leaves redis-rs' slot map stale for a moment, and it does not follow `MOVED` inside
/// pipeline replies: the commands that got `MOVED` (not run there) are sent again to the node it
/// names, and a keyed probe makes redis-rs refresh its map.
async fn run_slot(
    mut conn: ClusterConnection,
    cmds: Vec<&Cmd>,
    slot: Option<Slot>,
    atomic: bool,
) -> redis::RedisResult<Vec<Value>> {
    let mut route = match slot {
        Some(s) => SingleNodeRoutingInfo::SpecificNode(Route::with_slot(s, SlotAddr::Master)),
        None => SingleNodeRoutingInfo::RandomPrimary,
    };
    let mut out: Vec<Option<Value>> = vec![None; cmds.len()];
    let mut todo: Vec<usize> = (0..cmds.len()).collect();
    for attempt in 0..=MAX_REDIRECTS {
        let mut sub = redis::pipe();
        if atomic {
            sub.atomic();
        }
        for &i in &todo {
            sub.add_command(cmds[i].clone());
        }
        // a transaction's replies: MULTI's, one QUEUED (or MOVED) per command, then EXEC's
        let n = todo.len();
        let (offset, count) = if atomic { (0, n + 2) } else { (0, n) };
        let mut values = conn.route_pipeline(sub, offset, count, route.clone()).await?;
        let replies: Vec<Value> = if atomic {
            let exec = values.pop().unwrap_or(Value::Nil);
            match values.iter().skip(1).find_map(moved_to) {
                Some(to) if attempt < MAX_REDIRECTS => {
                    route = redirect(&mut conn, cmds[todo[0]], to).await;
                    continue;
                }
                _ => match exec {
                    Value::Array(v) => v,
                    other => {
                        // EXECABORT: each command's own error when it has one
                        let queued: Vec<Value> = values.into_iter().skip(1).collect();
                        queued
                            .into_iter()
                            .map(|q| {
                                if matches!(q, Value::ServerError(_)) {
                                    q
                                } else {
                                    other.clone()
                                }
                            })
                            .collect()
                    }
                },
            }
        } else {
            values
        };
        let mut moved = Vec::new();
        let mut to = None;
        for (&i, v) in todo.iter().zip(replies) {
            match moved_to(&v) {
                Some(addr) if attempt < MAX_REDIRECTS => {
                    to.get_or_insert(addr);
                    moved.push(i);
                }
                _ => out[i] = Some(v),
            }
        }
        match to {
            Some(to) => {
                route = redirect(&mut conn, cmds[moved[0]], to).await;
                todo = moved;
            }
            None => break,
        }
    }
    Ok(out.into_iter().map(|v| v.unwrap_or(Value::Nil)).collect())
}

/// After a `MOVED` for `cmd`'s slot: an `EXISTS` on its key, which redis-rs routes, sees moved
/// and follows by refreshing its slot map; the retry goes to the node the reply named.
async fn redirect(conn: &mut ClusterConnection, cmd: &Cmd, (host, port): (String, u16)) -> SingleNodeRoutingInfo {
    if let Some(key) = key_of(cmd) {
        let _ = redis::aio::ConnectionLike::req_packed_command(conn, redis::cmd("EXISTS").arg(key)).await;
    }
    SingleNodeRoutingInfo::ByAddress { host, port }
}

impl redis::aio::ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let atomic = pipeline.is_transaction();
        let fut: BoxFuture<'a, redis::RedisResult<Vec<Value>>> = Box::pin(self.split(pipeline, atomic));
        fut
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The masters now (`host`, `port`), as the connection's slot map knows them.
pub async fn masters(conn: &mut ClusterConnection) -> redis::RedisResult<Vec<(String, u16)>> {
    let reply = conn
        .route_command(
            redis::cmd("PING"),
            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
        )
        .await?;
    let mut out = Vec::new();
    if let Value::Map(entries) = reply {
        for (addr, _) in entries {
            let addr: String = redis::from_redis_value(addr)?;
            if let Some((host, port)) = addr.rsplit_once(':') {
                if let Ok(port) = port.parse() {
                    out.push((host.trim_matches(['[', ']']).to_string(), port));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One SCAN page on one master.
pub async fn scan_page(
    conn: &mut ClusterConnection,
    node: &(String, u16),
    cursor: u64,
    pattern: &str,
    count: usize,
) -> redis::RedisResult<(u64, Vec<String>)> {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
    let reply = conn
        .route_command(
            cmd,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: node.0.clone(),
                port: node.1,
            }),
        )
        .await?;
    Ok(redis::from_redis_value(reply)?)
}

/// A hash tag that puts a key of ours into the slot of `key` (an upstream key we must not rename):
/// `key`'s own tag when it has one, `key` itself when it has no braces, else a number found to
/// hash to the same slot (the same for every process).
pub fn colocated_tag(key: &str) -> String {
    let bytes = key.as_bytes();
    if let Some(open) = bytes.iter().position(|b| *b == b'{') {
        if let Some(len) = bytes[open + 1..].iter().position(|b| *b == b'}') {
            if len > 0 {
                return key[open + 1..open + 1 + len].to_string();
            }
        }
    }
    if !key.is_empty() && !key.contains('}') {
        return key.to_string();
    }
    let target = Slot::for_key(key);
    (0u32..)
        .map(|n| n.to_string())
        .find(|n| Slot::for_key(n) == target)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_from_the_key_or_the_first_script_key() {
        let k = |c: &Cmd| slot_of(c);
        assert_eq!(k(redis::cmd("GET").arg("a")), Some(Slot::for_key("a")));
        assert_eq!(
            k(redis::cmd("EVALSHA").arg("sha").arg(2).arg("b").arg("c").arg("x")),
            Some(Slot::for_key("b"))
        );
        assert_eq!(k(redis::cmd("EVAL").arg("return 1").arg(0)), None);
        assert_eq!(k(redis::cmd("SCAN").arg(0)), None);
        assert_eq!(
            k(redis::cmd("XGROUP").arg("CREATE").arg("s").arg("g")),
            Some(Slot::for_key("s"))
        );
        assert_eq!(k(&redis::cmd("PING")), None);
    }

    #[test]
    fn multi_key_commands_split_per_key_and_fold_back() {
        let (pipe, how) = per_key(redis::cmd("MGET").arg("a").arg("b")).unwrap();
        assert_eq!(how, Fold::Array);
        let names: Vec<Vec<u8>> = pipe.cmd_iter().map(|c| c.get_packed_command()).collect();
        assert_eq!(
            names,
            vec![
                redis::cmd("GET").arg("a").get_packed_command(),
                redis::cmd("GET").arg("b").get_packed_command()
            ]
        );
        assert_eq!(per_key(redis::cmd("UNLINK").arg("a").arg("b")).unwrap().1, Fold::Sum);
        assert!(per_key(redis::cmd("MGET").arg("a")).is_none());
        assert!(per_key(redis::cmd("SET").arg("a").arg("b")).is_none());
        assert_eq!(
            fold(Fold::Sum, vec![Value::Int(1), Value::Int(0), Value::Int(1)]),
            Value::Int(2)
        );
        assert_eq!(fold(Fold::Array, vec![Value::Nil]), Value::Array(vec![Value::Nil]));
    }

    #[test]
    fn colocated_tags_hash_like_the_key() {
        for key in [
            "motia:cron:lock:daily",
            "motia:cron:lock:{team}:x",
            "lock:a}b",
            "lock:{}x}",
            "lock:a{b",
            "}{",
            "",
        ] {
            let fence = format!("motia:cron:fence:{{{}}}{key}", colocated_tag(key));
            assert_eq!(Slot::for_key(&fence), Slot::for_key(key), "{key:?} -> {fence:?}");
        }
        assert_eq!(colocated_tag("motia:cron:lock:daily"), "motia:cron:lock:daily");
        assert_eq!(colocated_tag("p:{team}:x"), "team");
    }
}
