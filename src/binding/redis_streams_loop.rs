//! Native half of the stream adapters' hot path: item `get`/`set`/`delete` on the JS thread's
//! event loop (see `binding::jsloop`). `set`/`delete` are the same Lua scripts as the tokio path
//! (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`); and the manager's pub/sub connection
//! (`NativeRedisSubscriberLoop`). getGroup, query, clear and send stay on `NativeRedisStreams` (tokio).

use std::sync::OnceLock;

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::Env;
use napi_derive::napi;

use super::jsloop::napi_raw::{JsRaw, Ref};
use super::jsloop::{self, loop_class_common, Conv, JsLoop, ScriptRetry};
use super::metrics::NativeMetrics;
use crate::core::redis::keys::StreamKeys;
use crate::core::redis::scripts;
use crate::core::redis::stream::{script_args, StreamOp, StreamOpKind};

fn script(kind: StreamOpKind) -> (&'static str, &'static str) {
    static SET: OnceLock<String> = OnceLock::new();
    static DELETE: OnceLock<String> = OnceLock::new();
    if kind == StreamOpKind::Delete {
        let h = DELETE.get_or_init(|| redis::Script::new(scripts::STREAM_DELETE).get_hash().to_string());
        (scripts::STREAM_DELETE, h.as_str())
    } else {
        let h = SET.get_or_init(|| redis::Script::new(scripts::STREAM_SET).get_hash().to_string());
        (scripts::STREAM_SET, h.as_str())
    }
}

/// Internal: the event-loop Redis connection behind the stream adapters.
#[napi]
pub struct NativeRedisStreamsLoop {
    conn: JsLoop,
    keys: StreamKeys,
}

/// Internal: a `NativeRedisStreamsLoop`, or `null` when this connection or host cannot use the
/// event-loop path (TLS, no libuv as in Bun/Deno, `MOTIA_NATIVE_JSLOOP=0`).
#[napi]
pub fn create_redis_streams_loop(
    env: Env,
    connection: String,
    key_prefix: String,
    error_class: Unknown<'_>,
    metrics: &NativeMetrics,
) -> napi::Result<Option<NativeRedisStreamsLoop>> {
    let Some(conn) = jsloop::open(env.raw(), &connection, error_class.raw(), metrics.shared())? else {
        return Ok(None);
    };
    Ok(Some(NativeRedisStreamsLoop {
        conn,
        keys: StreamKeys::new(key_prefix),
    }))
}

impl NativeRedisStreamsLoop {
    fn eval(&self, method: &'static str, op: &StreamOp<'_>, then: Conv) -> napi::Result<JsRaw> {
        let key = self.keys.group(op.stream, op.group);
        let args = script_args(op);
        let (body, hash) = script(op.kind);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(hash).arg(1).arg(&key).arg(&args);
        let retry = Box::new(ScriptRetry {
            body,
            keys: vec![key],
            args,
        });
        self.conn
            .call(
                method,
                &cmd,
                Conv::Script {
                    retry,
                    then: Box::new(then),
                },
            )
            .map(JsRaw)
    }
}

#[napi]
impl NativeRedisStreamsLoop {
    /// `HGET`; resolves with the parsed item or `null`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn get(&self, stream: String, group_id: String, id: String) -> napi::Result<JsRaw> {
        let key = self.keys.group(&stream, &group_id);
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&key).arg(&id);
        self.conn
            .call("get", &cmd, Conv::Json { key, field: Some(id) })
            .map(JsRaw)
    }

    /// The set script; resolves with `item`, its `_createdAt` filled in when `open` (`payload` is
    /// then the item JSON without its closing `}` and `now` the creation time for a new item).
    #[napi(ts_return_type = "Promise<unknown>")]
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &self,
        env: Env,
        stream: String,
        group_id: String,
        id: String,
        payload: String,
        open: bool,
        now: f64,
        item: Unknown<'_>,
    ) -> napi::Result<JsRaw> {
        let op = StreamOp {
            kind: if open {
                StreamOpKind::SetOpen
            } else {
                StreamOpKind::SetFull
            },
            stream: &stream,
            group: &group_id,
            id: &id,
            payload: &payload,
            now: now as i64,
        };
        let item = Ref::new(env.raw(), item.raw())?;
        self.eval(
            "set",
            &op,
            Conv::StreamItem {
                item,
                now: open.then_some(now),
            },
        )
    }

    /// The delete script; resolves with the removed item or `null`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn delete(&self, stream: String, group_id: String, id: String) -> napi::Result<JsRaw> {
        let op = StreamOp {
            kind: StreamOpKind::Delete,
            stream: &stream,
            group: &group_id,
            id: &id,
            payload: "",
            now: 0,
        };
        let key = self.keys.group(&stream, &group_id);
        self.eval(
            "delete",
            &op,
            Conv::Json {
                key,
                field: Some(id.clone()),
            },
        )
    }

    /// `PING`; resolves with `true` when Redis answers `PONG`.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn ping(&self) -> napi::Result<JsRaw> {
        self.conn
            .call("ping", &redis::cmd("PING"), Conv::Equals("PONG"))
            .map(JsRaw)
    }
}

loop_class_common!(NativeRedisStreamsLoop);

/// Internal: the event-loop pub/sub connection of a stream manager (messages reach `onMessage` with no thread hop).
#[napi]
pub struct NativeRedisSubscriberLoop {
    conn: JsLoop,
}

/// Internal: a `NativeRedisSubscriberLoop` calling `onMessage(channel, payload)`, or `null` when this connection
/// or host cannot use the event-loop path (TLS, sentinels, no libuv as in Bun/Deno, `MOTIA_NATIVE_JSLOOP=0`).
#[napi]
pub fn create_redis_subscriber_loop(
    env: Env,
    connection: String,
    error_class: Unknown<'_>,
    metrics: &NativeMetrics,
    #[napi(ts_arg_type = "(channel: string, payload: string) => void")] on_message: Unknown<'_>,
) -> napi::Result<Option<NativeRedisSubscriberLoop>> {
    let conn = jsloop::open_subscriber(
        env.raw(),
        &connection,
        error_class.raw(),
        metrics.shared(),
        on_message.raw(),
    )?;
    Ok(conn.map(|conn| NativeRedisSubscriberLoop { conn }))
}

#[napi]
impl NativeRedisSubscriberLoop {
    /// `SUBSCRIBE channel` (kept across reconnects); resolves once the server confirmed it. Fails with
    /// MOTIA_CONNECT when Redis stays unreachable for connectTimeout, and stays registered.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn subscribe(&self, channel: String) -> napi::Result<JsRaw> {
        self.conn
            .call_with("subscribe", Conv::Undefined, |c, slot, now| {
                c.subscribe(&channel, slot, now).err()
            })
            .map(JsRaw)
    }

    /// `UNSUBSCRIBE channel`; resolves once the server confirmed it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn unsubscribe(&self, channel: String) -> napi::Result<JsRaw> {
        self.conn
            .call_with("unsubscribe", Conv::Undefined, |c, slot, now| {
                c.unsubscribe(&channel, slot, now).err()
            })
            .map(JsRaw)
    }
}

loop_class_common!(NativeRedisSubscriberLoop);
