'use strict'
/**
 * Event semantics shared by every event adapter (RabbitMQ, Kafka): what goes on the wire, and how a
 * subscription runs its handler — retries with a real delay, dead-lettering, FIFO per message group,
 * bounded concurrency, and draining on unsubscribe/shutdown. The broker-specific classes only move bytes.
 */
const { configError, serializeError, fromNative, MotiaAdapterError, ErrorCodes } = require('./errors.js')
const { resolveOptions } = require('./config.js')
const { AdapterLog, checkLogger, describe } = require('./log.js')
const { AdapterMetrics, COUNTERS } = require('./metrics.js')

/** What a handler's outcome asks the broker to do with a delivery. */
const WIRE = require('./native.js').wireCodes()
const { logRecovered: RECOVERED_CODE, logError: LOG_ERROR } = WIRE
const Outcome = Object.freeze({ ACK: WIRE.outcomeAck, DEAD_LETTER: WIRE.outcomeDeadLetter, REQUEUE: WIRE.outcomeRequeue })

/** How often an event adapter with subscriptions samples its consumers' lag for `metrics()` (ms). */
const LAG_SAMPLE_MS = 10_000



/**
 * The wire body of an event: `{topic, data, traceId, flows, messageGroupId, timestamp}`, exactly the fields
 * `@motiadev/adapter-rabbitmq-events@0.17` sends. `logger` and `tracer` (live objects core passes) never go out.
 */
function encodeEvent(event, timestamp) {
  if (!event || typeof event !== 'object') throw configError('event', 'must be an object with a topic')
  if (typeof event.topic !== 'string' || event.topic.length === 0) {
    throw configError('event.topic', 'must be a non-empty string')
  }
  let body
  try {
    body = JSON.stringify({
      topic: event.topic,
      data: event.data,
      traceId: event.traceId,
      flows: event.flows,
      messageGroupId: event.messageGroupId,
      timestamp,
    })
  } catch (e) {
    throw serializeError(`the data of event '${event.topic}'`, e)
  }
  return body
}

/** Core always passes a full QueueConfig; direct callers may pass a partial one or none (defaults and checks: Rust's `QueueConfig`). */
function normalizeQueueConfig(options) {
  const q = resolveOptions('queue', options ?? null, 'queueConfig')
  if (q.concurrency === null) q.concurrency = undefined
  return q
}

/**
 * The RFC's `SubscribeOptions {queue, exclusive, durable, prefetch}`. Motia `QueueConfig` fields (`type`,
 * `maxRetries`, `visibilityTimeout`, `delaySeconds`, `concurrency`) may ride along; unset ones take
 * the QueueConfig defaults (standard, 3 retries, no delay), so a failing handler runs 4 times, then its event is
 * dead-lettered (a `queue` group) or dropped with an error log (a fan-out subscriber).
 */
function normalizeSubscribeOptions(options) {
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw configError('options', 'must be an object {queue?, exclusive?, durable?, prefetch?}')
  }
  const out = {}
  if (options.queue !== undefined && options.queue !== null) {
    if (typeof options.queue !== 'string' || options.queue.length === 0) throw configError('options.queue', 'must be a non-empty string')
    out.queue = options.queue
  }
  for (const f of ['exclusive', 'durable']) {
    if (options[f] === undefined || options[f] === null) continue
    if (typeof options[f] !== 'boolean') throw configError(`options.${f}`, 'must be a boolean')
    out[f] = options[f]
  }
  if (options.prefetch !== undefined && options.prefetch !== null) {
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1 || options.prefetch > 65535) {
      throw configError('options.prefetch', 'must be an integer between 1 and 65535')
    }
    out.prefetch = options.prefetch
  }
  const { type, maxRetries, visibilityTimeout, delaySeconds, concurrency } = options
  const queue = normalizeQueueConfig(
    Object.fromEntries(Object.entries({ type, maxRetries, visibilityTimeout, delaySeconds, concurrency }).filter(([, v]) => v !== undefined)),
  )
  return { options: out, queue }
}

