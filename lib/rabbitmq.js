'use strict'
/**
 * RabbitMQEventAdapter: a drop-in for `@motiadev/adapter-rabbitmq-events@0.17` (same constructor, queues,
 * arguments, dead-letter topology, message body and `x-retry-count` header), with publisher confirms,
 * real retry delays, FIFO per message group, and every consumer restored after a reconnect.
 */
const { NativeRabbitMq: NativeRabbitMQ } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { configError, fromNative } = require('./errors.js')
const { resolveOptions } = require('./config.js')
const { EventAdapterBase } = require('./events.js')

/** AMQP short strings (routing keys, queue names) hold at most this many bytes. */
const AMQP_SHORT_STR = 255

/** The upstream config; defaults and checks are Rust's (`src/core/amqp/config.rs`); a `tls.ca` Buffer becomes text. */
function normalizeRabbitConfig(config) {
  if (!config || typeof config !== 'object') throw configError('config', 'must be an object with a `url`')
  const tls = config.tls
  const shaped = { ...config }
  if (tls && typeof tls === 'object' && Buffer.isBuffer(tls.ca)) shaped.tls = { ...tls, ca: tls.ca.toString('utf8') }
  return resolveOptions('rabbitmq', shaped)
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
