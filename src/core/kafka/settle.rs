//! Settling deliveries: an ack stores the offset (once every earlier message of its partition is settled), a
//! dead letter is produced to the subscription's `.dlq` topic first.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use super::client::KafkaClient;
use super::consumer::{KafkaSub, Pending};
use super::error::classify;
use super::naming::RETRY_COUNT_HEADER;
use crate::core::events::{backoff, Outcome};
use crate::core::sync::LockExt;

impl KafkaClient {
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
    pub(super) async fn dead_letters_done(&self) {
        let tasks: Vec<_> = self.dead_letters.lock_ok().drain(..).collect();
        let all = futures::future::join_all(tasks);
        let _ = tokio::time::timeout(Duration::from_millis(self.config.publish_timeout.max(1)), all).await;
    }
}
