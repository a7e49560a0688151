//! The state store (napi-free): STRING keys `${prefix}${traceId}:${key}` holding JSON text.
//!
//! Values arrive and leave as JSON *text*: the JS layer stringifies/parses, Rust only validates
//! and assembles. Results of several values are returned as one JSON array text so JS needs a
//! single `JSON.parse`. Multi-key work takes one round trip per SCAN batch: the MGET/UNLINK of
//! batch *n* is pipelined with the SCAN that fetches batch *n+1*.

use std::sync::Arc;

use redis::Value;

use super::connection::{classify, RedisHandle};
use super::keys::StateKeys;
use crate::core::codec;
use crate::core::filter::{json_type, matches_all, StateFilter};
use crate::error::{AdapterError, Result};

/// COUNT hint for SCAN (keys examined per call). Upstream uses 100; a larger hint cuts round
/// trips for the same server work. `MOTIA_SCAN_COUNT` overrides it.
pub const SCAN_COUNT: usize = 2000;

fn scan_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("MOTIA_SCAN_COUNT")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(SCAN_COUNT)
    })
}

/// One operation of a coalesced batch (see `RedisState::batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Get = 0,
    Set = 1,
    Delete = 2,
    Exists = 3,
}

/// `RedisStateAdapter` options (besides the connection), checked: `keyPrefix` (default 0.17's),
/// `ttl` in seconds (not set or 0: no expiry), `commandTimeout` (ms).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOptions {
    pub key_prefix: String,
    pub ttl: Option<u64>,
    pub command_timeout: Option<u64>,
}

impl StateOptions {
    pub fn from_json(text: &str) -> Result<Self> {
        let o = crate::core::options::Options::from_json(text, "options")?;
        let ttl = match o.get("ttl").and_then(|v| v.as_f64()) {
            Some(0.0) => None,
            _ => o
                .opt_int("ttl", 1, i32::MAX as u64)
                .map_err(|_| AdapterError::config("ttl", "must be a positive integer number of seconds"))?,
        };
        Ok(StateOptions {
            key_prefix: o.prefix("keyPrefix", super::keys::DEFAULT_STATE_PREFIX)?,
            ttl,
            command_timeout: o.opt_int("commandTimeout", 1, i32::MAX as u64)?,
        })
    }
}

/// The stream adapters' options: `keyPrefix` (default 0.17's).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamOptions {
    pub key_prefix: String,
}

impl StreamOptions {
    pub fn from_json(text: &str) -> Result<Self> {
        let o = crate::core::options::Options::from_json(text, "options")?;
        Ok(StreamOptions {
            key_prefix: o.prefix("keyPrefix", super::keys::DEFAULT_STREAM_PREFIX)?,
        })
    }
}

impl OpKind {
    pub fn from_code(c: u32) -> Result<Self> {
        [OpKind::Get, OpKind::Set, OpKind::Delete, OpKind::Exists]
            .into_iter()
            .find(|k| *k as u32 == c)
            .ok_or_else(|| AdapterError::Internal(format!("unknown batch op {c}")))
    }
}

pub struct RedisState {
    redis: Arc<RedisHandle>,
    keys: StateKeys,
    ttl: Option<u64>,
}

fn server_error(v: &Value) -> Option<AdapterError> {
    match v {
        Value::ServerError(e) => Some(classify(redis::RedisError::from(e.clone()))),
        _ => None,
    }
}

impl RedisState {
    pub fn new(redis: Arc<RedisHandle>, prefix: String, ttl: Option<u64>) -> Self {
        RedisState {
            redis,
            keys: StateKeys::new(prefix),
            ttl,
        }
    }

    pub fn redis(&self) -> &Arc<RedisHandle> {
        &self.redis
    }

    fn set_cmd(&self, pipe: &mut redis::Pipeline, key: &str, value: &str) {
        let c = pipe.cmd("SET").arg(key).arg(value);
        if let Some(ttl) = self.ttl {
            c.arg("EX").arg(ttl);
        }
    }

