//! Redis I/O on Node's own event loop: the napi/libuv glue around `core::redis::loop_conn`.
//!
//! One [`JsLoop`] per adapter owns a non-blocking socket (inside `LoopConn`) that is polled by a
//! `uv_poll` handle on the loop of the JS thread, and one `uv_timer` for timeouts. Calls create a
//! promise with raw `napi_create_promise` (no threadsafe function, no thread hop), queue their
//! command and schedule one flush per tick (`queueMicrotask`). Replies are decoded and removed
//! from the connection first; then, with no `RefCell` borrow held, the promises are settled inside
//! `napi_open_callback_scope` so Node drains the microtasks (promise reactions) before the scope
//! closes. Calls made by those reactions are only queued; they are written after each chunk of
//! `SETTLE_CHUNK` settled replies, so Redis works on them while the rest of a long batch is settled.
//!
//! Keep-alive: the poll handle is ref'd while replies are pending and unref'd when none are, so an
//! idle adapter never keeps Node alive (like node-redis with `unref`) and the process exits after
//! `cleanup()`. The timer is ref'd only while calls wait for a reconnect (no socket).

// Every function here takes the `napi_env` of the JS thread it is called on (from a `#[napi]`
// method, a napi callback or a libuv callback of that thread's loop) and passes it on to napi.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod napi_raw;
pub mod uv;

use std::cell::{Cell, RefCell};
use std::os::raw::{c_int, c_void};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use napi::sys;

use self::napi_raw as raw;
use self::uv::Uv;
use crate::core::metrics::Metrics;
use crate::core::redis::loop_conn::{Done, LoopConfig, LoopConn, Phase};
use crate::core::redis::wire::{server_error, Reply};
use crate::error::AdapterError;

/// How a reply becomes the value a promise resolves with.
pub enum Conv {
    /// Bulk string → `JSON.parse(text)`; nil → `null`. `key` (and the hash `field`) name the
    /// value in a decode error.
    Json { key: String, field: Option<String> },
    /// Reply `[type, createdAt]` of the stream set script → the referenced item object, with
    /// `_createdAt` filled in (the stored one on update, else `now`) when `now` is given.
    StreamItem { item: raw::Ref, now: Option<f64> },
    /// Any other conversion, run on the JS thread with the reply.
    Custom(Box<dyn FnOnce(sys::napi_env, Reply) -> Result<sys::napi_value, AdapterError>>),
    /// An `EVALSHA`: on `NOSCRIPT` (script cache flushed, server restarted) the same call is sent
    /// again as `EVAL` with the script body, then converted with `then`.
    Script { retry: Box<ScriptRetry>, then: Box<Conv> },
    /// Any success → the referenced JS value (e.g. `set` resolves with the value passed in).
    Value(raw::Ref),
    /// Any success → `undefined`.
    Undefined,
    /// Integer → `reply > 0`.
    Bool,
    /// Simple or bulk string → `reply === expected`.
    Equals(&'static str),
}

/// What is needed to send an `EVALSHA` call again as `EVAL`.
pub struct ScriptRetry {
    pub body: &'static str,
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

/// A pending call: its promise, what to do with the reply, and what its metrics record.
pub struct Slot {
    deferred: sys::napi_deferred,
    conv: Conv,
    method: &'static str,
    started: Instant,
}

struct State {
    conn: LoopConn<Slot>,
    poll: *mut c_void,
    poll_gen: u64,
    poll_events: c_int,
    poll_refed: bool,
    timer: *mut c_void,
    timer_at: Option<Instant>,
    timer_refed: bool,
    flush_scheduled: bool,
    draining: bool,
    close_waiters: Vec<sys::napi_deferred>,
}

/// Everything one adapter's JS-thread connection needs; shared by the class and the uv handles.
pub struct Shared {
    env: sys::napi_env,
    uv: &'static Uv,
    uv_loop: *mut c_void,
    state: RefCell<State>,
    js: raw::JsRefs,
    /// The owning JS object was collected: close once drained.
    orphaned: Cell<bool>,
    /// The adapter's metrics: every call's method, latency and error code.
    metrics: Arc<Metrics>,
}

/// Opens the event-loop connection of an adapter: `None` when this connection (TLS) or host (no libuv: Bun,
/// Deno) cannot use it; then the class keeps the tokio path.
pub fn open(
    env: sys::napi_env,
    connection_json: &str,
    error_class: sys::napi_value,
    metrics: Arc<Metrics>,
) -> napi::Result<Option<JsLoop>> {
    match loop_config(connection_json)? {
        Some(cfg) => JsLoop::new(env, cfg, error_class, metrics),
        None => Ok(None),
    }
}

/// Opens the event-loop pub/sub connection of a stream manager (see [`JsLoop::subscriber`]): `None`
/// as [`open`], and with sentinels (an idle subscriber would not notice a master switch; the tokio
/// subscriber follows them).
pub fn open_subscriber(
    env: sys::napi_env,
    connection_json: &str,
    error_class: sys::napi_value,
    metrics: Arc<Metrics>,
    on_message: sys::napi_value,
) -> napi::Result<Option<JsLoop>> {
    match loop_config(connection_json)? {
        Some(cfg) if cfg.sentinel.is_none() => JsLoop::subscriber(env, cfg, error_class, metrics, on_message),
        _ => Ok(None),
    }
}

fn loop_config(connection_json: &str) -> napi::Result<Option<LoopConfig>> {
    use crate::core::redis::connection::RedisConnectionConfig;
    super::guard::run_sync(|| LoopConfig::from_config(&RedisConnectionConfig::from_json(connection_json)?))
}

/// The `stats()` and `close()` of every event-loop class (a `#[napi]` struct with a `conn: JsLoop` field).
macro_rules! loop_class_common {
    ($class:ident) => {
        #[napi_derive::napi]
        impl $class {
            /// `[calls waiting for a reply, reconnects so far]` of this connection.
            #[napi]
            pub fn stats(&self) -> Vec<f64> {
                self.conn.stats()
            }

            /// Refuses new calls, waits for pending ones, closes the socket.
            #[napi(ts_return_type = "Promise<void>")]
            pub fn close(&self) -> napi::Result<$crate::binding::jsloop::napi_raw::JsRaw> {
                self.conn.close().map($crate::binding::jsloop::napi_raw::JsRaw)
            }
        }
    };
}
pub(crate) use loop_class_common;

/// Handle to the shared connection held by a `#[napi]` class.
pub struct JsLoop {
    shared: Rc<Shared>,
}

impl JsLoop {
    /// `None` when the host has no libuv (Bun, Deno) or this connection needs TLS: use tokio then.
    pub fn new(
        env: sys::napi_env,
        cfg: LoopConfig,
        error_class: sys::napi_value,
        metrics: Arc<Metrics>,
    ) -> napi::Result<Option<JsLoop>> {
        Self::with_conn(env, LoopConn::new(cfg), error_class, metrics, None)
    }

