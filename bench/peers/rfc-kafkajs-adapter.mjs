// The RFC's "Example 4: Kafka Event Adapter" (kafkajs), transcribed as the comparison peer for bench/kafka.bench.mjs.
// Changes, only to run it against Motia 0.17's interface and the test broker:
//  - subscribe(topic, stepName, handler, options): the group is `${groupId}.${stepName}` (the RFC used
//    options.queue || groupId; 0.17 passes a QueueConfig and a step name);
//  - fromBeginning: true, so events emitted while the group is joining are not skipped (the RFC used false);
//  - sessionTimeout 6000 (the RFC used 30000; tansu's group joins are slow with long sessions);
//  - logLevel NOTHING.
import kafkajs from 'kafkajs'
import { randomUUID } from 'node:crypto'

const { Kafka, logLevel } = kafkajs

export class RfcKafkaEventAdapter {
  constructor(config) {
    this.kafka = new Kafka({ clientId: config.clientId, brokers: config.brokers, logLevel: logLevel.NOTHING })
    this.groupId = config.groupId || 'motia-default'
    this.producer = undefined
    this.consumers = new Map()
    this.subscriptions = new Map()
  }

  async ensureProducer() {
    if (!this.producer) {
      this.producer = this.kafka.producer()
      await this.producer.connect()
    }
    return this.producer
  }

  async emit(event) {
    const producer = await this.ensureProducer()
    await producer.send({
      topic: event.topic,
      messages: [
        {
          key: event.traceId,
          value: JSON.stringify({ topic: event.topic, data: event.data, traceId: event.traceId, timestamp: Date.now() }),
        },
      ],
    })
  }

  async subscribe(topic, stepName, handler) {
    const groupId = `${this.groupId}.${stepName}`
    const consumerId = randomUUID()
    const consumer = this.kafka.consumer({ groupId, sessionTimeout: 6000 })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async (payload) => {
        try {
          const content = JSON.parse(payload.message.value?.toString() || '{}')
          await handler(content)
        } catch (error) {
          console.error('Error processing Kafka message:', error)
        }
      },
    })
    this.consumers.set(consumerId, consumer)
    const handle = { topic, id: consumerId, unsubscribe: async () => this.unsubscribe(handle) }
    this.subscriptions.set(handle.id, handle)
    return handle
  }

  async unsubscribe(handle) {
    const consumer = this.consumers.get(handle.id)
    if (consumer) {
      await consumer.disconnect()
      this.consumers.delete(handle.id)
    }
    this.subscriptions.delete(handle.id)
  }

  async shutdown() {
    if (this.producer) await this.producer.disconnect()
    for (const consumer of this.consumers.values()) await consumer.disconnect()
    this.consumers.clear()
    this.subscriptions.clear()
  }

  async getSubscriptionCount(topic) {
    return Array.from(this.subscriptions.values()).filter((s) => s.topic === topic).length
  }

  async listTopics() {
    return Array.from(new Set(Array.from(this.subscriptions.values()).map((s) => s.topic)))
  }
}
