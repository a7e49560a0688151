'use strict'
/**
 * KafkaEventAdapter: Motia events on Kafka (no upstream package ever existed; the API starts from the RFC's
 * "Example 4", adapted to Motia 0.17's `subscribe(topic, stepName, handler, queueConfig)`).
 *
 * - Consumer group per step: `${groupId}.${stepName}`. Replicas of a step split the topic's partitions; two
 *   steps on one topic each get every event.
 * - `emit` resolves on the delivery report (idempotent producer, acks=all). Key = `messageGroupId`, else
 *   `traceId`, so a group keeps its order within a partition.
 * - Offsets are committed only after the handler settled (at-least-once). Retries, dead-lettering (to
 *   `${topic}.${stepName}.dlq`), FIFO and concurrency come from the shared event core (`lib/events.js`).
 */
const { NativeKafka } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { configError, fromNative } = require('./errors.js')
const { encodeEvent, normalizeQueueConfig, Dispatcher, SubscriptionRegistry, closedError, handled } = require('./events.js')

function nonNegInt(v, field, fallback, min = 0) {
  if (v === undefined || v === null) return fallback
  if (!Number.isInteger(v) || v < min) throw configError(field, `must be an integer >= ${min}`)
  return v
}

function normalizeKafkaConfig(config) {
  if (!config || typeof config !== 'object') throw configError('config', 'must be an object with `brokers`')
  let brokers = config.brokers
  if (typeof brokers === 'string') brokers = brokers.split(',').map((b) => b.trim()).filter(Boolean)
  if (!Array.isArray(brokers) || brokers.length === 0 || brokers.some((b) => typeof b !== 'string' || !b.trim())) {
    throw configError('brokers', 'must be a non-empty array of "host:port" strings')
  }
  const str = (v, field, fallback) => {
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'string' || v.length === 0) throw configError(field, 'must be a non-empty string')
    return v
  }
  const rdkafka = {}
  if (config.rdkafka !== undefined) {
    if (config.rdkafka === null || typeof config.rdkafka !== 'object') throw configError('rdkafka', 'must be an object of librdkafka properties')
    for (const [k, v] of Object.entries(config.rdkafka)) {
      if (!['string', 'number', 'boolean'].includes(typeof v)) throw configError(`rdkafka.${k}`, 'must be a string, number or boolean')
      rdkafka[k] = String(v)
    }
  }
  return {
    clientId: str(config.clientId, 'clientId', 'motia'),
    brokers,
    groupId: str(config.groupId, 'groupId', 'motia-default'),
    numPartitions: nonNegInt(config.numPartitions, 'numPartitions', 3, 1),
    replicationFactor: nonNegInt(config.replicationFactor, 'replicationFactor', 1, 1),
    connectionTimeout: nonNegInt(config.connectionTimeout, 'connectionTimeout', 10000),
    publishTimeout: nonNegInt(config.publishTimeout, 'publishTimeout', 30000, 1),
    shutdownTimeout: nonNegInt(config.shutdownTimeout, 'shutdownTimeout', 10000),
    prefetch: nonNegInt(config.prefetch, 'prefetch', 10, 1),
    rdkafka,
  }
}

class KafkaEventAdapter {
  /** @param {import('../index').KafkaEventAdapterConfig} config */
  constructor(config) {
    const c = normalizeKafkaConfig(config)
    this.config = c
    this.closed = false
    this.subs = new SubscriptionRegistry()
    try {
      this.native = new NativeKafka(JSON.stringify(c), (args) => this.onDeliveries(args[0], args[2]))
    } catch (e) {
      throw fromNative(e)
    }
    const native = this.native
    let seq = 0
    this.publisher = new Batcher((t, k, b, ts) => native.publish(seq++, t, k, b, ts), 4, 16)
    this.settleRows = [[], [], []]
    this.settleScheduled = false
    this.flushSettles = this.flushSettles.bind(this)
  }

  /** Produces one event; resolves on the broker's delivery report. */
  emit(event) {
    if (this.closed) return Promise.reject(closedError('KafkaEventAdapter'))
    const timestamp = Date.now()
    let body
    try {
      body = encodeEvent(event, timestamp)
    } catch (e) {
      return Promise.reject(e)
    }
    const key = event.messageGroupId != null && event.messageGroupId !== '' ? String(event.messageGroupId) : event.traceId != null ? String(event.traceId) : ''
    return this.publisher.push([event.topic, key, body, timestamp], () => undefined)
  }

