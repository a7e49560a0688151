//! Backend logic with no napi dependency: compiles and unit-tests without Node.

pub mod amqp;
pub mod codec;
pub mod cron_lock;
pub mod events;
pub mod filter;
pub mod js;
pub mod kafka;
pub mod metrics;
pub mod mysql;
pub mod options;
pub mod postgres;
pub mod redis;
pub mod schedule;
pub mod sync;
pub mod tls;