    /// A pub/sub connection that calls `on_message(channel, payload)` for every message (see
    /// `LoopConn::subscriber`); `None` as [`JsLoop::new`].
    pub fn subscriber(
        env: sys::napi_env,
        cfg: LoopConfig,
        error_class: sys::napi_value,
        metrics: Arc<Metrics>,
        on_message: sys::napi_value,
    ) -> napi::Result<Option<JsLoop>> {
        Self::with_conn(env, LoopConn::subscriber(cfg), error_class, metrics, Some(on_message))
    }

    fn with_conn(
        env: sys::napi_env,
        conn: LoopConn<Slot>,
        error_class: sys::napi_value,
        metrics: Arc<Metrics>,
        on_message: Option<sys::napi_value>,
    ) -> napi::Result<Option<JsLoop>> {
        let Some(uv) = uv::uv() else {
            return Ok(None);
        };
        let mut uv_loop: *mut sys::uv_loop_s = std::ptr::null_mut();
        // SAFETY: called on the JS thread with a live env.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok || uv_loop.is_null() {
            return Ok(None);
        }
        let uv_loop = uv_loop as *mut c_void;
        let js = raw::JsRefs::new(env, error_class)?;
        if let Some(f) = on_message {
            js.set_on_message(env, f)?;
        }
        let timer = uv::alloc_handle(uv, uv::UV_TIMER);
        // SAFETY: fresh handle memory of the right size on the loop of this thread.
        unsafe {
            if (uv.timer_init)(uv_loop, timer) != 0 {
                uv::free_handle(uv, uv::UV_TIMER, timer);
                return Ok(None);
            }
            (uv.unref)(timer);
        }
        let shared = Rc::new(Shared {
            env,
            uv,
            uv_loop,
            state: RefCell::new(State {
                conn,
                poll: std::ptr::null_mut(),
                poll_gen: 0,
                poll_events: 0,
                poll_refed: true,
                timer,
                timer_at: None,
                timer_refed: false,
                flush_scheduled: false,
                draining: false,
                close_waiters: Vec::new(),
            }),
            js,
            orphaned: Cell::new(false),
            metrics,
        });
        // SAFETY: the timer's data keeps one strong count, released in its close callback.
        unsafe { uv::set_data(timer, Rc::into_raw(shared.clone()) as *mut c_void) };
        shared.js.set_flush(env, Rc::downgrade(&shared))?;
        // SAFETY: the hook's pointer is valid until `Shared` drops, which removes the hook first.
        unsafe {
            sys::napi_add_env_cleanup_hook(env, Some(on_env_teardown), Rc::as_ptr(&shared) as *mut c_void);
        }
        Ok(Some(JsLoop { shared }))
    }

