'use strict'
/**
 * RabbitMQEventAdapter: a drop-in for `@motiadev/adapter-rabbitmq-events@0.17` (same constructor, queues,
 * arguments, dead-letter topology, message body and `x-retry-count` header), with publisher confirms,
 * real retry delays, FIFO per message group, and every consumer restored after a reconnect.
 */
const { NativeRabbitMq: NativeRabbitMQ } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { configError, fromNative } = require('./errors.js')
const {
  Outcome,
  encodeEvent,
  normalizeQueueConfig,
  Dispatcher,
  SubscriptionRegistry,
  closedError,
  handled,
} = require('./events.js')

const EXCHANGE_TYPES = ['direct', 'topic', 'fanout', 'headers']

function positiveInt(v, field, fallback) {
  if (v === undefined || v === null) return fallback
  if (!Number.isInteger(v) || v < 0) throw configError(field, 'must be a non-negative integer')
  return v
}

function bool(v, field, fallback) {
  if (v === undefined || v === null) return fallback
  if (typeof v !== 'boolean') throw configError(field, 'must be a boolean')
  return v
}

function str(v, field, fallback) {
  if (v === undefined || v === null) {
    if (fallback === undefined) throw configError(field, 'is required')
    return fallback
  }
  if (typeof v !== 'string' || v.length === 0) throw configError(field, 'must be a non-empty string')
  return v
}

