//! Consumers: one task and one channel per subscription, started again after every reconnect or channel close.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::Channel;
use tokio::sync::watch;

use super::client::AmqpClient;
use super::error::classify;
use super::supervisor::Session;
use super::topology::{retry_count, QueueSpec};
use crate::core::events::{backoff, push_delivery, wait_readiness, Deliver, Lag, Readiness};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// One subscription: its queue, its consumer task's stop signal and readiness, and the channel (numbered by
/// generation) its deliveries are settled on.
pub(super) struct Subscription {
    pub(super) id: u32,
    pub(super) spec: QueueSpec,
    pub(super) prefetch: u16,
    pub(super) deliver: Deliver,
    pub(super) generation: AtomicU32,
    pub(super) channel: Mutex<Option<(u32, Channel)>>,
    pub(super) consumer_tag: String,
    pub(super) stop: watch::Sender<bool>,
    pub(super) ready: watch::Sender<Readiness>,
}

impl AmqpClient {
    /// Registers a subscription and starts its consumer task. Returns its id at once.
    pub fn subscribe(self: &Arc<Self>, spec: QueueSpec, prefetch: u16, deliver: Deliver) -> Result<u32> {
        if self.is_closed.load(Ordering::SeqCst) {
            return Err(AdapterError::Closed("the RabbitMQ adapter was shut down".into()));
        }
        let id = self.next_sub.fetch_add(1, Ordering::SeqCst);
        let (stop, _) = watch::channel(false);
        let (ready, _) = watch::channel(Readiness::Pending(None));
        let sub = Arc::new(Subscription {
            id,
            spec,
            prefetch: prefetch.max(1),
            deliver,
            generation: AtomicU32::new(0),
            channel: Mutex::new(None),
            consumer_tag: format!("motia-native-{}", uuid::Uuid::new_v4()),
            stop,
            ready,
        });
        self.subs.lock_ok().insert(id, sub.clone());
        tokio::spawn(Self::consume(self.clone(), sub));
        Ok(id)
    }

    /// Waits until the subscription consumes, or `timeout` passes. `Ok(None)`: consuming;
    /// `Ok(Some(e))`: still waiting for the broker (it keeps trying); `Err(e)`: a permanent error (bad
    /// credentials, a queue declared with other arguments).
    pub async fn wait_ready(&self, id: u32, timeout: Duration) -> Result<Option<AdapterError>> {
        let sub = self
            .sub(id)
            .ok_or_else(|| AdapterError::Closed("subscription was removed".into()))?;
        wait_readiness(&sub.ready, timeout, || self.last_error(), "RabbitMQ not reachable yet").await
    }

    /// The queue's ready messages (a passive declare on a short-lived channel, so a failure never closes the
    /// consumer's channel); RabbitMQ does not tell unacked counts through AMQP.
    pub async fn lag(&self, id: u32) -> Result<Lag> {
        let sub = self
            .sub(id)
            .ok_or_else(|| AdapterError::Closed("subscription was removed".into()))?;
        let session = self.session.borrow().clone().ok_or_else(|| {
            self.last_error()
                .unwrap_or_else(|| AdapterError::Connect("RabbitMQ not connected".into()))
        })?;
        let run = async {
            let ch = session.conn.create_channel().await?;
            let opts = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let q = ch
                .queue_declare(ShortString::from(sub.spec.queue.as_str()), opts, FieldTable::default())
                .await;
            if ch.status().connected() {
                let _ = ch.close(200, ShortString::from("lag")).await;
            }
            q
        };
        let q = tokio::time::timeout(super::client::CLOSE_TIMEOUT, run)
            .await
            .map_err(|_| AdapterError::Timeout("RabbitMQ did not answer a queue declare".into()))?
            .map_err(|e| classify(&e))?;
        Ok(Lag {
            waiting: q.message_count() as u64,
            unsettled: None,
        })
    }

    pub(super) fn sub(&self, id: u32) -> Option<Arc<Subscription>> {
        self.subs.lock_ok().get(&id).cloned()
    }