    /// Queues `cmd` for the adapter method `method` and returns its promise (called from a
    /// `#[napi]` method on the JS thread).
    pub fn call(&self, method: &'static str, cmd: &redis::Cmd, conv: Conv) -> napi::Result<sys::napi_value> {
        self.call_with(method, conv, |conn, slot, now| conn.push(cmd, slot, now).err())
    }

    /// [`JsLoop::call`] queueing with `push` (e.g. `LoopConn::subscribe`; `Some` when refused).
    pub fn call_with(
        &self,
        method: &'static str,
        conv: Conv,
        push: impl FnOnce(&mut LoopConn<Slot>, Slot, Instant) -> Option<(Slot, AdapterError)>,
    ) -> napi::Result<sys::napi_value> {
        let s = &self.shared;
        let (deferred, promise) = raw::create_promise(s.env)?;
        let now = Instant::now();
        let slot = Slot {
            deferred,
            conv,
            method,
            started: now,
        };
        let (refused, schedule) = {
            let mut st = s.state.borrow_mut();
            match push(&mut st.conn, slot, now) {
                Some((slot, e)) => (Some((slot, e)), false),
                None => {
                    let schedule = !st.draining && !st.flush_scheduled;
                    st.flush_scheduled |= schedule;
                    (None, schedule)
                }
            }
        };
        if let Some((slot, e)) = refused {
            s.settle(vec![(slot, Err(e))]);
        }
        if schedule {
            s.js.queue_flush(s.env)?;
        }
        Ok(promise)
    }

    /// `[calls waiting for a reply, reconnects so far]`, as the loop classes' `stats()` return it.
    pub fn stats(&self) -> Vec<f64> {
        let st = self.shared.state.borrow();
        vec![st.conn.pending() as f64, st.conn.connects().saturating_sub(1) as f64]
    }

    /// Refuses new calls, lets pending ones finish, closes the socket; the promise resolves then.
    pub fn close(&self) -> napi::Result<sys::napi_value> {
        let s = &self.shared;
        let (deferred, promise) = raw::create_promise(s.env)?;
        {
            let mut st = s.state.borrow_mut();
            st.conn.close_when_drained();
            st.close_waiters.push(deferred);
        }
        s.after_io(Vec::new());
        Ok(promise)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if !self.js.dead.get() {
            // SAFETY: registered in `JsLoop::new` with this pointer; the env is alive (not torn down).
            unsafe {
                sys::napi_remove_env_cleanup_hook(
                    self.env,
                    Some(on_env_teardown),
                    self as *const Shared as *mut c_void,
                );
            }
        }
    }
}

/// The env goes away (worker thread ending, process exit): close the socket and the uv handles
/// without calling into JS. Pending promises are dropped with their env.
unsafe extern "C" fn on_env_teardown(arg: *mut c_void) {
    // SAFETY: `arg` is a live `Shared` (its Drop removes this hook).
    unsafe {
        let s = &*(arg as *const Shared);
        s.js.dead.set(true);
        let uv = s.uv;
        if let Ok(mut st) = s.state.try_borrow_mut() {
            st.conn.close_now();
            drop(st.conn.take_done());
            if !st.poll.is_null() {
                (uv.poll_stop)(st.poll);
                (uv.close)(st.poll, Some(on_poll_close));
                st.poll = std::ptr::null_mut();
            }
            drop(st.conn.take_retired());
            if !st.timer.is_null() {
                (uv.timer_stop)(st.timer);
                (uv.close)(st.timer, Some(on_timer_close));
                st.timer = std::ptr::null_mut();
            }
        }
    }
}

impl Drop for JsLoop {
    fn drop(&mut self) {
        if self.shared.js.dead.get() {
            return;
        }
        // The JS object was collected (no promise of ours can be pending without the loop holding
        // `Shared` through its handles): close the socket once drained.
        self.shared.orphaned.set(true);
        if let Ok(mut st) = self.shared.state.try_borrow_mut() {
            st.conn.close_when_drained();
            self.shared.sync_handles(&mut st);
        }
    }
}

/// How many replies are settled before what their reactions queued is written: Redis works on
/// those while this thread settles the rest of a long batch (measured at c=64: set 1.0 → 1.2×,
/// get 1.2 → 1.45× upstream; smaller chunks cost more writes than the overlap wins).
const SETTLE_CHUNK: usize = 32;

impl Shared {
    /// The microtask scheduled by [`JsLoop::call`]: write what this tick queued.
    pub(crate) fn flush_from_js(self: &Rc<Self>) {
        let done = {
            let mut st = self.state.borrow_mut();
            st.flush_scheduled = false;
            st.conn.flush(Instant::now());
            st.conn.take_done()
        };
        // already inside JS: settle directly, reactions run after this microtask
        self.after_io(done);
    }