/** Fills the upstream defaults (an explicit `undefined` also gets the default, unlike upstream). */
function normalizeRabbitConfig(config) {
  if (!config || typeof config !== 'object') throw configError('config', 'must be an object with a `url`')
  const url = str(config.url, 'url')
  if (!/^amqps?:\/\//i.test(url)) throw configError('url', 'must start with amqp:// or amqps://')
  const exchangeName = str(config.exchangeName, 'exchangeName', 'motia.events')
  const exchangeType = str(config.exchangeType, 'exchangeType', 'topic')
  if (!EXCHANGE_TYPES.includes(exchangeType)) {
    throw configError('exchangeType', `must be one of ${EXCHANGE_TYPES.map((t) => `'${t}'`).join(', ')}`)
  }
  const prefetch = positiveInt(config.prefetch, 'prefetch', 1)
  if (prefetch < 1 || prefetch > 65535) throw configError('prefetch', 'must be between 1 and 65535')
  const tls = config.tls
  if (tls !== undefined && (tls === null || typeof tls !== 'object')) throw configError('tls', 'must be an object')
  const ca = tls && tls.ca !== undefined ? (Buffer.isBuffer(tls.ca) ? tls.ca.toString('utf8') : tls.ca) : undefined
  if (ca !== undefined && typeof ca !== 'string') throw configError('tls.ca', 'must be a PEM string or Buffer')
  return {
    url,
    exchangeName,
    exchangeType,
    durable: bool(config.durable, 'durable', true),
    autoDelete: bool(config.autoDelete, 'autoDelete', false),
    connectionTimeout: positiveInt(config.connectionTimeout, 'connectionTimeout', 10000),
    reconnectDelay: positiveInt(config.reconnectDelay, 'reconnectDelay', 5000),
    prefetch,
    deadLetterExchange: str(config.deadLetterExchange, 'deadLetterExchange', `${exchangeName}.dlq`),
    deadLetterRoutingKey: str(config.deadLetterRoutingKey, 'deadLetterRoutingKey', 'dlq'),
    publishTimeout: positiveInt(config.publishTimeout, 'publishTimeout', 30000),
    shutdownTimeout: positiveInt(config.shutdownTimeout, 'shutdownTimeout', 10000),
    ca,
  }
}

class RabbitMQEventAdapter {
  /**
   * @param {import('../index').RabbitMQEventAdapterConfig} config
   */
  constructor(config) {
    const c = normalizeRabbitConfig(config)
    this.config = c
    this.closed = false
    this.subs = new SubscriptionRegistry()
    this.native = new NativeRabbitMQ(JSON.stringify(c), (args) => this.onDeliveries(args[0], args[1], args[2]))
    const native = this.native
    // Batches are numbered so Rust publishes them in call order while their confirms overlap.
    let seq = 0
    this.publisher = new Batcher((topics, bodies, ts) => native.publish(seq++, topics, bodies, ts), 3, 16)
    this.settleRows = [[], [], [], []]
    this.settleScheduled = false
    this.flushSettles = this.flushSettles.bind(this)
  }

  /** Publishes one event; resolves once RabbitMQ confirmed it (persisted when `durable`). */
  emit(event) {
    if (this.closed) return Promise.reject(closedError('RabbitMQEventAdapter'))
    const timestamp = Date.now()
    let body
    try {
      body = encodeEvent(event, timestamp)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.publisher.push([event.topic, body, timestamp], () => undefined)
  }

  /**
   * Consumes `motia.${topic}.${stepName}`. Resolves when consuming, or — if RabbitMQ is unreachable — after
   * `connectionTimeout` with a handle whose consumer starts when the broker is back. Rejects only on a
   * permanent error (bad credentials, a queue declared with other arguments); the rejection is marked
   * handled, because Motia core does not await `subscribe()`.
   */
  subscribe(topic, stepName, handler, options) {
    return handled(this.subscribeInner(topic, stepName, handler, options), `subscribe(${topic}, ${stepName})`)
  }

  async subscribeInner(topic, stepName, handler, options) {
    if (this.closed) throw closedError('RabbitMQEventAdapter')
    if (typeof topic !== 'string' || topic.length === 0) throw configError('topic', 'must be a non-empty string')
    if (typeof stepName !== 'string' || stepName.length === 0) {
      throw configError('stepName', 'must be a non-empty string')
    }
    if (typeof handler !== 'function') throw configError('handler', 'must be a function')
    const queue = normalizeQueueConfig(options)
    const fifo = queue.type === 'fifo'
    const prefetch = fifo ? this.config.prefetch : queue.concurrency || this.config.prefetch
    let id
    try {
      id = this.native.subscribe(topic, stepName, fifo, queue.visibilityTimeout, prefetch)
    } catch (e) {
      throw fromNative(e)
    }
    const label = `motia.${topic}.${stepName}`
    const dispatcher = new Dispatcher({
      handler,
      queue,
      limit: prefetch,
      label,
      settle: (d, outcome) => this.settle(id, d.generation, d.tag, outcome),
    })
    const handle = { topic, id: String(id), unsubscribe: () => this.unsubscribe(handle) }
    this.subs.add(id, { topic, stepName, dispatcher, handle })
    let pending
    try {
      pending = await this.native.waitReady(id, this.config.connectionTimeout)
    } catch (e) {
      await this.removeSubscription(id)
      throw fromNative(e)
    }
    if (pending) {
      console.warn(
        `[motia-native-adapters] ${label}: RabbitMQ is not reachable yet (${pending}); the consumer starts when it is`,
      )
    }
    return handle
  }

  onDeliveries(subId, generation, json) {
    const entry = this.subs.get(subId)
    let rows
    try {
      rows = JSON.parse(json)
    } catch (e) {
      console.error('[motia-native-adapters] rabbitmq: undecodable delivery batch', e)
      return
    }
    for (const r of rows) {
      const d = { generation, tag: r[0], priorFailures: r[1], redelivered: r[2], event: r[3] }
      if (r.length > 4) d.bad = r[4]
      else if (!r[3] || typeof r[3] !== 'object') d.bad = 'the message body is not an event object'
      if (entry) entry.dispatcher.push(d)
      else this.settle(subId, generation, d.tag, Outcome.REQUEUE)
    }
  }

  settle(subId, generation, tag, outcome) {
    const r = this.settleRows
    r[0].push(subId)
    r[1].push(generation)
    r[2].push(tag)
    r[3].push(outcome)
    if (!this.settleScheduled) {
      this.settleScheduled = true
      queueMicrotask(this.flushSettles)
    }
  }

  flushSettles() {
    this.settleScheduled = false
    const [s, g, t, o] = this.settleRows
    if (s.length === 0) return
    this.settleRows = [[], [], [], []]
    try {
      this.native.settle(s, g, t, o)
    } catch (e) {
      console.error('[motia-native-adapters] rabbitmq: ack failed (the broker redelivers):', fromNative(e).message)
    }
  }

  /** Resolves when every ack decided so far has been handed to the broker. */
  async settled() {
    this.flushSettles()
    await this.native.settled().catch(() => {})
  }

  async drain(entries) {
    for (const e of entries) e.dispatcher.stop()
    await Promise.all(entries.map((e) => e.dispatcher.idle(this.config.shutdownTimeout)))
    await this.settled()
  }

  async removeSubscription(id) {
    const entry = this.subs.remove(id)
    this.native.stop(id)
    if (entry) await this.drain([entry])
    await this.native.remove(id).catch(() => {})
  }

  /** Stops the consumer (running handlers finish and are acked first). The queue and its binding remain. */
  async unsubscribe(handle) {
    const id = Number(handle && handle.id)
    if (!this.subs.get(id)) return
    await this.removeSubscription(id)
  }

  /**
   * Stops consuming, lets running handlers finish (up to `shutdownTimeout`), waits for pending emits, and
   * closes the connection. The process can then exit on its own.
   */
  async shutdown() {
    if (this.closed) return
    this.closed = true
    const ids = this.subs.ids()
    const entries = ids.map((id) => this.subs.remove(id)).filter(Boolean)
    for (const id of ids) this.native.stop(id)
    await this.drain(entries)
    await this.publisher.idle()
    await new Promise((r) => setImmediate(r))
    await this.native.shutdown()
  }

  async getSubscriptionCount(topic) {
    return this.subs.count(topic)
  }

  async listTopics() {
    return this.subs.topics()
  }

  /** True while the connection to RabbitMQ is open. */
  isConnected() {
    return this.native.isConnected()
  }
}

module.exports = { RabbitMQEventAdapter, normalizeRabbitConfig }
