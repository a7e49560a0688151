// Compile-only: our classes implement the RFC's own TypeScript interfaces (rfc-adapter-pattern.md, "1. Adapter
// Interfaces", quoted below as declared there), and both `subscribe` forms type-check.
import type {
  BaseStreamItem,
  CronLock,
  CronLockInfo,
  Event,
  EventAdapter,
  StateStreamEvent,
  StateStreamEventChannel,
  StreamQueryFilter,
  SubscriptionHandle,
} from '@motiadev/core'
import {
  KafkaEventAdapter,
  RabbitMQEventAdapter,
  RedisCronAdapter,
  RedisStateAdapter,
  RedisStreamAdapter,
  type RedisCronAdapterConfig,
  type SubscribeOptions,
} from 'motia-native-adapters'

// --- the RFC's interfaces ---
interface RfcStateAdapter {
  get<T>(traceId: string, key: string): Promise<T | null>
  set<T>(traceId: string, key: string, value: T): Promise<T>
  delete<T>(traceId: string, key: string): Promise<T | null>
  clear(traceId: string): Promise<void>
  cleanup(): Promise<void>
  keys(traceId: string): Promise<string[]>
  exists(traceId: string, key: string): Promise<boolean>
  getMany<T>(traceId: string, keys: string[]): Promise<(T | null)[]>
  setMany<T>(traceId: string, items: Record<string, T>): Promise<void>
}

interface RfcStreamAdapter<TData> {
  get(groupId: string, id: string): Promise<BaseStreamItem<TData> | null>
  set(groupId: string, id: string, data: TData): Promise<BaseStreamItem<TData>>
  delete(groupId: string, id: string): Promise<BaseStreamItem<TData> | null>
  getGroup(groupId: string): Promise<BaseStreamItem<TData>[]>
  send<T>(channel: StateStreamEventChannel, event: StateStreamEvent<T>): Promise<void>
  subscribe<T>(
    channel: StateStreamEventChannel,
    handler: (event: StateStreamEvent<T>) => void | Promise<void>
  ): Promise<void>
  unsubscribe(channel: StateStreamEventChannel): Promise<void>
  clear(groupId: string): Promise<void>
  query(groupId: string, filter: StreamQueryFilter<TData>): Promise<BaseStreamItem<TData>[]>
}

interface RfcEventAdapter {
  emit<TData>(event: Event<TData>): Promise<void>
  subscribe<TData>(
    topic: string,
    handler: (event: Event<TData>) => void | Promise<void>,
    options?: RfcSubscribeOptions
  ): Promise<SubscriptionHandle>
  unsubscribe(handle: SubscriptionHandle): Promise<void>
  shutdown(): Promise<void>
  getSubscriptionCount(topic: string): Promise<number>
  listTopics(): Promise<string[]>
}

interface RfcSubscribeOptions {
  queue?: string
  exclusive?: boolean
  durable?: boolean
  prefetch?: number
}

interface RfcCronAdapter {
  acquireLock(jobName: string, ttl: number): Promise<CronLock | null>
  releaseLock(lock: CronLock): Promise<void>
  renewLock(lock: CronLock, ttl: number): Promise<boolean>
  isHealthy(): Promise<boolean>
  shutdown(): Promise<void>
  getActiveLocks(): Promise<CronLockInfo[]>
}

interface RfcCronAdapterConfig {
  lockTTL?: number
  lockRetryDelay?: number
  lockRetryAttempts?: number
  instanceId?: string
  enableHealthCheck?: boolean
}

// --- our classes satisfy them ---
const state: RfcStateAdapter = new RedisStateAdapter({ host: 'localhost', port: 6379, keyPrefix: 'motia:state:', ttl: 3600 })
const stream: RfcStreamAdapter<{ title: string }> = new RedisStreamAdapter<{ title: string }>({ host: 'localhost', port: 6379 })
const rabbit: RfcEventAdapter = new RabbitMQEventAdapter({ url: 'amqp://localhost', exchangeName: 'motia.events', exchangeType: 'topic' })
const kafka: RfcEventAdapter = new KafkaEventAdapter({ clientId: 'app', brokers: ['localhost:9092'], groupId: 'motia-default' })
const cronConfig: RfcCronAdapterConfig = { lockTTL: 1, lockRetryDelay: 1, lockRetryAttempts: 0, instanceId: 'i', enableHealthCheck: true }
const flatCron: RedisCronAdapterConfig = { host: 'localhost', port: 6379, password: undefined, keyPrefix: 'motia:cron:', ...cronConfig }
const cron: RfcCronAdapter = new RedisCronAdapter(flatCron)
const rfcOptions: SubscribeOptions = { queue: 'q', exclusive: false, durable: true, prefetch: 10 }
// Motia 0.17's interface too, with both forms on one object
const motiaEvents: EventAdapter = rabbit as RabbitMQEventAdapter

async function both(a: RabbitMQEventAdapter | KafkaEventAdapter) {
  const rfc: SubscriptionHandle = await a.subscribe<{ id: string }>('order.created', async (e) => void e.data.id, rfcOptions)
  const fan = await a.subscribe('order.created', (e: Event<unknown>) => void e.traceId)
  const step = await a.subscribe('order.created', 'Notify', async (e) => void e.topic, { type: 'fifo', maxRetries: 1, visibilityTimeout: 30, delaySeconds: 0 })
  const name: string | undefined = fan.queue ?? fan.group
  await rfc.unsubscribe()
  await a.unsubscribe(step)
  return name
}
void [state, stream, kafka, cron, motiaEvents, both]
