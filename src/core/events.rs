//! What both event backends (RabbitMQ, Kafka) share on the Rust side: the delivery batch format handed to
//! JS, the outcomes JS hands back, subscription readiness, ordered publishing, backoff and de-duplicated logs.
//! The event semantics themselves (retries, FIFO, concurrency) live in one place too: `lib/events.js`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// Receives a batch of deliveries: `(subscription id, generation, JSON array)` where each element is
/// `[tag, retryCount, redelivered, body]` (`body` is the message's own JSON, or `null` plus a fifth element
/// with the reason when the body is not JSON).
pub type Deliver = Arc<dyn Fn(u32, u32, String) + Send + Sync>;

/// What JS decided for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ack = 0,
    /// Give up on it: RabbitMQ dead-letters it to `${queue}.dlq`; Kafka produces it to the step's DLQ topic.
    DeadLetter = 1,
    /// Not handled (the subscription stopped first): another consumer gets it.
    Requeue = 2,
}

impl Outcome {
    pub fn from_code(code: u32) -> Result<Self> {
        [Outcome::Ack, Outcome::DeadLetter, Outcome::Requeue]
            .into_iter()
            .find(|o| *o as u32 == code)
            .ok_or_else(|| AdapterError::Internal(format!("unknown settle outcome {code}")))
    }
}

/// The settle columns JS sends, as rows `(subscription, generation, tag, outcome)`.
pub fn settle_rows(
    subs: &[u32],
    generations: &[u32],
    tags: &[f64],
    outcomes: &[u32],
) -> Result<Vec<(u32, u32, u64, Outcome)>> {
    let n = subs.len();
    if generations.len() != n || tags.len() != n || outcomes.len() != n {
        return Err(AdapterError::Internal("settle arrays differ in length".into()));
    }
    (0..n)
        .map(|i| {
            Ok((
                subs[i],
                generations[i],
                tags[i] as u64,
                Outcome::from_code(outcomes[i])?,
            ))
        })
        .collect()
}

/// Motia's `QueueConfig` of one subscription, defaults filled (Motia core always passes a full one;
/// direct callers may pass part of one or none): standard, 3 retries, 900 s visibility, no delay.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub max_retries: u64,
    pub visibility_timeout: f64,
    pub delay_seconds: f64,
    /// Handlers running at once (standard queues); `None`: the adapter's prefetch.
    pub concurrency: Option<u64>,
}

pub const DEFAULT_MAX_RETRIES: f64 = 3.0;
pub const DEFAULT_VISIBILITY_TIMEOUT_S: f64 = 900.0;

impl QueueConfig {
    pub fn from_json(text: &str) -> Result<Self> {
        let o = crate::core::options::Options::from_json(text, "queueConfig")?.labelled("queueConfig.");
        Ok(QueueConfig {
            kind: o.choice("type", &["standard", "fifo"], "standard")?,
            max_retries: o.non_negative("maxRetries", DEFAULT_MAX_RETRIES)?.floor() as u64,
            visibility_timeout: o.non_negative("visibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT_S)?,
            delay_seconds: o.non_negative("delaySeconds", 0.0)?,
            concurrency: o.opt_int("concurrency", 1, u32::MAX as u64)?,
        })
    }
}

/// How far a subscription's consumers are behind, as the broker tells it: events waiting for any consumer of the
/// step (group), and, where the broker knows it, events delivered and not yet settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    pub waiting: u64,
    pub unsettled: Option<u64>,
}

/// Appends one delivery to a batch: `[tag,retries,redelivered,<body JSON>]`, or `…,null,"reason"]`.
pub fn push_delivery(out: &mut String, tag: u64, retries: u32, redelivered: bool, body: &[u8]) {
    use std::fmt::Write;
    let _ = write!(out, "[{tag},{retries},{redelivered},");
    match crate::core::codec::json_str(body, || "the message body".to_string()) {
        Ok(json) => out.push_str(json),
        Err(e) => {
            out.push_str("null,");
            out.push_str(&serde_json::Value::String(e.js_message()).to_string());
        }
    }
    out.push(']');
}

