'use strict'
/**
 * RabbitMQEventAdapter: a drop-in for `@motiadev/adapter-rabbitmq-events@0.17` (same constructor, queues,
 * arguments, dead-letter topology, message body and `x-retry-count` header), with publisher confirms,
 * real retry delays, FIFO per message group, and every consumer restored after a reconnect.
 */
const { NativeRabbitMq: NativeRabbitMQ } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { configError, fromNative } = require('./errors.js')
const { EventAdapterBase } = require('./events.js')

const EXCHANGE_TYPES = ['direct', 'topic', 'fanout', 'headers']
/** AMQP short strings (routing keys, queue names) hold at most this many bytes. */
const AMQP_SHORT_STR = 255

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

class RabbitMQEventAdapter extends EventAdapterBase {
  /**
   * @param {import('../index').RabbitMQEventAdapterConfig} config
   */
  constructor(config) {
    super('RabbitMQEventAdapter', normalizeRabbitConfig(config), config && config.logger)
    const c = this.config
    try {
      this.native = new NativeRabbitMQ(JSON.stringify(c), (args) => this.onDeliveries(args[0], args[1], args[2]), this.onNativeLog)
    } catch (e) {
      throw fromNative(e)
    }
    const native = this.native
    // Batches are numbered so Rust publishes them in call order while their confirms overlap.
    let seq = 0
    this.publisher = new Batcher((topics, bodies, ts) => native.publish(seq++, topics, bodies, ts), 3, 16)
  }

  /**
   * Motia topics are literal names: `*` and `#` would be AMQP wildcards in a binding (a step on `a.*` would get
   * every `a.x` event), so they are refused; routing keys and queue names (`motia.${topic}.${step}`) are AMQP
   * short strings of at most 255 bytes.
   */
  checkNames(topic, stepName) {
    if (typeof topic !== 'string') return // encodeEvent/subscribe report the type
    if (/[*#]/.test(topic)) throw configError('topic', `"${topic}" contains an AMQP wildcard (* or #); Motia topics are literal names`)
    if (Buffer.byteLength(topic) > AMQP_SHORT_STR) throw configError('topic', `must be at most ${AMQP_SHORT_STR} bytes (AMQP routing key limit)`)
    if (typeof stepName === 'string') {
      const q = `motia.${topic}.${stepName}`
      if (Buffer.byteLength(q) > AMQP_SHORT_STR) {
        throw configError('stepName', `queue name ${q.slice(0, 40)}… is longer than ${AMQP_SHORT_STR} bytes (AMQP limit)`)
      }
    }
  }

  publishRow(event, body, timestamp) {
    return [event.topic, body, timestamp]
  }

  /** Queue `motia.${topic}.${stepName}`; fifo → single active consumer; standard `concurrency` → prefetch. */
  openSubscription(topic, stepName, queue) {
    const fifo = queue.type === 'fifo'
    const limit = fifo ? this.config.prefetch : queue.concurrency || this.config.prefetch
    const id = this.native.subscribe(topic, stepName, fifo, queue.visibilityTimeout, limit)
    return { id, limit, label: `motia.${topic}.${stepName}` }
  }

  /**
   * RFC form. With `queue`: queue `motia.${topic}.${queue}` (declared like a step queue of that name, with its
   * dead-letter queue; `durable` defaults to the adapter's, `exclusive` to false). Without: a fresh queue
   * `motia.${topic}.fanout.${uuid}`, exclusive (unless `exclusive: false`), auto-delete, not durable (unless
   * `durable: true`), no dead-letter queue. `prefetch` is the channel's QoS and the number of handlers run at once.
   */
  openSubscriber(topic, options, queue) {
    const limit = options.prefetch || queue.concurrency || this.config.prefetch
    const r = this.native.subscribeQueue(
      topic,
      options.queue,
      options.exclusive,
      options.durable,
      queue.type === 'fifo',
      queue.visibilityTimeout,
      limit,
    )
    return { id: r.id, limit, label: r.name, fields: { queue: r.name } }
  }

  /** The connection to RabbitMQ is open (lapin's heartbeats keep checking it). */
  async nativeHealthy() {
    return this.native.isConnected()
  }

  /** True while the connection to RabbitMQ is open. */
  isConnected() {
    return this.native.isConnected()
  }
}

module.exports = { RabbitMQEventAdapter, normalizeRabbitConfig }
