//! One multiplexed, auto-reconnecting Redis connection per adapter.
//!
//! Behaviour (documented in the README too):
//! - The connection is opened on first use (or eagerly by [`RedisHandle::warm_up`]); every
//!   concurrent call shares it and Redis pipelines them on one socket.
//! - Riding through restarts: a command that finds the server unreachable (refused, dropped) or
//!   busy with a transient reply (`LOADING`, `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`, and on a
//!   cluster a `MOVED` that still names a dead master while its replica is promoted) waits and is
//!   sent again (backoff 10 ms doubling to 200 ms) until it succeeds or `connect_timeout` has passed
//!   since it was called; then it fails with `MOTIA_CONNECT`/`MOTIA_TIMEOUT`/`MOTIA_BACKEND`. A
//!   one-second blip is invisible to callers; a server that never returns is not waited for forever.
//! - Each command is bounded by `command_timeout`.
//! - [`RedisHandle::close`] drops the connection; later calls fail with `MOTIA_CLOSED`.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use serde::Deserialize;

use super::cluster::{ClusterConn, ClusterSource, ClusterSpec};
use super::failover::{Failover, FailoverSpec};
use super::sentinel::{is_master_role, not_master, SentinelConfig, SentinelWatch, HOLD_POLL};
use crate::error::{AdapterError, Result};

pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 30_000;
/// The highest `database` index accepted (servers default to 16; `databases` can be raised).
pub const MAX_DATABASE: u64 = 1 << 20;
/// The longest `connectTimeout` / `commandTimeout` accepted (ms; node's timer limit).
pub const MAX_TIMEOUT_MS: u64 = (1 << 31) - 1;
/// The most replicas `waitReplicas` may ask for.
pub const MAX_WAIT_REPLICAS: u64 = 64;
/// How long a call waits for `waitReplicas` replicas when `waitTimeout` is not set (ms).
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 1_000;

/// Connection settings after the JS layer normalised the user's shape
/// (node-redis client, node-redis options or the legacy flat form).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisConnectionConfig {
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: bool,
    /// Accept any certificate (node's `rejectUnauthorized: false`).
    #[serde(default)]
    pub tls_insecure: bool,
    /// PEM root certificate(s) to trust instead of the webpki roots.
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: Option<i64>,
    pub connect_timeout: Option<u64>,
    pub command_timeout: Option<u64>,
    /// `WAIT <waitReplicas> <waitTimeout>` after every call: a write is acknowledged only once that
    /// many replicas have it (it then survives a failover to one of them). 0 or unset: no WAIT.
    pub wait_replicas: Option<u64>,
    /// How long a call waits for `waitReplicas` replicas (ms, default [`DEFAULT_WAIT_TIMEOUT_MS`]).
    pub wait_timeout: Option<u64>,
    /// Redis Sentinel: the master is asked of these sentinels on every connect (`host`/`port`/`url`
    /// are then unused; the other fields apply to the data nodes).
    pub sentinel: Option<SentinelConfig>,
    /// Redis Cluster: the seed nodes (`host`/`port`/`url` are then unused; credentials and TLS apply
    /// to every node).
    pub cluster: Option<ClusterSpec>,
    /// A primary/secondary pair of independent servers (see `failover`); parsed by hand in
    /// [`RedisConnectionConfig::from_json`] (both servers are whole connection shapes).
    #[serde(skip)]
    pub failover: Option<FailoverSpec>,
}

