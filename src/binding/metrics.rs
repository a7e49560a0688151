//! `NativeMetrics`: one adapter's metrics (`core::metrics`), recorded into by the event-loop Redis
//! path in Rust and by the JS layer through these sync calls (no thread hop), read as a snapshot.

use std::sync::Arc;
use std::time::Duration;

use napi_derive::napi;

use crate::core::metrics::Metrics;

/// Internal: the metrics of one adapter. Read them with the adapter's `metrics()`.
#[napi]
pub struct NativeMetrics {
    pub(crate) inner: Arc<Metrics>,
}

impl NativeMetrics {
    pub(crate) fn shared(&self) -> Arc<Metrics> {
        self.inner.clone()
    }
}

#[napi]
impl NativeMetrics {
    /// `enabled: false` makes every record a no-op (default true).
    #[napi(constructor)]
    pub fn new(enabled: Option<bool>) -> Self {
        NativeMetrics {
            inner: Arc::new(Metrics::new(enabled.unwrap_or(true))),
        }
    }

    /// One finished call of `method` that took `seconds`; `code` is its error code when it failed.
    #[napi]
    pub fn record(&self, method: String, seconds: f64, code: Option<String>) {
        let elapsed = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::ZERO);
        self.inner.record(&method, elapsed, code.as_deref());
    }

    /// Adds `n` (default 1) to the counter `name`.
    #[napi]
    pub fn incr(&self, name: String, n: Option<f64>) {
        let n = n.unwrap_or(1.0);
        if n.is_finite() && n > 0.0 {
            self.inner.incr(&name, n as u64);
        }
    }

    /// Sets the gauge `name`.
    #[napi]
    pub fn gauge(&self, name: String, value: f64) {
        self.inner.gauge(&name, value);
    }

    /// The snapshot as JSON text (see `core::metrics::Metrics::snapshot`).
    #[napi]
    pub fn snapshot(&self) -> String {
        self.inner.snapshot().to_string()
    }
}
