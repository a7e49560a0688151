//! Producing: one idempotent producer (`acks=all`), rows enqueued in call order and resolved on their delivery
//! reports, and a new producer after a failed delivery.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use super::client::KafkaClient;
use super::config::KafkaConfig;
use super::error::classify;
use crate::core::sync::{LockExt, RwLockExt};
use crate::error::{AdapterError, Result};

/// One event to produce.
pub struct Row<'a> {
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub body: &'a str,
    pub timestamp: i64,
}

impl KafkaClient {
    pub(super) fn make_producer(config: &KafkaConfig) -> Result<FutureProducer> {
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

    pub(super) fn producer(&self) -> Arc<FutureProducer> {
        self.producer.read_ok().clone()
    }

    /// A health check's round trip: whether the brokers answer a metadata request within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        use rdkafka::producer::Producer;
        let producer = self.producer();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
            .await
            .unwrap_or(false)
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
                self.log.recovered(&format!("started a new producer ({why})"));
            }
        }
    }

    /// Produces rows in call order (batch `seq`, see [`crate::core::events::Turnstile`]); each result is its delivery report.
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
}
