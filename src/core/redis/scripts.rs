//! Lua scripts, run by hash through `redis::Script` (EVALSHA, falling back to EVAL).
//! Ownership checks decode the stored lock JSON and compare `lockId` and `instanceId`, the fields
//! `@motiadev/adapter-redis-cron@0.17` checks, so locks of both kinds exclude each other; the
//! instanceId is always the calling adapter's own (upstream trusts the lock object's).

/// KEYS: lock, fence. ARGV: lock JSON without its closing `}`, ttl ms, the caller's instanceId,
/// tick ms, exact ('1' | '0'), the caller's known period ms (0: unknown), releaseGuard ms, the
/// key's expiry ms (the TTL, or one lease of it: `core::cron_lock::lease_ms`), the new lockId.
/// A resent acquire (the connection dropped before its reply) finds its own lockId and gets the
/// same lock back.
/// The tick rule of `core::cron_lock` (keep the two in step): a released record refuses only its
/// own tick to other instances; an unreleased one refuses everything, and the first call of a
/// later tick marks it (`skippedTick`, TTL kept) and gets `{2, runningTick}` so the skip is
/// logged once. Otherwise the lock is written with the shortest known period and a fresh
/// fencing token: `{1, token, period}`. Refused: `{0}`.
/// The token is `max(previous + 1, server time in ms)`: it increases with every acquisition even
/// after the small fence key (kept for the lock's TTL only) has expired.
pub const ACQUIRE: &str = r#"
local tick = tonumber(ARGV[4])
local period = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local current = redis.call('GET', KEYS[1])
if current then
  local ok, rec = pcall(cjson.decode, current)
  if not ok or type(rec) ~= 'table' then return {0} end
  if rec.lockId == ARGV[9] then return {1, tonumber(rec.fencingToken) or 0, tonumber(rec.period) or 0} end
  local rp = tonumber(rec.period) or 0
  if rp > 0 and (period == 0 or rp < period) then period = rp end
  local w
  if cap <= 0 then w = 0
  elseif ARGV[5] == '1' then w = 1
  elseif period <= 0 then w = 1000
  else w = math.max(1000, math.min(math.max(cap, 1000), period)) end
  local rtick = tonumber(rec.scheduledAt) or tonumber(rec.tick)
    or math.floor((tonumber(rec.acquiredAt) or 0) / 1000) * 1000
  if rec.releasedAt then
    if rec.instanceId ~= ARGV[3] and tick - rtick < w then return {0} end
  else
    if w > 0 and tick - rtick >= w and string.sub(current, -1) == '}' then
      local last = tonumber(rec.skippedTick)
      if not last or math.abs(tick - last) >= w then
        local mark = '"skippedTick":' .. string.format('%d', tick)
        local marked
        if last then
          marked = string.gsub(current, '"skippedTick":%-?%d+', mark, 1)
        else
          marked = string.sub(current, 1, -2) .. ',' .. mark .. '}'
        end
        redis.call('SET', KEYS[1], marked, 'KEEPTTL')
        return {2, rtick}
      end
    end
    return {0}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = math.max(last + 1, now)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[2], string.format('%d', token), 'PX', ttl + 60000)
local tail = ''
if period > 0 then tail = ',"period":' .. string.format('%d', period) end
redis.call('SET', KEYS[1], ARGV[1] .. tail .. ',"fencingToken":' .. string.format('%d', token) .. '}', 'PX', tonumber(ARGV[8]))
return {1, token, period}
"#;

/// Shared prologue: decodes KEYS[1]; returns the lock table when it is owned by ARGV[1]/ARGV[2].
const OWNED: &str = r#"
local function owned()
  local current = redis.call('GET', KEYS[1])
  if not current then return nil end
  local ok, lock = pcall(cjson.decode, current)
  if not ok or type(lock) ~= 'table' then return nil end
  if lock.lockId ~= ARGV[1] or lock.instanceId ~= ARGV[2] then return nil end
  return lock
end
"#;

/// KEYS: lock. ARGV: lockId, the caller's instanceId, keep ms, released-lock JSON.
/// Owned: keeps the released record (the record of its tick) for `keep` ms, or deletes it (0).
pub fn release() -> String {
    format!(
        "{OWNED}{}",
        r#"
local lock = owned()
if not lock then return 0 end
local guard = tonumber(ARGV[3])
if guard > 0 then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', guard)
  return 2
end
return redis.call('DEL', KEYS[1])
"#
    )
}

