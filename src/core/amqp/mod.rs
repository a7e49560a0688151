//! RabbitMQ (AMQP 0-9-1 through lapin): connection supervision, topology, confirmed publishing, consumers.
//!
//! [`client::AmqpClient`] is the one type the bindings use; its methods live with their concern:
//! `supervisor` (connection), `publisher` (confirmed publishing), `consumer` (subscriptions),
//! `declare` (queues and exchanges), `settle` (acks and nacks), `error` (error codes).

pub mod client;
pub mod config;
mod consumer;
mod declare;
mod error;
mod publisher;
mod settle;
mod supervisor;
pub mod topology;
