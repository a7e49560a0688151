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
use crate::core::filter::{js_less, js_slice_bounds, js_strict_eq, stable_sort_by};
use crate::error::{AdapterError, Result};

pub struct RedisStreams {
    redis: Arc<RedisHandle>,
    keys: StreamKeys,
    set: Script,
    delete: Script,
}

/// How `set` receives the item JSON from JS.
pub enum ItemJson<'a> {
    /// Complete item (the caller supplied `_createdAt`).
    Full(&'a str),
    /// Item without its closing `}`; `_createdAt` (stored one, else `now`) is appended.
    Open(&'a str, i64),
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

fn created_at(raw: &str) -> f64 {
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "_createdAt")]
        created: Option<Json>,
    }
    match serde_json::from_str::<Created>(raw) {
        Ok(Created {
            created: Some(Json::Number(n)),
        }) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn validate(raw: &[u8], what: &str) -> Result<String> {
    let text =
        String::from_utf8(raw.to_vec()).map_err(|_| AdapterError::Decode(format!("{what} is not UTF-8 JSON")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| AdapterError::Decode(format!("{what} is not valid JSON ({e})")))?;
    Ok(text)
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

    pub async fn get(&self, stream: &str, group: &str, id: &str) -> Result<Option<String>> {
        let v: Option<Vec<u8>> = self
            .redis
            .cmd(redis::cmd("HGET").arg(self.keys.group(stream, group)).arg(id))
            .await?;
        v.map(|b| validate(&b, &format!("item \"{id}\" of {stream}/{group}")))
            .transpose()
    }

    /// Returns `[type, item]` as JSON text (`type` is `create` or `update`).
    pub async fn set(&self, stream: &str, group: &str, id: &str, item: ItemJson<'_>) -> Result<String> {
        let (mode, json, now) = match item {
            ItemJson::Full(j) => ("full", j, 0),
            ItemJson::Open(j, now) => ("open", j, now),
        };
        let mut conn = self.redis.conn().await?;
        let (kind, item): (String, String) = self
            .set
            .key(self.keys.group(stream, group))
            .arg(id)
            .arg(mode)
            .arg(json)
            .arg(now)
            .arg(StreamKeys::group_channel(stream, group))
            .arg(StreamKeys::item_channel(stream, group, id))
            .invoke_async(&mut conn)
            .await
            .map_err(classify)?;
        Ok(format!("[\"{kind}\",{item}]"))
    }

    pub async fn delete(&self, stream: &str, group: &str, id: &str) -> Result<Option<String>> {
        let mut conn = self.redis.conn().await?;
        let v: Option<Vec<u8>> = self
            .delete
            .key(self.keys.group(stream, group))
            .arg(id)
            .arg(StreamKeys::group_channel(stream, group))
            .arg(StreamKeys::item_channel(stream, group, id))
            .invoke_async(&mut conn)
            .await
            .map_err(classify)?;
        v.map(|b| validate(&b, &format!("item \"{id}\" of {stream}/{group}")))
            .transpose()
    }

    async fn items(&self, stream: &str, group: &str) -> Result<Vec<(String, String)>> {
        let v: Value = self
            .redis
            .cmd(redis::cmd("HGETALL").arg(self.keys.group(stream, group)))
            .await?;
        let pairs: Vec<(String, Vec<u8>)> = match v {
            Value::Map(m) => m
                .into_iter()
                .filter_map(|(k, v)| {
                    Some((
                        redis::from_redis_value::<String>(k).ok()?,
                        redis::from_redis_value(v).ok()?,
                    ))
                })
                .collect(),
            other => redis::from_redis_value::<Vec<(String, Vec<u8>)>>(other)
                .map_err(|e| AdapterError::Backend(format!("bad HGETALL reply: {e}")))?,
        };
        pairs
            .into_iter()
            .map(|(id, raw)| {
                let text = validate(&raw, &format!("item \"{id}\" of {stream}/{group}"))?;
                Ok((id, text))
            })
            .collect()
    }

    /// Every item of a group as a JSON array text, ascending by `_createdAt` (missing = 0).
    pub async fn get_group(&self, stream: &str, group: &str) -> Result<String> {
        let mut items: Vec<(f64, String)> = self
            .items(stream, group)
            .await?
            .into_iter()
            .map(|(_, t)| (created_at(&t), t))
            .collect();
        stable_sort_by(&mut items, |a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
        Ok(join(items.iter().map(|(_, t)| t.as_str())))
    }

    /// `query`: where (strict equality), orderBy/orderDirection (JS `<`/`>`), offset, limit — in Rust.
    pub async fn query(&self, stream: &str, group: &str, q: &StreamQuery) -> Result<String> {
        let mut items: Vec<(f64, String)> = self
            .items(stream, group)
            .await?
            .into_iter()
            .map(|(_, t)| (created_at(&t), t))
            .collect();
        stable_sort_by(&mut items, |a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
        let mut parsed: Vec<(Json, String)> = Vec::with_capacity(items.len());
        for (_, text) in items {
            let v: Json = serde_json::from_str(&text)
                .map_err(|e| AdapterError::Decode(format!("stream item is not valid JSON ({e})")))?;
            let keep = q.r#where.iter().all(|(k, want)| js_strict_eq(v.get(k), Some(want)))
                && q.where_undefined.iter().all(|k| v.get(k).is_none());
            if keep {
                parsed.push((v, text));
            }
        }
        if let Some(key) = q.order_by.as_deref() {
            let asc = q.order_direction.as_deref() != Some("desc");
            stable_sort_by(&mut parsed, |a, b| {
                let (x, y) = (a.0.get(key), b.0.get(key));
                if js_less(x, y) {
                    if asc {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                } else if js_less(y, x) {
                    if asc {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                } else {
                    Ordering::Equal
                }
            });
        }
        let mut texts: Vec<&str> = parsed.iter().map(|(_, t)| t.as_str()).collect();
        if let Some(off) = q.offset.filter(|o| *o != 0.0 && !o.is_nan()) {
            let (s, e) = js_slice_bounds(texts.len(), off, None);
            texts = texts[s..e].to_vec();
        }
        if let Some(lim) = q.limit.filter(|l| *l != 0.0 && !l.is_nan()) {
            let (s, e) = js_slice_bounds(texts.len(), 0.0, Some(lim));
            texts = texts[s..e].to_vec();
        }
        Ok(join(texts.into_iter()))
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
