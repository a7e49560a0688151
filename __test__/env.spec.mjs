// adaptersFromEnv: builds AdapterConfig from environment variables; errors name the variable.
import { createClient } from 'redis'
import { adaptersFromEnv, RabbitMQEventAdapter, KafkaEventAdapter, RedisStateAdapter, RedisStreamAdapterManager, RedisCronAdapter, PostgresCronAdapter, MySqlCronAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_HOST, REDIS_PORT, PG_URL, MYSQL_URL, requireRedis, requirePostgres, requireMySql, mysqlQuery, uniquePrefix, uniqueTable, deleteMatching } from './helpers/env.mjs'
import pg from 'pg'

beforeAll(async () => {
  await requireRedis()
  await requirePostgres()
})

test('unset or default adapters leave Motia its defaults', () => {
  expect(adaptersFromEnv({})).toEqual({})
  expect(adaptersFromEnv({ STATE_ADAPTER: 'memory', EVENT_ADAPTER: 'default', CRON_ADAPTER: '' })).toEqual({})
})

test('redis state, streams and cron from REDIS_HOST/REDIS_PORT and REDIS_KEY_PREFIX', async () => {
  const base = uniquePrefix('env')
  const a = adaptersFromEnv({
    STATE_ADAPTER: 'redis',
    STREAM_ADAPTER: 'redis',
    CRON_ADAPTER: 'redis',
    REDIS_HOST,
    REDIS_PORT: String(REDIS_PORT),
    REDIS_KEY_PREFIX: base,
    STATE_TTL: '60',
    INSTANCE_ID: 'pod-7',
    CRON_RELEASE_GUARD: '0',
  })
  expect(a.state).toBeInstanceOf(RedisStateAdapter)
  expect(a.streams).toBeInstanceOf(RedisStreamAdapterManager)
  expect(a.cron).toBeInstanceOf(RedisCronAdapter)
  expect(a.state.keyPrefix).toBe(`${base}state:`)
  expect(a.state.ttl).toBe(60)
  expect(a.cron.instanceId).toBe('pod-7')
  await a.state.set('t', 'k', 1)
  await a.streams.createStream('s').set('g', 'i', {})
  const lock = await a.cron.acquireLock('job', 1000)
  expect(lock.instanceId).toBe('pod-7')
  const raw = createClient({ url: `redis://${REDIS_HOST}:${REDIS_PORT}` })
  await raw.connect()
  expect(await raw.get(`${base}state:t:k`)).toBe('1')
  expect(await raw.hGet(`${base}stream:s:group:g`, 'i')).toContain('"id":"i"')
  expect(await raw.get(`${base}cron:lock:job`)).toContain('pod-7')
  await deleteMatching(raw, `*${base}*`)
  await raw.quit()
  await a.state.cleanup()
  await a.streams.shutdown()
  await a.cron.shutdown()
})

test('postgres cron from DATABASE_URL', async () => {
  const table = uniqueTable('envcron')
  const a = adaptersFromEnv({ CRON_ADAPTER: 'postgres', DATABASE_URL: PG_URL, CRON_TABLE: table })
  expect(a.cron).toBeInstanceOf(PostgresCronAdapter)
  expect(await a.cron.acquireLock('job', 1000)).not.toBeNull()
  await a.cron.shutdown()
  const db = new pg.Client({ connectionString: PG_URL })
  await db.connect()
  await db.query(`DROP TABLE IF EXISTS "${table}"`)
  await db.end()
})

test('mysql cron from MYSQL_URL (CRON_MYSQL_URL wins)', async () => {
  await requireMySql()
  const table = uniqueTable('envcron')
  const a = adaptersFromEnv({ CRON_ADAPTER: 'mysql', MYSQL_URL, CRON_TABLE: table, INSTANCE_ID: 'pod-m' })
  expect(a.cron).toBeInstanceOf(MySqlCronAdapter)
  expect(a.cron.tableName).toBe(table)
  expect(await a.cron.acquireLock('job', 1000)).toMatchObject({ instanceId: 'pod-m' })
  await a.cron.shutdown()
  await mysqlQuery(MYSQL_URL, `DROP TABLE IF EXISTS \`${table}\``)
  const b = adaptersFromEnv({ CRON_ADAPTER: 'mysql', MYSQL_URL: 'mysql://bad:1/x', CRON_MYSQL_URL: MYSQL_URL })
  expect(b.cron).toBeInstanceOf(MySqlCronAdapter)
  await b.cron.shutdown()
  expect(() => adaptersFromEnv({ CRON_ADAPTER: 'mysql' })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('MYSQL_URL') }))
})