impl RedisConnectionConfig {
    /// The connection the JS layer normalised from the user's shape. Numbers are checked here (the
    /// JS side sends them as written); `labels` maps a field to the option the user wrote it as (e.g.
    /// `port` → `socket.port`), so the error names that one. A port of `NaN` (`parseInt` of an unset
    /// variable) means "not set".
    pub fn from_json(json: &str) -> Result<Self> {
        let mut v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| AdapterError::config("connection", e.to_string()))?;
        let mut failover = None;
        if let Some(map) = v.as_object_mut() {
            failover = map.remove("failover");
            let labels = map.remove("labels");
            let label = |k: &str| -> String {
                labels
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .and_then(|l| l.as_str())
                    .unwrap_or(k)
                    .to_string()
            };
            if map.get("port").and_then(|p| p.as_str()) == Some("NaN") {
                map.remove("port");
            }
            let o = crate::core::options::Options::from_map(map.clone());
            for (key, min, max) in [
                ("port", 1, u16::MAX as u64),
                ("database", 0, MAX_DATABASE),
                ("connectTimeout", 1, MAX_TIMEOUT_MS),
                ("commandTimeout", 1, MAX_TIMEOUT_MS),
                ("waitReplicas", 0, MAX_WAIT_REPLICAS),
                ("waitTimeout", 1, MAX_TIMEOUT_MS),
            ] {
                match o.opt_int(key, min, max) {
                    Ok(Some(n)) => {
                        map.insert(key.to_string(), n.into());
                    }
                    Ok(None) => {
                        map.remove(key);
                    }
                    Err(_) => {
                        return Err(AdapterError::config(
                            label(key),
                            format!("must be an integer between {min} and {max}"),
                        ))
                    }
                }
            }
        }
        let mut config: Self =
            serde_json::from_value(v).map_err(|e| AdapterError::config("connection", e.to_string()))?;
        config.failover = failover.map(FailoverSpec::from_value).transpose()?;
        Ok(config)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS).max(1))
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT_MS).max(1))
    }

    /// `waitReplicas` and its timeout (ms) when set above 0.
    pub fn wait(&self) -> Option<(u64, u64)> {
        let n = self.wait_replicas.filter(|n| *n > 0)?;
        Some((n, self.wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS)))
    }

    /// Builds the redis-rs client. Never puts the URL or password in an error.
    pub fn client(&self) -> Result<redis::Client> {
        self.client_for(None)
    }

    /// The client of one resolved server (a sentinel group's master): this config's credentials,
    /// database and TLS at `host:port`.
    pub fn client_at(&self, host: &str, port: u16) -> Result<redis::Client> {
        self.client_for(Some((host, port)))
    }

    fn client_for(&self, at: Option<(&str, u16)>) -> Result<redis::Client> {
        let (info, certs) = self.info_for(at)?;
        match certs {
            Some(certs) => {
                redis::Client::build_with_tls(info, certs).map_err(|e| AdapterError::config("socket.ca", e.to_string()))
            }
            None => redis::Client::open(info).map_err(|e| AdapterError::config("connection", e.to_string())),
        }
    }

    /// The connection info of the configured server (or of `at`), and the TLS roots and client
    /// certificate when some are given.
    fn info_for(&self, at: Option<(&str, u16)>) -> Result<(redis::ConnectionInfo, Option<redis::TlsCertificates>)> {
        let url = if at.is_some() { None } else { self.url.as_ref() };
        let mut info = match url {
            Some(url) => url
                .as_str()
                .into_connection_info()
                .map_err(|_| AdapterError::config("url", "not a valid redis:// or rediss:// URL"))?,
            None => {
                let (host, port) = match at {
                    Some((h, p)) => (h.to_string(), p),
                    None => (
                        self.host.clone().unwrap_or_else(|| DEFAULT_HOST.to_string()),
                        self.port.unwrap_or(DEFAULT_PORT),
                    ),
                };
                let addr = if self.tls {
                    ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: self.tls_insecure,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(host, port)
                };
                addr.into_connection_info()
                    .map_err(|e| AdapterError::config("socket", e.to_string()))?
            }
        };
        if url.is_some() && self.tls_insecure {
            if let ConnectionAddr::TcpTls {
                host, port, tls_params, ..
            } = info.addr().clone()
            {
                info = info.set_addr(ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: true,
                    tls_params,
                });
            }
        }
        let mut settings: RedisConnectionInfo = info.redis_settings().clone();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        if let Some(db) = self.database {
            settings = settings.set_db(db);
        }
        let info = info.set_redis_settings(settings.set_lib_name("motia-native-adapters", env!("CARGO_PKG_VERSION")));
        let is_tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        if is_tls && (self.ca.is_some() || self.cert.is_some()) {
            let client_tls = match (&self.cert, &self.key) {
                (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                    client_cert: c.clone().into_bytes(),
                    client_key: k.clone().into_bytes(),
                }),
                (None, None) => None,
                _ => {
                    return Err(AdapterError::config(
                        "socket.cert",
                        "`cert` and `key` must be given together",
                    ))
                }
            };
            let certs = redis::TlsCertificates {
                client_tls,
                root_cert: self.ca.clone().map(String::into_bytes),
            };
            Ok((info, Some(certs)))
        } else {
            Ok((info, None))
        }
    }

    /// The cluster client (every seed node with this config's credentials and TLS).
    fn cluster_source(&self, spec: &ClusterSpec) -> Result<ClusterSource> {
        spec.validate()?;
        if self.database.is_some_and(|d| d != 0) {
            return Err(AdapterError::config("database", "Redis Cluster has database 0 only"));
        }
        let mut infos = Vec::new();
        let mut certs = None;
        for n in &spec.nodes {
            let (info, c) = self.info_for(Some((&n.host, n.port)))?;
            infos.push(info);
            certs = c;
        }
        let client = super::cluster::build_client(infos, certs, self.connect_timeout(), self.command_timeout())?;
        Ok(ClusterSource::new(client, self.clone()))
    }
}

