//! Confirmed publishing: rows go out in call order on the publish channel and each resolves on the broker's
//! publisher confirm; a message whose confirm was lost with the connection is published again on the next one.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Confirmation};
use tokio::time::Instant;

use super::client::AmqpClient;
use crate::error::{AdapterError, Result};

impl AmqpClient {
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
}
