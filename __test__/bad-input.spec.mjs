// Bad input gets a clear MOTIA_CONFIG error at once (never MOTIA_INTERNAL, a napi InvalidArg, a hang, or a
// connection to a server the user did not name): AMQP wildcards and over-long names, cron TTLs, topology
// options we do not support yet, malformed broker URLs.
import { RabbitMQEventAdapter, RedisCronAdapter, RedisStateAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, uniqueExchange } from './helpers/amqp.mjs'

const config = expect.objectContaining({ code: ErrorCodes.CONFIG })

describe('RabbitMQ names', () => {
  let a
  beforeAll(async () => {
    await requireRabbit()
    a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName: uniqueExchange('bad-input'), exchangeType: 'topic' })
  })
  afterAll(async () => {
    await a?.shutdown()
  })

  test.each(['orders.*', 'orders.#', '#'])('topic %s (an AMQP wildcard) is refused for emit and subscribe', async (topic) => {
    await expect(a.emit({ topic, data: {} })).rejects.toEqual(config)
    await expect(a.subscribe(topic, 'step', async () => {})).rejects.toEqual(config)
    await expect(a.subscribe(topic, async () => {}, { queue: 'q' })).rejects.toEqual(config)
    expect(await a.getSubscriptionCount(topic)).toBe(0)
  })

  test('names over the AMQP 255-byte limit are refused at once, naming the limit', async () => {
    const long = 'x'.repeat(256)
    const started = Date.now()
    await expect(a.emit({ topic: long, data: {} })).rejects.toMatchObject({ code: ErrorCodes.CONFIG, message: expect.stringMatching(/255/) })
    await expect(a.subscribe('t', 'y'.repeat(250), async () => {})).rejects.toMatchObject({ code: ErrorCodes.CONFIG, message: expect.stringMatching(/255/) })
    expect(Date.now() - started).toBeLessThan(1000)
  })

  test('a malformed URL is MOTIA_CONFIG at construction', () => {
    expect(() => new RabbitMQEventAdapter({ url: 'amqp://guest:guest@127.0.0.1:99999' })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/MOTIA_(CONFIG)/) }),
    )
  })
})

describe('cron TTLs', () => {
  let cron
  beforeAll(async () => {
    await requireRedis()
    cron = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: uniquePrefix('bad-ttl') })
  })
  afterAll(async () => {
    await cron?.shutdown()
  })

  test.each(['abc', -5, Number.NaN, Infinity, 2 ** 53, {}])('acquireLock(job, %p) rejects with MOTIA_CONFIG', async (ttl) => {
    await expect(cron.acquireLock('job', ttl)).rejects.toEqual(config)
    await expect(cron.renewLock({ jobName: 'job', lockId: 'x', instanceId: 'y', acquiredAt: 0, expiresAt: 0 }, ttl)).rejects.toEqual(config)
  })

  test('a Symbol job name rejects (never throws synchronously)', async () => {
    const p = cron.acquireLock(Symbol('job'), 1000)
    await expect(p).rejects.toEqual(config)
  })

  test('lockTTL: 2**53 is refused at construction', () => {
    expect(() => new RedisCronAdapter({ url: REDIS_URL }, { lockTTL: 2 ** 53 })).toThrow(config)
    expect(() => new RedisCronAdapter({ url: REDIS_URL, lockTTL: 'x' })).toThrow(config)
  })
})

test('Cluster and Sentinel shapes are refused instead of silently writing to 127.0.0.1:6379', () => {
  expect(() => new RedisStateAdapter({ rootNodes: [{ url: 'redis://10.0.0.1:7000' }] })).toThrow(
    expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringMatching(/rootNodes/) }),
  )
  expect(() => new RedisCronAdapter({ sentinelRootNodes: [{ host: '10.0.0.1', port: 26379 }], name: 'mymaster' })).toThrow(
    expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringMatching(/sentinelRootNodes/) }),
  )
})
