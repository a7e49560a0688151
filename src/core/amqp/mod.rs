//! RabbitMQ (AMQP 0-9-1 through lapin): connection supervision, topology, confirmed publishing, consumers.

pub mod client;
pub mod config;
pub mod topology;
