'use strict'
/**
 * Motia streams in Redis: RedisStreamAdapterManager (for `adapters.streams`) and RedisStreamAdapter.
 * Layout-compatible with @motiadev/adapter-redis-streams@0.17: one HASH per (stream, group)
 * `${keyPrefix}${streamName}:group:${groupId}`, field = id, value = JSON {...data, id, _createdAt};
 * events on `motia:stream:events:${streamName}:${groupId}[:${id}]` as {type, data}.
 */
const { NativeRedisStreams, createRedisStreamsLoop, createRedisSubscriberLoop, streamChannel, DEFAULT_STREAM_PREFIX } = require('./native.js')
const { normalizeRedis, resolveOptions } = require('./config.js')
const { fromNative, callNative: call, configError, serializeError, MotiaAdapterError, rejectSyncThrows } = require('./errors.js')
const { AdapterMetrics } = require('./metrics.js')
const { jsLoopAllowed } = require('./jsloop.js')
const { AdapterLog, checkLogger } = require('./log.js')
const { Batcher } = require('./batcher.js')

const { streamGet: OP_GET, streamSetFull: OP_SET_FULL, streamSetOpen: OP_SET_OPEN, streamDelete: OP_DELETE } = require('./native.js').wireCodes()
const same = (v) => v

const INTERNAL = Symbol('motia-native-adapters.internal')

function channelName(streamName, channel) {
  if (!channel || typeof channel !== 'object' || channel.groupId === undefined || channel.groupId === null) {
    throw configError('channel', 'must be {groupId, id?}')
  }
  // named in Rust (core::redis::keys), like the channels the set/delete scripts publish on
  return streamChannel(streamName, `${channel.groupId}`, channel.id === undefined || channel.id === null ? null : `${channel.id}`)
}

/** One native connection pair (data + pub/sub) and the subscription registry, shared by a manager's streams. */
class StreamCore {
  constructor(connection, options) {
    const { connection: conn, legacy } = normalizeRedis(connection)
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw configError('options', 'must be an object {keyPrefix?}')
    }
    const opts = { ...legacy, ...(options || {}) }
    this.log = new AdapterLog('RedisStreamAdapter', checkLogger(opts.logger))
    this.keyPrefix = resolveOptions('redis-streams', { keyPrefix: opts.keyPrefix }, 'options').keyPrefix
    this.handlers = new Map() // channel -> Set<{owner, handler}>
    this.keepAlive = null
    this.closed = false
    this.metrics = new AdapterMetrics('RedisStreamAdapter')
    const onMessage = (args) => this.dispatch(args[0], args[1])
    const connJson = JSON.stringify(conn)
    try {
      this.native = new NativeRedisStreams(connJson, this.keyPrefix, onMessage)
      // item get/set/delete on Node's own event loop (no thread hop); null for TLS, Bun, Deno
      this.loop = jsLoopAllowed() ? createRedisStreamsLoop(connJson, this.keyPrefix, MotiaAdapterError, this.metrics.native) : null
      // pub/sub on the event loop too (a message reaches its handler with no thread hop); null also with sentinels
      this.sub = this.loop ? createRedisSubscriberLoop(connJson, MotiaAdapterError, this.metrics.native, (ch, p) => this.dispatch(ch, p)) : null
    } catch (e) {
      throw fromNative(e)
    }
    this.metrics.loops.push(this.loop, this.sub)
    this.metrics.pair = this.native
    const native = this.native
    this.batcher = new Batcher((k, s, g, i, p, n) => native.batch(k, s, g, i, p, n), 6)
    // with the event-loop path the tokio connection serves only getGroup/query/clear/send: open it lazily
    if (!this.loop) this.native.warmUp()
  }

  dispatch(channel, payload) {
    const set = this.handlers.get(channel)
    if (!set || set.size === 0) return
    let event
    try {
      event = JSON.parse(payload)
    } catch {
      return // not ours: ignore foreign non-JSON messages
    }
    for (const { handler } of set) {
      try {
        const r = handler(event)
        if (r && typeof r.then === 'function') r.then(undefined, (e) => this.log.error('subscribe', 'stream subscriber failed', { channel, error: e }))
      } catch (e) {
        this.log.error('subscribe', 'stream subscriber failed', { channel, error: e })
      }
    }
  }

  updateKeepAlive() {
    let count = 0
    for (const s of this.handlers.values()) count += s.size
    if (count > 0 && !this.keepAlive && !this.closed) this.keepAlive = setInterval(() => {}, 1 << 30)
    if ((count === 0 || this.closed) && this.keepAlive) {
      clearInterval(this.keepAlive)
      this.keepAlive = null
    }
  }

  async subscribe(owner, channel, handler) {
    if (typeof handler !== 'function') throw configError('handler', 'must be a function')
    let set = this.handlers.get(channel)
    const first = !set || set.size === 0
    if (!set) this.handlers.set(channel, (set = new Set()))
    set.add({ owner, handler })
    this.updateKeepAlive()
    if (first) await call((this.sub || this.native).subscribe(channel))
  }

  async unsubscribe(owner, channel) {
    const set = this.handlers.get(channel)
    if (!set) return
    for (const entry of [...set]) if (entry.owner === owner) set.delete(entry)
    this.updateKeepAlive()
    if (set.size === 0) {
      this.handlers.delete(channel)
      await call((this.sub || this.native).unsubscribe(channel))
    }
  }

  /** PING on the connection get/set use. */
  async isHealthy() {
    try {
      return await (this.loop ? this.loop.ping() : this.native.ping())
    } catch {
      return false
    }
  }

  async close() {
    if (this.closed) return
    this.closed = true
    const loopClosed = Promise.all([this.loop && this.loop.close(), this.sub && this.sub.close()])
    await this.batcher.idle()
    await loopClosed
    this.handlers.clear()
    this.updateKeepAlive()
    await this.native.close()
  }
}