    /// Settles `done` (inside a callback scope when called from libuv), flushes what the promise
    /// reactions queued, and repeats until nothing completes; then updates the uv handles.
    fn drive(self: &Rc<Self>, step: impl FnOnce(&mut LoopConn<Slot>, Instant)) {
        let scope = raw::HandleScope::open(self.env);
        let (mut done, mut messages) = {
            let mut st = self.state.borrow_mut();
            step(&mut st.conn, Instant::now());
            let d = st.conn.take_done();
            st.draining = !d.is_empty();
            (d, st.conn.take_messages())
        };
        while !done.is_empty() || !messages.is_empty() {
            // in chunks: see SETTLE_CHUNK
            let rest = if done.len() > SETTLE_CHUNK {
                done.split_off(SETTLE_CHUNK)
            } else {
                Vec::new()
            };
            {
                let _cb = raw::CallbackScope::open(self.env, &self.js);
                self.settle(done);
                // a subscriber's confirmations first, then the messages read with them
                for (channel, payload) in std::mem::take(&mut messages) {
                    self.js.deliver(self.env, &channel, &payload);
                }
            } // microtasks run here; new calls only queue (draining)
            let mut st = self.state.borrow_mut();
            st.draining = false;
            st.conn.flush(Instant::now());
            done = rest;
            done.extend(st.conn.take_done());
            st.draining = !done.is_empty();
        }
        let waiters = self.take_close_waiters();
        if !waiters.is_empty() {
            let _cb = raw::CallbackScope::open(self.env, &self.js);
            for d in waiters {
                raw::resolve(self.env, d, raw::undefined(self.env));
            }
        }
        let mut st = self.state.borrow_mut();
        self.sync_handles(&mut st);
        drop(st);
        drop(scope);
    }

    /// From JS (flush microtask, close): settle without a callback scope.
    fn after_io(self: &Rc<Self>, done: Vec<Done<Slot>>) {
        if !done.is_empty() {
            self.settle(done);
        }
        for d in self.take_close_waiters() {
            raw::resolve(self.env, d, raw::undefined(self.env));
        }
        if let Ok(mut st) = self.state.try_borrow_mut() {
            self.sync_handles(&mut st);
        }
    }

    fn take_close_waiters(&self) -> Vec<sys::napi_deferred> {
        let mut st = self.state.borrow_mut();
        if st.conn.phase() != Phase::Closed {
            return Vec::new();
        }
        std::mem::take(&mut st.close_waiters)
    }

    /// Resolves or rejects each completed call. Never called with a `state` borrow held.
    fn settle(&self, done: Vec<Done<Slot>>) {
        let env = self.env;
        for (slot, result) in done {
            let slot = match (result, slot.conv) {
                (Ok(Reply::Error(msg)), Conv::Script { retry, then }) if msg.starts_with("NOSCRIPT") => {
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(retry.body)
                        .arg(retry.keys.len())
                        .arg(&retry.keys)
                        .arg(&retry.args);
                    let again = Slot {
                        deferred: slot.deferred,
                        conv: *then,
                        method: slot.method,
                        started: slot.started,
                    };
                    self.requeue(&cmd, again);
                    continue;
                }
                (result, Conv::Script { then, .. }) => (Slot { conv: *then, ..slot }, result),
                (result, conv) => (Slot { conv, ..slot }, result),
            };
            let (slot, result) = slot;
            let outcome = match result {
                Ok(Reply::Error(msg)) => Err((server_error(&msg), Some(slot.conv))),
                Err(e) => Err((e, Some(slot.conv))),
                Ok(reply) => self.convert(slot.conv, reply).map_err(|e| (e, None)),
            };
            let elapsed = slot.started.elapsed();
            match outcome {
                Ok(v) => {
                    self.metrics.record(slot.method, elapsed, None);
                    raw::resolve(env, slot.deferred, v)
                }
                Err((e, conv)) => {
                    self.metrics.record(slot.method, elapsed, Some(e.code()));
                    match conv {
                        // release the value a failed call would have returned
                        Some(Conv::Value(r)) | Some(Conv::StreamItem { item: r, .. }) => {
                            r.take(env);
                        }
                        _ => {}
                    }
                    raw::reject(env, slot.deferred, self.js.error(env, &e))
                }
            }
        }
    }

