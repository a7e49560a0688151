//! The connection supervisor: connects, declares the exchange, opens the confirm-mode publish channel,
//! and reconnects with backoff when the connection dies, until `shutdown`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::time::Instant;

use super::client::AmqpClient;
use super::error::classify;
use crate::core::events::{backoff, is_permanent};
use crate::core::sync::LockExt;
use crate::error::{AdapterError, Result};

/// One live connection and its publish channel (confirm mode).
pub(super) struct Session {
    pub(super) conn: Connection,
    pub(super) publisher: Channel,
}

impl AmqpClient {
    pub(super) fn set_last_error(&self, e: Option<AdapterError>) {
        *self.last_error.lock_ok() = e;
    }

    pub(super) fn last_error(&self) -> Option<AdapterError> {
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

    pub(super) async fn supervise(self: Arc<Self>) {
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
                        self.log.recovered("connected to RabbitMQ again");
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
    pub(super) async fn wait_session(&self, deadline: Instant) -> Result<Arc<Session>> {
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
}