/**
 * Runs one subscription's handler over its deliveries.
 *
 * - The handler's promise settles before the delivery is acknowledged. A throw or a rejection with anything
 *   (an Error, a string, `undefined`) is a failure.
 * - A failed delivery is retried in this process after `delaySeconds`, keeping its place (so FIFO order holds
 *   across retries), up to `maxRetries` retries — `maxRetries + 1` runs in all — then dead-lettered.
 *   `priorFailures` (the `x-retry-count` header upstream pods write) counts runs that already failed elsewhere.
 * - `fifo`: deliveries of one `messageGroupId` run one after another in arrival order; groups run in parallel.
 *   `standard`: up to `limit` handlers run at once.
 */
class Dispatcher {
  /**
   * @param {object} o
   * @param {(event: any) => any} o.handler
   * @param {ReturnType<typeof normalizeQueueConfig>} o.queue
   * @param {number} o.limit  parallel handlers (standard)
   * @param {(delivery: any, outcome: number) => void} o.settle
   * @param {string} o.label  for logs, e.g. the queue name
   */
  constructor({ handler, queue, limit, settle, label, log, metrics }) {
    this.log = log || new AdapterLog('events', null)
    this.metrics = metrics || null
    this.handler = handler
    this.queue = queue
    this.limit = Math.max(1, limit || 1)
    this.settle = settle
    this.label = label
    this.active = 0
    this.waiting = []
    this.groups = new Map()
    this.stopping = false
    this.idleWaiters = []
    this.timers = new Set()
  }

  /** `delivery`: `{event, priorFailures, bad?}` plus whatever the adapter needs to settle it. */
  push(delivery) {
    if (this.stopping) {
      this.settle(delivery, Outcome.REQUEUE)
      return
    }
    this.active++
    if (this.queue.type === 'fifo') {
      const key = delivery.event && delivery.event.messageGroupId != null ? String(delivery.event.messageGroupId) : ''
      const tail = this.groups.get(key) || Promise.resolve()
      const next = tail.then(() => this.run(delivery))
      this.groups.set(key, next)
      next.then(() => {
        if (this.groups.get(key) === next) this.groups.delete(key)
      })
    } else if (this.running() <= this.limit) {
      // `active` already counts this delivery
      this.start(delivery)
    } else {
      this.waiting.push(delivery)
    }
  }

  running() {
    return this.active - this.waiting.length
  }

  start(delivery) {
    this.run(delivery).then(() => {
      const next = this.waiting.shift()
      if (next) this.start(next)
    })
  }

