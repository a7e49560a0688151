//! Native half of `RedisStateAdapter`'s hot path: `get`/`set`/`delete`/`exists` on the JS thread's
//! event loop (see `binding::jsloop`), one promise per call, no thread hop. Multi-key operations
//! stay on `NativeRedisState` (tokio).

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::Env;
use napi_derive::napi;

use super::jsloop::napi_raw::{JsRaw, Ref};
use super::jsloop::{self, loop_class_common, Conv, JsLoop};
use super::metrics::NativeMetrics;
use crate::core::redis::keys::StateKeys;

/// Internal: the event-loop Redis connection behind `RedisStateAdapter`. Use `RedisStateAdapter`.
#[napi]
pub struct NativeRedisStateLoop {
    conn: JsLoop,
    keys: StateKeys,
    ttl: Option<u64>,
}

/// Internal: a `NativeRedisStateLoop`, or `null` when this connection or host cannot use the
/// event-loop path (TLS, no libuv as in Bun/Deno, `MOTIA_NATIVE_JSLOOP=0`).
#[napi]
pub fn create_redis_state_loop(
    env: Env,
    connection: String,
    key_prefix: String,
    ttl: Option<u32>,
    error_class: Unknown<'_>,
    metrics: &NativeMetrics,
) -> napi::Result<Option<NativeRedisStateLoop>> {
    let Some(conn) = jsloop::open(env.raw(), &connection, error_class.raw(), metrics.shared())? else {
        return Ok(None);
    };
    Ok(Some(NativeRedisStateLoop {
        conn,
        keys: StateKeys::new(key_prefix),
        ttl: ttl.map(u64::from),
    }))
}

#[napi]
impl NativeRedisStateLoop {
    /// `GET`; resolves with the parsed JSON value or `null`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn get(&self, trace_id: String, key: String) -> napi::Result<JsRaw> {
        let full = self.keys.key(&trace_id, &key);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&full);
        self.conn
            .call("get", &cmd, Conv::Json { key: full, field: None })
            .map(JsRaw)
    }

    /// `SET key text [EX ttl]`; resolves with `value` (what the caller passed in).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn set(
        &self,
        env: Env,
        trace_id: String,
        key: String,
        text: String,
        value: Unknown<'_>,
    ) -> napi::Result<JsRaw> {
        let full = self.keys.key(&trace_id, &key);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&full).arg(&text);
        if let Some(ttl) = self.ttl {
            cmd.arg("EX").arg(ttl);
        }
        let value = Ref::new(env.raw(), value.raw())?;
        self.conn.call("set", &cmd, Conv::Value(value)).map(JsRaw)
    }

    /// `GETDEL` (atomic); resolves with the previous value or `null`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn delete(&self, trace_id: String, key: String) -> napi::Result<JsRaw> {
        let full = self.keys.key(&trace_id, &key);
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(&full);
        self.conn
            .call("delete", &cmd, Conv::Json { key: full, field: None })
            .map(JsRaw)
    }

    /// `EXISTS`; resolves with a boolean.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn exists(&self, trace_id: String, key: String) -> napi::Result<JsRaw> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.keys.key(&trace_id, &key));
        self.conn.call("exists", &cmd, Conv::Bool).map(JsRaw)
    }

    /// `PING`; resolves with `true` when Redis answers `PONG`.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn ping(&self) -> napi::Result<JsRaw> {
        self.conn
            .call("ping", &redis::cmd("PING"), Conv::Equals("PONG"))
            .map(JsRaw)
    }
}

loop_class_common!(NativeRedisStateLoop);
