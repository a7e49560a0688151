//! What the JS layer takes from Rust instead of defining it again: the error codes, the one
//! `redact`, and the cron defaults.

use napi_derive::napi;

use crate::core::cron_lock;
use crate::core::events::{LogLevel, Outcome, RECOVERED};
use crate::core::redis::state::OpKind;
use crate::core::redis::stream::StreamOpKind;
use crate::error;

/// The numbers JS sends to Rust, defined by the Rust enums (`lib/events.js`, `lib/state.js` and
/// `lib/streams.js` read them from here instead of defining them again).
#[napi(object)]
pub struct WireCodes {
    /// Settle outcomes of a delivered event: ack, dead-letter, requeue.
    pub outcome_ack: u32,
    pub outcome_dead_letter: u32,
    pub outcome_requeue: u32,
    /// State batch operations.
    pub state_get: u32,
    pub state_set: u32,
    pub state_delete: u32,
    pub state_exists: u32,
    /// Stream batch operations (`set` whole, or `set` keeping the stored `_createdAt`).
    pub stream_get: u32,
    pub stream_set_full: u32,
    pub stream_set_open: u32,
    pub stream_delete: u32,
    /// Levels of the Rust clients' log lines, and the code of a line that reports a reconnect.
    pub log_info: u32,
    pub log_error: u32,
    pub log_recovered: String,
}

/// The wire codes (see `WireCodes`).
#[napi]
pub fn wire_codes() -> WireCodes {
    WireCodes {
        outcome_ack: Outcome::Ack as u32,
        outcome_dead_letter: Outcome::DeadLetter as u32,
        outcome_requeue: Outcome::Requeue as u32,
        state_get: OpKind::Get as u32,
        state_set: OpKind::Set as u32,
        state_delete: OpKind::Delete as u32,
        state_exists: OpKind::Exists as u32,
        stream_get: StreamOpKind::Get as u32,
        stream_set_full: StreamOpKind::SetFull as u32,
        stream_set_open: StreamOpKind::SetOpen as u32,
        stream_delete: StreamOpKind::Delete as u32,
        log_info: LogLevel::Info as u32,
        log_error: LogLevel::Error as u32,
        log_recovered: RECOVERED.to_string(),
    }
}

/// Every stable error code, in the README's order (`lib/errors.js` and the typings are checked against it).
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    error::codes::ALL.to_vec()
}

/// Removes `user:password@` from URL-like text (the same function Rust errors go through).
#[napi]
pub fn redact_secrets(text: String) -> String {
    error::redact(&text)
}

/// `lockTTL` default (ms) of the cron lock adapters.
#[napi]
pub const DEFAULT_LOCK_TTL_MS: u32 = cron_lock::DEFAULT_LOCK_TTL_MS as u32;

/// The longest lock TTL (ms) `lockTTL` and `acquireLock` accept.
#[napi]
pub const MAX_LOCK_TTL_MS: f64 = cron_lock::MAX_LOCK_TTL_MS;

/// `releaseGuard` default (ms): the upper bound of the same-tick window.
#[napi]
pub const DEFAULT_RELEASE_GUARD_MS: u32 = cron_lock::DEFAULT_RELEASE_GUARD_MS as u32;

/// Internal: the pub/sub channel of a stream group (`id` null) or of one item, named in
/// `core::redis::keys` like the channels the set/delete scripts publish on.
#[napi]
pub fn stream_channel(stream_name: String, group_id: String, id: Option<String>) -> String {
    use crate::core::redis::keys::StreamKeys;
    match id {
        Some(id) => StreamKeys::item_channel(&stream_name, &group_id, &id),
        None => StreamKeys::group_channel(&stream_name, &group_id),
    }
}

/// Internal: an adapter's options with every default filled and every value checked (`kind`:
/// `rabbitmq`, `kafka`, `redis-events`, `queue`, `cron`, `cron-sql`, `redis-state`, `redis-streams`); throws `MOTIA_CONFIG` naming the option. The JS classes
/// send the user's options here (shapes adapted) and read the resolved ones back.
#[napi]
pub fn resolve_config(kind: String, json: String) -> napi::Result<String> {
    use crate::core::amqp::config::AmqpConfig;
    use crate::core::kafka::config::KafkaConfig;
    use crate::core::redis::events::RedisEventsOptions;
    super::guard::run_sync(move || {
        let resolved = match kind.as_str() {
            "rabbitmq" => serde_json::to_string(&AmqpConfig::from_json(&json)?),
            "kafka" => serde_json::to_string(&KafkaConfig::from_json(&json)?),
            "redis-events" => serde_json::to_string(&RedisEventsOptions::from_json(&json)?),
            "queue" => serde_json::to_string(&crate::core::events::QueueConfig::from_json(&json)?),
            "cron" => serde_json::to_string(&crate::core::cron_lock::CronOptions::from_json(&json, false)?),
            "cron-sql" => serde_json::to_string(&crate::core::cron_lock::CronOptions::from_json(&json, true)?),
            "redis-state" => serde_json::to_string(&crate::core::redis::state::StateOptions::from_json(&json)?),
            "redis-streams" => serde_json::to_string(&crate::core::redis::state::StreamOptions::from_json(&json)?),
            other => return Err(error::AdapterError::Internal(format!("no options of kind `{other}`"))),
        };
        resolved.map_err(|e| error::AdapterError::Internal(e.to_string()))
    })
}

/// `keyPrefix` default of `RedisStateAdapter` (0.17's).
#[napi]
pub const DEFAULT_STATE_PREFIX: &str = crate::core::redis::keys::DEFAULT_STATE_PREFIX;

/// `keyPrefix` default of the stream adapters (0.17's).
#[napi]
pub const DEFAULT_STREAM_PREFIX: &str = crate::core::redis::keys::DEFAULT_STREAM_PREFIX;

/// `keyPrefix` default of `RedisCronAdapter` (0.17's).
#[napi]
pub const DEFAULT_CRON_PREFIX: &str = crate::core::redis::keys::DEFAULT_CRON_PREFIX;

/// `tableName` default of the PostgreSQL and MySQL cron adapters.
#[napi]
pub const DEFAULT_CRON_TABLE: &str = crate::core::postgres::cron::DEFAULT_TABLE;

/// `exchangeName` default of `RabbitMQEventAdapter` (0.17's).
#[napi]
pub const DEFAULT_EXCHANGE_NAME: &str = crate::core::amqp::config::DEFAULT_EXCHANGE_NAME;

/// `keyPrefix` default of `RedisEventAdapter`.
#[napi]
pub const DEFAULT_EVENTS_PREFIX: &str = crate::core::redis::keys::DEFAULT_EVENTS_PREFIX;

/// ms: how long a fifo step's consumer lease lasts unless renewed (a dead owner frees the step within it).
#[napi]
pub const FIFO_LEASE_MS: u32 = crate::core::redis::events::FIFO_LEASE_MS as u32;