  async run(delivery) {
    try {
      if (this.stopping && delivery.started !== true) {
        this.settle(delivery, Outcome.REQUEUE)
        return
      }
      delivery.started = true
      if (delivery.bad) {
        this.log.error('deliver', `${this.label}: dead-lettering a message that is not an event: ${delivery.bad}`, { queue: this.label })
        delivery.note = { attempts: delivery.priorFailures || 0, reason: `not an event: ${delivery.bad}` }
        this.settle(delivery, Outcome.DEAD_LETTER)
        return
      }
      let failures = delivery.priorFailures || 0
      const { maxRetries, delaySeconds } = this.queue
      for (;;) {
        if (failures > maxRetries) {
          if (!delivery.note) delivery.note = { attempts: failures, reason: `failed ${failures} time(s) before (x-retry-count)` }
          this.settle(delivery, Outcome.DEAD_LETTER)
          return
        }
        const t0 = performance.now()
        try {
          await this.handler(delivery.event)
          if (this.metrics) this.metrics.record('handler', (performance.now() - t0) / 1000, null)
          this.settle(delivery, Outcome.ACK)
          return
        } catch (err) {
          if (this.metrics) this.metrics.record('handler', (performance.now() - t0) / 1000, typeof err?.code === 'string' ? err.code : 'HANDLER_ERROR')
          failures++
          if (failures > maxRetries) {
            this.log.error('deliver', `${this.label}: handler failed ${failures} time(s), dead-lettering: ${describe(err)}`, { queue: this.label, attempts: failures })
            delivery.note = { attempts: failures, reason: describe(err) }
            continue
          }
          this.log.warn('deliver', `${this.label}: handler failed (attempt ${failures} of ${maxRetries + 1}), retrying in ${delaySeconds}s: ${describe(err)}`, {
            queue: this.label,
            attempt: failures,
          })
          if (this.metrics) this.metrics.incr(COUNTERS.retried)
          if (delaySeconds > 0) await this.sleep(delaySeconds * 1000)
          if (this.stopping) {
            // Shutting down: hand it back to the broker rather than hold shutdown for the delay.
            this.settle(delivery, Outcome.REQUEUE)
            return
          }
        }
      }
    } catch (err) {
      // settle() itself threw: a bug; never let it become an unhandled rejection.
      this.log.error('deliver', `${this.label}: ${describe(err)}`, { queue: this.label })
    } finally {
      this.active--
      if (this.active === 0) {
        const ws = this.idleWaiters
        this.idleWaiters = []
        for (const w of ws) w()
      }
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(entry)
        resolve()
      }, ms)
      const entry = { t, resolve }
      this.timers.add(entry)
    })
  }

  /** Stops taking deliveries; queued ones go back to the broker, running ones finish. */
  stop() {
    this.stopping = true
    for (const d of this.waiting.splice(0)) {
      this.active--
      this.settle(d, Outcome.REQUEUE)
    }
    for (const { t, resolve } of this.timers) {
      clearTimeout(t)
      resolve()
    }
    this.timers.clear()
  }

  /** Resolves when no handler runs, or after `timeoutMs` (returns false then). */
  idle(timeoutMs) {
    if (this.active === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs)
      this.idleWaiters.push(() => {
        clearTimeout(t)
        resolve(true)
      })
    })
  }
}

/** Local bookkeeping every event adapter exposes: handles, counts, topics, keep-alive while subscribed. */
class SubscriptionRegistry {
  constructor() {
    this.byId = new Map()
    this.keepAlive = null
  }

  add(id, entry) {
    this.byId.set(id, entry)
    if (!this.keepAlive) this.keepAlive = setInterval(() => {}, 1 << 30)
  }

  remove(id) {
    const e = this.byId.get(id)
    this.byId.delete(id)
    if (this.byId.size === 0 && this.keepAlive) {
      clearInterval(this.keepAlive)
      this.keepAlive = null
    }
    return e
  }

  get(id) {
    return this.byId.get(id)
  }

  ids() {
    return [...this.byId.keys()]
  }

  entries() {
    return [...this.byId.entries()]
  }

  count(topic) {
    let n = 0
    for (const e of this.byId.values()) if (e.topic === topic) n++
    return n
  }

  topics() {
    return [...new Set([...this.byId.values()].map((e) => e.topic))]
  }
}

function closedError(what) {
  return new MotiaAdapterError(ErrorCodes.CLOSED, `[${ErrorCodes.CLOSED}] ${what} was shut down`)
}

/** Marks a promise as handled (Motia core does not await subscribe()) while callers that await it still see errors. */
function handled(promise, label, log) {
  promise.catch((e) => log.error('subscribe', `${label} failed`, { error: e }))
  return promise
}

/**
 * What every event adapter does the same way around its native half: validate and encode events, batch publishes,
 * run subscriptions through a Dispatcher, batch settles, drain on unsubscribe/shutdown, count subscriptions.
 *
 * A subclass sets `this.native` (with `subscribe`, `waitReady`, `settle(subs, generations, tags, outcomes)`,
 * `stop`, `remove`, `shutdown`, optionally `settled`) and `this.publisher` (a Batcher), and implements
 * `publishRow(event, body, timestamp)`, `openSubscription(topic, stepName, queue)` → `{ id, limit, label }` (a step) and
 * `openSubscriber(topic, {queue?, exclusive?, durable?, prefetch?}, queue)` → `{ id, limit, label, fields }` (RFC form).
 */