    /// Runs many get/set/delete/exists calls in one pipeline.
    ///
    /// Returns a JSON array text with one entry per op: `[0, value]` on success (`value` is the
    /// stored JSON, `null` when absent, `true/false` for exists, `null` for set) or
    /// `[1, code, message]` for an op that failed on its own. `delete` is `GETDEL`: atomic.
    pub async fn batch(
        &self,
        kinds: &[u32],
        trace_ids: &[String],
        keys: &[String],
        values: &[String],
    ) -> Result<String> {
        let n = kinds.len();
        if trace_ids.len() != n || keys.len() != n {
            return Err(AdapterError::Internal("batch arrays differ in length".into()));
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut ops = Vec::with_capacity(n);
        for i in 0..n {
            let kind = OpKind::from_code(kinds[i])?;
            let key = self.keys.key(&trace_ids[i], &keys[i]);
            match kind {
                OpKind::Get => {
                    pipe.cmd("GET").arg(&key);
                }
                OpKind::Set => {
                    let v = values
                        .get(i)
                        .ok_or_else(|| AdapterError::Internal("missing value".into()))?;
                    self.set_cmd(&mut pipe, &key, v);
                }
                OpKind::Delete => {
                    pipe.cmd("GETDEL").arg(&key);
                }
                OpKind::Exists => {
                    pipe.cmd("EXISTS").arg(&key);
                }
            }
            ops.push(kind);
        }
        let replies: Vec<Value> = self.redis.query(&pipe).await?;
        let mut out = String::with_capacity(16 + n * 16);
        out.push('[');
        for (i, (kind, reply)) in ops.iter().zip(replies.iter()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(e) = server_error(reply) {
                codec::push_err(&mut out, &e);
                continue;
            }
            match (kind, reply) {
                (OpKind::Get | OpKind::Delete, Value::BulkString(bytes)) => {
                    match codec::json_str(bytes, || {
                        format!("value of key \"{}\" of trace \"{}\"", keys[i], trace_ids[i])
                    }) {
                        Ok(json) => codec::push_ok(&mut out, json),
                        Err(e) => codec::push_err(&mut out, &e),
                    }
                }
                (OpKind::Exists, Value::Int(c)) => out.push_str(if *c > 0 { "[0,true]" } else { "[0,false]" }),
                _ => out.push_str("[0,null]"),
            }
        }
        out.push(']');
        Ok(out)
    }

    /// MGET of several keys of one trace: JSON array text, `null` for missing keys.
    pub async fn get_many(&self, trace_id: &str, keys: &[String]) -> Result<String> {
        if keys.is_empty() {
            return Ok("[]".into());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(self.keys.key(trace_id, k));
        }
        let values: Vec<Option<Vec<u8>>> = self.redis.cmd(&cmd).await?;
        let mut out = String::from("[");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match v {
                Some(b) => out.push_str(codec::json_str(b, || {
                    format!("value of key \"{}\" of trace \"{trace_id}\"", keys[i])
                })?),
                None => out.push_str("null"),
            }
        }
        out.push(']');
        Ok(out)
    }

    /// Writes several keys of one trace atomically (MULTI/EXEC): all or nothing.
    pub async fn set_many(&self, trace_id: &str, keys: &[String], values: &[String]) -> Result<()> {
        if keys.len() != values.len() {
            return Err(AdapterError::Internal("setMany arrays differ in length".into()));
        }
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (k, v) in keys.iter().zip(values) {
            self.set_cmd(&mut pipe, &self.keys.key(trace_id, k), v);
            pipe.ignore();
        }
        self.redis.query::<()>(&pipe).await
    }

