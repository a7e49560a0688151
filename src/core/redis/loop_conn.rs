//! The Redis connection driven by the JS thread's own event loop (napi-free state machine).
//!
//! The binding (`src/binding/jsloop/`) registers [`LoopConn::socket`] with libuv and calls
//! [`LoopConn::on_readable`], [`LoopConn::on_writable`], [`LoopConn::on_timer`] and
//! [`LoopConn::flush`]; this type does the socket I/O (non-blocking), the handshake, the FIFO of
//! pending replies, timeouts and reconnects, and hands back `(tag, reply)` completions for the
//! binding to resolve as promises. Nothing here touches napi or libuv, so it is unit-tested.
//!
//! Behaviour (README "Connection behaviour"):
//! - Connecting is non-blocking (`EINPROGRESS`, then writable + `SO_ERROR`), each resolved address
//!   in turn; DNS is resolved with the standard library at connect time (blocking, on the JS
//!   thread: fine for IP literals and `/etc/hosts` names, a slow resolver stalls that tick).
//! - Handshake: `AUTH` (ACL username or password only), `SELECT db`, `CLIENT SETINFO LIB-NAME`
//!   (errors ignored, old servers lack it), pipelined with the first commands. The connection
//!   counts as up when the handshake replies arrived; until then `connect_timeout` applies.
//! - Commands of one tick are written with one `write` (more on partial writes: the rest is
//!   written when the socket is writable again). Replies are matched in order; an error reply
//!   fails only its command.
//! - Riding through restarts (like the tokio path, README "Connection behaviour"): when the server
//!   is unreachable, closes the connection, or answers a transient reply (`LOADING`, `TRYAGAIN`,
//!   `MASTERDOWN`, `CLUSTERDOWN`), the pending commands wait (backoff 10 ms doubling to 200 ms) and
//!   are sent again on a new connection, until `connect_timeout` has passed since each was pushed;
//!   then they fail with `MOTIA_CONNECT` (`MOTIA_TIMEOUT`, `MOTIA_BACKEND`). Commands that had been
//!   sent may so run twice (at-least-once, see README). An idle connection that was closed is
//!   reopened by the next command. A fatal handshake reply (wrong password) fails them at once.
//! - The oldest pending command waiting longer than `command_timeout` fails with `MOTIA_TIMEOUT`
//!   together with every other pending one (their replies can no longer be matched), and the
//!   connection is dropped; the next command reconnects.
//! - Subscriber mode ([`LoopConn::subscriber`]): `message` pushes are not replies; they are kept
//!   for [`LoopConn::take_messages`]. The subscribed channels are part of every (re)connect's
//!   handshake, and a subscriber with channels reconnects on its own after an outage (backoff),
//!   with nothing pending (backoff capped at 100 ms). Messages published while it is away are lost
//!   (pub/sub is at-most-once).

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ProtocolVersion};
use socket2::{Domain, Protocol, Socket, Type};

use std::sync::{Arc, Mutex};

use super::connection::RedisConnectionConfig;
use super::sentinel::{is_master_role, not_master, SentinelConfig, SentinelWatch, HOLD_POLL};
use super::wire::{server_error, ReadBuf, Reply};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// The library name sent with `CLIENT SETINFO LIB-NAME` (as the tokio path does).
pub const LIB_NAME: &str = "motia-native-adapters";

/// Where and how to connect, derived from [`RedisConnectionConfig`] (URL parsing by redis-rs).
#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub host: String,
    pub port: u16,
    /// Set: `host`/`port` are unused, the master is asked of these sentinels on every connect.
    pub sentinel: Option<Arc<SentinelConfig>>,
    /// With sentinels: their master switches; a connection older than the last one is replaced.
    watch: Option<Arc<SentinelWatch>>,
    /// Packed handshake commands and how each reply is checked.
    handshake: Vec<(Vec<u8>, Check)>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl LoopConfig {
    /// `Ok(None)` when this connection needs what the JS-thread path does not do yet (TLS, RESP3,
    /// Redis Cluster):
    /// the caller keeps the tokio path for it.
    pub fn from_config(config: &RedisConnectionConfig) -> Result<Option<LoopConfig>> {
        if config.cluster.is_some() || config.failover.is_some() || config.wait().is_some() {
            // slot routing, the primary/secondary pair and waitReplicas are on the tokio path only (for now)
            return Ok(None);
        }
        let sentinel = match &config.sentinel {
            Some(s) => {
                s.validate()?;
                Some(Arc::new(s.clone()))
            }
            None => None,
        };
        let client = match &sentinel {
            // the data nodes' settings, at an address that is never used
            Some(s) => config.client_at(&s.nodes[0].host, s.nodes[0].port)?,
            None => config.client()?,
        };
        let info = client.get_connection_info();
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
            _ => return Ok(None),
        };
        let settings = info.redis_settings();
        if settings.protocol() != ProtocolVersion::RESP2 {
            return Ok(None);
        }
        let mut handshake = Vec::new();
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            handshake.push((auth.get_packed_command(), Check::Fatal));
        }
        if settings.db() != 0 {
            handshake.push((
                redis::cmd("SELECT").arg(settings.db()).get_packed_command(),
                Check::Fatal,
            ));
        }
        if sentinel.is_some() {
            handshake.push((redis::cmd("ROLE").get_packed_command(), Check::Master));
        }
        handshake.push((
            redis::cmd("CLIENT")
                .arg("SETINFO")
                .arg("LIB-NAME")
                .arg(LIB_NAME)
                .get_packed_command(),
            Check::Ignore,
        ));
        let watch = match &sentinel {
            Some(s) => Some(SentinelWatch::of(s)?),
            None => None,
        };
        Ok(Some(LoopConfig {
            host,
            port,
            sentinel,
            watch,
            handshake,
            connect_timeout: config.connect_timeout(),
            command_timeout: config.command_timeout(),
        }))
    }
}