class EventAdapterBase {
  constructor(name, config, logger) {
    this.adapterName = name
    this.log = new AdapterLog(name, checkLogger(logger))
    this._metrics = new AdapterMetrics(name)
    this.config = config
    this.closed = false
    this.subs = new SubscriptionRegistry()
    this.settleRows = [[], [], [], [], []]
    this.settleScheduled = false
    this.flushSettles = this.flushSettles.bind(this)
    this.lagSample = []
    this.lagTimer = null
    /** Lines of the Rust client (reconnects, consumer errors) for the adapter's logger; a reconnect is counted. */
    this.onNativeLog = (args) => {
      const [level, message, code] = args
      if (code === RECOVERED_CODE) {
        this._metrics.incr(COUNTERS.reconnects)
        this.log.info('connection', message)
      } else if (level === LOG_ERROR) this.log.error('connection', message, code ? { code } : undefined)
      else this.log.info('connection', message)
    }
  }

  /** Whether the broker answers: the subclass asks its native client. */
  async nativeHealthy() {
    return false
  }

  /** Broker limits on topic and step/queue names (MOTIA_CONFIG); none by default. */
  checkNames(_topic, _stepName) {}

  /** Publishes one event; resolves once the broker confirmed it. */
  emit(event) {
    if (this.closed) return Promise.reject(closedError(this.adapterName))
    const timestamp = Date.now()
    let body
    try {
      this.checkNames(event && event.topic)
      body = encodeEvent(event, timestamp)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.send(this.publishRow(event, body, timestamp))
  }

  /** Sends one encoded row through the publisher (batched per tick), timing it as `emit`. */
  send(row) {
    return this._metrics.time('emit', this.publisher.push(row, () => undefined))
  }

  /**
   * Two forms, told apart by the second argument:
   * - Motia 0.17: `subscribe(topic, stepName, handler, queueConfig?)` — one competing-consumer group per step.
   * - RFC: `subscribe(topic, handler, {queue?, exclusive?, durable?, prefetch?}?)` — subscribers with the same
   *   `queue` share the topic's events; without `queue` each subscriber gets every event (fan-out).
   * Resolves a SubscriptionHandle `{topic, id, unsubscribe}` once consuming, or after `connectionTimeout` while the
   * broker is unreachable (the consumer keeps trying). A permanent broker error is logged and kept
   * (`subscriptionError`), not thrown: Motia core does not await `subscribe()`, so a rejection would crash the app.
   * Only invalid arguments reject.
   */
  subscribe(topic, stepNameOrHandler, handlerOrOptions, options) {
    if (typeof stepNameOrHandler === 'function') {
      return handled(this.subscribeRfc(topic, stepNameOrHandler, handlerOrOptions), `subscribe(${topic})`, this.log)
    }
    return handled(this.subscribeInner(topic, stepNameOrHandler, handlerOrOptions, options), `subscribe(${topic}, ${stepNameOrHandler})`, this.log)
  }

  async subscribeInner(topic, stepName, handler, options) {
    if (this.closed) throw closedError(this.adapterName)
    if (typeof topic !== 'string' || topic.length === 0) throw configError('topic', 'must be a non-empty string')
    if (typeof stepName !== 'string' || stepName.length === 0) throw configError('stepName', 'must be a non-empty string')
    if (typeof handler !== 'function') throw configError('handler', 'must be a function')
    this.checkNames(topic, stepName)
    const queue = normalizeQueueConfig(options)
    return this.startSubscription(topic, stepName, handler, queue, () => this.openSubscription(topic, stepName, queue))
  }

  async subscribeRfc(topic, handler, rawOptions) {
    if (this.closed) throw closedError(this.adapterName)
    if (typeof topic !== 'string' || topic.length === 0) throw configError('topic', 'must be a non-empty string')
    const { options, queue } = normalizeSubscribeOptions(rawOptions)
    this.checkNames(topic, options.queue ?? undefined)
    return this.startSubscription(topic, options.queue ?? null, handler, queue, () => this.openSubscriber(topic, options, queue))
  }

  /** `open()` starts the native consumer: `{id, limit, label, fields?}` (`fields` go on the handle). */
  async startSubscription(topic, stepName, handler, queue, open) {
    let sub
    try {
      sub = open()
    } catch (e) {
      throw fromNative(e)
    }
    const { id, limit, label } = sub
    const dispatcher = new Dispatcher({
      handler,
      queue,
      limit,
      label,
      log: this.log,
      metrics: this._metrics,
      settle: (d, outcome) => this.settle(id, d.generation, d.tag, outcome, d.note),
    })
    const fields = sub.fields || {}
    const handle = { topic, id: String(id), unsubscribe: () => this.unsubscribe(handle), ...fields }
    this.subs.add(id, { topic, stepName, name: stepName ?? fields.queue ?? fields.group ?? null, dispatcher, handle })
    this.sampleLagEvery(LAG_SAMPLE_MS)
    let pending
    try {
      pending = await this.native.waitReady(id, this.config.connectionTimeout)
    } catch (e) {
      // A permanent error (bad credentials, a queue declared with other arguments). Rejecting would crash a Motia
      // app (core's own wrapper around subscribe() is not awaited), so log it loudly and keep retrying: the
      // consumer starts once the cause is fixed. `subscriptionError(handle)` returns it.
      const err = fromNative(e)
      const entry = this.subs.get(id)
      if (entry) entry.error = err
      this.log.error('subscribe', `${label}: cannot consume; retrying until it is fixed`, { queue: label, error: err })
      return handle
    }
    if (pending) this.log.warn('subscribe', `${label}: not consuming yet (${pending}); it keeps trying`, { queue: label })
    return handle
  }

  /** The permanent error `subscribe()` met for this handle (wrong credentials, 406 …), or null. */
  subscriptionError(handle) {
    const entry = this.subs.get(Number(handle && handle.id))
    return (entry && entry.error) || null
  }

  /** A batch from Rust: `[[tag, priorFailures, redelivered, body(, reason it is not an event)], …]`. */
  onDeliveries(subId, generation, json) {
    const entry = this.subs.get(subId)
    let rows
    try {
      rows = JSON.parse(json)
    } catch (e) {
      this.log.error('deliver', 'undecodable delivery batch', { error: e })
      return
    }
    let redelivered = 0
    for (const r of rows) {
      if (r[2]) redelivered++
      const d = { generation, tag: r[0], priorFailures: r[1], redelivered: r[2], event: r[3] }
      if (r.length > 4) d.bad = r[4]
      else if (!r[3] || typeof r[3] !== 'object') d.bad = 'the message body is not an event object'
      if (entry) entry.dispatcher.push(d)
      else this.settle(subId, generation, d.tag, Outcome.REQUEUE)
    }
    this._metrics.incr(COUNTERS.delivered, rows.length)
    this._metrics.incr(COUNTERS.redelivered, redelivered)
  }

  /** `note` (`{attempts, reason}` of a dead letter) is kept by backends that store it (Redis). */
  settle(subId, generation, tag, outcome, note) {
    const r = this.settleRows
    r[0].push(subId)
    r[1].push(generation)
    r[2].push(tag)
    r[3].push(outcome)
    r[4].push(note ? JSON.stringify(note) : '')
    if (!this.settleScheduled) {
      this.settleScheduled = true
      queueMicrotask(this.flushSettles)
    }
  }

  flushSettles() {
    this.settleScheduled = false
    const [s, g, t, o, n] = this.settleRows
    if (s.length === 0) return
    this.settleRows = [[], [], [], [], []]
    const counts = [0, 0, 0]
    for (const x of o) counts[x === Outcome.ACK ? 0 : x === Outcome.DEAD_LETTER ? 1 : 2]++
    this._metrics.incr(COUNTERS.acked, counts[0])
    this._metrics.incr(COUNTERS.deadLettered, counts[1])
    this._metrics.incr(COUNTERS.requeued, counts[2])
    try {
      this.native.settle(s, g, t, o, n)
      if (this.log.repeats.size) this.log.recovered('settle', 'settle', 'settling works again')
    } catch (e) {
      this.log.repeated('error', 'settle', 'settle', 'settle failed (the broker delivers again)', { error: fromNative(e) })
    }
  }

  /** Resolves when every outcome decided so far has been handed to the broker. */
  async settled() {
    this.flushSettles()
    if (typeof this.native.settled === 'function') await this.native.settled().catch(() => {})
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

  /** Stops the consumer after its running handlers finished and were settled. */
  async unsubscribe(handle) {
    const id = Number(handle && handle.id)
    if (!this.subs.get(id)) return
    await this.removeSubscription(id)
  }

  /** Stops consuming, lets running handlers finish (up to `shutdownTimeout`), waits for emits, closes. */
  async shutdown() {
    if (this.closed) return
    this.closed = true
    clearInterval(this.lagTimer)
    const ids = this.subs.ids()
    const entries = ids.map((id) => this.subs.remove(id)).filter(Boolean)
    for (const id of ids) this.native.stop(id)
    await this.drain(entries)
    await this.publisher.idle()
    await this.native.shutdown()
  }

  /** Emits (calls, latency, errors), deliveries, handler runs, retries, outcomes, the last lag sample: see README "Metrics". */
  metrics() {
    return { ...this._metrics.snapshot(), lag: this.lagSample }
  }

  /**
   * Each local subscription's backlog as the broker tells it: `[{topic, step, waiting, unsettled, error?}]`
   * (`step`: the step, RFC queue or group; `unsettled` null where the broker does not tell it). `metrics()`
   * carries the last sample, taken every 10 s while there are subscriptions.
   */
  async consumerLag() {
    if (this.closed) throw closedError(this.adapterName)
    const rows = await Promise.all(
      this.subs.entries().map(async ([id, e]) => {
        const row = { topic: e.topic, step: e.name, waiting: null, unsettled: null }
        try {
          const lag = await this.native.lag(id)
          row.waiting = lag.waiting
          row.unsettled = lag.unsettled ?? null
        } catch (err) {
          row.error = fromNative(err).code
        }
        return row
      }),
    )
    this.lagSample = rows.filter((r) => r.waiting !== null)
    return rows
  }

  sampleLagEvery(ms) {
    if (this.lagTimer || typeof this.native.lag !== 'function') return
    this.lagTimer = setInterval(() => {
      if (this.subs.ids().length === 0 || this.closed) return
      this.consumerLag().catch(() => {})
    }, ms)
    this.lagTimer.unref()
  }

  /** True while the broker connection is up (and a round trip answers, where the backend has one). */
  async isHealthy() {
    if (this.closed) return false
    try {
      return (await this.nativeHealthy()) === true
    } catch {
      return false
    }
  }

  async getSubscriptionCount(topic) {
    return this.subs.count(topic)
  }

  async listTopics() {
    return this.subs.topics()
  }
}

module.exports = {
  EventAdapterBase,
  Outcome,
  LAG_SAMPLE_MS,
  encodeEvent,
  normalizeQueueConfig,
  normalizeSubscribeOptions,
  Dispatcher,
  SubscriptionRegistry,
  closedError,
  handled,
  describe,
}