/// Maps a redis-rs error to ours using the driver's own predicates (never message parsing).
pub fn classify(e: redis::RedisError) -> AdapterError {
    use redis::ErrorKind;
    let code = e.code().unwrap_or("");
    if e.kind() == ErrorKind::AuthenticationFailed || code == "WRONGPASS" || code == "NOAUTH" {
        return AdapterError::Auth(format!("Redis rejected the credentials: {e}"));
    }
    if e.is_timeout() {
        return AdapterError::Timeout(format!("Redis did not answer in time: {e}"));
    }
    if e.is_connection_refusal() || e.is_io_error() {
        return AdapterError::Connect(format!("cannot reach Redis: {e}"));
    }
    if e.is_connection_dropped() {
        return AdapterError::Connect(format!("connection to Redis lost: {e}"));
    }
    AdapterError::Backend(format!("Redis error: {e}"))
}

/// Whether a failed command may be sent again: the server was unreachable, the connection dropped
/// (a proxy or idle timeout closed it, or the server restarted), or it answered a transient reply.
/// Resending is safe for what the adapters send: SET/HSET/UNLINK/EXPIRE are idempotent; a resent
/// GETDEL after a drop that hid its reply returns null (the value was removed once); a resent stream
/// script rewrites the same item and may publish its event twice (at-least-once, like pub/sub after
/// a reconnect); a resent cron acquire finds its own lockId and returns the same lock (the script
/// checks it), and release/renew are idempotent for the owner.
fn transient(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal() || transient_code(e.code())
}

/// `MOVED` means the command did not run; it lasts past redis-rs' own redirects only while a
/// cluster still names a dead master as a slot's owner (before its replica is promoted).
fn transient_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "MOVED")
    )
}

/// A transient error reply inside a pipeline's replies (every command of a pipeline gets `LOADING`
/// while the server loads its dataset), found without converting the rest.
fn transient_reply(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => transient_code(Some(e.code())),
        Value::Array(items) => items
            .iter()
            .any(|i| matches!(i, Value::ServerError(e) if transient_code(Some(e.code())))),
        _ => false,
    }
}

/// A `READONLY` reply (a demoted master) in a pipeline's replies.
fn readonly_reply(v: &Value) -> bool {
    let ro = |i: &Value| matches!(i, Value::ServerError(e) if e.code() == "READONLY");
    match v {
        Value::Array(items) => items.iter().any(ro),
        v => ro(v),
    }
}