  /**
   * Consumes `topic` in group `${groupId}.${stepName}`. Resolves once partitions are assigned, or after
   * `connectionTimeout` while Kafka is unreachable (the consumer keeps trying). Never an unhandled rejection.
   */
  subscribe(topic, stepName, handler, options) {
    return handled(this.subscribeInner(topic, stepName, handler, options), `subscribe(${topic}, ${stepName})`)
  }

  async subscribeInner(topic, stepName, handler, options) {
    if (this.closed) throw closedError('KafkaEventAdapter')
    if (typeof topic !== 'string' || topic.length === 0) throw configError('topic', 'must be a non-empty string')
    if (typeof stepName !== 'string' || stepName.length === 0) throw configError('stepName', 'must be a non-empty string')
    if (typeof handler !== 'function') throw configError('handler', 'must be a function')
    const queue = normalizeQueueConfig(options)
    const fifo = queue.type === 'fifo'
    const limit = fifo ? this.config.prefetch : queue.concurrency || this.config.prefetch
    let id
    try {
      id = this.native.subscribe(topic, stepName, limit)
    } catch (e) {
      throw fromNative(e)
    }
    const label = `kafka ${topic} (${this.config.groupId}.${stepName})`
    const dispatcher = new Dispatcher({
      handler,
      queue,
      limit,
      label,
      settle: (d, outcome) => this.settle(id, d.tag, outcome),
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
    if (pending) console.warn(`[motia-native-adapters] ${label}: not consuming yet (${pending}); it keeps trying`)
    return handle
  }

  onDeliveries(subId, json) {
    const entry = this.subs.get(subId)
    let rows
    try {
      rows = JSON.parse(json)
    } catch (e) {
      console.error('[motia-native-adapters] kafka: undecodable delivery batch', e)
      return
    }
    for (const r of rows) {
      const d = { tag: r[0], priorFailures: r[1], event: r[3] }
      if (r.length > 4) d.bad = r[4]
      else if (!r[3] || typeof r[3] !== 'object') d.bad = 'the message body is not an event object'
      if (entry) entry.dispatcher.push(d)
      else this.settle(subId, d.tag, 2)
    }
  }

  settle(subId, tag, outcome) {
    const r = this.settleRows
    r[0].push(subId)
    r[1].push(tag)
    r[2].push(outcome)
    if (!this.settleScheduled) {
      this.settleScheduled = true
      queueMicrotask(this.flushSettles)
    }
  }

  flushSettles() {
    this.settleScheduled = false
    const [s, t, o] = this.settleRows
    if (s.length === 0) return
    this.settleRows = [[], [], []]
    try {
      this.native.settle(s, t, o)
    } catch (e) {
      console.error('[motia-native-adapters] kafka: settle failed (the message is consumed again):', fromNative(e).message)
    }
  }

  async drain(entries) {
    for (const e of entries) e.dispatcher.stop()
    await Promise.all(entries.map((e) => e.dispatcher.idle(this.config.shutdownTimeout)))
    this.flushSettles()
  }

  async removeSubscription(id) {
    const entry = this.subs.remove(id)
    this.native.stop(id)
    if (entry) await this.drain([entry])
    await this.native.remove(id).catch(() => {})
  }

  /** Stops the consumer after running handlers finish, commits their offsets and leaves the group. */
  async unsubscribe(handle) {
    const id = Number(handle && handle.id)
    if (!this.subs.get(id)) return
    await this.removeSubscription(id)
  }

  /** Stops consuming, lets running handlers finish, commits, leaves the groups, flushes the producer. */
  async shutdown() {
    if (this.closed) return
    this.closed = true
    const ids = this.subs.ids()
    const entries = ids.map((id) => this.subs.remove(id)).filter(Boolean)
    for (const id of ids) this.native.stop(id)
    await this.drain(entries)
    await this.publisher.idle()
    await this.native.shutdown()
  }

  async getSubscriptionCount(topic) {
    return this.subs.count(topic)
  }

  async listTopics() {
    return this.subs.topics()
  }
}

module.exports = { KafkaEventAdapter, normalizeKafkaConfig }
