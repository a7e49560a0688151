//! Motia streams in Redis, layout-compatible with `@motiadev/adapter-redis-streams@0.17`:
//! one HASH per (stream, group), field = item id, value = JSON `{...data, id, _createdAt}`;
//! `set`/`delete` are one atomic script each (read, write, publish).

use std::cmp::Ordering;
use std::sync::Arc;

use redis::{Script, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use super::connection::{classify, RedisHandle};
use super::keys::StreamKeys;
use super::scripts;
use crate::core::codec;
use crate::core::js::{js_slice_bounds, js_strict_eq, stable_sort_indices, SortKey};
use crate::error::{AdapterError, Result};

pub struct RedisStreams {
    redis: Arc<RedisHandle>,
    keys: StreamKeys,
    set: Script,
    delete: Script,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOpKind {
    Get = 0,
    SetFull = 1,
    SetOpen = 2,
    Delete = 3,
}

impl StreamOpKind {
    pub fn from_code(c: u32) -> Result<Self> {
        [
            StreamOpKind::Get,
            StreamOpKind::SetFull,
            StreamOpKind::SetOpen,
            StreamOpKind::Delete,
        ]
        .into_iter()
        .find(|k| *k as u32 == c)
        .ok_or_else(|| AdapterError::Internal(format!("unknown stream op {c}")))
    }
}

/// One call of a coalesced stream batch.
pub struct StreamOp<'a> {
    pub kind: StreamOpKind,
    pub stream: &'a str,
    pub group: &'a str,
    pub id: &'a str,
    /// Item JSON for set (whole, or without its closing `}` for `SetOpen`).
    pub payload: &'a str,
    /// `Date.now()` for `SetOpen`.
    pub now: i64,
}

/// ARGV of the set/delete script of `op` (the one place they are spelled out; see `scripts.rs`).
pub fn script_args(op: &StreamOp<'_>) -> Vec<String> {
    let (g, i) = (
        StreamKeys::group_channel(op.stream, op.group),
        StreamKeys::item_channel(op.stream, op.group, op.id),
    );
    match op.kind {
        StreamOpKind::SetFull | StreamOpKind::SetOpen => {
            let mode = if op.kind == StreamOpKind::SetFull {
                "full"
            } else {
                "open"
            };
            vec![op.id.into(), mode.into(), op.payload.into(), op.now.to_string(), g, i]
        }
        _ => vec![op.id.into(), g, i],
    }
}

/// `StreamQueryFilter` after the JS layer serialised it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    #[serde(default)]
    pub r#where: serde_json::Map<String, Json>,
    /// `where` keys whose value was `undefined` (they match items lacking the field).
    #[serde(default)]
    pub where_undefined: Vec<String>,
    pub order_by: Option<String>,
    pub order_direction: Option<String>,
    pub limit: Option<f64>,
    pub offset: Option<f64>,
}

/// Validates one stored item and reads its `_createdAt` in a single pass (other fields skipped).
fn validate_created_at(raw: &str, what: impl FnOnce() -> String) -> Result<f64> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "_createdAt")]
        created: Option<Json>,
    }
    match serde_json::from_str::<Created>(raw) {
        Ok(Created {
            created: Some(Json::Number(n)),
        }) => Ok(n.as_f64().unwrap_or(0.0)),
        Ok(_) => Ok(0.0),
        // valid JSON that is not an object (or has an odd _createdAt) still sorts as 0
        Err(_) => codec::json_str(raw.as_bytes(), what).map(|_| 0.0),
    }
}

impl RedisStreams {
    pub fn new(redis: Arc<RedisHandle>, prefix: String) -> Self {
        RedisStreams {
            redis,
            keys: StreamKeys::new(prefix),
            set: Script::new(scripts::STREAM_SET),
            delete: Script::new(scripts::STREAM_DELETE),
        }
    }

    pub fn redis(&self) -> &Arc<RedisHandle> {
        &self.redis
    }

