//! Settling deliveries: acks, dead-letters (nack without requeue) and requeues, sent in order by one task.

use std::sync::Weak;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Channel;

use super::client::AmqpClient;
use crate::core::events::Outcome;
use crate::core::sync::LockExt;

/// What the settle task receives.
pub(super) enum SettleMsg {
    Rows(Vec<(u32, u32, u64, Outcome)>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl AmqpClient {
    /// The settle task: sends queued settles in order, merging what is already queued into one pass.
    pub(super) fn spawn_settler(weak: Weak<Self>, mut settle_rx: tokio::sync::mpsc::UnboundedReceiver<SettleMsg>) {
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
}