/// How a handshake reply is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Errors ignored (`CLIENT SETINFO`: old servers lack it).
    Ignore,
    /// An error reply fails the pending commands (wrong password, bad database).
    Fatal,
    /// `ROLE` must say master, else the sentinels are asked again (after the backoff).
    Master,
}

/// A sentinel lookup running on its own thread (it blocks; the JS thread must not).
type Lookup = Arc<Mutex<Option<Result<(String, u16)>>>>;

/// How often a running sentinel lookup is checked for its answer.
const LOOKUP_POLL: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No socket; the next flush with pending commands connects.
    Idle,
    /// Asking the sentinels for the master (no socket yet).
    Resolving,
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected, handshake replies not all in yet (commands may already be pipelined behind it).
    Handshaking,
    Ready,
    Closed,
}

enum Owner<T> {
    Handshake { check: Check },
    User(T),
}

struct Pending<T> {
    owner: Owner<T>,
    /// Bytes of this command in `out`.
    len: usize,
    /// Until when it is sent again after outages and transient replies.
    ride_until: Instant,
    deadline: Instant,
}

/// What the socket should be polled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Changes whenever a new socket replaces the old one (the poll handle must be recreated).
    pub generation: u64,
    pub readable: bool,
    pub writable: bool,
}

/// One completed command: the tag given to [`LoopConn::push`] and its reply (an error reply is
/// `Ok(Reply::Error)`, so callers can react to e.g. `NOSCRIPT`) or the connection-level error.
pub type Done<T> = (T, Result<Reply>);

pub struct LoopConn<T> {
    cfg: LoopConfig,
    phase: Phase,
    sock: Option<Socket>,
    generation: u64,
    addrs: Vec<SocketAddr>,
    connect_deadline: Option<Instant>,
    /// Commands not yet answered, in order: `out[acked..]`; `out[..written]` reached the socket.
    out: Vec<u8>,
    acked: usize,
    written: usize,
    want_write: bool,
    fifo: VecDeque<Pending<T>>,
    handshake_left: usize,
    read: ReadBuf,
    done: Vec<Done<T>>,
    /// `close_when_drained` was called: refuse new commands, close once the FIFO is empty.
    closing: bool,
    /// Sockets no longer used but not yet closed: the event loop may still watch their fd, and a
    /// new socket must never get the same fd number before that watch is stopped.
    retired: Vec<Socket>,
    /// After an outage or a transient reply: no connect or resend before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Commands that got a transient reply, with their bytes, resent at `retry_at`.
    parked: Vec<(Pending<T>, Vec<u8>)>,
    /// Handshakes completed (the first connect and every reconnect).
    connects: u64,
    /// The server connected to (with sentinels: the master they named).
    target: (String, u16),
    lookup: Option<Lookup>,
    /// The sentinel epoch the current connection was made in.
    epoch: u64,
    /// A failover is under way: nothing is written until it ends (the timer looks every [`HOLD_POLL`]).
    holding: bool,
    /// Subscriber mode: the channels subscribed (`None`: a command connection).
    channels: Option<BTreeSet<String>>,
    /// `(channel, payload)` of the `message` pushes read since the last [`LoopConn::take_messages`].
    messages: Vec<(Vec<u8>, Vec<u8>)>,
}

/// First wait before resending after an outage; doubles up to [`RIDE_MAX_DELAY`].
pub const RIDE_FIRST_DELAY: Duration = Duration::from_millis(10);
pub const RIDE_MAX_DELAY: Duration = Duration::from_millis(200);

