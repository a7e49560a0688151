//! Redis backend: one shared connection type, key naming, and one module per adapter.

pub mod connection;
pub mod keys;
pub mod state;
