// Compile-only: our classes must type-check where Motia 0.17 expects its interfaces.
import type { AdapterConfig, Config, CronAdapter, EventAdapter, StateAdapter, StreamAdapter, StreamAdapterManager } from '@motiadev/core'
import { createClient } from 'redis'
import {
  RedisStateAdapter,
  RedisStreamAdapterManager,
  RedisStreamAdapter,
  RedisCronAdapter,
  PostgresCronAdapter,
  MySqlCronAdapter,
  type MySqlCronAdapterConfig,
  RabbitMQEventAdapter,
  KafkaEventAdapter,
  type KafkaEventAdapterConfig,
  type RabbitMQEventAdapterConfig,
  type RabbitMQSubscribeOptions,
  CronScheduler,
  validateCronExpression,
  adaptersFromEnv,
  ErrorCodes,
  MotiaAdapterError,
  type RedisStateAdapterOptions,
} from 'motia-native-adapters'

const options: RedisStateAdapterOptions = { keyPrefix: 'motia:state:', ttl: 3600 }
const client = createClient({ url: 'redis://localhost:6379' })

const adapters: AdapterConfig = {
  state: new RedisStateAdapter({ url: 'redis://localhost:6379' }, options),
  streams: new RedisStreamAdapterManager({ url: 'redis://localhost:6379' }, { keyPrefix: 'motia:stream:' }),
  cron: new RedisCronAdapter({ url: 'redis://localhost:6379' }, { lockTTL: 300000, instanceId: 'pod-1', releaseGuard: 5000 }),
  events: new RabbitMQEventAdapter({ url: 'amqp://localhost', exchangeName: 'motia.events', exchangeType: 'topic', prefetch: 10 }),
}
const rabbitConfig: RabbitMQEventAdapterConfig = { url: 'amqps://h', exchangeName: 'e', exchangeType: 'direct', durable: true, deadLetterExchange: 'dlx', tls: { ca: 'pem' } }
const events: EventAdapter = new RabbitMQEventAdapter(rabbitConfig)
const subOpts: RabbitMQSubscribeOptions = { prefetch: 1 }
const kafkaConfig: KafkaEventAdapterConfig = { clientId: 'app', brokers: ['localhost:9092'], groupId: 'g', rdkafka: { 'security.protocol': 'SASL_SSL' } }
const kafka: EventAdapter = new KafkaEventAdapter(kafkaConfig)
void [events, subOpts, kafka]
const pgCron: CronAdapter = new PostgresCronAdapter({ connectionString: 'postgres://localhost/db', tableName: 'motia_cron_locks' })
const mysqlConfig: MySqlCronAdapterConfig = { connectionString: 'mysql://root@localhost:3306/test', tableName: 'motia_cron_locks', lockTTL: 300000, instanceId: 'pod-1', releaseGuard: 5000, autoRenew: true }
const mysqlCron: CronAdapter = new MySqlCronAdapter(mysqlConfig)
void mysqlCron
const redisCron: CronAdapter = new RedisCronAdapter(client, { keyPrefix: 'motia:cron:lock:', autoRenew: true })
const scheduler = new CronScheduler(pgCron)
void scheduler.schedule('report', '0 9 * * 1-5', async ({ scheduledAt }) => void scheduledAt, { timezone: 'Europe/Paris' })
const valid: boolean = validateCronExpression('* * * * *')
const manager: StreamAdapterManager = new RedisStreamAdapterManager(client)
const todos: StreamAdapter<{ title: string }> = manager.createStream<{ title: string }>('todos')
const direct: StreamAdapter<{ name: string }> = new RedisStreamAdapter<{ name: string }>('users', { url: 'redis://localhost:6379' })
const rfc = new RedisStreamAdapter({ host: 'localhost', port: 6379, keyPrefix: 'motia:stream:' })
void [redisCron, valid, todos, direct, rfc]
const state: StateAdapter = new RedisStateAdapter(client)
const legacy: StateAdapter = new RedisStateAdapter({ host: 'localhost', port: 6379, password: 'x', keyPrefix: 'p:', ttl: 10 })
const socket: StateAdapter = new RedisStateAdapter({ socket: { host: 'h', port: 6380, tls: true, connectTimeout: 5000 }, username: 'u', password: 'p', database: 1 })

export const config: Config = { adapters }
export const fromEnv: Config = { adapters: adaptersFromEnv(process.env) }

async function typed() {
  const a = new RedisStateAdapter()
  const n: number | null = await a.get<number>('t', 'k')
  const many: (string | null)[] = await a.getMany<string>('t', ['a'])
  const exists: boolean = await a.exists('t', 'k')
  const code: string = ErrorCodes.CONFIG
  const e = new Error() as MotiaAdapterError
  return [n, many, exists, code, e.code, state, legacy, socket]
}
void typed