/// Error replies that mean "not now" (the server loads its dataset, a failover is under way).
pub fn transient_code(code: &str) -> bool {
    matches!(code, "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN")
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn in_progress(e: &io::Error) -> bool {
    if would_block(e) {
        return true;
    }
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EINPROGRESS)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn reply_says_master(reply: &Reply) -> bool {
    match reply {
        Reply::Array(items) => match items.first() {
            Some(Reply::Bulk(b)) => is_master_role(b),
            Some(Reply::Simple(s)) => is_master_role(s.as_bytes()),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `reply` is a RESP2 `message` push: `["message", channel, payload]`.
fn is_message(reply: &Reply) -> bool {
    matches!(reply, Reply::Array(items) if items.len() == 3
        && matches!(&items[0], Reply::Bulk(k) if k == b"message")
        && matches!((&items[1], &items[2]), (Reply::Bulk(_), Reply::Bulk(_))))
}

fn closed_error() -> AdapterError {
    AdapterError::Closed("the adapter was closed (cleanup/shutdown)".into())
}

impl<T> LoopConn<T> {
    pub fn new(cfg: LoopConfig) -> Self {
        let (cfg_host, cfg_port) = (cfg.host.clone(), cfg.port);
        LoopConn {
            cfg,
            phase: Phase::Idle,
            sock: None,
            generation: 0,
            addrs: Vec::new(),
            connect_deadline: None,
            out: Vec::new(),
            acked: 0,
            written: 0,
            want_write: false,
            fifo: VecDeque::new(),
            handshake_left: 0,
            read: ReadBuf::default(),
            done: Vec::new(),
            closing: false,
            retired: Vec::new(),
            retry_at: None,
            backoff: RIDE_FIRST_DELAY,
            parked: Vec::new(),
            connects: 0,
            target: (cfg_host, cfg_port),
            lookup: None,
            epoch: 0,
            holding: false,
            channels: None,
            messages: Vec::new(),
        }
    }

    /// A pub/sub connection: see the module docs ("Subscriber mode").
    pub fn subscriber(cfg: LoopConfig) -> Self {
        LoopConn {
            channels: Some(BTreeSet::new()),
            ..LoopConn::new(cfg)
        }
    }

    /// Subscribes `channel` (kept across reconnects); `tag` completes with the server's confirmation.
    pub fn subscribe(&mut self, channel: &str, tag: T, now: Instant) -> std::result::Result<(), (T, AdapterError)> {
        let open = !self.is_closed();
        let Some(set) = self.channels.as_mut() else {
            return Err((tag, AdapterError::Internal("SUBSCRIBE on a command connection".into())));
        };
        if open {
            set.insert(channel.to_string());
        }
        self.push(redis::cmd("SUBSCRIBE").arg(channel), tag, now)
    }

    /// Unsubscribes `channel`; `tag` completes with the server's confirmation, or at once (`Nil`) when
    /// not connected (Redis away: the next connection does not subscribe it, so nothing waits for Redis;
    /// a connect already under way may still subscribe it once, and its messages find no handler).
    pub fn unsubscribe(&mut self, channel: &str, tag: T, now: Instant) -> std::result::Result<(), (T, AdapterError)> {
        if let Some(set) = self.channels.as_mut() {
            set.remove(channel);
        }
        if !matches!(self.phase, Phase::Ready | Phase::Handshaking) && !self.is_closed() {
            self.done.push((tag, Ok(Reply::Nil)));
            return Ok(());
        }
        self.push(redis::cmd("UNSUBSCRIBE").arg(channel), tag, now)
    }

    /// The `message` pushes read since the last call, in order: `(channel, payload)`.
    pub fn take_messages(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        std::mem::take(&mut self.messages)
    }

    /// A subscriber with channels stays connected even with nothing pending.
    fn wants_connection(&self) -> bool {
        !self.closing && self.channels.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// A subscriber loses every message published while it is away: it retries at least every
    /// [`crate::core::redis::pubsub::RECONNECT_MAX`] (as the tokio subscriber does).
    fn max_backoff(&self) -> Duration {
        if self.channels.is_some() {
            super::pubsub::RECONNECT_MAX
        } else {
            RIDE_MAX_DELAY
        }
    }

    /// An idle subscriber lost its connection: reconnect after the backoff.
    fn retry_idle(&mut self, now: Instant) {
        if self.wants_connection() && self.retry_at.is_none() && self.phase == Phase::Idle {
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(self.max_backoff());
        }
    }

    /// Handshakes completed so far: 1 after the first connect, +1 per reconnect.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Sockets to close now that the event loop stopped watching them (see `retired`).
    pub fn take_retired(&mut self) -> Vec<Socket> {
        std::mem::take(&mut self.retired)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn config(&self) -> &LoopConfig {
        &self.cfg
    }

    /// Commands (handshake included) waiting for a reply.
    pub fn pending(&self) -> usize {
        self.fifo.len() + self.parked.len()
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed || self.closing
    }

    /// Queues one command; it is written by the next [`LoopConn::flush`].
    pub fn push(&mut self, cmd: &redis::Cmd, tag: T, now: Instant) -> std::result::Result<(), (T, AdapterError)> {
        if self.is_closed() {
            return Err((tag, closed_error()));
        }
        let before = self.out.len();
        cmd.write_packed_command(&mut self.out);
        self.fifo.push_back(Pending {
            owner: Owner::User(tag),
            len: self.out.len() - before,
            ride_until: now + self.cfg.connect_timeout,
            deadline: now + self.cfg.command_timeout,
        });
        Ok(())
    }

    /// Completed commands since the last call, in order.
    pub fn take_done(&mut self) -> Vec<Done<T>> {
        std::mem::take(&mut self.done)
    }

    /// The socket to poll and for what; `None` while there is no socket.
    pub fn interest(&self) -> Option<(Interest, &Socket)> {
        let sock = self.sock.as_ref()?;
        Some((
            Interest {
                generation: self.generation,
                readable: true,
                writable: self.phase == Phase::Connecting || self.want_write,
            },
            sock,
        ))
    }

    /// When [`LoopConn::on_timer`] must run next (`None`: nothing can time out).
    pub fn next_deadline(&self) -> Option<Instant> {
        let first_user = self.fifo.iter().find_map(|p| match p.owner {
            Owner::User(_) => Some(p.deadline),
            Owner::Handshake { .. } => None,
        });
        let io = match self.phase {
            Phase::Connecting | Phase::Handshaking => match (self.connect_deadline, first_user) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Phase::Ready => first_user,
            Phase::Resolving => Some(Instant::now() + LOOKUP_POLL),
            Phase::Idle | Phase::Closed => None,
        };
        let io = if self.holding && self.pending() > 0 {
            let poll = Instant::now() + HOLD_POLL;
            Some(io.map_or(poll, |t| t.min(poll)))
        } else {
            io
        };
        match (io, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The error of a connection to a server that is not (or no longer) the sentinel group's master.
    fn not_master(&self) -> AdapterError {
        let name = self.cfg.sentinel.as_ref().map_or("", |s| s.name.as_str());
        not_master(&self.target.0, self.target.1, name)
    }

    fn epoch_now(&self) -> u64 {
        self.cfg.watch.as_ref().map_or(0, |w| w.epoch())
    }

    /// Connects if needed, then writes what is queued (until the socket would block).
    pub fn flush(&mut self, now: Instant) {
        if self.sock.is_some() && self.epoch != self.epoch_now() {
            // the sentinels announced a new master: what is pending goes there, in order
            let err = self.not_master();
            self.setback(now, err);
        }
        if let Some(t) = self.retry_at {
            if now < t {
                return; // waiting out an outage: everything goes at `retry_at`
            }
            self.retry_at = None;
            self.unpark();
        }
        match self.phase {
            Phase::Idle if !self.fifo.is_empty() || self.wants_connection() => self.start_connect(now),
            Phase::Handshaking | Phase::Ready => self.write_some(now),
            _ => {}
        }
    }

    pub fn on_writable(&mut self, now: Instant) {
        if self.phase == Phase::Connecting {
            self.check_connected(now);
            return;
        }
        self.write_some(now);
    }

    pub fn on_readable(&mut self, now: Instant) {
        if self.phase == Phase::Connecting {
            self.check_connected(now);
            if self.phase == Phase::Connecting {
                return;
            }
        }
        let mut eof = false;
        let mut failure = None;
        while let Some(sock) = self.sock.as_ref() {
            let spare = self.read.spare();
            let room = spare.len();
            match (&*sock).read(spare) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    self.read.filled(n);
                    if n < room {
                        break;
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.decode_replies(now);
        if let Some(e) = failure {
            self.connection_lost(now, AdapterError::Connect(format!("connection to Redis lost: {e}")));
        } else if eof && self.sock.is_some() {
            self.connection_lost(
                now,
                AdapterError::Connect("connection to Redis lost (closed by the server)".into()),
            );
        }
    }

    /// Fails what waited too long (see the module docs).
    pub fn on_timer(&mut self, now: Instant) {
        if self.phase == Phase::Resolving {
            self.poll_lookup(now);
            return;
        }
        if self.holding {
            self.flush(now);
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            self.flush(now);
        }
        if matches!(self.phase, Phase::Connecting | Phase::Handshaking)
            && self.connect_deadline.is_some_and(|d| now >= d)
        {
            let err = AdapterError::Timeout(format!(
                "could not connect to Redis within {} ms",
                self.cfg.connect_timeout.as_millis()
            ));
            self.setback(now, err);
            return;
        }
        let first_user = self.fifo.iter().find_map(|p| match p.owner {
            Owner::User(_) => Some(p.deadline),
            Owner::Handshake { .. } => None,
        });
        let connected = matches!(self.phase, Phase::Handshaking | Phase::Ready);
        if connected && first_user.is_some_and(|d| now >= d) {
            self.drop_socket();
            self.fail_all(AdapterError::Timeout(format!(
                "Redis did not answer within {} ms (commandTimeout)",
                self.cfg.command_timeout.as_millis()
            )));
            self.phase = Phase::Idle;
            self.retry_idle(now);
        }
    }

    /// Moves the commands parked after a transient reply back to the end of the queue.
    fn unpark(&mut self) {
        for (p, bytes) in std::mem::take(&mut self.parked) {
            self.out.extend_from_slice(&bytes);
            self.fifo.push_back(p);
        }
    }

    /// An outage (refused, dropped, connect timeout): commands still within their ride window wait
    /// for the next attempt (after the backoff); the others fail with `err`.
    fn setback(&mut self, now: Instant, err: AdapterError) {
        self.drop_socket();
        self.phase = Phase::Idle;
        let wait = self.backoff;
        let mut out = Vec::with_capacity(self.out.len() - self.acked);
        let mut off = self.acked;
        let mut keep = VecDeque::with_capacity(self.fifo.len());
        for p in self.fifo.drain(..) {
            let range = off..off + p.len;
            off += p.len;
            match p.owner {
                Owner::Handshake { .. } => {}
                Owner::User(t) if now + wait >= p.ride_until => self.done.push((t, Err(err.clone()))),
                owner => {
                    out.extend_from_slice(&self.out[range]);
                    // commandTimeout counts per attempt, from the resend
                    let deadline = p.deadline.max(now + wait + self.cfg.command_timeout);
                    keep.push_back(Pending { owner, deadline, ..p });
                }
            }
        }
        let mut parked = Vec::new();
        for (p, bytes) in std::mem::take(&mut self.parked) {
            match p.owner {
                Owner::User(t) if now + wait >= p.ride_until => self.done.push((t, Err(err.clone()))),
                _ => parked.push((p, bytes)),
            }
        }
        self.parked = parked;
        self.fifo = keep;
        self.out = out;
        self.acked = 0;
        self.written = 0;
        self.handshake_left = 0;
        if self.fifo.is_empty() && self.parked.is_empty() {
            self.retry_at = None;
            self.backoff = RIDE_FIRST_DELAY;
        } else {
            self.retry_at = Some(now + wait);
            self.backoff = (wait * 2).min(self.max_backoff());
        }
        self.retry_idle(now);
        self.maybe_finish_close();
    }

    /// Refuses new commands now and closes the socket once the pending ones are answered.
    pub fn close_when_drained(&mut self) {
        self.closing = true;
        self.maybe_finish_close();
    }

    /// Closes now: pending commands fail with `MOTIA_CLOSED`.
    pub fn close_now(&mut self) {
        self.drop_socket();
        self.unpark();
        self.fail_all(closed_error());
        self.retry_at = None;
        self.closing = true;
        self.phase = Phase::Closed;
    }

    fn maybe_finish_close(&mut self) {
        if self.closing && self.fifo.is_empty() && self.parked.is_empty() && self.phase != Phase::Closed {
            self.drop_socket();
            self.phase = Phase::Closed;
        }
    }

    fn drop_socket(&mut self) {
        if let Some(sock) = self.sock.take() {
            self.retired.push(sock);
        }
        self.want_write = false;
        self.connect_deadline = None;
        self.read.reset();
    }

    fn fail_all(&mut self, err: AdapterError) {
        for p in self.fifo.drain(..) {
            if let Owner::User(t) = p.owner {
                self.done.push((t, Err(err.clone())));
            }
        }
        self.out.clear();
        self.acked = 0;
        self.written = 0;
        self.handshake_left = 0;
    }

    fn start_connect(&mut self, now: Instant) {
        self.epoch = self.epoch_now();
        if self.addrs.is_empty() {
            if let Some(spec) = &self.cfg.sentinel {
                // asked anew on every connect; the answer arrives through `poll_lookup`
                let lookup: Lookup = Arc::new(Mutex::new(None));
                let (slot, spec, budget) = (lookup.clone(), spec.clone(), self.cfg.connect_timeout);
                let spawned = std::thread::Builder::new()
                    .name("motia-sentinel".into())
                    .spawn(move || {
                        let answer = spec.resolve_master(budget);
                        *slot.lock_ok() = Some(answer);
                    });
                if let Err(e) = spawned {
                    self.setback(
                        now,
                        AdapterError::Internal(format!("cannot start a sentinel lookup: {e}")),
                    );
                    return;
                }
                self.lookup = Some(lookup);
                self.phase = Phase::Resolving;
                self.connect_deadline = Some(now + self.cfg.connect_timeout);
                return;
            }
            let target = (self.cfg.host.clone(), self.cfg.port);
            if !self.resolve_addrs(now, target) {
                return;
            }
        }
        self.connect_resolved(now);
    }

    /// Resolves `host:port` (DNS) into the addresses to try; on failure everything waits (setback).
    fn resolve_addrs(&mut self, now: Instant, target: (String, u16)) -> bool {
        match (target.0.as_str(), target.1).to_socket_addrs() {
            Ok(a) => {
                self.addrs = a.collect();
                // try in the resolver's order: pop() takes from the end
                self.addrs.reverse();
                self.target = target;
                true
            }
            Err(e) => {
                let err = AdapterError::Connect(format!("cannot resolve Redis host `{}`: {e}", target.0));
                self.setback(now, err);
                false
            }
        }
    }

    /// The sentinels answered (or not yet: called again after [`LOOKUP_POLL`]).
    fn poll_lookup(&mut self, now: Instant) {
        let Some(lookup) = &self.lookup else {
            self.phase = Phase::Idle;
            return;
        };
        let answer = lookup.lock_ok().take();
        match answer {
            None => {
                if self.connect_deadline.is_some_and(|d| now >= d) {
                    self.lookup = None;
                    let err = AdapterError::Timeout(format!(
                        "the sentinels did not name a master within {} ms",
                        self.cfg.connect_timeout.as_millis()
                    ));
                    self.setback(now, err);
                }
            }
            Some(Err(e)) => {
                self.lookup = None;
                self.setback(now, e);
            }
            Some(Ok(target)) => {
                self.lookup = None;
                self.phase = Phase::Idle;
                if self.resolve_addrs(now, target) {
                    self.connect_resolved(now);
                }
            }
        }
    }

    fn connect_resolved(&mut self, now: Instant) {
        // the handshake goes first on the new socket (a subscriber's channels are part of it)
        let mut handshake = self.cfg.handshake.clone();
        for ch in self.channels.iter().flatten() {
            handshake.push((redis::cmd("SUBSCRIBE").arg(ch).get_packed_command(), Check::Ignore));
        }
        let mut out = Vec::with_capacity(self.out.len() - self.acked + 128);
        for (bytes, check) in handshake.iter().rev() {
            self.fifo.push_front(Pending {
                owner: Owner::Handshake { check: *check },
                len: bytes.len(),
                ride_until: now,
                deadline: now + self.cfg.connect_timeout,
            });
        }
        for (bytes, _) in &handshake {
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&self.out[self.acked..]);
        self.out = out;
        self.acked = 0;
        self.written = 0;
        self.handshake_left = handshake.len();
        self.connect_deadline = Some(now + self.cfg.connect_timeout);
        self.connect_next(now, None);
    }

    /// Tries the next resolved address; fails everything when none is left.
    fn connect_next(&mut self, now: Instant, mut last_err: Option<io::Error>) {
        while let Some(addr) = self.addrs.pop() {
            match Self::open(addr) {
                Ok((sock, connected)) => {
                    self.sock = Some(sock);
                    self.generation += 1;
                    if connected {
                        self.phase = Phase::Handshaking;
                        self.addrs.clear();
                        self.write_some(now);
                    } else {
                        self.phase = Phase::Connecting;
                    }
                    return;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let detail = last_err.map(|e| e.to_string()).unwrap_or_else(|| "no address".into());
        let err = AdapterError::Connect(format!(
            "cannot reach Redis at {}:{}: {detail}",
            self.target.0, self.target.1
        ));
        self.setback(now, err);
    }

    fn open(addr: SocketAddr) -> io::Result<(Socket, bool)> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        sock.set_tcp_nodelay(true)?;
        let _ = sock.set_keepalive(true);
        match sock.connect(&addr.into()) {
            Ok(()) => Ok((sock, true)),
            Err(e) if in_progress(&e) => Ok((sock, false)),
            Err(e) => Err(e),
        }
    }

    fn check_connected(&mut self, now: Instant) {
        let Some(sock) = self.sock.as_ref() else {
            return;
        };
        match sock.take_error() {
            Ok(None) => {
                // writable without an error: connected (peer_addr fails if it is not yet)
                if sock.peer_addr().is_err() {
                    return;
                }
                self.phase = Phase::Handshaking;
                self.addrs.clear();
                self.write_some(now);
            }
            Ok(Some(e)) | Err(e) => {
                if let Some(sock) = self.sock.take() {
                    self.retired.push(sock);
                }
                self.connect_next(now, Some(e));
            }
        }
    }

    fn write_some(&mut self, now: Instant) {
        if self.written >= self.out.len() {
            self.holding = false; // nothing left to hold (answered, failed or closed meanwhile)
        } else {
            if let Some(w) = &self.cfg.watch {
                // a replica is being promoted: a write sent now could land on the master being replaced
                self.holding = w.holding(now, self.cfg.connect_timeout);
                if self.holding {
                    self.want_write = false;
                    return;
                }
            }
        }
        while self.written < self.out.len() {
            let Some(sock) = self.sock.as_ref() else {
                return;
            };
            match (&*sock).write(&self.out[self.written..]) {
                Ok(0) => {
                    self.want_write = true;
                    return;
                }
                Ok(n) => self.written += n,
                Err(e) if would_block(&e) => {
                    self.want_write = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.connection_lost(now, AdapterError::Connect(format!("connection to Redis lost: {e}")));
                    return;
                }
            }
        }
        self.want_write = false;
    }

    fn decode_replies(&mut self, now: Instant) {
        loop {
            let reply = match self.read.next_reply() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    self.drop_socket();
                    self.fail_all(AdapterError::Backend(format!("Redis sent a malformed reply: {e}")));
                    self.phase = Phase::Idle;
                    return;
                }
            };
            if self.channels.is_some() && is_message(&reply) {
                if let Reply::Array(mut items) = reply {
                    if let (Reply::Bulk(payload), Reply::Bulk(channel)) = (items.remove(2), items.remove(1)) {
                        self.messages.push((channel, payload));
                    }
                }
                continue;
            }
            let Some(p) = self.fifo.pop_front() else {
                self.drop_socket();
                self.fail_all(AdapterError::Backend("Redis sent a reply nobody asked for".into()));
                self.phase = Phase::Idle;
                return;
            };
            self.acked += p.len;
            let Pending {
                owner,
                len,
                ride_until,
                deadline,
            } = p;
            match owner {
                Owner::Handshake { check } => {
                    self.handshake_left = self.handshake_left.saturating_sub(1);
                    if let (Check::Fatal, Reply::Error(msg)) = (check, &reply) {
                        let err = server_error(msg);
                        self.drop_socket();
                        self.fail_all(err);
                        self.phase = Phase::Idle;
                        return;
                    }
                    if check == Check::Master && !reply_says_master(&reply) {
                        // a replica, or a demoted master the sentinels still named: ask again
                        let err = self.not_master();
                        self.setback(now, err);
                        return;
                    }
                    if self.handshake_left == 0 && self.phase == Phase::Handshaking {
                        self.phase = Phase::Ready;
                        self.connects += 1;
                        self.connect_deadline = None;
                    }
                    let _ = (len, ride_until, deadline);
                }
                Owner::User(t) => {
                    if self.cfg.sentinel.is_some() && reply.error_code() == Some("READONLY") {
                        // the master was demoted: this command and every later one are sent again,
                        // in order, to the master the sentinels name next
                        self.acked -= len;
                        self.fifo.push_front(Pending {
                            owner: Owner::User(t),
                            len,
                            ride_until,
                            deadline,
                        });
                        let err = self.not_master();
                        self.setback(now, err);
                        return;
                    }
                    let transient = reply.error_code().is_some_and(transient_code);
                    if transient && now + self.backoff < ride_until {
                        // not now (loading, failover): resend after the backoff, in order
                        let start = self.acked - len;
                        let bytes = self.out[start..self.acked].to_vec();
                        let owner = Owner::User(t);
                        self.parked.push((
                            Pending {
                                owner,
                                len,
                                ride_until,
                                deadline: deadline.max(now + self.cfg.command_timeout),
                            },
                            bytes,
                        ));
                        if self.retry_at.is_none() {
                            self.retry_at = Some(now + self.backoff);
                            self.backoff = (self.backoff * 2).min(self.max_backoff());
                        }
                    } else {
                        if !transient {
                            self.backoff = RIDE_FIRST_DELAY;
                        }
                        self.done.push((t, Ok(reply)));
                    }
                }
            }
            self.compact();
        }
        self.maybe_finish_close();
        let _ = now;
    }

    fn compact(&mut self) {
        if self.acked == self.out.len() {
            self.out.clear();
            self.acked = 0;
            self.written = 0;
        } else if self.acked > 1 << 20 && self.acked * 2 > self.out.len() {
            self.out.drain(..self.acked);
            self.written -= self.acked.min(self.written);
            self.acked = 0;
        }
    }

    /// The socket broke or the server closed it (see the module docs for what is retried).
    fn connection_lost(&mut self, now: Instant, err: AdapterError) {
        self.setback(now, err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn cfg(port: u16) -> LoopConfig {
        LoopConfig {
            host: "127.0.0.1".into(),
            port,
            sentinel: None,
            watch: None,
            handshake: vec![(b"*1\r\n$4\r\nPING\r\n".to_vec(), Check::Ignore)],
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(300),
        }
    }

    /// Drives the connection like the event loop would, until `n` commands completed or `limit` passed.
    fn drive(c: &mut LoopConn<u32>, n: usize, limit: Duration) -> Vec<Done<u32>> {
        let end = Instant::now() + limit;
        let mut all = Vec::new();
        c.flush(Instant::now());
        while all.len() < n && Instant::now() < end {
            let now = Instant::now();
            if c.interest().is_some_and(|(i, _)| i.writable) {
                c.on_writable(now);
            }
            c.on_readable(now);
            c.on_timer(now);
            c.flush(now);
            all.extend(c.take_done());
            thread::sleep(Duration::from_millis(2));
        }
        all
    }

    #[test]
    fn config_from_url_builds_the_handshake() {
        let c = RedisConnectionConfig {
            url: Some("redis://user:pw@127.0.0.1:6390/3".into()),
            ..Default::default()
        };
        let l = LoopConfig::from_config(&c).unwrap().unwrap();
        assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 6390));
        assert_eq!(l.handshake.len(), 3);
        let checks: Vec<Check> = l.handshake.iter().map(|h| h.1).collect();
        assert_eq!(checks, [Check::Fatal, Check::Fatal, Check::Ignore]);
        assert!(l.sentinel.is_none());
        let sentinel = RedisConnectionConfig {
            sentinel: Some(SentinelConfig {
                nodes: vec![super::super::sentinel::SentinelNode {
                    host: "127.0.0.1".into(),
                    port: 26379,
                }],
                name: "mymaster".into(),
                ..Default::default()
            }),
            password: Some("pw".into()),
            ..Default::default()
        };
        let l = LoopConfig::from_config(&sentinel).unwrap().unwrap();
        let checks: Vec<Check> = l.handshake.iter().map(|h| h.1).collect();
        assert_eq!(checks, [Check::Fatal, Check::Master, Check::Ignore]);
        assert!(reply_says_master(&Reply::Array(vec![
            Reply::Bulk(b"master".to_vec()),
            Reply::Int(0)
        ])));
        assert!(!reply_says_master(&Reply::Array(vec![Reply::Bulk(b"slave".to_vec())])));
        assert!(!reply_says_master(&Reply::Error("ERR".into())));
        let tls = RedisConnectionConfig {
            url: Some("rediss://h:1".into()),
            ..Default::default()
        };
        assert!(LoopConfig::from_config(&tls).unwrap().is_none());
    }

    #[test]
    fn pipelined_replies_partial_frames_and_an_error_slot() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            // handshake PING + 3 commands
            while got.windows(3).filter(|w| w == b"GET").count() < 3 {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            for chunk in [&b"+PONG\r\n$3\r\nab"[..], b"c\r\n-WRONGTYPE x\r\n", b"$-1\r\n"] {
                s.write_all(chunk).unwrap();
                s.flush().unwrap();
                thread::sleep(Duration::from_millis(20));
            }
            thread::sleep(Duration::from_millis(100));
        });
        let mut c = LoopConn::new(cfg(port));
        let now = Instant::now();
        for i in 0..3u32 {
            assert!(c.push(redis::cmd("GET").arg(i), i, now).is_ok());
        }
        let done = drive(&mut c, 3, Duration::from_secs(3));
        assert_eq!(done.len(), 3);
        assert_eq!(done[0], (0, Ok(Reply::Bulk(b"abc".to_vec()))));
        assert_eq!(done[1].1.as_ref().unwrap().error_code(), Some("WRONGTYPE"));
        assert_eq!(done[2], (2, Ok(Reply::Nil)));
        assert_eq!(c.phase(), Phase::Ready);
        server.join().unwrap();
    }

    #[test]
    fn subscriber_gets_pushes_and_resubscribes_after_the_server_closes() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            for word in ["first", "again"] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(9).any(|w| w == b"SUBSCRIBE") {
                    let n = s.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                // one confirmation per SUBSCRIBE (the first connect sends the channel twice: in the
                // handshake and as the pending call)
                let n = got.windows(9).filter(|w| w == b"SUBSCRIBE").count();
                let reply = format!(
                    "+PONG\r\n{}*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\n{word}\r\n",
                    "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n".repeat(n)
                );
                s.write_all(reply.as_bytes()).unwrap();
                thread::sleep(Duration::from_millis(50));
            } // closes: the idle subscriber reconnects on its own and subscribes `ch` again
        });
        let mut c = LoopConn::subscriber(cfg(port));
        assert!(c.subscribe("ch", 1u32, Instant::now()).is_ok());
        let done = drive(&mut c, 1, Duration::from_secs(3));
        assert_eq!(done.len(), 1);
        assert!(matches!(&done[0], (1, Ok(Reply::Array(a))) if a[0] == Reply::Bulk(b"subscribe".to_vec())));
        let mut messages = c.take_messages();
        let end = Instant::now() + Duration::from_secs(3);
        while messages.len() < 2 && Instant::now() < end {
            drive(&mut c, 1, Duration::from_millis(20));
            messages.extend(c.take_messages());
        }
        let payloads: Vec<&[u8]> = messages
            .iter()
            .map(|(ch, p)| {
                assert_eq!(ch, b"ch");
                p.as_slice()
            })
            .collect();
        assert_eq!(payloads, [&b"first"[..], b"again"]);
        assert_eq!(c.pending(), 0);
        assert_eq!(c.connects(), 2);
        server.join().unwrap();
    }

    #[test]
    fn unsubscribe_while_redis_is_away_completes_at_once_and_stops_reconnecting() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = LoopConn::subscriber(cfg(port));
        assert!(c.subscribe("ch", 1u32, Instant::now()).is_ok());
        assert!(drive(&mut c, 1, Duration::from_millis(60)).is_empty()); // riding the outage
        assert!(c.unsubscribe("ch", 2, Instant::now()).is_ok());
        let done = drive(&mut c, 1, Duration::from_millis(50));
        assert_eq!(done, vec![(2, Ok(Reply::Nil))]);
        let done = drive(&mut c, 1, Duration::from_secs(2));
        assert_eq!(done[0].0, 1);
        assert_eq!(done[0].1.as_ref().unwrap_err().code(), "MOTIA_CONNECT");
        // no channel left: an idle subscriber stops trying
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn refused_fails_pending_with_connect() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = LoopConn::new(cfg(port));
        c.push(&redis::cmd("PING"), 7, Instant::now()).ok();
        let done = drive(&mut c, 1, Duration::from_secs(2));
        assert_eq!(done[0].1.as_ref().unwrap_err().code(), "MOTIA_CONNECT");
        assert_eq!(c.phase(), Phase::Idle);
    }

    #[test]
    fn silent_server_times_out_and_close_mid_reply_is_resent() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let mut held = Vec::new();
            // 1st: silent; 2nd: handshake reply and half a reply, then close; 3rd: answers
            for i in 0..3 {
                let (mut s, _) = l.accept().unwrap();
                if i > 0 {
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(3).any(|w| w == b"GET") {
                        let n = s.read(&mut buf).unwrap();
                        got.extend_from_slice(&buf[..n]);
                    }
                    let reply: &[u8] = if i == 1 {
                        b"+PONG\r\n$10\r\nabc"
                    } else {
                        b"+PONG\r\n$10\r\n0123456789\r\n"
                    };
                    s.write_all(reply).unwrap();
                    if i == 2 {
                        thread::sleep(Duration::from_millis(200));
                    }
                } else {
                    held.push(s);
                }
            }
        });
        let mut c = LoopConn::new(cfg(port));
        c.push(redis::cmd("GET").arg("k"), 1, Instant::now()).ok();
        let done = drive(&mut c, 1, Duration::from_secs(3));
        assert_eq!(done[0].1.as_ref().unwrap_err().code(), "MOTIA_TIMEOUT");
        // 2nd connection closes mid-reply: resent on the 3rd, which answers
        c.push(redis::cmd("GET").arg("k"), 2, Instant::now()).ok();
        let done = drive(&mut c, 1, Duration::from_secs(3));
        assert_eq!(done[0], (2, Ok(Reply::Bulk(b"0123456789".to_vec()))));
        server.join().unwrap();
    }

    #[test]
    fn closed_refuses_and_drains_first() {
        let mut c: LoopConn<u32> = LoopConn::new(cfg(1));
        c.close_when_drained();
        assert_eq!(c.phase(), Phase::Closed);
        let (tag, e) = c.push(&redis::cmd("PING"), 3, Instant::now()).unwrap_err();
        assert_eq!((tag, e.code()), (3, "MOTIA_CLOSED"));
    }
}