/// Whether a subscription consumes yet.
#[derive(Clone)]
pub enum Readiness {
    /// Not yet; the last error if there was one (the subscription keeps trying).
    Pending(Option<AdapterError>),
    Ready,
}

/// Waits until a subscription consumes (`Ok(None)`), or `timeout` passes while it still tries
/// (`Ok(Some(last error))`); a permanent error — its own or the connection's (`shared_error`) — is `Err`.
pub async fn wait_readiness(
    ready: &watch::Sender<Readiness>,
    timeout: Duration,
    shared_error: impl Fn() -> Option<AdapterError>,
    not_yet: &str,
) -> Result<Option<AdapterError>> {
    let mut rx = ready.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let state = rx.borrow_and_update().clone();
        let last = match state {
            Readiness::Ready => return Ok(None),
            Readiness::Pending(Some(e)) if is_permanent(&e) => return Err(e),
            Readiness::Pending(last) => last,
        };
        if let Some(e) = shared_error().filter(is_permanent) {
            return Err(e);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return Ok(last) },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(Some(
                    last.or_else(shared_error).unwrap_or_else(|| AdapterError::Timeout(not_yet.to_string())),
                ));
            }
        }
    }
}

/// A publish batch's results as the JSON JS reads: `[0,null]` per delivered event, `[1, code, message]` per failure.
pub fn encode_results(results: &[Result<()>]) -> String {
    let mut out = String::with_capacity(8 * results.len() + 2);
    out.push('[');
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match r {
            Ok(()) => crate::core::codec::push_ok(&mut out, "null"),
            Err(e) => crate::core::codec::push_err(&mut out, e),
        }
    }
    out.push(']');
    out
}

/// Errors that retrying will not fix: wrong credentials, invalid settings, a conflicting declaration.
pub fn is_permanent(e: &AdapterError) -> bool {
    matches!(e, AdapterError::Auth(_) | AdapterError::Config { .. })
        || matches!(e, AdapterError::Backend(m) if m.contains("PRECONDITION_FAILED") || m.contains("ACCESS_REFUSED"))
}

/// The longest pause between reconnect attempts. A refused connect costs the broker nothing, and
/// every pause is latency added to the first emit and delivery after the broker is back, so the
/// client polls at least this often, whatever the outage length (target: back within 300 ms).
pub const RECONNECT_POLL_MAX_MS: u64 = 250;

/// Reconnect backoff: 50 ms doubling, capped at `max_ms` (`reconnectDelay`) and at
/// [`RECONNECT_POLL_MAX_MS`].
pub fn backoff(attempt: u32, max_ms: u64) -> Duration {
    let ms = 50u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms.min(max_ms.clamp(20, RECONNECT_POLL_MAX_MS)))
}

/// How serious a backend log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info = 0,
    Error = 2,
}

/// The code a line carries when a connection or consumer came back after a failure (counted as a reconnect).
pub const RECOVERED: &str = "MOTIA_RECOVERED";