/// KEYS: lock. ARGV: lockId, the caller's instanceId, renewed JSON, ttl ms. 1 when renewed.
pub fn renew() -> String {
    format!(
        "{OWNED}{}",
        r#"
local lock = owned()
if not lock or lock.releasedAt then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', tonumber(ARGV[4]))
return 1
"#
    )
}

/// KEYS: lock. ARGV: lockId, the caller's instanceId, ms. Extends an owned, unreleased lock's lease
/// (the stored JSON, with the requested TTL's end, is left as it is). 1 when extended.
pub fn lease() -> String {
    format!(
        "{OWNED}{}",
        r#"
local lock = owned()
if not lock or lock.releasedAt then return 0 end
return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
"#
    )
}

/// KEYS: lock keys. ARGV: instanceId. Deletes this instance's unreleased locks; returns how many.
pub const SHUTDOWN: &str = r#"
local n = 0
for _, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current then
    local ok, lock = pcall(cjson.decode, current)
    if ok and type(lock) == 'table' and lock.instanceId == ARGV[1] and not lock.releasedAt then
      redis.call('DEL', key)
      n = n + 1
    end
  end
end
return n
"#;

/// KEYS: group hash. ARGV: id, mode ('full' | 'open'), item JSON (whole, or without its closing
/// `}` when `_createdAt` must be filled in), now ms, group channel, item channel.
/// Writes the item — in 'open' mode keeping the stored `_createdAt` on update — and publishes
/// `{type, data}` to the item channel and the group channel. Returns `{type, createdAt}`
/// (`createdAt` is '' in 'full' mode: the caller already has the whole item).
pub const STREAM_SET: &str = r#"
local item = ARGV[3]
local kind = 'create'
local created = ''
if ARGV[2] == 'open' then
  created = ARGV[4]
  local existing = redis.call('HGET', KEYS[1], ARGV[1])
  if existing then
    kind = 'update'
    -- fast path: `_createdAt` is the last top-level member (how both adapters write items);
    -- anchored at the end, this cannot match inside a string or a nested object
    local tail = string.match(string.sub(existing, -48), ',"_createdAt":(%d+)}$')
    if tail then
      created = tail
    else
      local ok, old = pcall(cjson.decode, existing)
      if ok and type(old) == 'table' and type(old._createdAt) == 'number' then
        created = string.format('%d', old._createdAt)
      end
    end
  end
  item = item .. ',"_createdAt":' .. created .. '}'
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  kind = 'update'
end
redis.call('HSET', KEYS[1], ARGV[1], item)
local msg = '{"type":"' .. kind .. '","data":' .. item .. '}'
redis.call('PUBLISH', ARGV[6], msg)
redis.call('PUBLISH', ARGV[5], msg)
return {kind, created}
"#;

/// KEYS: group hash. ARGV: id, group channel, item channel. Removes the item and publishes
/// `{type: 'delete', data}`; returns the removed item or nil.
pub const STREAM_DELETE: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local msg = '{"type":"delete","data":' .. existing .. '}'
redis.call('PUBLISH', ARGV[3], msg)
redis.call('PUBLISH', ARGV[2], msg)
return existing
"#;

/// Emit one event to every step of its topic, atomically. KEYS: steps SET, fanout ZSET.
/// ARGV: stream key base (`EventKeys::stream_base`), body, now ms. Fan-out registrations that expired
/// (their process died) are dropped with their streams. Returns the number of streams written.
pub const EVENT_EMIT: &str = r#"
local now = tonumber(ARGV[3])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(stale) do redis.call('DEL', ARGV[1] .. m) end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('XADD', ARGV[1] .. m, '*', 'd', ARGV[2])
  n = n + 1
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  redis.call('XADD', ARGV[1] .. m, '*', 'd', ARGV[2])
  n = n + 1
end
return n
"#;

/// The fifo consumer's lease. KEYS: owner. ARGV: consumer name, lease ms.
/// Returns 1 when the caller held it (renewed), 2 when it just took it, 0 when another consumer holds it.
pub const EVENT_OWN: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"#;

/// Deletes consumers that hold nothing. KEYS: stream. ARGV: group, consumer names. Returns how many went.
pub const EVENT_FORGET_CONSUMERS: &str = r#"
local n = 0
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[i]) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[i])
    n = n + 1
  end
end
return n
"#;
