//! One idempotent producer and one consumer per subscription (consumer group `${groupId}.${stepName}`).
//!
//! - `publish` creates missing topics once, enqueues in call order and resolves each event on its delivery
//!   report (`acks=all`, idempotence on). A message that is not delivered within `publishTimeout` fails with
//!   `MOTIA_TIMEOUT`.
//! - Consumers never auto-store offsets: an offset is stored only when every earlier message of its
//!   partition was acked or dead-lettered ([`OffsetTracker`]); librdkafka commits stored offsets every second,
//!   on rebalance and on close. So a crash redelivers what was not finished (at-least-once).
//! - A dead-lettered message is produced to `${topic}.${stepName}.dlq` (with `x-retry-count` and its origin
//!   in headers) before its offset may be committed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::config::KafkaConfig;
use super::naming::{dead_letter_topic, fanout_group_id, group_id, subscriber_group_id, RETRY_COUNT_HEADER};
use super::offsets::OffsetTracker;
use crate::core::events::{backoff, push_delivery, wait_readiness, Deliver, Log, Outcome, Readiness, Turnstile};
use crate::core::sync::{LockExt, RwLockExt};
use crate::error::{AdapterError, Result};

/// Maps librdkafka errors to our codes.
pub fn classify(e: &KafkaError) -> AdapterError {
    let text = e.to_string();
    let code = e.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::MessageTimedOut) | Some(RDKafkaErrorCode::OperationTimedOut) => {
            AdapterError::Timeout(format!("Kafka did not answer in time ({text})"))
        }
        Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure) => {
            AdapterError::Connect(format!("cannot reach Kafka ({text})"))
        }
        Some(RDKafkaErrorCode::SaslAuthenticationFailed)
        | Some(RDKafkaErrorCode::Authentication)
        | Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        | Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
            AdapterError::Auth(format!("Kafka refused access ({text})"))
        }
        _ => match e {
            _ if text.contains("TimedOut") || text.contains("Timed out") => {
                AdapterError::Timeout(format!("Kafka did not answer in time ({text})"))
            }
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
                AdapterError::config("rdkafka", format!("librdkafka rejected the configuration ({text})"))
            }
            _ => AdapterError::Backend(format!("Kafka error ({text})")),
        },
    }
}

struct Pending {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    retries: u32,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct SubState {
    tracker: OffsetTracker,
    pending: HashMap<u64, Pending>,
    next_token: u64,
}

struct KafkaSub {
    id: u32,
    topic: String,
    /// `None` for a fan-out subscriber: a failed event is dropped (logged) after its retries.
    dead_letter_topic: Option<String>,
    group: String,
    /// Fan-out (a fresh group): starts at the end of the topic, pinned on the first assignment.
    fanout: bool,
    deliver: Deliver,
    permits: Arc<Semaphore>,
    state: Mutex<SubState>,
    consumer: Mutex<Option<Arc<StreamConsumer<SubContext>>>>,
    stop: watch::Sender<bool>,
    ready: watch::Sender<Readiness>,
}

impl KafkaSub {
    /// The topics it needs: its own and its dead-letter topic.
    fn topics(&self) -> Vec<&str> {
        std::iter::once(self.topic.as_str())
            .chain(self.dead_letter_topic.as_deref())
            .collect()
    }
}

/// Marks the subscription ready on its first assignment and forgets revoked partitions.
struct SubContext {
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

pub struct KafkaClient {
    config: KafkaConfig,
    /// Replaced when librdkafka reports a fatal error (e.g. the idempotent producer's state was lost
    /// with a broker's data): a fatal producer never delivers again.
    producer: std::sync::RwLock<Arc<FutureProducer>>,
    admin: AdminClient<DefaultClientContext>,
    known_topics: Mutex<HashSet<String>>,
    subs: Mutex<HashMap<u32, Arc<KafkaSub>>>,
    next_sub: AtomicU32,
    closed: AtomicBool,
    turn: Turnstile,
    dead_letters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    producer_renewed: Mutex<Option<Instant>>,
    log: Log,
}

/// One event to produce.
pub struct Row<'a> {
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub body: &'a str,
    pub timestamp: i64,
}

impl KafkaClient {
    fn make_producer(config: &KafkaConfig) -> Result<FutureProducer> {
        let mut pc = config.client_config();
        pc.set("enable.idempotence", "true");
        pc.set("acks", "all");
        pc.set("linger.ms", "0");
        pc.set("message.timeout.ms", config.publish_timeout.max(1).to_string());
        for (k, v) in &config.rdkafka {
            pc.set(k, v);
        }
        pc.create().map_err(|e| classify(&e))
    }

