//! One supervised RabbitMQ connection shared by publishing and every consumer of an adapter.
//!
//! - A supervisor task connects, declares the exchange and opens a confirm-mode publish channel. When the
//!   connection dies (broker restart, `rabbitmqctl close_connection`, network) it reconnects with backoff
//!   (200 ms doubling up to `reconnectDelay`) until `shutdown`.
//! - Each subscription runs its own task with its own channel: it waits for a connection, declares the
//!   step's topology exactly like the 0.17 adapter, and consumes. When its channel or the connection closes
//!   it starts over, so **every** consumer comes back after a reconnect (upstream restores none).
//! - `publish` waits (up to `publishTimeout`) for a connection, publishes in call order, and resolves each
//!   message only on the broker's publisher confirm. A message whose confirm was lost with the connection is
//!   published again on the next one (at-least-once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::time::Instant;

use super::config::AmqpConfig;
use super::topology::{retry_count, QueueSpec};
use crate::core::events::{
    backoff, is_permanent, push_delivery, wait_readiness, Deliver, Log, Outcome, Readiness, Turnstile,
};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

struct Session {
    conn: Connection,
    publisher: Channel,
}

struct Subscription {
    id: u32,
    spec: QueueSpec,
    prefetch: u16,
    deliver: Deliver,
    generation: AtomicU32,
    channel: Mutex<Option<(u32, Channel)>>,
    consumer_tag: String,
    stop: watch::Sender<bool>,
    ready: watch::Sender<Readiness>,
}

pub struct AmqpClient {
    config: AmqpConfig,
    session: watch::Sender<Option<Arc<Session>>>,
    last_error: Mutex<Option<AdapterError>>,
    subs: Mutex<HashMap<u32, Arc<Subscription>>>,
    next_sub: AtomicU32,
    closed: watch::Sender<bool>,
    is_closed: AtomicBool,
    publish_turn: Turnstile,
    /// Settles queued by `settle_later`, acked in order by one task.
    settle_tx: tokio::sync::mpsc::UnboundedSender<SettleMsg>,
    log: Log,
}

