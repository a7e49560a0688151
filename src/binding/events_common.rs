//! What the two event bindings (RabbitMQ, Kafka) share: the JS callback that receives delivery batches.

use std::sync::Arc;

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::core::events::{Deliver, Lag, Log, LogSink};

/// `onDeliveries([subscriptionId, generation, json])`, weak: it never keeps Node alive.
pub type OnDeliveries = ThreadsafeFunction<(u32, u32, String), (), (u32, u32, String), napi::Status, false, true>;

pub fn delivery_callback(f: Function<(u32, u32, String), ()>) -> napi::Result<Arc<OnDeliveries>> {
    Ok(Arc::new(
        f.build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?,
    ))
}

/// The core's `Deliver` for one adapter: calls JS in the order batches are handed over.
pub fn deliver(tsfn: &Arc<OnDeliveries>) -> Deliver {
    let tsfn = tsfn.clone();
    Arc::new(move |sub: u32, generation: u32, batch: String| {
        tsfn.call((sub, generation, batch), ThreadsafeFunctionCallMode::NonBlocking);
    })
}

/// Internal: an RFC-form subscription, with the broker-side name it consumes from (queue or consumer group).
#[napi(object)]
pub struct NativeSubscription {
    pub id: u32,
    /// The RabbitMQ queue or the Kafka consumer group.
    pub name: String,
}

/// Internal: a subscription's backlog as the broker tells it (see `consumerLag()` in the README).
#[napi(object)]
pub struct NativeLag {
    /// Events no consumer of the step has settled yet and that wait for one (Kafka: the group's lag).
    pub waiting: f64,
    /// Events delivered to a consumer and not settled yet, where the broker tells it (Redis).
    pub unsettled: Option<f64>,
}

impl From<Lag> for NativeLag {
    fn from(l: Lag) -> Self {
        NativeLag {
            waiting: l.waiting as f64,
            unsettled: l.unsettled.map(|n| n as f64),
        }
    }
}

/// `onLog([level, message, code])` (level 0 info, 2 error; code `MOTIA_RECOVERED` marks a reconnect), weak.
pub type OnLog =
    ThreadsafeFunction<(u32, String, Option<String>), (), (u32, String, Option<String>), napi::Status, false, true>;

/// Points a backend's [`Log`] at the adapter's JS logger (lines still go to stderr when JS passes none).
#[allow(clippy::type_complexity)] // the napi callback signature, spelled out for the typings
pub fn route_log(log: &Log, f: Option<Function<(u32, String, Option<String>), ()>>) -> napi::Result<()> {
    let Some(f) = f else { return Ok(()) };
    let tsfn: Arc<OnLog> = Arc::new(
        f.build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?,
    );
    let sink: LogSink = Arc::new(move |level, text, code| {
        tsfn.call(
            (level as u32, text, code.map(str::to_string)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    });
    log.set_sink(sink);
    Ok(())
}
