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
const { DEFAULT_HEALTH_TIMEOUT_MS } = require('./metrics.js')
const { NativeKafka } = require('./native.js')
const { Batcher } = require('./batcher.js')
const { configError, fromNative } = require('./errors.js')
const { resolveOptions } = require('./config.js')
const { EventAdapterBase } = require('./events.js')

/** The RFC's config; defaults and checks are Rust's (`src/core/kafka/config.rs`); `brokers` may be a comma list. */
function normalizeKafkaConfig(config) {
  if (!config || typeof config !== 'object') throw configError('config', 'must be an object with `brokers`')
  const shaped = { ...config }
  if (typeof config.brokers === 'string') shaped.brokers = config.brokers.split(',').map((b) => b.trim()).filter(Boolean)
  return resolveOptions('kafka', shaped)
}

class KafkaEventAdapter extends EventAdapterBase {
  /** @param {import('../index').KafkaEventAdapterConfig} config */
  constructor(config) {
    super('KafkaEventAdapter', normalizeKafkaConfig(config), config && config.logger)
    try {
      this.native = new NativeKafka(JSON.stringify(this.config), (args) => this.onDeliveries(args[0], args[1], args[2]), this.onNativeLog)
    } catch (e) {
      throw fromNative(e)
    }
    const native = this.native
    let seq = 0
    this.publisher = new Batcher((t, k, b, ts) => native.publish(seq++, t, k, b, ts), 4, 16)
  }

  /** A metadata round trip to the brokers (bounded by the health check's 2 s). */
  nativeHealthy() {
    return this.native.ping(DEFAULT_HEALTH_TIMEOUT_MS)
  }

  /** Key: `messageGroupId`, else `traceId` (one group stays in one partition, in order). */
  publishRow(event, body, timestamp) {
    const key =
      event.messageGroupId != null && event.messageGroupId !== ''
        ? String(event.messageGroupId)
        : event.traceId != null
          ? String(event.traceId)
          : ''
    return [event.topic, key, body, timestamp]
  }

  /** Consumer group `${groupId}.${stepName}`; at most `limit` events unsettled. */
  openSubscription(topic, stepName, queue) {
    const limit = queue.type === 'fifo' ? this.config.prefetch : queue.concurrency || this.config.prefetch
    const id = this.native.subscribe(topic, stepName, limit)
    return { id, limit, label: `kafka ${topic} (${this.config.groupId}.${stepName})` }
  }

  /**
   * RFC form. With `queue`: consumer group `${groupId}.${queue}` (like a step of that name; dead letters in
   * `${topic}.${queue}.dlq`). Without: a fresh group `${groupId}.fanout.${uuid}` starting at the end of the topic,
   * no dead-letter topic. `prefetch` bounds unsettled events; `exclusive`/`durable` have no Kafka meaning (ignored).
   */
  openSubscriber(topic, options, queue) {
    const limit = options.prefetch || queue.concurrency || this.config.prefetch
    const r = this.native.subscribeGroup(topic, options.queue, limit)
    return { id: r.id, limit, label: `kafka ${topic} (${r.name})`, fields: { group: r.name } }
  }
}

module.exports = { KafkaEventAdapter, normalizeKafkaConfig }