    fn producer(&self) -> Arc<FutureProducer> {
        self.producer.read_ok().clone()
    }

    /// After a failed delivery, start a new producer (at most once a second). A fatal producer never delivers
    /// again, and an idempotent producer whose id a restarted broker forgot retries `UnknownProducerId`
    /// until its messages time out; a new producer gets a new id. In-flight sends finish on the old one.
    fn renew_producer(&self) {
        use rdkafka::producer::Producer;
        let current = self.producer();
        let mut last = self.producer_renewed.lock_ok();
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        let why = current
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("fatal error {code}: {reason}"))
            .unwrap_or_else(|| "a delivery failed".into());
        if let Ok(p) = Self::make_producer(&self.config) {
            let mut slot = self.producer.write_ok();
            if Arc::ptr_eq(&slot, &current) {
                *slot = Arc::new(p);
                self.log.info(&format!("started a new producer ({why})"));
            }
        }
    }

    pub fn new(config: KafkaConfig) -> Result<Arc<Self>> {
        let producer = Self::make_producer(&config)?;
        let admin: AdminClient<DefaultClientContext> = config.client_config().create().map_err(|e| classify(&e))?;
        Ok(Arc::new(KafkaClient {
            config,
            producer: std::sync::RwLock::new(Arc::new(producer)),
            admin,
            known_topics: Mutex::new(HashSet::new()),
            subs: Mutex::new(HashMap::new()),
            next_sub: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            turn: Turnstile::default(),
            dead_letters: Mutex::new(Vec::new()),
            producer_renewed: Mutex::new(None),
            log: Log::new("kafka"),
        }))
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Creates the topics that do not exist yet (`numPartitions`, `replicationFactor`).
    pub async fn ensure_topics(&self, names: &[&str]) -> Result<()> {
        let missing: Vec<&str> = {
            let known = self.known_topics.lock_ok();
            names.iter().copied().filter(|n| !known.contains(*n)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.config.num_partitions,
                    TopicReplication::Fixed(self.config.replication_factor),
                )
            })
            .collect();
        let timeout = Duration::from_millis(self.config.connection_timeout.max(1000));
        let opts = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        let results = match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            self.admin.create_topics(&topics, &opts),
        )
        .await
        {
            Err(_) => {
                return Err(AdapterError::Timeout(format!(
                    "creating Kafka topics took longer than connectionTimeout ({} ms)",
                    self.config.connection_timeout
                )))
            }
            Ok(r) => r.map_err(|e| classify(&e))?,
        };
        let mut known = self.known_topics.lock_ok();
        for r in results {
            match r {
                Ok(name) => {
                    known.insert(name);
                }
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    known.insert(name);
                }
                Err((name, code)) => {
                    return Err(AdapterError::Backend(format!(
                        "cannot create Kafka topic '{name}' ({code})"
                    )));
                }
            }
        }
        Ok(())
    }

    fn forget_topics(&self, names: &[&str]) {
        let mut known = self.known_topics.lock_ok();
        for n in names {
            known.remove(*n);
        }
    }

    /// Produces rows in call order (batch `seq`, see [`Turnstile`]); each result is its delivery report.
    pub async fn publish(&self, seq: u64, rows: &[Row<'_>]) -> Vec<Result<()>> {
        if self.closed.load(Ordering::SeqCst) {
            return rows
                .iter()
                .map(|_| Err(AdapterError::Closed("the Kafka adapter was shut down".into())))
                .collect();
        }
        let mut turn = self.turn.wait(seq).await;
        let topics: Vec<&str> = {
            let mut t: Vec<&str> = rows.iter().map(|r| r.topic).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        // bounded so an emit during an outage rejects within ~1.5 × publishTimeout
        let budget = Duration::from_millis((self.config.publish_timeout / 2).max(1));
        match tokio::time::timeout(budget, self.ensure_topics(&topics)).await {
            Ok(Ok(())) => {}
            // producing still works where the broker auto-creates topics; otherwise the delivery report says why
            Ok(Err(e)) => self.log.error("cannot create topics", &e),
            Err(_) => self.log.error(
                "cannot create topics",
                &AdapterError::Timeout("no answer within publishTimeout / 2".into()),
            ),
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.publish_timeout.max(1));
        let producer = self.producer();
        let mut futures = Vec::with_capacity(rows.len());
        for row in rows {
            let mut record = FutureRecord::to(row.topic).payload(row.body).timestamp(row.timestamp);
            if let Some(k) = row.key {
                record = record.key(k);
            }
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        futures.push(Ok(f));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                        if Instant::now() < deadline =>
                    {
                        // backpressure: wait for room instead of failing
                        record = r;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        futures.push(Err(classify(&e)));
                        break;
                    }
                }
            }
        }
        turn.release();
        let mut out = Vec::with_capacity(futures.len());
        let mut failed = false;
        for (i, f) in futures.into_iter().enumerate() {
            out.push(match f {
                Ok(f) => match f.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => {
                        // maybe the topic vanished (a broker that lost its data; the message then times out
                        // waiting for it): make sure it exists again on the next emit
                        self.forget_topics(&[rows[i].topic]);
                        failed = true;
                        Err(classify(&e))
                    }
                    Err(_) => Err(AdapterError::Closed("the Kafka producer was closed".into())),
                },
                Err(e) => Err(e),
            });
        }
        if failed {
            self.renew_producer();
        }
        out
    }

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

    fn sub(&self, id: u32) -> Option<Arc<KafkaSub>> {
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

    fn finish(&self, sub: &KafkaSub, partition: i32, offset: i64) {
        let store = {
            let mut st = sub.state.lock_ok();
            st.tracker.finish(partition, offset)
        };
        if let Some(o) = store {
            let consumer = sub.consumer.lock_ok().clone();
            if let Some(c) = consumer {
                // fails only if the partition was revoked meanwhile: its new owner gets the message again
                let _ = c.store_offset(&sub.topic, partition, o);
            }
        }
    }

    async fn dead_letter(&self, sub: &KafkaSub, p: &Pending) {
        let Some(dead_letter_topic) = &sub.dead_letter_topic else {
            // a fan-out subscriber: nothing would read a dead-letter topic of a random group
            self.log.info(&format!(
                "{}: dropped the event at partition {} offset {} after its retries (a fan-out subscriber has no dead-letter topic)",
                sub.group, p.partition, p.offset
            ));
            return;
        };
        let retries = (p.retries + 1).to_string();
        let partition = p.partition.to_string();
        let offset = p.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: RETRY_COUNT_HEADER,
                value: Some(&retries),
            })
            .insert(Header {
                key: "x-original-topic",
                value: Some(&sub.topic),
            })
            .insert(Header {
                key: "x-original-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "x-original-offset",
                value: Some(&offset),
            });
        let mut attempt = 0;
        loop {
            let mut record = FutureRecord::to(dead_letter_topic)
                .payload(&p.payload)
                .headers(headers.clone());
            if let Some(k) = &p.key {
                record = record.key(k);
            }
            match self.producer().send(record, Timeout::Never).await {
                Ok(_) => return,
                Err((e, _)) => {
                    self.log
                        .error(&format!("cannot dead-letter to {dead_letter_topic}"), &classify(&e));
                    if *sub.stop.borrow() && self.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::time::sleep(backoff(attempt, 5000)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Rows `(subscription, token, outcome)`. Acks are applied at once (the offset is stored before this
    /// returns); dead-letters are produced in the background and finished when delivered.
    pub fn settle(self: &Arc<Self>, rows: &[(u32, u64, Outcome)]) {
        let mut dead = Vec::new();
        for &(sub_id, token, outcome) in rows {
            let Some(sub) = self.sub(sub_id) else { continue };
            let pending = sub.state.lock_ok().pending.remove(&token);
            let Some(p) = pending else { continue };
            match outcome {
                Outcome::Ack => self.finish(&sub, p.partition, p.offset),
                // not finished: its offset is never committed, so it is consumed again after a restart
                Outcome::Requeue => {}
                Outcome::DeadLetter => dead.push((sub, p)),
            }
        }
        if !dead.is_empty() {
            let me = self.clone();
            let task = tokio::spawn(async move {
                for (sub, p) in dead {
                    me.dead_letter(&sub, &p).await;
                    me.finish(&sub, p.partition, p.offset);
                }
            });
            let mut tasks = self.dead_letters.lock_ok();
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Waits (up to `publishTimeout`) for dead-letters still being produced.
    async fn dead_letters_done(&self) {
        let tasks: Vec<_> = self.dead_letters.lock_ok().drain(..).collect();
        let all = futures::future::join_all(tasks);
        let _ = tokio::time::timeout(Duration::from_millis(self.config.publish_timeout.max(1)), all).await;
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

    /// Removes every subscription and flushes the producer (bounded by `publishTimeout`).
    pub async fn shutdown(self: &Arc<Self>) {
        self.closed.store(true, Ordering::SeqCst);
        let ids: Vec<u32> = self.subs.lock_ok().keys().copied().collect();
        for id in ids {
            self.remove(id).await;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            let _ = me.producer().flush(Timeout::After(Duration::from_millis(
                me.config.publish_timeout.min(10_000),
            )));
        })
        .await;
    }
}