    /// Queues a call again from inside `settle` (written by the flush after the drain).
    fn requeue(&self, cmd: &redis::Cmd, slot: Slot) {
        let refused = {
            let mut st = self.state.borrow_mut();
            let r = st.conn.push(cmd, slot, Instant::now()).err();
            if r.is_none() && !st.draining && !st.flush_scheduled {
                st.flush_scheduled = true;
                drop(st);
                let _ = self.js.queue_flush(self.env);
            }
            r
        };
        if let Some((slot, e)) = refused {
            self.settle(vec![(slot, Err(e))]);
        }
    }

    fn convert(&self, conv: Conv, reply: Reply) -> Result<sys::napi_value, AdapterError> {
        let env = self.env;
        match (conv, reply) {
            (Conv::Json { .. }, Reply::Nil) => Ok(raw::null(env)),
            (Conv::Json { key, field }, Reply::Bulk(bytes)) => {
                let what = || match &field {
                    Some(f) => format!("item \"{f}\" of Redis hash \"{key}\""),
                    None => format!("value under Redis key \"{key}\""),
                };
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    return Err(AdapterError::Decode(format!(
                        "{} is not UTF-8 JSON (written by something else?)",
                        what()
                    )));
                };
                self.js.json_parse(env, text).map_err(|detail| {
                    AdapterError::Decode(format!(
                        "{} is not valid JSON ({detail}); written by something else?",
                        what()
                    ))
                })
            }
            (Conv::StreamItem { item, now }, Reply::Array(parts)) => {
                let item = item.take(env);
                if let Some(now) = now {
                    let created = match parts.get(1) {
                        Some(Reply::Bulk(b)) if !b.is_empty() => std::str::from_utf8(b)
                            .ok()
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(now),
                        _ => now,
                    };
                    raw::set_number(env, item, "_createdAt", created);
                }
                Ok(item)
            }
            (Conv::Value(r), _) => Ok(r.take(env)),
            (Conv::Undefined, _) => Ok(raw::undefined(env)),
            (Conv::Custom(f), reply) => f(env, reply),
            (Conv::Bool, Reply::Int(n)) => Ok(raw::boolean(env, n > 0)),
            (Conv::Equals(want), Reply::Simple(s)) => Ok(raw::boolean(env, s == want)),
            (Conv::Equals(want), Reply::Bulk(b)) => Ok(raw::boolean(env, b == want.as_bytes())),
            (_, other) => Err(AdapterError::Backend(format!("unexpected reply from Redis: {other:?}"))),
        }
    }

