//! `#[napi]` classes only: one file per exported class, each a thin shell over `crate::core`.
//! The public JS classes (`RedisStateAdapter`, ...) live in `lib/` and wrap these `Native*` ones.

pub mod cron_common;
pub mod events_common;
pub mod guard;
pub mod jsloop;
pub mod kafka_event_adapter;
pub mod metrics;
pub mod mysql_cron_adapter;
pub mod postgres_cron_adapter;
#[cfg(feature = "test-probes")]
pub mod probe;
pub mod rabbitmq_event_adapter;
pub mod redis_cron_adapter;
pub mod redis_cron_loop;
pub mod redis_event_adapter;
pub mod redis_events_loop;
pub mod redis_state_adapter;
pub mod redis_state_loop;
pub mod redis_stream_adapter;
pub mod redis_streams_loop;
pub mod schedule;
pub mod shared;

/// What every tokio-side Redis class (a `#[napi]` struct whose `inner.redis()` is its `RedisHandle`) exports alike.
macro_rules! redis_class_common {
    ($class:ident) => {
        #[napi_derive::napi]
        impl $class {
            /// A primary/secondary pair: `[switches so far, server in use (0 primary, 1 secondary)]`; else null.
            #[napi]
            pub fn pair_state(&self) -> Option<Vec<f64>> {
                self.inner.redis().pair_state().map(|s| s.to_vec())
            }
        }
    };
}
pub(crate) use redis_class_common;
