//! Native half of `RedisCronAdapter`'s hot path: `acquireLock`/`releaseLock` scripts on the JS
//! thread's event loop (see `binding::jsloop`), sharing the lock store (leases, instance id) and
//! tick tracker of the tokio-driven `NativeRedisCron`, which keeps renew, active locks and shutdown.

use std::sync::{Arc, OnceLock};

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::Env;
use napi_derive::napi;

use super::guard::run_sync;
use super::jsloop::napi_raw::{self as raw, JsRaw};
use super::jsloop::{self, loop_class_common, Conv, JsLoop, ScriptRetry};
use super::metrics::NativeMetrics;
use super::redis_cron_adapter::NativeRedisCron;
use crate::core::cron_lock::{check_time, check_ttl, Acquisition, CronLock, TickRequest, TickTracker};
use crate::core::redis::cron::RedisCronLocks;
use crate::core::redis::scripts;
use crate::core::redis::wire::Reply;
use crate::error::AdapterError;

fn release_body() -> &'static str {
    static BODY: OnceLock<String> = OnceLock::new();
    BODY.get_or_init(scripts::release).as_str()
}

fn ints(reply: &Reply) -> Vec<i64> {
    match reply {
        Reply::Int(i) => vec![*i],
        Reply::Array(items) => items
            .iter()
            .map(|i| match i {
                Reply::Int(n) => *n,
                Reply::Bulk(b) => std::str::from_utf8(b).ok().and_then(|t| t.parse().ok()).unwrap_or(0),
                _ => 0,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Internal: the event-loop companion of `NativeRedisCron`.
#[napi]
pub struct NativeRedisCronLoop {
    conn: JsLoop,
    locks: Arc<RedisCronLocks>,
    ticks: Arc<TickTracker>,
}

/// Internal: a `NativeRedisCronLoop` sharing `cron`'s locks, or `null` when this connection or
/// host cannot use the event-loop path (TLS, no libuv as in Bun/Deno, `MOTIA_NATIVE_JSLOOP=0`).
#[napi]
pub fn create_redis_cron_loop(
    env: Env,
    cron: &NativeRedisCron,
    connection: String,
    error_class: Unknown<'_>,
    metrics: &NativeMetrics,
) -> napi::Result<Option<NativeRedisCronLoop>> {
    let Some(conn) = jsloop::open(env.raw(), &connection, error_class.raw(), metrics.shared())? else {
        return Ok(None);
    };
    let (locks, ticks) = cron.shared();
    Ok(Some(NativeRedisCronLoop { conn, locks, ticks }))
}

#[napi]
impl NativeRedisCronLoop {
    /// One acquisition attempt (see `NativeRedisCron.tryAcquire`); resolves `{lock, skippedSince}`.
    #[napi(ts_return_type = "Promise<AcquireResult>")]
    pub fn try_acquire(
        &self,
        job_name: String,
        ttl: f64,
        called_at: f64,
        scheduled_at: Option<f64>,
    ) -> napi::Result<JsRaw> {
        let (ttl, tick) = run_sync(|| {
            let ttl = check_ttl(ttl, "ttl")?;
            let called_at = check_time(called_at, "calledAt")?;
            let scheduled_at = scheduled_at.map(|t| check_time(t, "scheduledAt")).transpose()?;
            let mut tick = TickRequest::new(called_at, scheduled_at, None);
            if !tick.exact {
                tick.period = self.ticks.observe(&job_name, tick.tick);
            }
            Ok((ttl, tick))
        })?;
        let call = self.locks.acquire_call(&job_name, ttl, tick);
        let (hash, _) = self.locks.script_hashes();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(hash).arg(2).arg(&call.keys).arg(&call.args);
        let retry = Box::new(ScriptRetry {
            body: scripts::ACQUIRE,
            keys: call.keys.to_vec(),
            args: call.args.clone(),
        });
        let locks = self.locks.clone();
        let then = Conv::Custom(Box::new(move |env, reply| {
            let n = ints(&reply);
            // a kept lease is a tokio task: spawn it inside napi's runtime
            let outcome = napi::bindgen_prelude::within_runtime_if_available(|| locks.acquire_outcome(call, &n));
            let obj = raw::object(env);
            let (lock, skipped) = match outcome {
                Acquisition::Acquired(lock) => (raw::string(env, &lock.to_json()), raw::null(env)),
                Acquisition::Refused => (raw::null(env), raw::null(env)),
                Acquisition::Skipped { running_tick } => (raw::null(env), raw::number(env, running_tick as f64)),
            };
            raw::set(env, obj, "lock", lock);
            raw::set(env, obj, "skippedSince", skipped);
            Ok::<_, AdapterError>(obj)
        }));
        self.conn
            .call(
                "acquireLock",
                &cmd,
                Conv::Script {
                    retry,
                    then: Box::new(then),
                },
            )
            .map(JsRaw)
    }

    /// Releases a lock this instance holds (JSON of the CronLock); resolves whether it was held.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn release(&self, lock: String) -> napi::Result<JsRaw> {
        let lock = run_sync(|| CronLock::from_json(&lock))?;
        let (key, args) = self.locks.release_call(&lock);
        let (_, hash) = self.locks.script_hashes();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(hash).arg(1).arg(&key).arg(&args);
        let retry = Box::new(ScriptRetry {
            body: release_body(),
            keys: vec![key],
            args,
        });
        self.conn
            .call(
                "releaseLock",
                &cmd,
                Conv::Script {
                    retry,
                    then: Box::new(Conv::Bool),
                },
            )
            .map(JsRaw)
    }
}

loop_class_common!(NativeRedisCronLoop);
