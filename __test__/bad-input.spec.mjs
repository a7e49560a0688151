// Bad input gets a clear MOTIA_CONFIG error at once (never MOTIA_INTERNAL, a napi InvalidArg, a hang, or a
// connection to a server the user did not name): AMQP wildcards and over-long names, cron TTLs, topology
// options we do not support yet, malformed broker URLs.
import { RabbitMQEventAdapter, RedisCronAdapter, RedisStateAdapter, RedisStreamAdapterManager, ErrorCodes } from 'motia-native-adapters'
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

test('a bad Cluster or Sentinel shape names its field (never silently 127.0.0.1:6379)', () => {
  const bad = (conn, field) =>
    expect(() => new RedisCronAdapter(conn)).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining(field) }))
  bad({ rootNodes: [] }, 'rootNodes')
  bad({ rootNodes: [{ socket: { host: '10.0.0.1', port: 'x' } }] }, 'rootNodes[0].socket.port')
  bad({ rootNodes: [{ url: 'redis://10.0.0.1:7000' }], nodeAddressMap: {} }, 'nodeAddressMap')
  bad({ sentinelRootNodes: [{ host: '10.0.0.1', port: 26379 }] }, '`name`')
  bad({ sentinelRootNodes: [], name: 'mymaster' }, '`sentinelRootNodes`')
  bad({ sentinelRootNodes: [{ host: '10.0.0.1', port: 'x' }], name: 'mymaster' }, '`sentinelRootNodes[0].port`')
  bad({ sentinelRootNodes: [{ host: '10.0.0.1' }], name: 'm', nodeAddressMap: {} }, '`nodeAddressMap`')
  bad({ sentinelRootNodes: [{ host: '10.0.0.1' }], name: 'm', nodeClientOptions: { url: 'redis://x' } }, '`nodeClientOptions.url`')
  bad({ sentinelRootNodes: [{ host: '10.0.0.1' }], name: 'm', nodeClientOptions: { databse: 1 } }, '`databse`')
  const instance = { getMasterNode() {}, getSentinelNode() {}, isOpen: false, connect() {} }
  bad(instance, 'createSentinel options')
})

test('a value nested deeper than 128 levels is readable by every method, filters included', async () => {
  await requireRedis()
  const s = new RedisStateAdapter({ url: REDIS_URL }, { keyPrefix: uniquePrefix('deep') })
  try {
    let deep = 1
    for (let i = 0; i < 300; i++) deep = [deep]
    await s.set('g', 'deep', { name: 'a', deep })
    await s.set('g', 'flat', { name: 'b' })
    expect((await s.get('g', 'deep')).name).toBe('a')
    expect((await s.getGroup('g')).length).toBe(2)
    const hits = await s.items({ groupId: 'g', filter: [{ valueKey: 'name', operation: 'eq', value: 'a' }] })
    expect(hits.map((h) => h.key)).toEqual(['deep'])
    expect(JSON.stringify(hits[0].value.deep)).toBe(JSON.stringify(deep))
  } finally {
    await s.clear('g')
    await s.cleanup()
  }
})

test('a server that accepts TCP and never answers fails the first call within connectTimeout (redis:// and rediss://)', async () => {
  const net = await import('node:net')
  const sockets = []
  const srv = net.createServer((s) => sockets.push(s.on('data', () => {}))).listen(0, '127.0.0.1')
  await new Promise((r) => srv.once('listening', r))
  const { port } = srv.address()
  try {
    for (const url of [`redis://127.0.0.1:${port}`, `rediss://127.0.0.1:${port}`]) {
      const s = new RedisStateAdapter({ url, socket: { connectTimeout: 1000 } })
      const t = Date.now()
      await expect(s.get('t', 'k')).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT })
      const took = Date.now() - t
      expect(took).toBeGreaterThanOrEqual(900)
      expect(took).toBeLessThan(1600)
      await s.cleanup()
    }
  } finally {
    for (const s of sockets) s.destroy()
    srv.close()
  }
})

test('a Symbol trace id, group id or key rejects with MOTIA_CONFIG (calls never throw synchronously)', async () => {
  await requireRedis()
  const s = new RedisStateAdapter({ url: REDIS_URL }, { keyPrefix: uniquePrefix('sym') })
  const m = new RedisStreamAdapterManager({ url: REDIS_URL }, { keyPrefix: uniquePrefix('symstream') })
  const st = m.createStream('s')
  const sym = Symbol('x')
  try {
    const calls = [
      () => s.get(sym, 'k'),
      () => s.set('t', sym, 1),
      () => s.delete(sym, 'k'),
      () => s.exists('t', sym),
      () => s.getGroup(sym),
      () => s.getMany('t', [sym]),
      () => st.get(sym, 'i'),
      () => st.set('g', sym, { a: 1 }),
      () => st.getGroup(sym),
    ]
    for (const c of calls) {
      let p
      expect(() => {
        p = c()
      }).not.toThrow()
      await expect(p).rejects.toEqual(config)
    }
  } finally {
    await s.cleanup()
    await m.shutdown()
  }
})

test('an unknown connection option is refused, naming it; node-redis options that do not change the server are accepted', () => {
  expect(() => new RedisStateAdapter({ url: REDIS_URL, hots: 'redis.internal' })).toThrow(
    expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringMatching(/`hots`/) }),
  )
  const s = new RedisStateAdapter({ url: REDIS_URL, name: 'my-app', pingInterval: 1000, keyPrefix: 'x:' })
  expect(s.keyPrefix).toBe('x:')
  return s.cleanup()
})
