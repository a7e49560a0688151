//! One supervised RabbitMQ connection shared by publishing and every consumer of an adapter.
//!
//! - A supervisor task connects, declares the exchange and opens a confirm-mode publish channel. When the
//!   connection dies (broker restart, `rabbitmqctl close_connection`, network) it reconnects with backoff
//!   (200 ms doubling up to `reconnectDelay`) until `shutdown` (in `supervisor`).
//! - Each subscription runs its own task with its own channel: it waits for a connection, declares the
//!   step's topology exactly like the 0.17 adapter, and consumes. When its channel or the connection closes
//!   it starts over, so **every** consumer comes back after a reconnect (upstream restores none)
//!   (in `consumer` and `declare`).
//! - `publish` waits (up to `publishTimeout`) for a connection, publishes in call order, and resolves each
//!   message only on the broker's publisher confirm. A message whose confirm was lost with the connection is
//!   published again on the next one (at-least-once; in `publisher`).
//! - Acks and nacks go out in order from one task (in `settle`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use lapin::types::ShortString;
use tokio::sync::watch;

use super::config::AmqpConfig;
use super::consumer::Subscription;
use super::settle::SettleMsg;
use super::supervisor::Session;
use crate::core::events::{Log, Turnstile};
use crate::core::sync::LockExt;
use crate::error::AdapterError;

/// How long `shutdown`/`remove` wait for the broker to confirm a channel or connection close.
pub(super) const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A RabbitMQ adapter's connection, publisher and subscriptions (see the module docs).
pub struct AmqpClient {
    pub(super) config: AmqpConfig,
    pub(super) session: watch::Sender<Option<Arc<Session>>>,
    pub(super) last_error: Mutex<Option<AdapterError>>,
    pub(super) subs: Mutex<HashMap<u32, Arc<Subscription>>>,
    pub(super) next_sub: AtomicU32,
    pub(super) closed: watch::Sender<bool>,
    pub(super) is_closed: AtomicBool,
    pub(super) publish_turn: Turnstile,
    /// Settles queued by `settle_later`, acked in order by one task.
    pub(super) settle_tx: tokio::sync::mpsc::UnboundedSender<SettleMsg>,
    pub(super) log: Log,
}

impl AmqpClient {
    /// Starts the supervisor; the first connection attempt begins at once.
    pub fn start(config: AmqpConfig) -> Arc<Self> {
        let (session, _) = watch::channel(None);
        let (closed, _) = watch::channel(false);
        let (settle_tx, settle_rx) = tokio::sync::mpsc::unbounded_channel::<SettleMsg>();
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
        Self::spawn_settler(Arc::downgrade(&client), settle_rx);
        client
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
            // Best effort and bounded: a broker that stopped answering (blocked by an alarm, half-dead socket)
            // never holds shutdown; dropping the session closes the socket anyway.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, s.publisher.close(200, ShortString::from("shutdown"))).await;
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, s.conn.close(200, ShortString::from("shutdown"))).await;
        }
    }

    /// This client's log (the binding points it at the adapter's logger).
    pub fn log(&self) -> &Log {
        &self.log
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
