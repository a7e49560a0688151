//! Consumers: one consumer group per subscription, offsets stored only once settled, at most `limit` unsettled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::FutureExt;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Headers, Message};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::client::KafkaClient;
use super::error::classify;
use super::naming::{dead_letter_topic, fanout_group_id, group_id, subscriber_group_id, RETRY_COUNT_HEADER};
use super::offsets::OffsetTracker;
use crate::core::events::{backoff, push_delivery, wait_readiness, Deliver, Lag, Readiness};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// A delivered message not settled yet (what a dead letter needs), holding one of the subscription's permits.
pub(super) struct Pending {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<Vec<u8>>,
    pub(super) payload: Vec<u8>,
    pub(super) retries: u32,
    pub(super) _permit: OwnedSemaphorePermit,
}

/// A subscription's offsets and unsettled deliveries, by token.
#[derive(Default)]
pub(super) struct SubState {
    pub(super) tracker: OffsetTracker,
    pub(super) pending: HashMap<u64, Pending>,
    pub(super) next_token: u64,
}

/// One subscription: its topic and group, its consumer and its stop signal and readiness.
pub(super) struct KafkaSub {
    pub(super) id: u32,
    pub(super) topic: String,
    /// `None` for a fan-out subscriber: a failed event is dropped (logged) after its retries.
    pub(super) dead_letter_topic: Option<String>,
    pub(super) group: String,
    /// Fan-out (a fresh group): starts at the end of the topic, pinned on the first assignment.
    pub(super) fanout: bool,
    pub(super) deliver: Deliver,
    pub(super) permits: Arc<Semaphore>,
    pub(super) state: Mutex<SubState>,
    pub(super) consumer: Mutex<Option<Arc<StreamConsumer<SubContext>>>>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) ready: watch::Sender<Readiness>,
}

impl KafkaSub {
    /// The topics it needs: its own and its dead-letter topic.
    pub(super) fn topics(&self) -> Vec<&str> {
        std::iter::once(self.topic.as_str())
            .chain(self.dead_letter_topic.as_deref())
            .collect()
    }
}

/// Marks the subscription ready on its first assignment and forgets revoked partitions.
pub(super) struct SubContext {
    sub: Weak<KafkaSub>,
    /// A fan-out consumer's first assignment was pinned to the end of its partitions.
    pinned: AtomicBool,
}

impl ClientContext for SubContext {}

impl SubContext {
    /// A fan-out subscriber gets every event produced after `subscribe()` resolved, and none before: its
    /// first assignment starts at each partition's high watermark, read before it is reported ready
    /// (`auto.offset.reset=latest` alone resolves "latest" a little after the assignment, which would lose
    /// what is produced in between). Later rebalances resume from the committed offsets.
    fn pin_to_end(&self, c: &rdkafka::consumer::BaseConsumer<Self>, tpl: &rdkafka::TopicPartitionList) {
        use rdkafka::consumer::RebalanceProtocol;
        use rdkafka::{Offset, TopicPartitionList};
        if self.pinned.swap(true, Ordering::SeqCst) || matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative)
        {
            return;
        }
        let mut pinned = TopicPartitionList::new();
        for el in tpl.elements() {
            let offset = match c.fetch_watermarks(el.topic(), el.partition(), Duration::from_secs(5)) {
                Ok((_, high)) => Offset::Offset(high),
                Err(_) => Offset::End,
            };
            let _ = pinned.add_partition_offset(el.topic(), el.partition(), offset);
        }
        let _ = c.assign(&pinned);
    }
}

impl ConsumerContext for SubContext {
    fn post_rebalance(&self, c: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(sub) = self.sub.upgrade() else { return };
        match rebalance {
            Rebalance::Assign(tpl) => {
                if sub.fanout {
                    self.pin_to_end(c, tpl);
                }
                sub.ready.send_replace(Readiness::Ready);
            }
            Rebalance::Revoke(list) => {
                let mut st = sub.state.lock_ok();
                for el in list.elements() {
                    st.tracker.revoke(el.partition());
                }
            }
            Rebalance::Error(_) => {}
        }
    }
}

impl KafkaClient {
    /// Registers a step's subscription (group `${groupId}.${stepName}`) and starts its consumer task; returns its
    /// id at once.
    pub fn subscribe(self: &Arc<Self>, topic: &str, step: &str, limit: u32, deliver: Deliver) -> Result<u32> {
        super::naming::validate_topic("topic", topic)?;
        let dlq = dead_letter_topic(topic, step);
        super::naming::validate_topic("stepName", &dlq)?;
        self.start(
            topic,
            group_id(&self.config.group_id, step),
            Some(dlq),
            false,
            limit,
            deliver,
        )
    }

