//! Turns panics into rejected promises (`[MOTIA_INTERNAL] ...`) so a bug never crashes Node.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::error::AdapterError;

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Awaits `fut`, mapping our error type to a JS error and a panic to `MOTIA_INTERNAL`.
pub async fn run<T, F>(fut: F) -> napi::Result<T>
where
    F: Future<Output = Result<T, AdapterError>>,
{
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r.map_err(napi::Error::from),
        Err(p) => {
            Err(AdapterError::Internal(format!("bug in motia-native-adapters (panic: {})", panic_text(p))).into())
        }
    }
}

/// Synchronous variant of [`run`].
pub fn run_sync<T>(f: impl FnOnce() -> Result<T, AdapterError>) -> napi::Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(napi::Error::from),
        Err(p) => {
            Err(AdapterError::Internal(format!("bug in motia-native-adapters (panic: {})", panic_text(p))).into())
        }
    }
}

/// Opens a Redis connection in the background so the first call does not pay for it.
pub fn warm_up(redis: std::sync::Arc<crate::core::redis::connection::RedisHandle>) {
    napi::bindgen_prelude::spawn(async move {
        let _ = redis.conn().await;
    });
}

/// Runs `f` (a libuv or napi callback of the JS-thread connection); a panic is reported on stderr
/// and swallowed, because unwinding into libuv would abort Node.
pub fn catch(f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
        eprintln!(
            "motia-native-adapters: internal panic in the Redis event-loop connection: {}",
            panic_text(p)
        );
    }
}
