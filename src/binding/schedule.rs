//! Cron expression functions (the `cron` crate) used by `CronScheduler` and exported to users.

use napi_derive::napi;

use super::guard::run_sync;
use crate::core::schedule;

/// Internal: the next `count` fire times (ms since epoch) of a node-cron style expression after `afterMs`.
/// Throws `[MOTIA_CONFIG] invalid cron expression "<expr>": …` for a bad expression or time zone.
#[napi]
pub fn next_cron_times(
    expression: String,
    timezone: Option<String>,
    after_ms: f64,
    count: u32,
) -> napi::Result<Vec<f64>> {
    run_sync(|| {
        Ok(
            schedule::next_times(&expression, timezone.as_deref(), after_ms as i64, count.max(1) as usize)?
                .into_iter()
                .map(|t| t as f64)
                .collect(),
        )
    })
}