    /// The script and its KEYS[1]/ARGV of a set or delete.
    fn script_call<'s>(&'s self, op: &StreamOp<'_>) -> (&'s Script, Vec<String>) {
        let script = if op.kind == StreamOpKind::Delete {
            &self.delete
        } else {
            &self.set
        };
        (script, script_args(op))
    }

    /// Many get/set/delete calls in one pipeline (scripts by EVALSHA; a NOSCRIPT reply, e.g. after
    /// a server restart, is retried through a loading invocation). Returns a JSON array text with
    /// one `[0, value]` or `[1, code, message]` per op (`value`: item or null; `[type, createdAt]` for set).
    pub async fn batch(&self, ops: &[StreamOp<'_>]) -> Result<String> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for op in ops {
            let key = self.keys.group(op.stream, op.group);
            if op.kind == StreamOpKind::Get {
                pipe.cmd("HGET").arg(key).arg(op.id);
            } else {
                let (script, args) = self.script_call(op);
                pipe.cmd("EVALSHA").arg(script.get_hash()).arg(1).arg(key).arg(args);
            }
        }
        let replies: Vec<Value> = self.redis.query(&pipe).await?;
        let mut out = String::from("[");
        for (i, (op, reply)) in ops.iter().zip(replies).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let reply = match reply {
                Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                    let (script, args) = self.script_call(op);
                    let mut inv = script.key(self.keys.group(op.stream, op.group));
                    inv.arg(args);
                    match self.redis.invoke::<Value>(&inv).await {
                        Ok(v) => v,
                        Err(e) => {
                            codec::push_err(&mut out, &e);
                            continue;
                        }
                    }
                }
                other => other,
            };
            if let Err(e) = Self::render(&mut out, op, reply) {
                codec::push_err(&mut out, &e);
            }
        }
        out.push(']');
        Ok(out)
    }

    fn render(out: &mut String, op: &StreamOp<'_>, reply: Value) -> Result<()> {
        match (op.kind, reply) {
            (_, Value::ServerError(e)) => Err(classify(redis::RedisError::from(e))),
            (_, Value::Nil) => {
                codec::push_ok(out, "null");
                Ok(())
            }
            (StreamOpKind::Get | StreamOpKind::Delete, Value::BulkString(b)) => {
                let json = codec::json_str(&b, || format!("item \"{}\" of {}/{}", op.id, op.stream, op.group))?;
                codec::push_ok(out, json);
                Ok(())
            }
            (StreamOpKind::SetFull | StreamOpKind::SetOpen, v) => {
                let (kind, created): (String, String) =
                    redis::from_redis_value(v).map_err(|e| AdapterError::Backend(format!("bad set reply: {e}")))?;
                // both are plain words/digits from our script: no escaping needed
                codec::push_ok(out, &format!("[\"{kind}\",\"{created}\"]"));
                Ok(())
            }
            (_, other) => Err(AdapterError::Backend(format!("unexpected reply {other:?}"))),
        }
    }

    /// HGETALL as `(id, item JSON)` pairs, moving the bytes out of the reply (no copies).
    async fn raw_items(&self, stream: &str, group: &str) -> Result<Vec<(String, String)>> {
        let v: Value = self
            .redis
            .cmd(redis::cmd("HGETALL").arg(self.keys.group(stream, group)))
            .await?;
        let flat: Vec<Value> = match v {
            Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            Value::Array(a) => a,
            Value::Nil => Vec::new(),
            other => return Err(AdapterError::Backend(format!("bad HGETALL reply: {other:?}"))),
        };
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let (Value::BulkString(k), Value::BulkString(v)) = (k, v) else {
                continue;
            };
            let id = String::from_utf8(k).unwrap_or_default();
            let text = String::from_utf8(v)
                .map_err(|_| AdapterError::Decode(format!("item \"{id}\" of {stream}/{group} is not UTF-8 JSON")))?;
            out.push((id, text));
        }
        Ok(out)
    }

    /// Items validated and ordered by `_createdAt` (missing = 0), stable.
    async fn ordered(&self, stream: &str, group: &str) -> Result<Vec<String>> {
        let items = self.raw_items(stream, group).await?;
        let mut keys = Vec::with_capacity(items.len());
        for (id, text) in &items {
            keys.push(validate_created_at(text, || {
                format!("item \"{id}\" of {stream}/{group}")
            })?);
        }
        let order = stable_sort_indices(items.len(), |a, b| {
            keys[a].partial_cmp(&keys[b]).unwrap_or(Ordering::Equal)
        });
        let mut slots: Vec<Option<String>> = items.into_iter().map(|(_, t)| Some(t)).collect();
        Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
    }

    /// Every item of a group as a JSON array text, ascending by `_createdAt` (missing = 0).
    pub async fn get_group(&self, stream: &str, group: &str) -> Result<String> {
        let items = self.ordered(stream, group).await?;
        Ok(join(items.iter().map(String::as_str)))
    }

    /// `query`: where (strict equality), orderBy/orderDirection (JS `<`/`>`), offset, limit — in Rust.
    /// Each item is split into its top-level fields as raw JSON; only the fields the query looks
    /// at are parsed, and only the selected items go back to JS.
    pub async fn query(&self, stream: &str, group: &str, q: &StreamQuery) -> Result<String> {
        let items = self.raw_items(stream, group).await?;
        let order_key = q.order_by.as_deref();
        // (createdAt, orderBy field, text) of the items that pass `where`
        let mut kept: Vec<(f64, SortKey, &str)> = Vec::with_capacity(items.len());
        for (id, text) in &items {
            let fields: Fields = match serde_json::from_str(text) {
                Ok(f) => f,
                Err(_) => {
                    // valid JSON that is not an object: every field is undefined
                    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                        AdapterError::Decode(format!("item \"{id}\" of {stream}/{group} is not valid JSON ({e})"))
                    })?;
                    Fields::default()
                }
            };
            let field =
                |k: &str| -> Option<Json> { fields.0.get(k).and_then(|raw| serde_json::from_str(raw.get()).ok()) };
            let keep = q
                .r#where
                .iter()
                .all(|(k, want)| js_strict_eq(field(k).as_ref(), Some(want)))
                && q.where_undefined.iter().all(|k| !fields.0.contains_key(k.as_str()));
            if keep {
                let created = match field("_createdAt") {
                    Some(Json::Number(n)) => n.as_f64().unwrap_or(0.0),
                    _ => 0.0,
                };
                let key = order_key
                    .map(|k| SortKey::of(field(k).as_ref()))
                    .unwrap_or(SortKey::Undefined);
                kept.push((created, key, text.as_str()));
            }
        }
        let mut order = stable_sort_indices(kept.len(), |a, b| {
            kept[a].0.partial_cmp(&kept[b].0).unwrap_or(Ordering::Equal)
        });
        if order_key.is_some() {
            let asc = q.order_direction.as_deref() != Some("desc");
            let by_created = order.clone();
            let sorted = stable_sort_indices(by_created.len(), |a, b| {
                let (x, y) = (&kept[by_created[a]].1, &kept[by_created[b]].1);
                let ord = if x.less(y) {
                    Ordering::Less
                } else if y.less(x) {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                };
                if asc {
                    ord
                } else {
                    ord.reverse()
                }
            });
            order = sorted.into_iter().map(|i| by_created[i]).collect();
        }
        if let Some(off) = q.offset.filter(|o| *o != 0.0 && !o.is_nan()) {
            let (s, e) = js_slice_bounds(order.len(), off, None);
            order = order[s..e].to_vec();
        }
        if let Some(lim) = q.limit.filter(|l| *l != 0.0 && !l.is_nan()) {
            let (s, e) = js_slice_bounds(order.len(), 0.0, Some(lim));
            order = order[s..e].to_vec();
        }
        Ok(join(order.into_iter().map(|i| kept[i].2)))
    }

    pub async fn clear(&self, stream: &str, group: &str) -> Result<()> {
        self.redis
            .cmd::<()>(redis::cmd("DEL").arg(self.keys.group(stream, group)))
            .await
    }

    /// PUBLISH on the group channel (or the item channel when `id` is given).
    pub async fn send(&self, stream: &str, group: &str, id: Option<&str>, event_json: &str) -> Result<()> {
        let channel = match id {
            Some(id) => StreamKeys::item_channel(stream, group, id),
            None => StreamKeys::group_channel(stream, group),
        };
        self.redis
            .cmd::<i64>(redis::cmd("PUBLISH").arg(channel).arg(event_json))
            .await
            .map(|_| ())
    }
}

/// The top-level fields of an item, values left as raw JSON (parsed only when needed).
#[derive(Default, Deserialize)]
struct Fields<'a>(
    #[serde(borrow)] std::collections::HashMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>,
);

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p);
    }
    out.push(']');
    out
}