/** Structurally identical to @motiadev/core's abstract `StreamAdapter` (core is ESM-only and never uses instanceof). */
class StreamAdapterBase {
  constructor(streamName) {
    this.streamName = streamName
  }
  async send(_channel, _event) {}
  async subscribe(_channel, _handler) {}
  async unsubscribe(_channel) {}
  async clear(_groupId) {}
  async query(_groupId, _filter) {
    return []
  }
}

class RedisStreamAdapter extends StreamAdapterBase {
  /**
   * `new RedisStreamAdapter(streamName, connection?, options?)` (0.17 shape; a node-redis client as the
   * connection is read, never used) or `new RedisStreamAdapter({...connection, keyPrefix, streamName?})` (RFC/README shape).
   */
  constructor(streamName, connection, options) {
    if (connection === INTERNAL) {
      super(streamName)
      this._core = options
      this._owned = false
    } else {
      let name = streamName
      let conn = connection
      let opts = options
      if (typeof streamName === 'object' && streamName !== null) {
        conn = streamName
        name = streamName.streamName ?? 'default'
        opts = { keyPrefix: streamName.keyPrefix, ...(connection || {}) }
      }
      if (typeof name !== 'string' || name === '') throw configError('streamName', 'must be a non-empty string')
      // 0.17 passes (streamName, config, sharedClient): a client in the third slot is the connection
      if (options && typeof options === 'object' && 'isOpen' in options && 'connect' in options) {
        opts = connection
        conn = options
      }
      super(name)
      this._core = new StreamCore(conn, opts)
      this._owned = true
    }
    this.keyPrefix = this._core.keyPrefix
  }

  get _native() {
    return this._core.native
  }

  _m(method, promise) {
    return this._core.metrics.time(method, promise)
  }

  /** Metrics of the connection this stream shares with its manager's streams: see README "Metrics". */
  metrics() {
    return this._core.metrics.snapshot()
  }

  /** True when Redis answers a PING. */
  isHealthy() {
    return this._core.isHealthy()
  }

  /** The item, or null. */
  get(groupId, id) {
    const loop = this._core.loop
    if (loop) return loop.get(this.streamName, `${groupId}`, `${id}`)
    return this._m('get', this._core.batcher.push([OP_GET, this.streamName, `${groupId}`, `${id}`, '', 0], same))
  }

  /** Stores `{...data, id, _createdAt}` atomically (read, write, publish in one script) and returns it. `_createdAt` is kept on update. */
  set(groupId, id, data) {
    let json
    let item
    let open = false
    try {
      if (data && data._createdAt) {
        item = { ...data, id, _createdAt: data._createdAt }
        json = JSON.stringify(item)
      } else {
        item = { ...data, id }
        delete item._createdAt
        json = JSON.stringify(item).slice(0, -1)
        open = true
      }
    } catch (e) {
      return Promise.reject(serializeError(`stream item "${id}"`, e))
    }
    const now = open ? Date.now() : 0
    const loop = this._core.loop
    // the native side fills in item._createdAt (stored one on update, else now) and resolves with item
    if (loop) return loop.set(this.streamName, `${groupId}`, `${id}`, json, open, now, item)
    // like 0.17, resolve with the item object itself ({...data, id, _createdAt})
    const done = open ? (r) => ((item._createdAt = r[1] === '' ? now : Number(r[1])), item) : () => item
    return this._m('set', this._core.batcher.push([open ? OP_SET_OPEN : OP_SET_FULL, this.streamName, `${groupId}`, `${id}`, json, now], done))
  }

