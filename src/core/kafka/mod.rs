//! Kafka (through rdkafka and its bundled librdkafka): confirmed producing, one consumer group per step,
//! offsets committed only after the handler settled.
//!
//! [`client::KafkaClient`] is the one type the bindings use; its methods live with their concern:
//! [`producer`] (producing, producer renewal), `admin` (topics), `consumer` (subscriptions),
//! `settle` (offsets and dead letters), `error` (error codes).

mod admin;
pub mod client;
pub mod config;
mod consumer;
mod error;
pub mod naming;
pub mod offsets;
pub mod producer;
mod settle;
