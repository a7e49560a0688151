//! Kafka (through rdkafka and its bundled librdkafka): confirmed producing, one consumer group per step,
//! offsets committed only after the handler settled.

pub mod client;
pub mod config;
pub mod naming;
pub mod offsets;
