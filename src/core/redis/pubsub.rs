//! One dedicated pub/sub connection (per stream manager) built from the same connection
//! settings as the data connection — so `url`, TLS and credentials apply to it too (upstream's
//! subscriber ignored url and TLS). It reconnects with backoff and re-subscribes every channel.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::watch;

use super::connection::{classify, RedisHandle};
use crate::error::{AdapterError, Result};

/// Receives `(channel, payload)` for every message, in arrival order.
pub type Deliver = Arc<dyn Fn(String, String) + Send + Sync>;

/// Reconnect backoff of the subscriber: a refused connect is cheap, and every message published
/// while it is away is lost for its subscribers, so it retries at least every 100 ms and is back
/// within ~100 ms of the server accepting connections, however long the outage was.
const RECONNECT_FIRST: Duration = Duration::from_millis(10);
pub const RECONNECT_MAX: Duration = Duration::from_millis(100);

pub struct Subscriber {
    /// Asked for the server on every (re)connect: with sentinels that is the master named then.
    redis: Arc<RedisHandle>,
    connect_timeout: Duration,
    deliver: Deliver,
    channels: Mutex<HashSet<String>>,
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    connected: watch::Sender<bool>,
    started: AtomicBool,
    stopped: AtomicBool,
    stop_signal: tokio::sync::Notify,
}

impl Subscriber {
    pub fn new(redis: Arc<RedisHandle>, deliver: Deliver) -> Arc<Self> {
        let (connected, _) = watch::channel(false);
        let connect_timeout = redis.connect_timeout();
        Arc::new(Subscriber {
            redis,
            connect_timeout,
            deliver,
            channels: Mutex::new(HashSet::new()),
            sink: tokio::sync::Mutex::new(None),
            connected,
            started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stop_signal: tokio::sync::Notify::new(),
        })
    }

    fn channel_list(&self) -> Vec<String> {
        self.channels
            .lock()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = RECONNECT_FIRST;
        while !self.stopped.load(Ordering::SeqCst) {
            let conn = tokio::time::timeout(self.connect_timeout, async {
                self.redis
                    .client_now()
                    .await?
                    .get_async_pubsub()
                    .await
                    .map_err(classify)
            })
            .await;
            let pubsub = match conn {
                Ok(Ok(p)) => p,
                _ => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            // with sentinels: reconnect (to the new master) once they announce a switch
            let mut switched = self.redis.sentinel_watch().map(|w| w.subscribe());
            if let Some(rx) = switched.as_mut() {
                rx.mark_unchanged();
            }
            let (mut sink, mut stream) = pubsub.split();
            let mut ok = true;
            for ch in self.channel_list() {
                if sink.subscribe(&ch).await.is_err() {
                    ok = false;
                    break;
                }
            }
            if !ok {
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = RECONNECT_FIRST;
            *self.sink.lock().await = Some(sink);
            let _ = self.connected.send(true);
            loop {
                let msg = tokio::select! {
                    m = stream.next() => m,
                    _ = self.stop_signal.notified() => None,
                    _ = async {
                        match switched.as_mut() {
                            Some(rx) => rx.changed().await.ok(),
                            None => std::future::pending().await,
                        }
                    } => None,
                };
                let Some(msg) = msg else { break };
                if self.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let channel = msg.get_channel_name().to_string();
                if let Ok(payload) = msg.get_payload::<String>() {
                    (self.deliver)(channel, payload);
                }
            }
            let _ = self.connected.send(false);
            *self.sink.lock().await = None;
            if !self.stopped.load(Ordering::SeqCst) {
                tokio::time::sleep(backoff).await;
            }
        }
    }

    /// Subscribes; resolves once the server confirmed it. If Redis is unreachable it fails after
    /// `connect_timeout` but stays registered, and becomes active when Redis is back.
    pub async fn subscribe(self: &Arc<Self>, channel: &str) -> Result<()> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(AdapterError::Closed("the stream manager was shut down".into()));
        }
        if let Ok(mut c) = self.channels.lock() {
            c.insert(channel.to_string());
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().run());
        }
        let mut rx = self.connected.subscribe();
        let ready = tokio::time::timeout(self.connect_timeout, async { rx.wait_for(|c| *c).await.is_ok() })
            .await
            .unwrap_or(false);
        if !ready {
            return Err(AdapterError::Connect(format!(
                "pub/sub connection to Redis not ready within {} ms; the subscription stays registered",
                self.connect_timeout.as_millis()
            )));
        }
        let mut sink = self.sink.lock().await;
        match sink.as_mut() {
            Some(s) => s.subscribe(channel).await.map_err(classify),
            // reconnecting right now: the run loop subscribes every registered channel
            None => Ok(()),
        }
    }

    pub async fn unsubscribe(&self, channel: &str) -> Result<()> {
        if let Ok(mut c) = self.channels.lock() {
            c.remove(channel);
        }
        let mut sink = self.sink.lock().await;
        if let Some(s) = sink.as_mut() {
            s.unsubscribe(channel).await.map_err(classify)?;
        }
        Ok(())
    }

    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop_signal.notify_waiters();
        self.stop_signal.notify_one();
        if let Ok(mut c) = self.channels.lock() {
            c.clear();
        }
        // dropping the sink closes the connection and ends the reader
        *self.sink.lock().await = None;
    }
}