/// `WAIT n timeout` on the connection a call just used (on a cluster: every master, the fewest
/// confirmations count): the call's writes are acknowledged only once `n` replicas have them. A
/// shortfall is an error, but the write was made on the master and is not undone.
async fn confirm(mut conn: Conn, (n, ms): (u64, u64)) -> Result<()> {
    let got: i64 = redis::cmd("WAIT")
        .arg(n)
        .arg(ms)
        .query_async(&mut conn)
        .await
        .map_err(classify)?;
    if got < n as i64 {
        return Err(AdapterError::Backend(format!(
            "written on the master, but only {got} of the {n} replicas asked for (waitReplicas) confirmed it within {ms} ms; it may be lost if the master fails now"
        )));
    }
    Ok(())
}

/// A whole SCAN loop: `page(cursor)` from cursor 0 until the server hands 0 back, keys into `all`.
async fn scan_loop<F, Fut>(all: &mut Vec<String>, mut page: F) -> Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(u64, Vec<String>)>>,
{
    let mut cursor = 0;
    loop {
        let (next, found) = page(cursor).await?;
        all.extend(found);
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

const RIDE_FIRST_DELAY: Duration = Duration::from_millis(10);
const RIDE_MAX_DELAY: Duration = Duration::from_millis(200);

enum Slot {
    Idle,
    /// The connection, its generation (a failed one is dropped only if it is still current) and
    /// the sentinel epoch it was made in (it is dropped once the master switched).
    Ready(u64, u64, Conn),
    Closed,
}

/// The shared connection: to one server, or to a cluster (pipelines split per slot).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConn),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where the server is: fixed, or asked of sentinels on every connect.
// one per handle, made once: the variants' sizes do not matter
#[allow(clippy::large_enum_variant)]
enum Source {
    Fixed(redis::Client),
    Sentinel {
        spec: std::sync::Arc<SentinelConfig>,
        config: RedisConnectionConfig,
        watch: std::sync::Arc<SentinelWatch>,
    },
    /// A Redis Cluster, found from its seed nodes.
    Cluster(Box<ClusterSource>),
    /// A primary/secondary pair, probed (see `failover`).
    Failover(std::sync::Arc<Failover>),
}

/// Shared, lazily-connected, auto-reconnecting Redis connection.
pub struct RedisHandle {
    source: Source,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// `waitReplicas` (replicas, timeout ms): a `WAIT` after every call.
    wait: Option<(u64, u64)>,
    slot: Mutex<Slot>,
    generation: std::sync::atomic::AtomicU64,
    init: tokio::sync::Mutex<()>,
}

fn closed() -> AdapterError {
    AdapterError::Closed("the adapter was closed (cleanup/shutdown)".into())
}

impl RedisHandle {
    pub fn new(config: &RedisConnectionConfig) -> Result<Self> {
        crate::core::tls::install_crypto_provider();
        let source = match (&config.sentinel, &config.cluster) {
            _ if config.failover.is_some() => {
                if config.sentinel.is_some() || config.cluster.is_some() {
                    return Err(AdapterError::config(
                        "failover",
                        "give a primary/secondary pair, sentinels or cluster nodes, not several",
                    ));
                }
                Source::Failover(Failover::new(config.failover.as_ref().expect("checked"))?)
            }
            (None, Some(cluster)) => Source::Cluster(Box::new(config.cluster_source(cluster)?)),
            (None, None) => Source::Fixed(config.client()?),
            (Some(_), Some(_)) => {
                return Err(AdapterError::config(
                    "rootNodes",
                    "give either cluster nodes or sentinels, not both",
                ))
            }
            (Some(spec), None) => {
                spec.validate()?;
                // the data nodes' settings are checked now, at an address that is never used
                config.client_at(&spec.nodes[0].host, spec.nodes[0].port)?;
                Source::Sentinel {
                    spec: std::sync::Arc::new(spec.clone()),
                    config: config.clone(),
                    watch: SentinelWatch::of(spec)?,
                }
            }
        };
        let wait = config.wait();
        if let Some((_, ms)) = wait {
            if Duration::from_millis(ms) >= config.command_timeout() {
                return Err(AdapterError::config(
                    "waitTimeout",
                    "must be shorter than commandTimeout (a WAIT is one command)",
                ));
            }
        }
        Ok(RedisHandle {
            source,
            connect_timeout: config.connect_timeout(),
            command_timeout: config.command_timeout(),
            wait,
            slot: Mutex::new(Slot::Idle),
            generation: std::sync::atomic::AtomicU64::new(0),
            init: tokio::sync::Mutex::new(()),
        })
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether the master is found through sentinels (and a demoted server is left at once).
    pub fn follows_failovers(&self) -> bool {
        matches!(self.source, Source::Sentinel { .. })
    }

    /// With sentinels: the group's master-switch counter (a dedicated connection made at one epoch
    /// is replaced once it moved).
    pub fn sentinel_watch(&self) -> Option<&std::sync::Arc<SentinelWatch>> {
        match &self.source {
            Source::Sentinel { watch, .. } => Some(watch),
            Source::Failover(f) => Some(f.watch()),
            Source::Fixed(_) | Source::Cluster(_) => None,
        }
    }

    /// Whether this is a Redis Cluster (keys of one call may live on different nodes).
    pub fn is_cluster(&self) -> bool {
        matches!(self.source, Source::Cluster(_))
    }

    fn epoch(&self) -> u64 {
        self.sentinel_watch().map_or(0, |w| w.epoch())
    }

    /// A client for the server to use now, for dedicated connections (pub/sub, blocking reads):
    /// the configured server, or the master the sentinels name at this moment.
    /// On a cluster: one of the masters in turn.
    pub async fn client_now(&self) -> Result<redis::Client> {
        if let Source::Cluster(c) = &self.source {
            let masters = match self.conn().await {
                Ok(Conn::Cluster(mut conn)) => super::cluster::masters(&mut conn.conn).await.unwrap_or_default(),
                _ => Vec::new(),
            };
            return c.next_node(&masters);
        }
        Ok(self.client_and_master().await?.0)
    }

    /// A client for a dedicated connection that reads `key` (a blocking `XREADGROUP`): on a cluster,
    /// of the master that serves its slot now (the slot map is read again, as this runs on every
    /// (re)connect); elsewhere as [`RedisHandle::client_now`].
    pub async fn client_for_key(&self, key: &str) -> Result<redis::Client> {
        let Source::Cluster(c) = &self.source else {
            return self.client_now().await;
        };
        let node = match self.conn().await? {
            Conn::Cluster(mut conn) => conn.node_of(key).await,
            Conn::Single(_) => None,
        };
        match node {
            Some((host, port)) => c.client_at(&host, port),
            None => Err(AdapterError::Connect(
                "no Redis Cluster node serves this key's slot right now".into(),
            )),
        }
    }

    async fn client_and_master(&self) -> Result<(redis::Client, Option<(String, u16)>)> {
        match &self.source {
            Source::Fixed(c) => Ok((c.clone(), None)),
            Source::Failover(f) => {
                f.ensure_probing();
                Ok((f.client(), None))
            }
            Source::Cluster(c) => Ok((c.next_node(&[])?, None)),
            Source::Sentinel { spec, config, .. } => {
                let spec = spec.clone();
                let budget = self.connect_timeout;
                let (host, port) = tokio::task::spawn_blocking(move || spec.resolve_master(budget))
                    .await
                    .map_err(|e| AdapterError::Internal(format!("sentinel lookup failed: {e}")))??;
                Ok((config.client_at(&host, port)?, Some((host, port))))
            }
        }
    }

    fn current(&self) -> Result<Option<(u64, Conn)>> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| AdapterError::Internal("poisoned lock".into()))?;
        match &*slot {
            Slot::Idle => Ok(None),
            // made before the sentinels announced a new master: replaced
            Slot::Ready(_, e, _) if *e != self.epoch() => {
                *slot = Slot::Idle;
                Ok(None)
            }
            Slot::Ready(g, _, c) => Ok(Some((*g, c.clone()))),
            Slot::Closed => Err(closed()),
        }
    }

    /// Forgets connection `generation` (after it failed, when the master may have moved) so the
    /// next command connects anew, to the server the sentinels name then.
    fn invalidate(&self, generation: u64) {
        if let Ok(mut slot) = self.slot.lock() {
            if matches!(&*slot, Slot::Ready(g, _, _) if *g == generation) {
                *slot = Slot::Idle;
            }
        }
    }

    /// Returns the shared connection, connecting first if needed (bounded by `connect_timeout`).
    pub async fn conn(&self) -> Result<Conn> {
        Ok(self.conn_gen().await?.1)
    }

    async fn conn_gen(&self) -> Result<(u64, Conn)> {
        if let Some(c) = self.current()? {
            return Ok(c);
        }
        let _guard = self.init.lock().await;
        if let Some(c) = self.current()? {
            return Ok(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(0);
        let epoch = self.epoch();
        let connect = async {
            if let Source::Cluster(c) = &self.source {
                let conn = c.client.get_async_connection().await.map_err(classify)?;
                return Ok(Conn::Cluster(ClusterConn::new(conn)));
            }
            let (client, master) = self.client_and_master().await?;
            let mut manager = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(classify)?;
            if let (Some((host, port)), Source::Sentinel { spec, .. }) = (master, &self.source) {
                let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut manager).await.map_err(classify)?;
                let first = match role.first() {
                    Some(Value::BulkString(b)) => b.clone(),
                    Some(Value::SimpleString(s)) => s.clone().into_bytes(),
                    _ => Vec::new(),
                };
                if !is_master_role(&first) {
                    return Err(not_master(&host, port, &spec.name));
                }
            }
            Ok(Conn::Single(manager))
        };
        let manager = match tokio::time::timeout(self.connect_timeout + Duration::from_millis(250), connect).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(AdapterError::Timeout(format!(
                    "could not connect to Redis within {} ms",
                    self.connect_timeout.as_millis()
                )))
            }
        };
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| AdapterError::Internal("poisoned lock".into()))?;
        match &*slot {
            Slot::Closed => Err(closed()),
            _ => {
                let g = self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                *slot = Slot::Ready(g, epoch, manager.clone());
                Ok((g, manager))
            }
        }
    }

    /// Runs `op` on the shared connection, riding through outages and transient replies until
    /// `connect_timeout` has passed since the call (see [`transient`] for what is resent and why).
    /// With sentinels, a failed connection is dropped and `READONLY` counts as transient: the
    /// command is sent again to the master the sentinels name next.
    async fn ride<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: redis::FromRedisValue,
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<Value>>,
    {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let mut delay = RIDE_FIRST_DELAY;
        let follow = self.follows_failovers();
        loop {
            // a replica is being promoted: wait for the switch before sending (bounded by the ride window)
            if let Some(w) = self.sentinel_watch() {
                while w.holding(std::time::Instant::now(), self.connect_timeout)
                    && tokio::time::Instant::now() + HOLD_POLL < deadline
                {
                    tokio::time::sleep(HOLD_POLL).await;
                }
            }
            // the connect (TCP, TLS handshake, AUTH/SELECT) shares the call's bound: a server that
            // accepts TCP and never answers fails the call within `connect_timeout`, not twice it
            let conn = match tokio::time::timeout_at(deadline, self.conn_gen()).await {
                Ok(c) => c,
                Err(_) => Err(AdapterError::Timeout(format!(
                    "could not connect to Redis within {} ms",
                    self.connect_timeout.as_millis()
                ))),
            };
            let failure = match conn {
                Ok((generation, conn)) => match op(conn.clone()).await {
                    Ok(v) if transient_reply(&v) || (follow && readonly_reply(&v)) => {
                        if follow {
                            self.invalidate(generation);
                        }
                        AdapterError::Backend(format!(
                            "Redis kept answering a transient error for {} ms (loading its dataset, or failing over?)",
                            self.connect_timeout.as_millis()
                        ))
                    }
                    Ok(v) => {
                        if let Some(wait) = self.wait {
                            confirm(conn, wait).await?;
                        }
                        return redis::from_redis_value(v)
                            .map_err(|e| AdapterError::Backend(format!("unexpected Redis reply: {e}")));
                    }
                    Err(e) if transient(&e) || (follow && e.code() == Some("READONLY")) => {
                        if follow {
                            self.invalidate(generation);
                        }
                        classify(e)
                    }
                    Err(e) => return Err(classify(e)),
                },
                Err(e @ AdapterError::Connect(_)) | Err(e @ AdapterError::Timeout(_)) => e,
                Err(e) => return Err(e),
            };
            let now = tokio::time::Instant::now();
            if now + delay >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RIDE_MAX_DELAY);
        }
    }

    /// Runs one pipeline on the shared connection (riding through outages: [`Self::ride`]).
    pub async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        self.ride(|mut conn| async move { pipe.query_async::<Value>(&mut conn).await })
            .await
    }

    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        if self.is_cluster() {
            if let Some((pipe, how)) = super::cluster::per_key(cmd) {
                let replies: Vec<Value> = self.query(&pipe).await?;
                return redis::from_redis_value(super::cluster::fold(how, replies))
                    .map_err(|e| AdapterError::Backend(format!("unexpected Redis reply: {e}")));
            }
        }
        self.ride(|mut conn| async move { cmd.query_async::<Value>(&mut conn).await })
            .await
    }

    /// `PING`: whether the server answers `PONG` (a health check's round trip).
    pub async fn ping(&self) -> Result<bool> {
        let pong: String = self.cmd(&redis::cmd("PING")).await?;
        Ok(pong == "PONG")
    }

    /// Runs a Lua script by hash (loading it when the server lacks it), riding through outages.
    pub async fn invoke<T: redis::FromRedisValue>(&self, inv: &redis::ScriptInvocation<'_>) -> Result<T> {
        self.ride(|mut conn| async move { inv.invoke_async::<Value>(&mut conn).await })
            .await
    }

    /// Every key matching `pattern` (full SCAN, deduplicated: SCAN may return a key twice). On a
    /// cluster: a SCAN loop on every master.
    pub async fn scan_all(&self, pattern: &str, count: usize) -> Result<Vec<String>> {
        let mut all = Vec::new();
        if self.is_cluster() {
            for node in &self.cluster_masters().await? {
                scan_loop(&mut all, |cursor| {
                    self.ride(move |conn| async move {
                        let Conn::Cluster(mut c) = conn else {
                            return Ok(Value::Nil);
                        };
                        let (next, found) =
                            super::cluster::scan_page(&mut c.conn, node, cursor, pattern, count).await?;
                        Ok(Value::Array(vec![
                            Value::BulkString(next.to_string().into_bytes()),
                            Value::Array(found.into_iter().map(|k| Value::BulkString(k.into_bytes())).collect()),
                        ]))
                    })
                })
                .await?;
            }
        } else {
            scan_loop(&mut all, |cursor| async move {
                self.cmd(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(count),
                )
                .await
            })
            .await?;
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// The cluster's masters now (`host`, `port`).
    async fn cluster_masters(&self) -> Result<Vec<(String, u16)>> {
        self.ride(|conn| async move {
            let Conn::Cluster(mut c) = conn else {
                return Ok(Value::Nil);
            };
            let m = super::cluster::masters(&mut c.conn).await?;
            Ok(Value::Array(
                m.into_iter()
                    .map(|(h, p)| Value::Array(vec![Value::BulkString(h.into_bytes()), Value::Int(p.into())]))
                    .collect(),
            ))
        })
        .await
    }

    /// Drops the connection. In-flight commands finish; new ones fail with `MOTIA_CLOSED`.
    pub fn close(&self) {
        if let Source::Failover(f) = &self.source {
            f.close();
        }
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Slot::Closed;
        }
    }

    /// With a primary/secondary pair: when calls last moved to the other server (cron refuses
    /// acquisitions for one lock TTL after it).
    pub fn switched_at(&self) -> Option<std::time::Instant> {
        match &self.source {
            Source::Failover(f) => f.switched_at(),
            _ => None,
        }
    }

    /// A primary/secondary pair: `[switches so far, the server in use (0 primary, 1 secondary)]`.
    pub fn pair_state(&self) -> Option<[f64; 2]> {
        match &self.source {
            Source::Failover(f) => Some([f.switches() as f64, f.active() as f64]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_replicas_is_checked_and_zero_means_no_wait() {
        let c = |j: &str| RedisConnectionConfig::from_json(j);
        assert_eq!(
            c(r#"{"waitReplicas": 2}"#).unwrap().wait(),
            Some((2, DEFAULT_WAIT_TIMEOUT_MS))
        );
        assert_eq!(
            c(r#"{"waitReplicas": 1, "waitTimeout": 250}"#).unwrap().wait(),
            Some((1, 250))
        );
        assert_eq!(c(r#"{"waitReplicas": 0}"#).unwrap().wait(), None);
        assert_eq!(c("{}").unwrap().wait(), None);
        for bad in [
            r#"{"waitReplicas": -1}"#,
            r#"{"waitReplicas": 1.5}"#,
            r#"{"waitTimeout": 0}"#,
        ] {
            assert!(matches!(c(bad), Err(AdapterError::Config { .. })), "{bad}");
        }
    }

    #[test]
    fn transient_replies_are_waited_out_others_are_not() {
        for code in ["LOADING", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "MOVED"] {
            assert!(transient_code(Some(code)), "{code}");
        }
        for code in ["WRONGTYPE", "NOSCRIPT", "ERR", "READONLY"] {
            assert!(!transient_code(Some(code)), "{code}");
        }
        assert!(!transient_code(None));
        assert!(!transient_reply(&Value::Array(vec![Value::Okay, Value::Nil])));
    }

    #[test]
    fn parses_normalised_config() {
        let c = RedisConnectionConfig::from_json(r#"{"host":"127.0.0.1","port":6380,"password":"x","database":2}"#)
            .unwrap();
        assert_eq!(c.port, Some(6380));
        assert_eq!(c.connect_timeout(), Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS));
        assert!(c.client().is_ok());
    }

    #[test]
    fn numbers_are_checked_here_and_named_as_the_user_wrote_them() {
        let c = RedisConnectionConfig::from_json(r#"{"port":"NaN","database":"3"}"#).unwrap();
        assert_eq!((c.port, c.database), (None, Some(3)));
        let e = RedisConnectionConfig::from_json(r#"{"port":70000,"labels":{"port":"socket.port"}}"#).unwrap_err();
        assert!(e.js_message().contains("`socket.port`"), "{}", e.js_message());
        let e = RedisConnectionConfig::from_json(r#"{"connectTimeout":"Infinity"}"#).unwrap_err();
        assert!(e.js_message().contains("`connectTimeout`"));
        assert!(RedisConnectionConfig::from_json(r#"{"database":-1}"#).is_err());
    }

    #[test]
    fn bad_url_names_the_field_and_hides_the_secret() {
        let c = RedisConnectionConfig {
            url: Some("http://u:topsecret@h".into()),
            ..Default::default()
        };
        let e = c.client().unwrap_err();
        assert_eq!(e.code(), "MOTIA_CONFIG");
        assert!(e.js_message().contains("`url`"));
        assert!(!e.js_message().contains("topsecret"));
    }

    #[test]
    fn rediss_url_is_tls() {
        let c = RedisConnectionConfig {
            url: Some("rediss://:pw@example.com:6390/3".into()),
            ..Default::default()
        };
        let client = c.client().unwrap();
        assert!(matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        ));
        assert_eq!(client.get_connection_info().redis_settings().db(), 3);
    }
}
