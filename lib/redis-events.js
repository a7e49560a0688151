'use strict'
/**
 * RedisEventAdapter: Motia events on Redis Streams, so one Redis serves a whole fleet (the role BullMQ plays
 * in 0.17, without its losses). Keys, claims and leases: `src/core/redis/events.rs`; retries, dead-lettering,
 * FIFO per message group and concurrency: the shared event core (`lib/events.js`).
 *
 * - A stream per (topic, step) `${keyPrefix}${topic}:q:${step}` with one consumer group; steps register in
 *   `${keyPrefix}${topic}:steps`, so an emit from any process reaches every step of the fleet.
 * - `emit` resolves when Redis holds the entry in every step's stream (one atomic script per event).
 * - Each event is handled once per step across replicas; entries a dead consumer held are claimed by a live
 *   one after `visibilityTimeout`; after `maxRetries` retries (or `maxRetries + 2` deliveries that crashed
 *   their consumer) an event moves to `${keyPrefix}${topic}:dlq:${step}` with the reason and attempt count.
 * - fifo steps: one consumer at a time across the fleet (lease renewed from Rust), in order per message group.
 */
const { NativeRedisEvents, createRedisEventsLoop } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { normalizeRedis, resolveOptions } = require('./config.js')
const { configError, fromNative, MotiaAdapterError } = require('./errors.js')
const { jsLoopAllowed } = require('./jsloop.js')
const { EventAdapterBase } = require('./events.js')

/** Options mixed into a flat connection, then the second argument; defaults and checks are Rust's (`RedisEventsOptions`). */
function normalizeOptions(legacy, options) {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw configError('options', 'must be an object {keyPrefix?, prefetch?, connectionTimeout?, shutdownTimeout?, logger?}')
  }
  const o = { ...legacy, ...(options || {}) }
  return { ...resolveOptions('redis-events', o, 'options'), logger: o.logger }
}

class RedisEventAdapter extends EventAdapterBase {
  /**
   * `new RedisEventAdapter(connection?, options?)`: the connection shapes of the other Redis classes (a
   * node-redis client, which is read and never used, `{url, socket, username, password, database}`, or the flat
   * `{host, port, password, …}` with the options mixed in).
   */
  constructor(connection, options) {
    const { connection: conn, legacy } = normalizeRedis(connection)
    const config = normalizeOptions(legacy, options)
    super('RedisEventAdapter', config, config.logger)
    this.keyPrefix = config.keyPrefix
    const connJson = JSON.stringify(conn)
    try {
      this.native = new NativeRedisEvents(connJson, config.keyPrefix, (args) => this.onDeliveries(args[0], args[1], args[2]), this.onNativeLog)
      // emits on Node's own event loop (no thread hop, in call order on one connection); null for TLS, Bun, Deno
      this.loop = jsLoopAllowed() ? createRedisEventsLoop(connJson, config.keyPrefix, MotiaAdapterError, this._metrics.native) : null
    } catch (e) {
      throw fromNative(e)
    }
    this._metrics.loops.push(this.loop)
    this._metrics.pair = this.native
    const native = this.native
    // one batch at a time: emits from one process reach Redis in call order
    this.publisher = new Batcher((t, b) => native.publish(t, b), 2, 1)
  }

  nativeHealthy() {
    return this.native.ping()
  }

  publishRow(event, body) {
    return [event.topic, body]
  }

  /** The event-loop connection records `emit` itself; without it, the batched tokio path. */
  send(row) {
    return this.loop ? this.loop.emit(row[0], row[1]) : super.send(row)
  }

  /**
   * Topics with subscribers anywhere in the fleet (the step and fan-out registries, read with SCAN), plus this
   * process's own; sorted. Upstream lists only the topics subscribed in the calling process.
   */
  async listTopics() {
    const local = await super.listTopics()
    let fleet
    try {
      fleet = await this.native.topics()
    } catch (e) {
      throw fromNative(e)
    }
    return [...new Set([...local, ...fleet])].sort()
  }

  /** Then closes the event-loop connection once its emits are answered. */
  async shutdown() {
    const first = !this.closed
    await super.shutdown()
    if (first && this.loop) await this.loop.close()
  }

  spec(topic, name, queue, limit) {
    return {
      topic,
      name,
      fifo: queue.type === 'fifo',
      visibilityTimeoutS: queue.visibilityTimeout,
      limit,
      maxDeliveries: queue.maxRetries + 2,
    }
  }

  /** Stream `${keyPrefix}${topic}:q:${stepName}`; at most `limit` events held unsettled. */
  openSubscription(topic, stepName, queue) {
    const limit = queue.type === 'fifo' ? this.config.prefetch : queue.concurrency || this.config.prefetch
    const r = this.native.subscribe(this.spec(topic, stepName, queue, limit))
    return { id: r.id, limit, label: `redis ${topic} (${stepName})` }
  }

  /**
   * RFC form. With `queue`: like a step of that name (durable, with its dead-letter stream). Without: a fresh
   * fan-out subscriber `fanout.${uuid}` that gets every event emitted while it lives (its stream is deleted on
   * unsubscribe, or by an emit once its registration expired after its process died). `exclusive`/`durable` have
   * no Redis meaning (ignored).
   */
  openSubscriber(topic, options, queue) {
    const limit = options.prefetch || queue.concurrency || this.config.prefetch
    const r = this.native.subscribe(this.spec(topic, options.queue ?? undefined, queue, limit))
    return { id: r.id, limit, label: `redis ${topic} (${r.name})`, fields: { queue: r.name } }
  }
}

module.exports = { RedisEventAdapter }
