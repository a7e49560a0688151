'use strict'
/**
 * Event semantics shared by every event adapter (RabbitMQ, Kafka): what goes on the wire, and how a
 * subscription runs its handler — retries with a real delay, dead-lettering, FIFO per message group,
 * bounded concurrency, and draining on unsubscribe/shutdown. The broker-specific classes only move bytes.
 */
const { configError, serializeError, MotiaAdapterError, ErrorCodes } = require('./errors.js')

/** What a handler's outcome asks the broker to do with a delivery. */
const Outcome = Object.freeze({ ACK: 0, DEAD_LETTER: 1, REQUEUE: 2 })

const DEFAULT_QUEUE_CONFIG = Object.freeze({ type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 })

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

function nonNegative(value, field, fallback) {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw configError(field, 'must be a non-negative number')
  }
  return value
}

/** Core always passes a full QueueConfig; direct callers may pass a partial one or none. */
function normalizeQueueConfig(options) {
  const o = { ...DEFAULT_QUEUE_CONFIG, ...(options || {}) }
  if (o.type !== 'fifo' && o.type !== 'standard') throw configError('queueConfig.type', "must be 'fifo' or 'standard'")
  const concurrency = o.concurrency === undefined || o.concurrency === null ? undefined : o.concurrency
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw configError('queueConfig.concurrency', 'must be a positive integer')
  }
  return {
    type: o.type,
    maxRetries: Math.floor(nonNegative(o.maxRetries, 'queueConfig.maxRetries', 3)),
    visibilityTimeout: nonNegative(o.visibilityTimeout, 'queueConfig.visibilityTimeout', 900),
    delaySeconds: nonNegative(o.delaySeconds, 'queueConfig.delaySeconds', 0),
    concurrency,
  }
}

function describe(err) {
  if (err instanceof Error) return err.message
  try {
    return typeof err === 'string' ? err : JSON.stringify(err)
  } catch {
    return String(err)
  }
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
  constructor({ handler, queue, limit, settle, label }) {
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
        console.error(`[motia-native-adapters] ${this.label}: dead-lettering a message that is not an event: ${delivery.bad}`)
        this.settle(delivery, Outcome.DEAD_LETTER)
        return
      }
      let failures = delivery.priorFailures || 0
      const { maxRetries, delaySeconds } = this.queue
      for (;;) {
        if (failures > maxRetries) {
          this.settle(delivery, Outcome.DEAD_LETTER)
          return
        }
        try {
          await this.handler(delivery.event)
          this.settle(delivery, Outcome.ACK)
          return
        } catch (err) {
          failures++
          if (failures > maxRetries) {
            console.error(
              `[motia-native-adapters] ${this.label}: handler failed ${failures} time(s), dead-lettering: ${describe(err)}`,
            )
            continue
          }
          console.warn(
            `[motia-native-adapters] ${this.label}: handler failed (attempt ${failures} of ${maxRetries + 1}), retrying in ${delaySeconds}s: ${describe(err)}`,
          )
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
      console.error(`[motia-native-adapters] ${this.label}: ${describe(err)}`)
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
function handled(promise, label) {
  promise.catch((e) => console.error(`[motia-native-adapters] ${label}:`, e && e.message ? e.message : e))
  return promise
}

module.exports = {
  Outcome,
  DEFAULT_QUEUE_CONFIG,
  encodeEvent,
  normalizeQueueConfig,
  Dispatcher,
  SubscriptionRegistry,
  closedError,
  handled,
  describe,
}