    /// Makes the poll handle, its events, ref state and the timer match the connection.
    fn sync_handles(&self, st: &mut State) {
        if self.js.dead.get() {
            return;
        }
        let uv = self.uv;
        let interest = st.conn.interest().map(|(i, sock)| (i, raw_sock(sock)));
        let want_gen = interest.map(|(i, _)| i.generation);
        if !st.poll.is_null() && want_gen != Some(st.poll_gen) {
            // SAFETY: live poll handle; freed in `on_poll_close`.
            unsafe {
                (uv.poll_stop)(st.poll);
                (uv.close)(st.poll, Some(on_poll_close));
            }
            st.poll = std::ptr::null_mut();
        }
        // no poll watches a retired socket any more: close their fds now (never earlier, or a
        // new socket could reuse the fd number while libuv still watches it)
        drop(st.conn.take_retired());
        if let Some((i, fd)) = interest {
            let events = uv::UV_READABLE | uv::UV_DISCONNECT | if i.writable { uv::UV_WRITABLE } else { 0 };
            if st.poll.is_null() {
                let h = uv::alloc_handle(uv, uv::UV_POLL);
                // SAFETY: fresh handle; the data pointer holds one strong count until close.
                unsafe {
                    if (uv.poll_init_socket)(self.uv_loop, h, fd) != 0 {
                        uv::free_handle(uv, uv::UV_POLL, h);
                        return;
                    }
                    let me = Rc::into_raw(self_rc(self));
                    uv::set_data(h, me as *mut c_void);
                }
                st.poll = h;
                st.poll_gen = i.generation;
                st.poll_events = 0;
                st.poll_refed = true;
            }
            if st.poll_events != events {
                // SAFETY: live poll handle.
                unsafe { (uv.poll_start)(st.poll, events, on_poll) };
                st.poll_events = events;
            }
            let want_ref = st.conn.pending() > 0;
            if want_ref != st.poll_refed {
                // SAFETY: live handle.
                unsafe {
                    if want_ref {
                        (uv.ref_)(st.poll)
                    } else {
                        (uv.unref)(st.poll)
                    }
                };
                st.poll_refed = want_ref;
            }
        }
        // the timer keeps Node alive only while calls wait without a socket (riding out an outage)
        let timer_ref = st.conn.pending() > 0 && st.poll.is_null();
        if timer_ref != st.timer_refed && !st.timer.is_null() {
            // SAFETY: live timer handle.
            unsafe {
                if timer_ref {
                    (uv.ref_)(st.timer)
                } else {
                    (uv.unref)(st.timer)
                }
            };
            st.timer_refed = timer_ref;
        }
        // timer: armed no later than the next deadline (an early wake-up just re-arms)
        match st.conn.next_deadline() {
            Some(d) if st.timer_at.is_none_or(|t| d < t) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis() as u64 + 1;
                // SAFETY: live timer handle.
                unsafe { (uv.timer_start)(st.timer, on_timer, ms, 0) };
                st.timer_at = Some(d);
            }
            None if st.timer_at.is_some() => {
                // SAFETY: live timer handle.
                unsafe { (uv.timer_stop)(st.timer) };
                st.timer_at = None;
            }
            _ => {}
        }
        if st.conn.phase() == Phase::Closed && st.poll.is_null() && !st.timer.is_null() && self.orphaned.get() {
            // SAFETY: live timer; its data's strong count is released in `on_timer_close`.
            unsafe { (uv.close)(st.timer, Some(on_timer_close)) };
            st.timer = std::ptr::null_mut();
        }
    }
}

/// A strong count for a handle's data pointer, from `&Shared` (always owned by an `Rc`).
fn self_rc(s: &Shared) -> Rc<Shared> {
    // SAFETY: every `Shared` lives in an `Rc` (built only in `JsLoop::new`).
    unsafe {
        let p = s as *const Shared;
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

#[cfg(unix)]
fn raw_sock(s: &socket2::Socket) -> uv::RawSock {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

#[cfg(windows)]
fn raw_sock(s: &socket2::Socket) -> uv::RawSock {
    use std::os::windows::io::AsRawSocket;
    s.as_raw_socket() as usize
}

/// Borrows the `Shared` behind a handle's data pointer without taking its count.
unsafe fn shared_of(h: *mut c_void) -> Rc<Shared> {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let p = uv::data(h) as *const Shared;
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

unsafe extern "C" fn on_poll(h: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let s = shared_of(h);
        super::guard::catch(|| {
            s.drive(|conn, now| {
                if status < 0 || events & (uv::UV_READABLE | uv::UV_DISCONNECT) != 0 {
                    conn.on_readable(now);
                }
                if status >= 0 && events & uv::UV_WRITABLE != 0 {
                    conn.on_writable(now);
                }
            })
        });
    }
}

unsafe extern "C" fn on_timer(h: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let s = shared_of(h);
        super::guard::catch(|| {
            if let Ok(mut st) = s.state.try_borrow_mut() {
                st.timer_at = None;
            }
            s.drive(|conn, now| conn.on_timer(now))
        });
    }
}

unsafe extern "C" fn on_poll_close(h: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let p = uv::data(h) as *const Shared;
        let s = Rc::from_raw(p);
        uv::free_handle(s.uv, uv::UV_POLL, h);
    }
}

unsafe extern "C" fn on_timer_close(h: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let p = uv::data(h) as *const Shared;
        let s = Rc::from_raw(p);
        uv::free_handle(s.uv, uv::UV_TIMER, h);
    }
}
