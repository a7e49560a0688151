//! Redis backend: one shared connection type, key naming, Lua scripts, and one module per adapter.

pub mod cluster;
pub mod connection;
pub mod cron;
pub mod events;
pub mod failover;
pub mod keys;
pub mod loop_conn;
pub mod pubsub;
pub mod scripts;
pub mod sentinel;
pub mod state;
pub mod stream;
pub mod wire;
