'use strict'
const { NativeRedisState, createRedisStateLoop, DEFAULT_STATE_PREFIX } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { normalizeRedis, resolveOptions } = require('./config.js')
const { fromNative, callNative: call, serializeError, configError, MotiaAdapterError, rejectSyncThrows } = require('./errors.js')
const { jsLoopAllowed } = require('./jsloop.js')
const { checkLogger } = require('./log.js')
const { AdapterMetrics } = require('./metrics.js')

const { stateGet: OP_GET, stateSet: OP_SET, stateDelete: OP_DELETE, stateExists: OP_EXISTS } = require('./native.js').wireCodes()

const nullish = (v) => (v === undefined ? null : v)

function stringify(value, what) {
  let text
  try {
    text = JSON.stringify(value)
  } catch (e) {
    throw serializeError(what, e)
  }
  if (text === undefined) throw serializeError(what, `JSON.stringify returned undefined for a ${typeof value}`)
  return text
}

/**
 * Drop-in for `@motiadev/adapter-redis-state` (Motia `StateAdapter`), backed by Rust.
 * Same keys (`${keyPrefix}${traceId}:${key}`, JSON strings, `SET … EX ttl`), so pods of both kinds share data.
 */
class RedisStateAdapter {
  constructor(connection, options) {
    const { connection: conn, legacy } = normalizeRedis(connection)
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw configError('options', 'must be an object {keyPrefix?, ttl?}')
    }
    const opts = { ...legacy, ...(options || {}) }
    // defaults and checks: Rust's StateOptions
    const { keyPrefix, ttl: ttlOrNull, commandTimeout } = resolveOptions('redis-state', { keyPrefix: opts.keyPrefix, ttl: opts.ttl, commandTimeout: opts.commandTimeout }, 'options')
    const ttl = ttlOrNull ?? undefined
    checkLogger(opts.logger) // accepted like every adapter's; state calls report failures by rejecting
    if (commandTimeout !== null) conn.commandTimeout = commandTimeout
    const connJson = JSON.stringify(conn)
    const prefix = keyPrefix
    const m = (this._metrics = new AdapterMetrics('RedisStateAdapter'))
    try {
      this._native = new NativeRedisState(connJson, prefix, ttl)
      // get/set/delete/exists on Node's own event loop (no thread hop, metrics recorded in Rust); null for TLS, Bun, Deno
      this._loop = jsLoopAllowed() ? createRedisStateLoop(connJson, prefix, ttl, MotiaAdapterError, m.native) : null
    } catch (e) {
      throw fromNative(e)
    }
    m.loops.push(this._loop)
    m.pair = this._native
    this.keyPrefix = prefix
    this.ttl = ttl
    const native = this._native
    this._batcher = new Batcher((k, t, ks, v) => native.batch(k, t, ks, v), 4)
    // the tokio connection serves only multi-key calls when the event-loop path is on: open it lazily
    if (!this._loop) this._native.warmUp()
  }

  /** Value stored under (traceId, key), or null. */
  get(traceId, key) {
    if (this._loop) return this._loop.get(`${traceId}`, `${key}`)
    return this._m('get', this._batcher.push([OP_GET, `${traceId}`, `${key}`, ''], nullish))
  }

  /** Stores `value` as JSON (with `EX ttl` when configured) and returns it. Rejects with MOTIA_SERIALIZE if JSON cannot hold it. */
  set(traceId, key, value) {
    const k = `${key}` // a Symbol throws here: rejectSyncThrows makes it MOTIA_CONFIG
    let text
    try {
      text = stringify(value, `value of key "${k}"`)
    } catch (e) {
      return Promise.reject(e)
    }
    if (this._loop) return this._loop.set(`${traceId}`, `${key}`, text, value)
    return this._m('set', this._batcher.push([OP_SET, `${traceId}`, `${key}`, text], () => value))
  }

  /** Atomically removes (traceId, key) and returns the previous value, or null (GETDEL). */
  delete(traceId, key) {
    if (this._loop) return this._loop.delete(`${traceId}`, `${key}`)
    return this._m('delete', this._batcher.push([OP_DELETE, `${traceId}`, `${key}`, ''], nullish))
  }

  /** Whether (traceId, key) exists (RFC). */
  exists(traceId, key) {
    if (this._loop) return this._loop.exists(`${traceId}`, `${key}`)
    return this._m('exists', this._batcher.push([OP_EXISTS, `${traceId}`, `${key}`, ''], (v) => v === true))
  }

  /** Every value of a trace (unordered, like 0.17). One round trip per SCAN batch. */
  getGroup(traceId) {
    return this._m('getGroup', call(this._native.getGroup(`${traceId}`))).then(JSON.parse)
  }

  /** Values of several keys of one trace, null where missing (RFC). */
  getMany(traceId, keys) {
    if (!Array.isArray(keys)) return Promise.reject(configError('keys', 'must be an array of strings'))
    return this._m('getMany', call(this._native.getMany(`${traceId}`, keys.map((k) => `${k}`)))).then(JSON.parse)
  }

  /** Writes several keys of one trace atomically (MULTI/EXEC); nothing is written if any value is not JSON (RFC). */
  setMany(traceId, items) {
    if (items === null || typeof items !== 'object') return Promise.reject(configError('items', 'must be an object'))
    const keys = []
    const values = []
    try {
      for (const [k, v] of Object.entries(items)) {
        keys.push(k)
        values.push(stringify(v, `value of key "${k}"`))
      }
    } catch (e) {
      return Promise.reject(e)
    }
    return this._m('setMany', call(this._native.setMany(`${traceId}`, keys, values)))
  }

  /** Deletes every key of a trace (SCAN + pipelined UNLINK; glob characters in traceId are escaped). */
  clear(traceId) {
    return this._m('clear', call(this._native.clear(`${traceId}`)))
  }

  /** Key names of a trace, prefix stripped. */
  keys(traceId) {
    return this._m('keys', call(this._native.keys(`${traceId}`)))
  }

  /** Every trace id that has keys under the prefix. */
  traceIds() {
    return this._m('traceIds', call(this._native.traceIds()))
  }

  /** Items of one group (or all), with the 12 StateFilter operations applied in Rust. */
  items(input) {
    const groupId = input && input.groupId !== undefined && input.groupId !== null ? `${input.groupId}` : null
    const filter = input && Array.isArray(input.filter) && input.filter.length > 0 ? JSON.stringify(input.filter) : null
    return this._m('items', call(this._native.items(groupId, filter))).then(JSON.parse)
  }

  /** Times a call made on the tokio connection (the event-loop path records its own in Rust). */
  _m(method, promise) {
    return this._metrics.time(method, promise)
  }

  /** Calls, errors by code and latency per method, reconnects and calls in flight: see README "Metrics". */
  metrics() {
    return this._metrics.snapshot()
  }

  /** PING; true when Redis answers. */
  async isHealthy() {
    try {
      return await (this._loop ? this._loop.ping() : this._native.ping())
    } catch {
      return false
    }
  }

  /** Waits for queued calls, then closes our connection (never a client you passed in). */
  async cleanup() {
    // the event-loop connection refuses new calls at once and closes when its pending ones are answered
    const loopClosed = this._loop ? this._loop.close() : null
    await this._batcher.idle()
    await loopClosed
    this._native.close()
  }
}

rejectSyncThrows(RedisStateAdapter, ['get', 'set', 'delete', 'exists', 'getGroup', 'getMany', 'setMany', 'clear', 'keys', 'traceIds', 'items'])

module.exports = { RedisStateAdapter, DEFAULT_STATE_PREFIX }
