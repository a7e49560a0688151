//! motia-native-adapters: production adapters for Motia written in Rust.
//!
//! - `core`: backend logic, no napi (unit-tested with `cargo test`).
//! - `binding`: the `#[napi]` classes, one file per class.
//! - `error`: the single error type and its stable codes.

#![deny(clippy::unwrap_used)]

pub mod binding;
pub mod core;
pub mod error;
