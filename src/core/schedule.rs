//! node-cron style expressions on top of the `cron` crate.
//!
//! node-cron accepts 5 fields (`min hour dom month dow`) or 6 (`sec min hour dom month dow`),
//! with day-of-week 0–7 where 0 and 7 are Sunday. The `cron` crate wants seconds first and
//! numbers days of the week 1–7 from Sunday, so numeric day-of-week values are rewritten
//! (names such as `MON-FRI` pass through unchanged).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use cron::Schedule;

use crate::error::{AdapterError, Result};

fn invalid(expr: &str, why: impl std::fmt::Display) -> AdapterError {
    AdapterError::config("expression", format!("invalid cron expression \"{expr}\": {why}"))
}

/// node-cron day-of-week number (0–7, Sunday = 0 or 7) to the `cron` crate's (1–7, Sunday = 1).
fn dow_ordinal(n: u32) -> u32 {
    (n % 7) + 1
}

fn rewrite_dow(field: &str, expr: &str) -> Result<String> {
    let mut out: Vec<String> = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| invalid(expr, format!("bad step in `{part}`")))?,
                ),
            ),
            None => (part, None),
        };
        if step == Some(0) {
            return Err(invalid(expr, "step must be positive"));
        }
        let numeric = |s: &str| s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty();
        let bounds: Option<(u32, u32)> = if range == "*" {
            if step.is_none() {
                out.push("*".into());
                continue;
            }
            Some((0, 6))
        } else if let Some((a, b)) = range.split_once('-') {
            if numeric(a) && numeric(b) {
                Some((a.parse().unwrap_or(99), b.parse().unwrap_or(99)))
            } else {
                None
            }
        } else if numeric(range) {
            let a: u32 = range.parse().unwrap_or(99);
            Some((a, if step.is_some() { 6 } else { a }))
        } else {
            None
        };
        match bounds {
            None => out.push(part.to_string()), // names: the cron crate understands them
            Some((a, b)) => {
                if a > 7 || b > 7 || a > b {
                    return Err(invalid(expr, format!("day of week `{part}` out of range 0-7")));
                }
                let step = step.unwrap_or(1) as usize;
                let mut days: Vec<u32> = (a..=b).step_by(step).map(dow_ordinal).collect();
                days.sort_unstable();
                days.dedup();
                out.extend(days.iter().map(|d| d.to_string()));
            }
        }
    }
    Ok(out.join(","))
}

/// Parses a node-cron style expression (5 or 6 fields).
pub fn parse(expr: &str) -> Result<Schedule> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        n => return Err(invalid(expr, format!("expected 5 or 6 fields, got {n}"))),
    };
    let dow = rewrite_dow(rest[4], expr)?;
    let normalised = format!("{sec} {} {} {} {} {dow}", rest[0], rest[1], rest[2], rest[3]);
    Schedule::from_str(&normalised).map_err(|e| invalid(expr, e))
}

pub fn parse_timezone(tz: &str) -> Result<chrono_tz::Tz> {
    tz.parse::<chrono_tz::Tz>()
        .map_err(|_| AdapterError::config("timezone", format!("unknown IANA time zone \"{tz}\"")))
}

/// The next `count` fire times (ms since epoch) strictly after `after_ms`, in `timezone` (default UTC).
pub fn next_times(expr: &str, timezone: Option<&str>, after_ms: i64, count: usize) -> Result<Vec<i64>> {
    let schedule = parse(expr)?;
    let after: DateTime<Utc> = Utc
        .timestamp_millis_opt(after_ms)
        .single()
        .ok_or_else(|| AdapterError::config("after", "out of range"))?;
    Ok(match timezone {
        None | Some("") | Some("UTC") => schedule
            .after(&after)
            .take(count)
            .map(|d| d.timestamp_millis())
            .collect(),
        Some(tz) => {
            let tz = parse_timezone(tz)?;
            schedule
                .after(&after.with_timezone(&tz))
                .take(count)
                .map(|d| d.timestamp_millis())
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn five_and_six_fields() {
        let t0 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        let every_min = next_times("* * * * *", None, t0, 2).unwrap();
        assert_eq!(every_min[1] - every_min[0], MIN);
        assert_eq!(every_min[0] % MIN, 0);
        let every_5s = next_times("*/5 * * * * *", None, t0, 3).unwrap();
        assert_eq!(every_5s[1] - every_5s[0], 5000);
    }

    #[test]
    fn node_cron_day_of_week_numbers() {
        // 2023-11-14 is a Tuesday. "0 9 * * 0" = Sundays 09:00 -> 2023-11-19
        let t0 = 1_700_000_000_000;
        let sunday = next_times("0 9 * * 0", None, t0, 1).unwrap()[0];
        let seven = next_times("0 9 * * 7", None, t0, 1).unwrap()[0];
        assert_eq!(sunday, seven);
        assert_eq!(sunday, 1_700_384_400_000); // 2023-11-19T09:00:00Z
                                               // weekdays 1-5: next is Wednesday 2023-11-15 09:00
        assert_eq!(next_times("0 9 * * 1-5", None, t0, 1).unwrap()[0], 1_700_038_800_000);
        // names pass through
        assert_eq!(
            next_times("0 9 * * MON-FRI", None, t0, 1).unwrap()[0],
            1_700_038_800_000
        );
        // 5-7 wraps to Sunday
        assert!(next_times("0 9 * * 5-7", None, t0, 3).is_ok());
    }

    #[test]
    fn timezone() {
        let t0 = 1_700_000_000_000;
        let utc = next_times("0 9 * * *", None, t0, 1).unwrap()[0];
        let ny = next_times("0 9 * * *", Some("America/New_York"), t0, 1).unwrap()[0];
        assert_eq!((ny - utc).rem_euclid(24 * 60 * MIN), 5 * 60 * MIN);
        assert!(next_times("0 9 * * *", Some("Mars/Olympus"), t0, 1).is_err());
    }

    #[test]
    fn invalid_expressions_quote_themselves() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * *",
            "a b c d e",
            "* * * * 9",
            "*/0 * * * *",
        ] {
            let e = parse(bad).err().unwrap_or_else(|| panic!("{bad} should fail"));
            assert!(e.js_message().contains(&format!("\"{bad}\"")), "{}", e.js_message());
            assert_eq!(e.code(), "MOTIA_CONFIG");
        }
    }
}
