//! Per-adapter metrics: calls, errors by code and latency histograms per method (hdrhistogram),
//! plus named counters and gauges. Recorded where the work happens (the event-loop Redis path in
//! Rust, the JS layer through the binding's sync calls) and read as one JSON snapshot that
//! `lib/metrics.js` turns into `metrics()`, Prometheus text and OpenTelemetry instruments.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::core::sync::LockExt;

/// Latencies are recorded in microseconds, from 1 µs to this bound (longer ones are clamped).
const MAX_MICROS: u64 = 3_600_000_000;
/// Upper bounds (seconds) of the histogram buckets a snapshot reports, as Prometheus expects them.
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct MethodStats {
    calls: u64,
    errors: u64,
    sum_micros: u64,
    hist: Histogram<u64>,
}

impl MethodStats {
    fn new() -> Self {
        MethodStats {
            calls: 0,
            errors: 0,
            sum_micros: 0,
            // 2 significant digits: 1% resolution, a few KB per method
            hist: Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds"),
        }
    }

    fn snapshot(&self) -> Value {
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1e6;
        let buckets: Vec<Value> = BUCKETS_SECONDS
            .iter()
            .map(|le| {
                let bound = (le * 1e6) as u64;
                json!([le, self.hist.count_between(0, bound)])
            })
            .collect();
        json!({
            "calls": self.calls,
            "errors": self.errors,
            "seconds": {
                "count": self.hist.len(),
                "sum": self.sum_micros as f64 / 1e6,
                "p50": q(0.5),
                "p90": q(0.9),
                "p99": q(0.99),
                "max": self.hist.max() as f64 / 1e6,
                "buckets": buckets,
            }
        })
    }
}

#[derive(Default)]
struct Inner {
    methods: BTreeMap<String, MethodStats>,
    /// (method, code) → count
    errors: BTreeMap<(String, String), u64>,
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
}

/// One adapter's metrics. Cheap to record into (one uncontended lock, one histogram insert).
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Off: every record is a no-op (`MOTIA_NATIVE_METRICS=0`, to measure what metrics cost).
    enabled: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(true)
    }
}

impl Metrics {
    pub fn new(enabled: bool) -> Self {
        Metrics {
            inner: Mutex::default(),
            enabled,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock_ok()
    }

    /// One finished call of `method` that took `elapsed`; `error` is its error code when it failed.
    pub fn record(&self, method: &str, elapsed: Duration, error: Option<&str>) {
        if !self.enabled {
            return;
        }
        let micros = (elapsed.as_micros() as u64).clamp(1, MAX_MICROS);
        let mut inner = self.lock();
        let m = match inner.methods.get_mut(method) {
            Some(m) => m,
            None => inner.methods.entry(method.to_string()).or_insert_with(MethodStats::new),
        };
        m.calls += 1;
        m.sum_micros = m.sum_micros.saturating_add(micros);
        let _ = m.hist.record(micros);
        if let Some(code) = error {
            m.errors += 1;
            *inner.errors.entry((method.to_string(), code.to_string())).or_insert(0) += 1;
        }
    }

    /// Adds `n` to the counter `name`.
    pub fn incr(&self, name: &str, n: u64) {
        if !self.enabled {
            return;
        }
        let mut inner = self.lock();
        match inner.counters.get_mut(name) {
            Some(c) => *c += n,
            None => {
                inner.counters.insert(name.to_string(), n);
            }
        }
    }

    /// Sets the gauge `name`.
    pub fn gauge(&self, name: &str, value: f64) {
        if !self.enabled {
            return;
        }
        self.lock().gauges.insert(name.to_string(), value);
    }

    /// `{ methods: {name: {calls, errors, seconds: {count, sum, p50, p90, p99, max, buckets}}},
    /// errors: [{method, code, count}], counters: {…}, gauges: {…} }`.
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        let methods: Map<String, Value> = inner.methods.iter().map(|(k, m)| (k.clone(), m.snapshot())).collect();
        let errors: Vec<Value> = inner
            .errors
            .iter()
            .map(|((method, code), n)| json!({ "method": method, "code": code, "count": n }))
            .collect();
        json!({
            "methods": methods,
            "errors": errors,
            "counters": inner.counters,
            "gauges": inner.gauges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calls_errors_and_quantiles() {
        let m = Metrics::default();
        for i in 1..=100u64 {
            m.record("get", Duration::from_micros(i * 100), None);
        }
        m.record("get", Duration::from_millis(2), Some("MOTIA_TIMEOUT"));
        m.incr("reconnects", 2);
        m.incr("reconnects", 1);
        m.gauge("inFlight", 3.0);
        let s = m.snapshot();
        let get = &s["methods"]["get"];
        assert_eq!(get["calls"], 101);
        assert_eq!(get["errors"], 1);
        let p50 = get["seconds"]["p50"].as_f64().unwrap();
        assert!((0.0049..=0.0052).contains(&p50), "p50 {p50}");
        let p99 = get["seconds"]["p99"].as_f64().unwrap();
        assert!((0.0098..=0.0102).contains(&p99), "p99 {p99}");
        // cumulative buckets: 10 calls at or below 1 ms, all 101 at or below 10 ms
        let buckets = get["seconds"]["buckets"].as_array().unwrap();
        let at = |le: f64| {
            buckets.iter().find(|b| b[0].as_f64() == Some(le)).unwrap()[1]
                .as_u64()
                .unwrap()
        };
        assert_eq!(at(0.001), 10);
        assert_eq!(at(0.01), 101);
        assert_eq!(
            s["errors"][0],
            json!({"method": "get", "code": "MOTIA_TIMEOUT", "count": 1})
        );
        assert_eq!(s["counters"]["reconnects"], 3);
        assert_eq!(s["gauges"]["inFlight"], 3.0);
        let sum = get["seconds"]["sum"].as_f64().unwrap();
        assert!((sum - (0.505 + 0.002)).abs() < 1e-9, "sum {sum}");
    }

    #[test]
    fn disabled_records_nothing() {
        let m = Metrics::new(false);
        m.record("get", Duration::from_micros(5), Some("X"));
        m.incr("c", 1);
        m.gauge("g", 1.0);
        assert_eq!(
            m.snapshot(),
            json!({"methods": {}, "errors": [], "counters": {}, "gauges": {}})
        );
    }
}
