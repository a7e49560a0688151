//! motia-native-adapters: production adapters for Motia written in Rust.
//!
//! - `core`: backend logic, no napi (unit-tested with `cargo test`).
//! - `binding`: the `#[napi]` classes, one file per class.
//! - `error`: the single error type and its stable codes.

// `unwrap_used` is denied in Cargo.toml's [lints]; tests may unwrap.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod binding;
pub mod core;
pub mod error;

/// A small tokio runtime (2 workers, or 1 on a 1-CPU machine): the work per call is tiny and
/// cross-thread wake-ups dominate, so more workers only add context switches.
/// `MOTIA_NATIVE_THREADS` overrides it.
#[napi_derive::module_init]
fn init() {
    // A panic is already turned into a rejected promise (`MOTIA_INTERNAL`); print one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("motia-native-adapters: internal panic{at} (reported to the caller as MOTIA_INTERNAL)");
    }));
    let threads = std::env::var("MOTIA_NATIVE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get().min(2))
                .unwrap_or(1)
        })
        .max(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("motia-native")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