test('EVENT_ADAPTER=rabbitmq builds a working RabbitMQEventAdapter', async () => {
  const { RABBIT_URL, requireRabbit, uniqueExchange, cleanupTopology } = await import('./helpers/amqp.mjs')
  await requireRabbit()
  const x = uniqueExchange()
  const a = adaptersFromEnv({ EVENT_ADAPTER: 'rabbitmq', RABBITMQ_URL: RABBIT_URL, RABBITMQ_EXCHANGE: x, RABBITMQ_PREFETCH: '4' })
  expect(a.events).toBeInstanceOf(RabbitMQEventAdapter)
  const got = []
  await a.events.subscribe('env.t', 'S', (e) => got.push(e.data), { type: 'standard', maxRetries: 0, visibilityTimeout: 60, delaySeconds: 0 })
  await a.events.emit({ topic: 'env.t', data: { ok: true }, traceId: 't' })
  const end = Date.now() + 10000
  while (got.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  expect(got).toEqual([{ ok: true }])
  await a.events.shutdown()
  await cleanupTopology(x, [['env.t', 'S']])
})

test('EVENT_ADAPTER=kafka builds a KafkaEventAdapter from KAFKA_BROKERS', async () => {
  const a = adaptersFromEnv({ EVENT_ADAPTER: 'kafka', KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093', KAFKA_GROUP_ID: 'g' })
  expect(a.events).toBeInstanceOf(KafkaEventAdapter)
  expect(a.events.config.brokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9093'])
  expect(a.events.config.groupId).toBe('g')
  await a.events.shutdown()
})

test.each([
  [{ STATE_ADAPTER: 'mongo' }, 'STATE_ADAPTER'],
  [{ EVENT_ADAPTER: 'rabbitmq' }, 'RABBITMQ_URL'],
  [{ EVENT_ADAPTER: 'rabbitmq', RABBITMQ_URL: 'http://x' }, 'RABBITMQ_URL'],
  [{ EVENT_ADAPTER: 'rabbitmq', RABBITMQ_URL: 'amqp://h', RABBITMQ_EXCHANGE_TYPE: 'x' }, 'RABBITMQ_EXCHANGE_TYPE'],
  [{ EVENT_ADAPTER: 'sqs' }, 'EVENT_ADAPTER'],
  [{ EVENT_ADAPTER: 'kafka' }, 'KAFKA_BROKERS'],
  [{ EVENT_ADAPTER: 'kafka', KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS'],
  [{ STATE_ADAPTER: 'redis', REDIS_PORT: 'abc' }, 'REDIS_PORT'],
  [{ STATE_ADAPTER: 'redis', REDIS_URL: 'http://x' }, 'REDIS_URL'],
  [{ STATE_ADAPTER: 'redis', STATE_TTL: '-5' }, 'STATE_TTL'],
  [{ STATE_ADAPTER: 'redis', REDIS_TLS: 'maybe' }, 'REDIS_TLS'],
  [{ STATE_ADAPTER: 'redis', REDIS_SENTINELS: '127.0.0.1:26379' }, 'REDIS_SENTINEL_NAME'],
  [{ STATE_ADAPTER: 'redis', REDIS_SENTINELS: '127.0.0.1:x', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS'],
  [{ CRON_ADAPTER: 'postgres' }, 'DATABASE_URL'],
  [{ CRON_ADAPTER: 'redis', CRON_LOCK_TTL: '0' }, 'CRON_LOCK_TTL'],
])('%j -> names %s', (env, name) => {
  let err
  try {
    adaptersFromEnv(env)
  } catch (e) {
    err = e
  }
  expect(err?.code).toBe(ErrorCodes.CONFIG)
  expect(err.message).toContain(`\`${name}\``)
})