    /// Scans `pattern`; for each batch of keys runs `per_batch` (which adds commands to the
    /// same pipeline as the next SCAN) and hands back the replies. One round trip per batch.
    async fn scan_each<F, G>(&self, pattern: &str, mut add: F, mut take: G) -> Result<()>
    where
        F: FnMut(&mut redis::Pipeline, &[String]) -> usize,
        G: FnMut(&[String], Vec<Value>) -> Result<()>,
    {
        if self.redis.is_cluster() {
            // keys of every master first, then the commands per batch one by one (a multi-key command
            // is split per key and sent as one pipeline per master, see `RedisHandle::cmd`)
            let keys = self.redis.scan_all(pattern, scan_count()).await?;
            for chunk in keys.chunks(scan_count()) {
                let mut pipe = redis::pipe();
                add(&mut pipe, chunk);
                let mut replies = Vec::new();
                for c in pipe.cmd_iter() {
                    replies.push(self.redis.cmd::<Value>(c).await?);
                }
                take(chunk, replies)?;
            }
            return Ok(());
        }
        let mut cursor: u64 = 0;
        let mut pending: Vec<String> = Vec::new();
        let mut first = true;
        loop {
            let mut pipe = redis::pipe();
            let extra = if pending.is_empty() {
                0
            } else {
                add(&mut pipe, &pending)
            };
            let scanning = first || cursor != 0;
            if scanning {
                pipe.cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(scan_count());
            }
            if extra == 0 && !scanning {
                break;
            }
            let mut replies: Vec<Value> = self.redis.query(&pipe).await?;
            if scanning {
                let scan = replies
                    .pop()
                    .ok_or_else(|| AdapterError::Internal("missing SCAN reply".into()))?;
                if let Some(e) = server_error(&scan) {
                    return Err(e);
                }
                let (next, found): (u64, Vec<String>) =
                    redis::from_redis_value(scan).map_err(|e| AdapterError::Backend(format!("bad SCAN reply: {e}")))?;
                if extra > 0 {
                    take(&pending, replies)?;
                }
                cursor = next;
                pending = found;
            } else {
                take(&pending, replies)?;
                pending.clear();
            }
            first = false;
            if !scanning && pending.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// SCAN + MGET of every key matching `pattern`, one round trip per SCAN batch; `each(key, value)`
    /// sees each existing key once (SCAN may repeat keys; keys deleted meanwhile are skipped).
    async fn scan_mget<F>(&self, pattern: &str, mut each: F) -> Result<()>
    where
        F: FnMut(&str, Vec<u8>) -> Result<()>,
    {
        let mut seen = std::collections::HashSet::new();
        self.scan_each(
            pattern,
            |pipe, keys| {
                let mut c = redis::cmd("MGET");
                c.arg(keys);
                pipe.add_command(c);
                1
            },
            |keys, replies| {
                let values = replies
                    .into_iter()
                    .next()
                    .ok_or_else(|| AdapterError::Internal("missing MGET reply".into()))?;
                if let Some(e) = server_error(&values) {
                    return Err(e);
                }
                let values: Vec<Option<Vec<u8>>> = redis::from_redis_value(values)
                    .map_err(|e| AdapterError::Backend(format!("bad MGET reply: {e}")))?;
                for (k, v) in keys.iter().zip(values) {
                    if let Some(bytes) = v {
                        if seen.insert(k.clone()) {
                            each(k, bytes)?;
                        }
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// `getGroup`: every value of a trace as one JSON array text (SCAN order; missing keys dropped).
    pub async fn get_group(&self, trace_id: &str) -> Result<String> {
        let mut out = String::from("[");
        let mut count = 0usize;
        self.scan_mget(&self.keys.group_pattern(trace_id), |k, bytes| {
            if count > 0 {
                out.push(',');
            }
            count += 1;
            out.push_str(codec::json_str(&bytes, || format!("value of key \"{k}\""))?);
            Ok(())
        })
        .await?;
        out.push(']');
        Ok(out)
    }

    /// `clear`: UNLINKs every key of a trace, pipelined with the SCAN.
    pub async fn clear(&self, trace_id: &str) -> Result<()> {
        self.scan_each(
            &self.keys.group_pattern(trace_id),
            |pipe, keys| {
                let mut c = redis::cmd("UNLINK");
                c.arg(keys);
                pipe.add_command(c);
                1
            },
            |_, replies| match replies.first().and_then(server_error) {
                Some(e) => Err(e),
                None => Ok(()),
            },
        )
        .await
    }

    /// `keys`: the key names of a trace, prefix stripped.
    pub async fn keys(&self, trace_id: &str) -> Result<Vec<String>> {
        let full = self
            .redis
            .scan_all(&self.keys.group_pattern(trace_id), scan_count())
            .await?;
        Ok(full
            .iter()
            .filter_map(|k| self.keys.strip_group(trace_id, k).map(str::to_owned))
            .collect())
    }

    /// `traceIds`: first `:`-separated segment after the prefix, deduplicated (0.17 semantics).
    pub async fn trace_ids(&self) -> Result<Vec<String>> {
        let full = self.redis.scan_all(&self.keys.all_pattern(), scan_count()).await?;
        let mut ids: Vec<String> = full
            .iter()
            .filter_map(|k| self.keys.split(k).map(|(t, _)| t.to_owned()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// `items({groupId?, filter?})`: JSON array text of `{groupId, key, type, value}`.
    /// Without `groupId` every key under the prefix is listed, split at the first `:` like 0.17.
    pub async fn items(&self, group_id: Option<&str>, filters: &[StateFilter]) -> Result<String> {
        let pattern = match group_id {
            Some(g) => self.keys.group_pattern(g),
            None => self.keys.all_pattern(),
        };
        let mut out = String::from("[");
        let mut count = 0usize;
        let keys = &self.keys;
        self.scan_mget(&pattern, |full, bytes| {
            let split = match group_id {
                Some(g) => keys.strip_group(g, full).map(|k| (g, k)),
                None => keys.split(full),
            };
            let Some((g, k)) = split else { return Ok(()) };
            let text = if filters.is_empty() {
                codec::json_str(&bytes, || format!("value of key \"{full}\""))?
            } else {
                // filtering parses the value anyway; that parse is the validation
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| AdapterError::Decode(format!("value of key \"{full}\" is not UTF-8 JSON")))?;
                let value: serde_json::Value = crate::core::filter::parse_for_filter(text)
                    .map_err(|e| AdapterError::Decode(format!("value of key \"{full}\" is not valid JSON ({e})")))?;
                if !matches_all(filters, &value) {
                    return Ok(());
                }
                text
            };
            if count > 0 {
                out.push(',');
            }
            count += 1;
            out.push_str("{\"groupId\":");
            out.push_str(&serde_json::Value::from(g).to_string());
            out.push_str(",\"key\":");
            out.push_str(&serde_json::Value::from(k).to_string());
            out.push_str(",\"type\":\"");
            out.push_str(json_type(text));
            out.push_str("\",\"value\":");
            out.push_str(text);
            out.push('}');
            Ok(())
        })
        .await?;
        out.push(']');
        Ok(out)
    }
}
