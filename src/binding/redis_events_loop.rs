//! Native half of `RedisEventAdapter.emit` on the JS thread's event loop (see `binding::jsloop`): the emit script
//! (`EVALSHA`, `EVAL` on `NOSCRIPT`) with no thread hop. Consumers, settles and registry writes stay on
//! `NativeRedisEvents` (tokio: blocking reads need their own connections).

use std::sync::OnceLock;

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::Env;
use napi_derive::napi;

use super::jsloop::napi_raw::JsRaw;
use super::jsloop::{self, loop_class_common, Conv, JsLoop, ScriptRetry};
use super::metrics::NativeMetrics;
use crate::core::redis::events::EmitCall;
use crate::core::redis::keys::EventKeys;
use crate::core::redis::scripts;

fn emit_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| redis::Script::new(scripts::EVENT_EMIT).get_hash().to_string())
}

/// Internal: the event-loop Redis connection behind `RedisEventAdapter.emit`.
#[napi]
pub struct NativeRedisEventsLoop {
    conn: JsLoop,
    keys: EventKeys,
}

/// Internal: a `NativeRedisEventsLoop`, or `null` when this connection or host cannot use the event-loop path
/// (TLS, no libuv as in Bun/Deno).
#[napi]
pub fn create_redis_events_loop(
    env: Env,
    connection: String,
    key_prefix: String,
    error_class: Unknown<'_>,
    metrics: &NativeMetrics,
) -> napi::Result<Option<NativeRedisEventsLoop>> {
    let Some(conn) = jsloop::open(env.raw(), &connection, error_class.raw(), metrics.shared())? else {
        return Ok(None);
    };
    Ok(Some(NativeRedisEventsLoop {
        conn,
        keys: EventKeys::new(key_prefix),
    }))
}

#[napi]
impl NativeRedisEventsLoop {
    /// The emit script for one event (`body`: the encoded event JSON); resolves `undefined` once Redis holds it in
    /// every registered step's stream.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn emit(&self, topic: String, body: String) -> napi::Result<JsRaw> {
        let EmitCall { keys, args } = EmitCall::now(&self.keys, &topic, &body);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(emit_hash()).arg(keys.len()).arg(&keys).arg(&args);
        let retry = Box::new(ScriptRetry {
            body: scripts::EVENT_EMIT,
            keys,
            args,
        });
        self.conn
            .call(
                "emit",
                &cmd,
                Conv::Script {
                    retry,
                    then: Box::new(Conv::Undefined),
                },
            )
            .map(JsRaw)
    }
}

loop_class_common!(NativeRedisEventsLoop);