    /// RFC form: with `queue`, group `${groupId}.${queue}` (as a step of that name: shared by every subscriber
    /// with that `queue`, from the earliest uncommitted offset, dead letters in `${topic}.${queue}.dlq`); without,
    /// a fresh group `${groupId}.fanout.${uuid}` that starts at the end of the topic (fan-out). Returns the id and
    /// the group.
    pub fn subscribe_group(
        self: &Arc<Self>,
        topic: &str,
        queue: Option<&str>,
        limit: u32,
        deliver: Deliver,
    ) -> Result<(u32, String)> {
        super::naming::validate_topic("topic", topic)?;
        let (group, dlq) = match queue {
            Some(q) => {
                let dlq = dead_letter_topic(topic, q);
                super::naming::validate_topic("queue", &dlq)?;
                (subscriber_group_id(&self.config.group_id, q), Some(dlq))
            }
            None => (
                fanout_group_id(&self.config.group_id, &uuid::Uuid::new_v4().to_string()),
                None,
            ),
        };
        let id = self.start(topic, group.clone(), dlq, queue.is_none(), limit, deliver)?;
        Ok((id, group))
    }

    fn start(
        self: &Arc<Self>,
        topic: &str,
        group: String,
        dead_letter_topic: Option<String>,
        fanout: bool,
        limit: u32,
        deliver: Deliver,
    ) -> Result<u32> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AdapterError::Closed("the Kafka adapter was shut down".into()));
        }
        let id = self.next_sub.fetch_add(1, Ordering::SeqCst);
        let sub = Arc::new(KafkaSub {
            id,
            topic: topic.to_string(),
            dead_letter_topic,
            group,
            fanout,
            deliver,
            permits: Arc::new(Semaphore::new(limit.max(1) as usize)),
            state: Mutex::new(SubState::default()),
            consumer: Mutex::new(None),
            stop: watch::channel(false).0,
            ready: watch::channel(Readiness::Pending(None)).0,
        });
        self.subs.lock_ok().insert(id, sub.clone());
        tokio::spawn(Self::consume(self.clone(), sub));
        Ok(id)
    }

    /// The group's lag on the topic: Σ over partitions of high watermark − committed offset (a partition without
    /// a commit counts from its low watermark, a fan-out group's from its end). Events delivered and not yet
    /// committed are part of it; Kafka does not tell them apart.
    pub async fn lag(&self, id: u32) -> Result<Lag> {
        use rdkafka::{Offset, TopicPartitionList};
        let sub = self
            .sub(id)
            .ok_or_else(|| AdapterError::Closed("subscription was removed".into()))?;
        let consumer = sub
            .consumer
            .lock_ok()
            .clone()
            .ok_or_else(|| AdapterError::Connect("the Kafka consumer has not started yet".into()))?;
        let topic = sub.topic.clone();
        let fanout = sub.fanout;
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let md = consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| classify(&e))?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut tpl = TopicPartitionList::new();
            for p in &parts {
                tpl.add_partition(&topic, *p);
            }
            let committed = consumer.committed_offsets(tpl, timeout).map_err(|e| classify(&e))?;
            let mut waiting = 0u64;
            for p in parts {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map_err(|e| classify(&e))?;
                let from = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o.max(low),
                    _ if fanout => high,
                    _ => low,
                };
                waiting += (high - from).max(0) as u64;
            }
            Ok(Lag {
                waiting,
                unsettled: None,
            })
        })
        .await
        .map_err(|e| AdapterError::Internal(format!("lag task: {e}")))?
    }

    pub(super) fn sub(&self, id: u32) -> Option<Arc<KafkaSub>> {
        self.subs.lock_ok().get(&id).cloned()
    }

    /// As in the RabbitMQ client: `Ok(None)` consuming (partitions assigned), `Ok(Some(e))` still trying,
    /// `Err(e)` permanent.
    pub async fn wait_ready(&self, id: u32, timeout: Duration) -> Result<Option<AdapterError>> {
        let sub = self
            .sub(id)
            .ok_or_else(|| AdapterError::Closed("subscription was removed".into()))?;
        wait_readiness(
            &sub.ready,
            timeout,
            || None,
            "the consumer group has not assigned partitions yet",
        )
        .await
    }

    fn consumer_config(&self, group: &str, fanout: bool) -> rdkafka::ClientConfig {
        let mut c = self.config.client_config();
        c.set("group.id", group);
        c.set("enable.auto.commit", "true");
        c.set("enable.auto.offset.store", "false");
        c.set("auto.commit.interval.ms", "1000");
        c.set("auto.offset.reset", if fanout { "latest" } else { "earliest" });
        c.set("fetch.wait.max.ms", "10");
        c.set("session.timeout.ms", "10000");
        c.set("heartbeat.interval.ms", "1000");
        // notice re-created topics (and new partitions) within seconds, not librdkafka's default 5 minutes
        c.set("topic.metadata.refresh.interval.ms", "5000");
        for (k, v) in &self.config.rdkafka {
            c.set(k, v);
        }
        c
    }

    async fn consume(self: Arc<Self>, sub: Arc<KafkaSub>) {
        let mut stop = sub.stop.subscribe();
        let mut attempt = 0u32;
        // 1. topics
        loop {
            if *stop.borrow() {
                return;
            }
            match self.ensure_topics(&sub.topics()).await {
                Ok(()) => break,
                Err(e) => {
                    self.log.error(&format!("cannot create topics for {}", sub.group), &e);
                    sub.ready.send_replace(Readiness::Pending(Some(e)));
                    let wait = backoff(attempt, 5000);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        // 2. consumer
        let ctx = SubContext {
            sub: Arc::downgrade(&sub),
            pinned: AtomicBool::new(false),
        };
        let consumer: StreamConsumer<SubContext> =
            match self.consumer_config(&sub.group, sub.fanout).create_with_context(ctx) {
                Ok(c) => c,
                Err(e) => {
                    sub.ready.send_replace(Readiness::Pending(Some(classify(&e))));
                    return;
                }
            };
        if let Err(e) = consumer.subscribe(&[&sub.topic]) {
            sub.ready.send_replace(Readiness::Pending(Some(classify(&e))));
            return;
        }
        let consumer = Arc::new(consumer);
        *sub.consumer.lock_ok() = Some(consumer.clone());
        // 3. deliveries, at most `limit` unsettled
        loop {
            let permit = tokio::select! {
                p = sub.permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => break,
            };
            let first = tokio::select! {
                m = consumer.recv() => m,
                _ = stop.changed() => break,
            };
            match first {
                Ok(m) => {
                    let mut batch = String::with_capacity(256);
                    batch.push('[');
                    self.register(&sub, &m, permit, &mut batch);
                    while let Ok(p) = sub.permits.clone().try_acquire_owned() {
                        match consumer.recv().now_or_never() {
                            Some(Ok(m)) => {
                                batch.push(',');
                                self.register(&sub, &m, p, &mut batch);
                            }
                            _ => break,
                        }
                    }
                    batch.push(']');
                    (sub.deliver)(sub.id, 0, batch);
                }
                Err(e) => {
                    drop(permit);
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
                        // e.g. a broker that lost its data in a restart: create the topics again
                        self.forget_topics(&sub.topics());
                        let _ = self.ensure_topics(&sub.topics()).await;
                    }
                    self.log.error(&format!("consumer {}", sub.group), &classify(&e));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
    }

    fn register(
        &self,
        sub: &KafkaSub,
        m: &rdkafka::message::BorrowedMessage<'_>,
        permit: OwnedSemaphorePermit,
        out: &mut String,
    ) {
        let payload = m.payload().unwrap_or_default().to_vec();
        let retries = m
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|x| x.key == RETRY_COUNT_HEADER)
                    .and_then(|x| x.value)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.trim().parse::<u32>().ok())
            })
            .unwrap_or(0);
        let mut st = sub.state.lock_ok();
        let token = st.next_token;
        st.next_token += 1;
        st.tracker.start(m.partition(), m.offset());
        push_delivery(out, token, retries, false, &payload);
        st.pending.insert(
            token,
            Pending {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| k.to_vec()),
                payload,
                retries,
                _permit: permit,
            },
        );
    }

    /// Stops deliveries (in-flight ones can still be settled).
    pub fn stop(&self, id: u32) {
        if let Some(sub) = self.sub(id) {
            sub.stop.send_replace(true);
        }
    }

    /// Commits what was handled, leaves the group and forgets the subscription.
    pub async fn remove(&self, id: u32) {
        let sub = self.subs.lock_ok().remove(&id);
        let Some(sub) = sub else { return };
        sub.stop.send_replace(true);
        self.dead_letters_done().await;
        let consumer = sub.consumer.lock_ok().take();
        if let Some(c) = consumer {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = c.commit_consumer_state(CommitMode::Sync);
                c.unsubscribe();
                drop(c);
            })
            .await;
        }
    }
}