    async fn open_consumer(&self, session: &Session, sub: &Subscription) -> Result<(Channel, lapin::Consumer)> {
        let spec = &sub.spec;
        let run = async {
            let ch = session.conn.create_channel().await?;
            ch.basic_qos(sub.prefetch, BasicQosOptions::default()).await?;
            self.declare(&ch, spec).await?;
            let consumer = ch
                .basic_consume(
                    ShortString::from(spec.queue.as_str()),
                    ShortString::from(sub.consumer_tag.as_str()),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((ch, consumer))
        };
        run.await.map_err(|e| {
            let err = classify(&e);
            match err {
                AdapterError::Backend(m) => AdapterError::Backend(format!("queue {}: {m}", spec.queue)),
                other => other,
            }
        })
    }

    async fn consume(self: Arc<Self>, sub: Arc<Subscription>) {
        let mut stop = sub.stop.subscribe();
        let mut sessions = self.session.subscribe();
        let mut attempt = 0u32;
        'outer: loop {
            if *stop.borrow() {
                break;
            }
            let session = loop {
                if let Some(s) = sessions.borrow_and_update().clone() {
                    break s;
                }
                tokio::select! {
                    r = sessions.changed() => if r.is_err() { break 'outer },
                    _ = stop.changed() => continue 'outer,
                }
            };
            let (channel, mut consumer) = match self.open_consumer(&session, &sub).await {
                Ok(c) => c,
                Err(e) => {
                    if !matches!(e, AdapterError::Connect(_)) {
                        self.log.error(&format!("cannot consume from {}", sub.spec.queue), &e);
                    }
                    sub.ready.send_replace(Readiness::Pending(Some(e)));
                    let wait = backoff(attempt, self.config.reconnect_delay);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            };
            attempt = 0;
            let generation = sub.generation.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
            *sub.channel.lock_ok() = Some((generation, channel.clone()));
            sub.ready.send_replace(Readiness::Ready);
            let mut stopped = false;
            loop {
                tokio::select! {
                    d = consumer.next() => match d {
                        Some(Ok(first)) => {
                            let mut batch = String::with_capacity(256);
                            batch.push('[');
                            push_amqp(&mut batch, &first);
                            let mut n = 1;
                            while n < 256 {
                                match consumer.next().now_or_never() {
                                    Some(Some(Ok(d))) => {
                                        batch.push(',');
                                        push_amqp(&mut batch, &d);
                                        n += 1;
                                    }
                                    _ => break,
                                }
                            }
                            batch.push(']');
                            (sub.deliver)(sub.id, generation, batch);
                        }
                        _ => break,
                    },
                    _ = stop.changed() => { stopped = true; break; }
                }
            }
            if stopped {
                let _ = channel
                    .basic_cancel(
                        ShortString::from(sub.consumer_tag.as_str()),
                        BasicCancelOptions::default(),
                    )
                    .await;
                // The channel stays open so in-flight handlers can still ack; `remove` closes it.
                break;
            }
            {
                let mut slot = sub.channel.lock_ok();
                if matches!(&*slot, Some((g, _)) if *g == generation) {
                    *slot = None;
                }
            }
            if !channel.status().connected() && session.conn.status().connected() {
                // Channel-level close (consumer timeout, queue deleted ...): the connection is fine.
                self.log.info(&format!(
                    "channel for {} closed by the broker; consuming again",
                    sub.spec.queue
                ));
            }
            sub.ready.send_replace(Readiness::Pending(None));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Stops new deliveries to a subscription (its channel stays open for in-flight acks).
    pub fn stop(&self, id: u32) {
        if let Some(sub) = self.sub(id) {
            sub.stop.send_replace(true);
        }
    }

    /// Forgets a subscription and closes its channel (unacked deliveries go back to the queue).
    pub async fn remove(&self, id: u32) {
        let sub = self.subs.lock_ok().remove(&id);
        if let Some(sub) = sub {
            sub.stop.send_replace(true);
            let ch = sub.channel.lock_ok().take();
            if let Some((_, ch)) = ch {
                let _ = tokio::time::timeout(
                    super::client::CLOSE_TIMEOUT,
                    ch.close(200, ShortString::from("unsubscribe")),
                )
                .await;
            }
        }
    }
}

fn push_amqp(out: &mut String, d: &lapin::message::Delivery) {
    let retries = retry_count(d.properties.headers().as_ref());
    push_delivery(out, d.delivery_tag, retries, d.redelivered, &d.data);
}