/// Where a backend's lines go: the adapter's logger (through the binding), else stderr.
pub type LogSink = Arc<dyn Fn(LogLevel, String, Option<&'static str>) + Send + Sync>;

/// A backend's log. Errors are logged once per distinct text, so an outage does not flood the log.
pub struct Log {
    backend: &'static str,
    last: Mutex<Option<String>>,
    sink: std::sync::OnceLock<LogSink>,
}

impl Log {
    pub fn new(backend: &'static str) -> Self {
        Log {
            backend,
            last: Mutex::new(None),
            sink: std::sync::OnceLock::new(),
        }
    }

    /// Sends every later line to `sink` instead of stderr (set once, by the binding).
    pub fn set_sink(&self, sink: LogSink) {
        let _ = self.sink.set(sink);
    }

    fn line(&self, level: LogLevel, text: String, code: Option<&'static str>) {
        match self.sink.get() {
            Some(sink) => sink(level, text, code),
            None => eprintln!("motia-native-adapters [{}] {text}", self.backend),
        }
    }

    /// `what: text` with the error's code beside it (stderr: `what: [CODE] text`).
    pub fn error(&self, what: &str, e: &AdapterError) {
        let text = format!("{what}: {}", e.redacted_text());
        let mut last = self.last.lock_ok();
        if last.as_deref() != Some(text.as_str()) {
            *last = Some(text.clone());
            drop(last);
            match self.sink.get() {
                Some(sink) => sink(LogLevel::Error, text, Some(e.code())),
                None => eprintln!("motia-native-adapters [{}] {what}: {}", self.backend, e.js_message()),
            }
        }
    }

    pub fn info(&self, text: &str) {
        *self.last.lock_ok() = None;
        self.line(LogLevel::Info, text.to_string(), None);
    }

    /// A connection or consumer is back after a failure: an info line the adapter counts as a reconnect.
    pub fn recovered(&self, text: &str) {
        *self.last.lock_ok() = None;
        self.line(LogLevel::Info, text.to_string(), Some(RECOVERED));
    }
}

/// Publish batches go out in the order JS numbered them (0, 1, 2…), although their async tasks may start in
/// any order; their broker confirmations then overlap. A number that never arrives is skipped after 1 s.
pub struct Turnstile {
    turn: watch::Sender<u64>,
}

impl Default for Turnstile {
    fn default() -> Self {
        Turnstile {
            turn: watch::channel(0).0,
        }
    }
}

impl Turnstile {
    /// Waits for batch `seq`'s turn; the guard lets the next one go when released or dropped.
    pub async fn wait(&self, seq: u64) -> TurnGuard<'_> {
        let mut rx = self.turn.subscribe();
        let wait = async {
            while *rx.borrow_and_update() < seq {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        TurnGuard {
            turn: &self.turn,
            seq,
            done: false,
        }
    }
}

pub struct TurnGuard<'a> {
    turn: &'a watch::Sender<u64>,
    seq: u64,
    done: bool,
}

impl TurnGuard<'_> {
    pub fn release(&mut self) {
        if !self.done {
            self.done = true;
            let next = self.seq + 1;
            self.turn.send_modify(|t| *t = (*t).max(next));
        }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reconnect_backoff_polls_at_least_every_250_ms() {
        assert_eq!(backoff(0, 5000), Duration::from_millis(50));
        assert_eq!(backoff(1, 5000), Duration::from_millis(100));
        assert_eq!(backoff(2, 5000), Duration::from_millis(200));
        assert_eq!(backoff(30, 5000), Duration::from_millis(RECONNECT_POLL_MAX_MS));
        assert_eq!(backoff(30, 100), Duration::from_millis(100));
    }

    use super::*;

    #[test]
    fn delivery_encoding() {
        let mut s = String::new();
        push_delivery(&mut s, 7, 2, true, br#"{"a":1}"#);
        assert_eq!(s, r#"[7,2,true,{"a":1}]"#);
        let mut s = String::new();
        push_delivery(&mut s, 1, 0, false, b"nope {");
        assert!(s.starts_with("[1,0,false,null,\"[MOTIA_DECODE]"), "{s}");
        let parsed: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(parsed[3], serde_json::Value::Null);
    }

    #[test]
    fn results_encoding() {
        let s = encode_results(&[Ok(()), Err(AdapterError::Timeout("slow".into()))]);
        assert_eq!(s, r#"[[0,null],[1,"MOTIA_TIMEOUT","[MOTIA_TIMEOUT] slow"]]"#);
    }

    #[tokio::test]
    async fn readiness_wait() {
        let (tx, _) = watch::channel(Readiness::Pending(None));
        let r = wait_readiness(&tx, Duration::from_millis(50), || None, "not yet").await;
        assert!(matches!(r, Ok(Some(AdapterError::Timeout(_)))));
        tx.send_replace(Readiness::Pending(Some(AdapterError::Auth("no".into()))));
        assert!(wait_readiness(&tx, Duration::from_millis(50), || None, "x")
            .await
            .is_err());
        tx.send_replace(Readiness::Ready);
        assert!(matches!(
            wait_readiness(&tx, Duration::from_secs(1), || None, "x").await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn turnstile_orders_batches() {
        let t = Arc::new(Turnstile::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for seq in (0..5u64).rev() {
            let (t, order) = (t.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = t.wait(seq).await;
                order.lock_ok().push(seq);
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*order.lock_ok(), vec![0, 1, 2, 3, 4]);
    }
}
