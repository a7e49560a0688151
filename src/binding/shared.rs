//! What the JS layer takes from Rust instead of defining it again: the error codes, the one
//! `redact`, and the cron defaults.

use napi_derive::napi;

use crate::core::cron_lock;
use crate::error;

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

/// `releaseGuard` default (ms): the upper bound of the same-tick window.
#[napi]
pub const DEFAULT_RELEASE_GUARD_MS: u32 = cron_lock::DEFAULT_RELEASE_GUARD_MS as u32;