enum SettleMsg {
    Rows(Vec<(u32, u32, u64, Outcome)>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Maps a lapin error to our codes by its kind and AMQP reply code (never by message text); never
/// includes the URL. 403 ACCESS_REFUSED is `MOTIA_AUTH`; 406 PRECONDITION_FAILED (a declare that
/// disagrees with the broker's queue) is named in the message, which `events::is_permanent` reads.
fn classify(e: &lapin::Error) -> AdapterError {
    use lapin::ErrorKind as K;
    let text = e.to_string();
    match e.kind() {
        K::ProtocolError(p) => match p.get_id() {
            403 => AdapterError::Auth(format!("RabbitMQ refused access (403 ACCESS_REFUSED: {text})")),
            406 => AdapterError::Backend(format!(
                "RabbitMQ rejected the topology (406 PRECONDITION_FAILED: {text})"
            )),
            320 | 501..=506 | 541 => AdapterError::Connect(format!("RabbitMQ closed the connection ({text})")),
            code => AdapterError::Backend(format!("RabbitMQ error ({code}: {text})")),
        },
        K::AuthProviderError(_) => AdapterError::Auth(format!("RabbitMQ authentication failed ({text})")),
        K::IOError(_) | K::MissingHeartbeatError | K::InvalidConnectionState(_) | K::RuntimeShutdownError(_) => {
            AdapterError::Connect(format!("cannot reach RabbitMQ ({text})"))
        }
        _ => AdapterError::Backend(format!("RabbitMQ error ({text})")),
    }
}

impl AmqpClient {
    /// Starts the supervisor; the first connection attempt begins at once.
    pub fn start(config: AmqpConfig) -> Arc<Self> {
        let (session, _) = watch::channel(None);
        let (closed, _) = watch::channel(false);
        let (settle_tx, mut settle_rx) = tokio::sync::mpsc::unbounded_channel::<SettleMsg>();
        let client = Arc::new(AmqpClient {
            config,
            session,
            last_error: Mutex::new(None),
            subs: Mutex::new(HashMap::new()),
            next_sub: AtomicU32::new(1),
            closed,
            is_closed: AtomicBool::new(false),
            publish_turn: Turnstile::default(),
            settle_tx,
            log: Log::new("rabbitmq"),
        });
        tokio::spawn(Self::supervise(client.clone()));
        let weak = Arc::downgrade(&client);
        tokio::spawn(async move {
            while let Some(msg) = settle_rx.recv().await {
                match msg {
                    SettleMsg::Rows(mut rows) => {
                        // take whatever else is already queued: one pass over the channels
                        let mut flushes = Vec::new();
                        while let Ok(more) = settle_rx.try_recv() {
                            match more {
                                SettleMsg::Rows(r) => rows.extend(r),
                                SettleMsg::Flush(f) => flushes.push(f),
                            }
                        }
                        let Some(client) = weak.upgrade() else { break };
                        client.settle(&rows).await;
                        for f in flushes {
                            let _ = f.send(());
                        }
                    }
                    SettleMsg::Flush(f) => {
                        let _ = f.send(());
                    }
                }
            }
        });
        client
    }

    fn set_last_error(&self, e: Option<AdapterError>) {
        *self.last_error.lock_ok() = e;
    }

    fn last_error(&self) -> Option<AdapterError> {
        self.last_error.lock_ok().clone()
    }

    async fn connect_once(&self) -> Result<Session> {
        let props = ConnectionProperties::default()
            .with_connection_name(lapin::types::LongString::from("motia-native-adapters"));
        let tls = lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: self.config.ca.clone(),
        };
        let connect = Connection::connect_with_config(
            &self.config.url,
            props,
            tls,
            lapin::runtime::default_runtime().map_err(|e| classify(&e))?,
        );
        let timeout = Duration::from_millis(self.config.connection_timeout.max(1));
        let conn = match tokio::time::timeout(timeout, connect).await {
            Err(_) => {
                return Err(AdapterError::Timeout(format!(
                    "connecting to RabbitMQ took longer than connectionTimeout ({} ms)",
                    self.config.connection_timeout
                )))
            }
            Ok(r) => r.map_err(|e| classify(&e))?,
        };
        let setup = async {
            let publisher = conn.create_channel().await?;
            publisher.confirm_select(ConfirmSelectOptions::default()).await?;
            publisher
                .exchange_declare(
                    ShortString::from(self.config.exchange_name.as_str()),
                    self.config.exchange_kind(),
                    ExchangeDeclareOptions {
                        durable: self.config.durable,
                        auto_delete: self.config.auto_delete,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(publisher)
        };
        match setup.await {
            Ok(publisher) => Ok(Session { conn, publisher }),
            Err(e) => {
                let _ = conn.close(200, ShortString::from("setup failed")).await;
                Err(classify(&e))
            }
        }
    }

    async fn supervise(self: Arc<Self>) {
        let mut closed = self.closed.subscribe();
        let mut attempt = 0u32;
        let mut was_connected = false;
        loop {
            if *closed.borrow() {
                break;
            }
            match self.connect_once().await {
                Ok(session) => {
                    if was_connected || attempt > 0 {
                        self.log.info("connected to RabbitMQ again");
                    }
                    was_connected = true;
                    attempt = 0;
                    self.set_last_error(None);
                    self.declare_all(&session.conn).await;
                    let session = Arc::new(session);
                    let mut events = session.conn.events_listener();
                    self.session.send_replace(Some(session.clone()));
                    // Wait until the connection dies or we shut down.
                    loop {
                        tokio::select! {
                            ev = events.next() => match ev {
                                Some(lapin::Event::Error(e)) => {
                                    // A channel-level (soft) error, e.g. a 406 on one subscription's declare, only
                                    // closes that channel: its consumer task handles it.
                                    if e.is_amqp_soft_error() && session.conn.status().connected() {
                                        continue;
                                    }
                                    let err = classify(&e);
                                    self.log.error("connection lost, reconnecting", &err);
                                    self.set_last_error(Some(err));
                                    break;
                                }
                                Some(_) => {}
                                None => break,
                            },
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                                if !session.conn.status().connected() || !session.publisher.status().connected() {
                                    self.set_last_error(Some(AdapterError::Connect("the RabbitMQ connection closed".into())));
                                    self.log.info("connection lost, reconnecting");
                                    break;
                                }
                            }
                            _ = closed.changed() => break,
                        }
                    }
                    self.session.send_replace(None);
                    if *closed.borrow() {
                        let _ = session.publisher.close(200, ShortString::from("shutdown")).await;
                        let _ = session.conn.close(200, ShortString::from("shutdown")).await;
                        break;
                    }
                    let _ = session.conn.close(200, ShortString::from("reconnecting")).await;
                }
                Err(e) => {
                    self.log.error("cannot connect", &e);
                    self.set_last_error(Some(e));
                }
            }
            let wait = backoff(attempt, self.config.reconnect_delay);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = closed.changed() => {}
            }
        }
    }

    /// The current session, waiting until `deadline` for one. Fails fast on credentials errors.
    async fn wait_session(&self, deadline: Instant) -> Result<Arc<Session>> {
        let mut rx = self.session.subscribe();
        let mut closed = self.closed.subscribe();
        loop {
            if *closed.borrow() {
                return Err(AdapterError::Closed("the RabbitMQ adapter was shut down".into()));
            }
            if let Some(s) = rx.borrow_and_update().clone() {
                if s.conn.status().connected() {
                    return Ok(s);
                }
            }
            if let Some(e) = self.last_error() {
                if is_permanent(&e) {
                    return Err(e);
                }
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = closed.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let why = self.last_error().map(|e| format!(": {}", e.js_message())).unwrap_or_default();
                    return Err(AdapterError::Timeout(format!(
                        "no RabbitMQ connection within publishTimeout ({} ms){why}",
                        self.config.publish_timeout
                    )));
                }
            }
        }
    }