  /** Removes the item atomically and publishes a delete event; returns it, or null. */
  delete(groupId, id) {
    const loop = this._core.loop
    if (loop) return loop.delete(this.streamName, `${groupId}`, `${id}`)
    return this._m('delete', this._core.batcher.push([OP_DELETE, this.streamName, `${groupId}`, `${id}`, '', 0], same))
  }

  /** Every item of the group, ascending by `_createdAt`. */
  getGroup(groupId) {
    return this._m('getGroup', call(this._native.getGroup(this.streamName, `${groupId}`))).then(JSON.parse)
  }

  /** `where` (strict equality), `orderBy`/`orderDirection`, `offset`, `limit`, evaluated in Rust. */
  query(groupId, filter = {}) {
    const f = filter || {}
    const where = f.where && typeof f.where === 'object' ? f.where : {}
    const whereUndefined = Object.keys(where).filter((k) => where[k] === undefined)
    const q = {
      where,
      whereUndefined,
      orderBy: f.orderBy === undefined || f.orderBy === null ? null : String(f.orderBy),
      orderDirection: f.orderDirection ?? null,
      limit: typeof f.limit === 'number' ? f.limit : null,
      offset: typeof f.offset === 'number' ? f.offset : null,
    }
    let text
    try {
      text = JSON.stringify(q)
    } catch (e) {
      return Promise.reject(serializeError('query filter', e))
    }
    return this._m('query', call(this._native.query(this.streamName, `${groupId}`, text))).then(JSON.parse)
  }

  /** Deletes the whole group. */
  clear(groupId) {
    return this._m('clear', call(this._native.clear(this.streamName, `${groupId}`)))
  }

  /** Publishes `event` on the group channel (or the item channel with `channel.id`). */
  send(channel, event) {
    let text
    try {
      channelName(this.streamName, channel)
      text = JSON.stringify(event)
    } catch (e) {
      return Promise.reject(e.code ? e : serializeError('event', e))
    }
    const id = channel.id === undefined || channel.id === null ? null : `${channel.id}`
    return this._m('send', call(this._native.send(this.streamName, `${channel.groupId}`, id, text)))
  }

  /** Live `{type, data}` events of a group (`{groupId}`) or one item (`{groupId, id}`), from every replica. */
  async subscribe(channel, handler) {
    await this._core.subscribe(this, channelName(this.streamName, channel), handler)
  }

  async unsubscribe(channel) {
    await this._core.unsubscribe(this, channelName(this.streamName, channel))
  }

  /** Drops this stream's subscriptions (and closes the connections of a standalone adapter). */
  async cleanup() {
    for (const [ch, set] of this._core.handlers) for (const e of set) if (e.owner === this) await this._core.unsubscribe(this, ch)
    if (this._owned) await this._core.close()
  }

  /**
   * Lets an adapter built the RFC way (`new RedisStreamAdapter({host, port, password, keyPrefix})`) be given
   * as Motia 0.17's `adapters.streams`, which takes a StreamAdapterManager: the stream it returns shares this
   * adapter's connections and `keyPrefix`. Cheap: no connection, no I/O.
   */
  createStream(streamName) {
    return new RedisStreamAdapter(`${streamName}`, INTERNAL, this._core)
  }

  /** As a manager: closes the shared connections (of an adapter that opened them); every stream's subscriptions end. */
  async shutdown() {
    if (this._owned) await this._core.close()
  }
}

/** `adapters.streams` for Motia 0.17: one shared connection (and one pub/sub connection) for every stream. */
class RedisStreamAdapterManager {
  constructor(connection, options) {
    this._core = new StreamCore(connection, options)
    this.keyPrefix = this._core.keyPrefix
  }

  /** Cheap: no connection, no I/O (Motia calls it for every stream on every step execution). */
  createStream(streamName) {
    return new RedisStreamAdapter(`${streamName}`, INTERNAL, this._core)
  }

  /** Metrics of the shared connection (every stream's calls): see README "Metrics". */
  metrics() {
    return this._core.metrics.snapshot()
  }

  /** True when Redis answers a PING. */
  isHealthy() {
    return this._core.isHealthy()
  }

  /** Closes both connections; subscriptions end. */
  async shutdown() {
    await this._core.close()
  }
}

rejectSyncThrows(RedisStreamAdapter, ['get', 'set', 'delete', 'getGroup', 'query', 'clear', 'send'])

module.exports = { RedisStreamAdapter, RedisStreamAdapterManager, StreamAdapterBase, DEFAULT_STREAM_PREFIX }
