//! Internal probes, compiled only with the `test-probes` feature (`npm run build`; never in the published addon):
//! the napi boundary cost probes of bench/boundary.bench.mjs and the deliberate panic of the loading test.

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::guard::run;
use crate::error::AdapterError;

/// Internal: resolves with its input (cost of one napi async call).
#[napi]
pub async fn probe_echo_async(s: String) -> String {
    s
}

type Completion = ThreadsafeFunction<(u32, String), (), (u32, String), napi::Status, false, true>;

/// Internal: completion-channel variant; `submit` returns at once and `cb(id, s)` is called later.
#[napi]
pub struct ProbeChannel {
    tsfn: std::sync::Arc<Completion>,
}

#[napi]
impl ProbeChannel {
    #[napi(constructor)]
    pub fn new(cb: Function<(u32, String), ()>) -> napi::Result<Self> {
        let tsfn = cb
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(ProbeChannel {
            tsfn: std::sync::Arc::new(tsfn),
        })
    }

    #[napi]
    pub fn submit(&self, id: u32, s: String) {
        let tsfn = self.tsfn.clone();
        napi::bindgen_prelude::spawn(async move {
            tsfn.call((id, s), ThreadsafeFunctionCallMode::NonBlocking);
        });
    }
}

#[napi]
impl ProbeChannel {
    /// Internal: completion through the threadsafe function without a tokio hop.
    #[napi]
    pub fn submit_direct(&self, id: u32, s: String) {
        self.tsfn.call((id, s), ThreadsafeFunctionCallMode::NonBlocking);
    }

    /// Internal: completion from a plain OS thread (no tokio) to measure the wake-up cost alone.
    #[napi]
    pub fn submit_thread(&self, id: u32, s: String) {
        let tsfn = self.tsfn.clone();
        std::thread::spawn(move || {
            tsfn.call((id, s), ThreadsafeFunctionCallMode::NonBlocking);
        });
    }
}

/// Internal, for tests (feature `test-probes`): panics inside the addon to prove a panic becomes a rejection.
#[napi]
pub async fn __test_panic(message: String) -> napi::Result<()> {
    run(async move {
        if !message.is_empty() {
            panic!("{message}");
        }
        Ok::<(), AdapterError>(())
    })
    .await
}