    /// Publishes `(routing key, body, timestamp ms)` rows in order; each result is the broker's confirm.
    /// `seq` numbers batches from 0 in call order; batch `seq` publishes after batch `seq - 1` has
    /// (confirms are awaited concurrently). A missing number is skipped after one second.
    pub async fn publish(&self, seq: u64, rows: &[(&str, &str, u64)]) -> Vec<Result<()>> {
        let mut my_turn = self.publish_turn.wait(seq).await;
        let deadline = Instant::now() + Duration::from_millis(self.config.publish_timeout.max(1));
        let mut results: Vec<Option<Result<()>>> = vec![None; rows.len()];
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        let exchange = ShortString::from(self.config.exchange_name.as_str());
        while !pending.is_empty() {
            let session = match self.wait_session(deadline).await {
                Ok(s) => s,
                Err(e) => {
                    for i in pending {
                        results[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            let mut confirms = Vec::with_capacity(pending.len());
            for &i in &pending {
                let (topic, body, ts) = rows[i];
                let mut props = BasicProperties::default()
                    .with_content_type(ShortString::from("application/json"))
                    .with_timestamp(ts);
                if self.config.durable {
                    props = props.with_delivery_mode(2);
                }
                let sent = session
                    .publisher
                    .basic_publish(
                        exchange.clone(),
                        ShortString::from(topic),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        props,
                    )
                    .await;
                confirms.push((i, sent));
            }
            my_turn.release();
            let mut again = Vec::new();
            for (i, sent) in confirms {
                match sent {
                    Ok(confirm) => match confirm.await {
                        Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) => results[i] = Some(Ok(())),
                        Ok(Confirmation::Nack(_)) => {
                            results[i] = Some(Err(AdapterError::Backend(
                                "RabbitMQ refused the message (publisher confirm nack)".into(),
                            )))
                        }
                        Err(_) => again.push(i),
                    },
                    Err(_) => again.push(i),
                }
            }
            if !again.is_empty() {
                // The connection broke before the broker confirmed: wait for the supervisor to notice.
                let mut rx = self.session.subscribe();
                tokio::select! {
                    _ = rx.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            pending = again;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(AdapterError::Internal("publish result missing".into()))))
            .collect()
    }

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

    fn sub(&self, id: u32) -> Option<Arc<Subscription>> {
        self.subs.lock_ok().get(&id).cloned()
    }

    /// Declares a step's dead-letter exchange and queue and its queue with their bindings, as upstream does.
    async fn declare(&self, ch: &Channel, spec: &QueueSpec) -> std::result::Result<(), lapin::Error> {
        let cfg = &self.config;
        if spec.dead_letter {
            ch.exchange_declare(
                ShortString::from(cfg.dead_letter_exchange.as_str()),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: cfg.durable,
                    auto_delete: cfg.auto_delete,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            let dlq = spec.dead_letter_queue();
            // the dead-letter queue keeps the adapter's durability (as upstream), whatever the queue's
            let dlq_opts = QueueDeclareOptions {
                durable: cfg.durable,
                exclusive: false,
                auto_delete: !cfg.durable,
                ..Default::default()
            };
            ch.queue_declare(ShortString::from(dlq.as_str()), dlq_opts, FieldTable::default())
                .await?;
            ch.queue_bind(
                ShortString::from(dlq.as_str()),
                ShortString::from(cfg.dead_letter_exchange.as_str()),
                ShortString::from(spec.dead_letter_routing_key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        let queue_opts = QueueDeclareOptions {
            durable: spec.is_durable(cfg.durable),
            exclusive: spec.exclusive,
            auto_delete: spec.is_auto_delete(cfg.durable),
            ..Default::default()
        };
        ch.queue_declare(ShortString::from(spec.queue.as_str()), queue_opts, spec.arguments())
            .await?;
        ch.queue_bind(
            ShortString::from(spec.queue.as_str()),
            ShortString::from(cfg.exchange_name.as_str()),
            ShortString::from(spec.topic.as_str()),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    }

    /// After (re)connecting and before publishing anything: the queues of every local subscription exist, so
    /// an event emitted during an outage is routed even if its consumer's channel is not open yet.
    async fn declare_all(&self, conn: &Connection) {
        let specs: Vec<QueueSpec> = self.subs.lock_ok().values().map(|s| s.spec.clone()).collect();
        let mut ch: Option<Channel> = None;
        for spec in specs {
            if ch.as_ref().map(|c| !c.status().connected()).unwrap_or(true) {
                ch = conn.create_channel().await.ok();
            }
            let Some(c) = ch.as_ref() else { return };
            // a conflict (406) closes this channel; the subscription's own task reports it
            let _ = self.declare(c, &spec).await;
        }
        if let Some(c) = ch {
            let _ = c.close(200, ShortString::from("declared")).await;
        }
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

    /// Acks / dead-letters / requeues deliveries. Deliveries from an older channel are skipped: that channel
    /// is gone and the broker redelivers them.
    pub async fn settle(&self, rows: &[(u32, u32, u64, Outcome)]) {
        let mut sends = Vec::with_capacity(rows.len());
        let mut cache: Option<(u32, u32, Option<Channel>)> = None;
        for &(sub_id, generation, tag, outcome) in rows {
            let channel = match &cache {
                Some((s, g, ch)) if *s == sub_id && *g == generation => ch.clone(),
                _ => {
                    let ch = self.sub(sub_id).and_then(|sub| {
                        let slot = sub.channel.lock_ok();
                        slot.as_ref().filter(|(g, _)| *g == generation).map(|(_, c)| c.clone())
                    });
                    cache = Some((sub_id, generation, ch.clone()));
                    ch
                }
            };
            let Some(ch) = channel else { continue };
            sends.push(async move {
                let _ = match outcome {
                    Outcome::Ack => ch.basic_ack(tag, BasicAckOptions::default()).await,
                    Outcome::DeadLetter => {
                        ch.basic_nack(
                            tag,
                            BasicNackOptions {
                                requeue: false,
                                ..Default::default()
                            },
                        )
                        .await
                    }
                    Outcome::Requeue => {
                        ch.basic_nack(
                            tag,
                            BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            },
                        )
                        .await
                    }
                };
            });
        }
        futures::future::join_all(sends).await;
    }

    /// Queues settles; they are sent in order by the settle task.
    pub fn settle_later(&self, rows: Vec<(u32, u32, u64, Outcome)>) {
        let _ = self.settle_tx.send(SettleMsg::Rows(rows));
    }

    /// Resolves when every settle queued before this call was sent.
    pub async fn settled(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.settle_tx.send(SettleMsg::Flush(tx)).is_ok() {
            let _ = rx.await;
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
                let _ = ch.close(200, ShortString::from("unsubscribe")).await;
            }
        }
    }

    /// Closes everything. Subscriptions should have been stopped and drained by the caller first.
    pub async fn shutdown(&self) {
        self.is_closed.store(true, Ordering::SeqCst);
        let ids: Vec<u32> = self.subs.lock_ok().keys().copied().collect();
        for id in ids {
            self.remove(id).await;
        }
        let session = self.session.borrow().clone();
        self.closed.send_replace(true);
        if let Some(s) = session {
            let _ = s.publisher.close(200, ShortString::from("shutdown")).await;
            let _ = s.conn.close(200, ShortString::from("shutdown")).await;
        }
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    pub fn is_connected(&self) -> bool {
        self.session
            .borrow()
            .as_ref()
            .map(|s| s.conn.status().connected())
            .unwrap_or(false)
    }
}

fn push_amqp(out: &mut String, d: &lapin::message::Delivery) {
    let retries = retry_count(d.properties.headers().as_ref());
    push_delivery(out, d.delivery_tag, retries, d.redelivered, &d.data);
}

#[cfg(test)]
mod classify_tests {
    use super::*;
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};

    fn amqp(kind: AMQPErrorKind) -> lapin::Error {
        lapin::ErrorKind::ProtocolError(AMQPError::new(kind, "reply text".into())).into()
    }

    #[test]
    fn each_reply_code_maps_to_its_error_code() {
        let auth = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)));
        assert!(matches!(auth, AdapterError::Auth(_)));
        assert!(crate::core::events::is_permanent(&auth));
        let topo = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)));
        assert!(matches!(topo, AdapterError::Backend(ref m) if m.contains("406 PRECONDITION_FAILED")));
        assert!(crate::core::events::is_permanent(&topo));
        let not_found = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)));
        assert!(matches!(not_found, AdapterError::Backend(_)));
        assert!(!crate::core::events::is_permanent(&not_found));
        let forced = classify(&amqp(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)));
        assert!(matches!(forced, AdapterError::Connect(_)));
        let io = classify(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(matches!(io, AdapterError::Connect(_)));
        assert!(!crate::core::events::is_permanent(&io));
        let hb = classify(&lapin::ErrorKind::MissingHeartbeatError.into());
        assert!(matches!(hb, AdapterError::Connect(_)));
    }
}
