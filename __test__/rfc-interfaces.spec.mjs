// The RFC's interfaces and configuration, verbatim (issue 11): the flat constructor configs of its
// `motia.config.ts` example, an RFC stream adapter given as Motia 0.17's `adapters.streams` (a manager), and the
// RFC's `EventAdapter.subscribe(topic, handler, {queue, exclusive, durable, prefetch})` → SubscriptionHandle on
// RabbitMQ and Kafka, next to Motia 0.17's `subscribe(topic, stepName, handler, queueConfig)`.
// Every option is checked on the server (raw keys/TTL with node-redis, queues with amqplib), not on our objects.
import { jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { RedisStateAdapter, RedisStreamAdapter, RabbitMQEventAdapter, KafkaEventAdapter } from 'motia-native-adapters'
import { REDIS_HOST, REDIS_PORT, REDIS_URL, requireRedis, uniquePrefix, eventually, deleteMatching } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, admin, uniqueExchange, consumerCount } from './helpers/amqp.mjs'
import { KAFKA_BROKERS, requireKafka, uniqueName, TEST_RDKAFKA } from './helpers/kafka.mjs'

jest.setTimeout(120000)

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'rfc-subscriber-child.mjs')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

let raw
const open = []
const children = []

beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})

afterAll(async () => {
  await raw?.quit()
})

afterEach(async () => {
  for (const c of children.splice(0)) if (c.p.exitCode === null && c.p.signalCode === null) c.p.kill('SIGKILL')
  for (const a of open.splice(0).reverse()) {
    if (a.shutdown) await a.shutdown().catch(() => {})
    else if (a.cleanup) await a.cleanup().catch(() => {})
  }
})

/** The RFC example's Redis fields, built from env exactly as it does (`parseInt(process.env.REDIS_PORT || '6379')`). */
function rfcRedis(env) {
  return {
    host: env.REDIS_HOST || 'localhost',
    port: parseInt(env.REDIS_PORT || '6379'),
    password: env.REDIS_PASSWORD,
  }
}
const ENV = { REDIS_HOST, REDIS_PORT: String(REDIS_PORT) }

describe('RedisStateAdapter({host, port, password, keyPrefix, ttl})', () => {
  test('keyPrefix and ttl take effect on the server; password: undefined means no AUTH', async () => {
    const prefix = uniquePrefix('rfc-state')
    const state = new RedisStateAdapter({ ...rfcRedis(ENV), keyPrefix: prefix, ttl: 3600 })
    open.push(state)
    try {
      await state.set('trace-1', 'k', { a: 1 })
      expect(await raw.get(`${prefix}trace-1:k`)).toBe('{"a":1}')
      const ttl = await raw.ttl(`${prefix}trace-1:k`)
      expect(ttl).toBeGreaterThan(3590)
      expect(ttl).toBeLessThanOrEqual(3600)
      expect(await state.get('trace-1', 'k')).toEqual({ a: 1 })
    } finally {
      await deleteMatching(raw, `${prefix}*`)
    }
  })

  test('parseInt(process.env.REDIS_PORT) of an unset variable (NaN) means the default port; an empty password means none', async () => {
    const prefix = uniquePrefix('rfc-state')
    // REDIS_PORT unset: parseInt(undefined) is NaN; the default port (6379) is the test Redis here
    const env = { REDIS_HOST }
    const state = new RedisStateAdapter({
      host: env.REDIS_HOST || 'localhost',
      port: parseInt(env.REDIS_PORT),
      password: '',
      keyPrefix: prefix,
    })
    open.push(state)
    try {
      if (REDIS_PORT === 6379) {
        await state.set('t', 'k', 1)
        expect(await raw.get(`${prefix}t:k`)).toBe('1')
        expect(await raw.ttl(`${prefix}t:k`)).toBe(-1) // no ttl option: no expiry
      }
      expect(() => new RedisStateAdapter({ host: 'localhost', port: 70000 })).toThrow(/MOTIA_CONFIG.*`port`/)
    } finally {
      await deleteMatching(raw, `${prefix}*`)
    }
  })

  test('a wrong password fails with MOTIA_AUTH and never shows the password', async () => {
    const state = new RedisStateAdapter({ ...rfcRedis(ENV), password: 's3cret-rfc', keyPrefix: uniquePrefix('rfc-state') })
    open.push(state)
    const err = await state.get('t', 'k').catch((e) => e)
    expect(err).toBeInstanceOf(Error)
    expect(String(err.message)).not.toContain('s3cret-rfc')
    expect(err.code).toMatch(/MOTIA_(AUTH|BACKEND)/)
  })
})

describe('RedisStreamAdapter({host, port, password, keyPrefix}) as adapters.streams', () => {
  test('acts as a StreamAdapterManager: createStream(name) shares its connections and keyPrefix', async () => {
    const prefix = uniquePrefix('rfc-stream')
    const streams = new RedisStreamAdapter({ ...rfcRedis(ENV), keyPrefix: prefix })
    open.push(streams)
    try {
      const before = Number((await raw.sendCommand(['INFO', 'clients'])).match(/connected_clients:(\d+)/)[1])
      const todos = streams.createStream('todos')
      const users = streams.createStream('users')
      expect(todos.streamName).toBe('todos')
      expect(todos.keyPrefix).toBe(prefix)
      const item = await todos.set('g1', 'a', { title: 'x' })
      expect(item).toMatchObject({ id: 'a', title: 'x' })
      await users.set('g1', 'u', { name: 'n' })
      // the 0.17 layout under the RFC prefix: `${keyPrefix}${streamName}:group:${groupId}`
      expect(JSON.parse(await raw.hGet(`${prefix}todos:group:g1`, 'a'))).toMatchObject({ id: 'a', title: 'x' })
      expect(JSON.parse(await raw.hGet(`${prefix}users:group:g1`, 'u'))).toMatchObject({ id: 'u', name: 'n' })
      expect(await streams.createStream('todos').get('g1', 'a')).toMatchObject({ title: 'x' })
      expect(await todos.getGroup('g1')).toHaveLength(1)
      // no connection per stream
      for (let i = 0; i < 50; i++) await streams.createStream(`s${i}`).get('g', 'x')
      const after = Number((await raw.sendCommand(['INFO', 'clients'])).match(/connected_clients:(\d+)/)[1])
      expect(after - before).toBeLessThanOrEqual(2)
      // live events through the shared pub/sub connection
      const seen = []
      await todos.subscribe({ groupId: 'g1' }, (e) => seen.push(e))
      await streams.createStream('todos').send({ groupId: 'g1' }, { type: 'ping', data: { n: 1 } })
      await eventually(() => seen.length === 1)
      expect(seen[0]).toEqual({ type: 'ping', data: { n: 1 } })
      await todos.unsubscribe({ groupId: 'g1' })
    } finally {
      await deleteMatching(raw, `${prefix}*`)
    }
    await streams.shutdown()
    await expect(streams.createStream('todos').get('g1', 'a')).rejects.toThrow(/MOTIA_CLOSED/)
  })
})

/** Starts the child subscriber; resolves once it printed "ready". */
async function child(kind, config, topic, options) {
  const p = spawn(process.execPath, [CHILD, kind, JSON.stringify(config), topic, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const c = { p, lines: [], err: '' }
  children.push(c)
  let buf = ''
  p.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      c.lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
  })
  p.stderr.on('data', (d) => (c.err += d))
  await eventually(() => c.lines.some((l) => l.startsWith('ready')), { timeout: 30000 }).catch((e) => {
    throw new Error(`child did not start: ${e.message}\n${c.err}`)
  })
  c.handled = () => c.lines.filter((l) => l.startsWith('handled ')).map((l) => l.slice(8))
  return c
}

/** `n` events with data.id `${tag}-${i}`. */
async function emitMany(adapter, topic, tag, n) {
  await Promise.all(Array.from({ length: n }, (_, i) => adapter.emit({ topic, data: { id: `${tag}-${i}` }, traceId: `t-${i}` })))
}

const ids = (tag, n) => Array.from({ length: n }, (_, i) => `${tag}-${i}`)
const sorted = (xs) => [...xs].sort()

describe('RabbitMQEventAdapter: RFC subscribe(topic, handler, {queue, exclusive, durable, prefetch})', () => {
  let exchange
  const queues = new Set()
  const rabbit = (extra = {}) => {
    const a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName: exchange, exchangeType: 'topic', durable: true, ...extra })
    open.push(a)
    return a
  }

  beforeAll(requireRabbit)
  beforeEach(() => {
    exchange = uniqueExchange('rfc')
  })
  afterEach(async () => {
    for (const a of open.splice(0).reverse()) await a.shutdown().catch(() => {})
    const { conn } = await admin()
    try {
      for (const q of queues) {
        const ch = await conn.createChannel()
        ch.on('error', () => {})
        await ch.deleteQueue(q).catch(() => {})
        await ch.close().catch(() => {})
      }
      for (const x of [exchange, `${exchange}.dlq`]) {
        const ch = await conn.createChannel()
        ch.on('error', () => {})
        await ch.deleteExchange(x).catch(() => {})
        await ch.close().catch(() => {})
      }
    } finally {
      queues.clear()
      await conn.close().catch(() => {})
    }
  })

  /** Declared properties of a queue, read from the broker (rabbitmqctl would need root; a passive declare tells durable only via redeclare). */
  async function queueExists(q) {
    const { conn, ch } = await admin()
    try {
      await ch.checkQueue(q)
      return true
    } catch {
      return false
    } finally {
      await conn.close().catch(() => {})
    }
  }

  test('without queue: fan-out, each of 2 subscribers gets every event; exclusive auto-delete queue gone after unsubscribe', async () => {
    const topic = `rfc.fan.${randomUUID().slice(0, 8)}`
    const a = rabbit()
    const got1 = []
    const got2 = []
    const h1 = await a.subscribe(topic, (e) => void got1.push(e.data.id))
    const h2 = await a.subscribe(topic, async (e) => void got2.push(e.data.id))
    expect(h1).toMatchObject({ topic, id: expect.any(String) })
    expect(typeof h1.unsubscribe).toBe('function')
    expect(h1.id).not.toBe(h2.id)
    expect(h1.queue).toMatch(new RegExp(`^motia\\.${topic.replace(/\./g, '\\.')}\\.fanout\\.[0-9a-f-]{36}$`))
    expect(h1.queue).not.toBe(h2.queue)
    expect(await a.getSubscriptionCount(topic)).toBe(2)
    expect(await a.listTopics()).toEqual([topic])

    // exclusive: another connection may not consume from it (RESOURCE_LOCKED)
    {
      const { conn, ch } = await admin()
      const err = await ch.consume(h1.queue, () => {}).catch((e) => e)
      expect(String(err && err.message)).toMatch(/RESOURCE_LOCKED|exclusive/)
      await conn.close().catch(() => {})
    }

    await emitMany(a, topic, 'f', 20)
    await eventually(() => got1.length === 20 && got2.length === 20)
    expect(sorted(got1)).toEqual(sorted(ids('f', 20)))
    expect(sorted(got2)).toEqual(sorted(ids('f', 20)))

    // unsubscribe() stops delivery to that subscriber only; its queue is deleted
    await h1.unsubscribe()
    expect(await a.getSubscriptionCount(topic)).toBe(1)
    await eventually(async () => !(await queueExists(h1.queue)))
    await emitMany(a, topic, 'g', 5)
    await eventually(() => got2.length === 25)
    await sleep(300)
    expect(got1).toHaveLength(20)
    await a.unsubscribe(h2)
    expect(await a.getSubscriptionCount(topic)).toBe(0)
  })

  test('fan-out across processes: a subscriber in another process also gets every event', async () => {
    const topic = `rfc.fanp.${randomUUID().slice(0, 8)}`
    const a = rabbit()
    const got = []
    await a.subscribe(topic, (e) => void got.push(e.data.id))
    const c = await child('rabbitmq', { url: RABBIT_URL, exchangeName: exchange }, topic, {})
    await emitMany(a, topic, 'p', 10)
    await eventually(() => got.length === 10 && c.handled().length === 10)
    expect(sorted(c.handled())).toEqual(sorted(ids('p', 10)))
  })

  test('same queue: 2 subscribers in 2 processes share the events (each once), on queue motia.${topic}.${queue}', async () => {
    const topic = `rfc.grp.${randomUUID().slice(0, 8)}`
    const group = `workers-${randomUUID().slice(0, 6)}`
    const queue = `motia.${topic}.${group}`
    queues.add(queue).add(`${queue}.dlq`)
    const a = rabbit()
    const got = []
    const h = await a.subscribe(topic, async (e) => {
      got.push(e.data.id)
      await sleep(20)
    }, { queue: group, prefetch: 1 })
    expect(h.queue).toBe(queue)
    const c = await child('rabbitmq', { url: RABBIT_URL, exchangeName: exchange }, topic, { queue: group, prefetch: 1 })
    expect(c.lines[0]).toBe(`ready ${queue}`)
    await eventually(async () => (await consumerCount(queue)) === 2)
    await emitMany(a, topic, 'q', 40)
    await eventually(() => got.length + c.handled().length === 40, { timeout: 20000 })
    await sleep(300)
    expect(sorted([...got, ...c.handled()])).toEqual(sorted(ids('q', 40)))
    expect(got.length).toBeGreaterThan(0)
    expect(c.handled().length).toBeGreaterThan(0)
    // durable by default (adapter durable: true): the queue outlives its consumers
    await h.unsubscribe()
    c.p.kill('SIGTERM')
    await eventually(() => c.lines.includes('closed'))
    expect(await queueExists(queue)).toBe(true)
  })

  test('durable: false → an auto-delete queue; exclusive: true on a named queue locks out other connections', async () => {
    const topic = `rfc.opt.${randomUUID().slice(0, 8)}`
    const a = rabbit()
    const b = rabbit({ connectionTimeout: 1000 })
    const tmp = `tmp-${randomUUID().slice(0, 6)}`
    queues.add(`motia.${topic}.${tmp}`).add(`motia.${topic}.${tmp}.dlq`)
    const got = []
    const gotB = []
    const h = await a.subscribe(topic, (e) => void got.push(e.data.id), { queue: tmp, durable: false, exclusive: true })
    // another connection cannot consume from an exclusive queue (RESOURCE_LOCKED): not even our other adapter,
    // whose subscribe() still resolves (Motia core does not await it) and keeps trying
    const hb = await b.subscribe(topic, (e) => void gotB.push(e.data.id), { queue: tmp, durable: false, exclusive: true })
    expect(hb).toMatchObject({ topic, queue: `motia.${topic}.${tmp}` })
    {
      const { conn, ch } = await admin()
      const err = await ch.consume(`motia.${topic}.${tmp}`, () => {}).catch((e) => e)
      expect(String(err && err.message)).toMatch(/RESOURCE_LOCKED|exclusive/)
      await conn.close().catch(() => {})
    }
    await emitMany(a, topic, 'x', 3)
    await eventually(() => got.length === 3)
    await sleep(300)
    expect(gotB).toEqual([])
    await b.unsubscribe(hb)
    await h.unsubscribe()
    // auto-delete: gone with its last consumer
    await eventually(async () => !(await queueExists(`motia.${topic}.${tmp}`)))
  })

  test('prefetch bounds the handlers running at once', async () => {
    const topic = `rfc.pf.${randomUUID().slice(0, 8)}`
    const a = rabbit()
    let running = 0
    let max = 0
    let done = 0
    await a.subscribe(topic, async () => {
      running++
      max = Math.max(max, running)
      await sleep(30)
      running--
      done++
    }, { prefetch: 3 })
    await emitMany(a, topic, 'p', 20)
    await eventually(() => done === 20, { timeout: 20000 })
    expect(max).toBe(3)
  })

  test('a failing handler: retried (maxRetries 3 by default), then dead-lettered for a queue group', async () => {
    const topic = `rfc.dlq.${randomUUID().slice(0, 8)}`
    const group = `g-${randomUUID().slice(0, 6)}`
    const queue = `motia.${topic}.${group}`
    queues.add(queue).add(`${queue}.dlq`)
    const a = rabbit()
    let runs = 0
    await a.subscribe(topic, () => {
      runs++
      throw new Error('boom')
    }, { queue: group })
    await a.emit({ topic, data: { id: 'bad' }, traceId: 't' })
    const { conn, ch } = await admin()
    try {
      await eventually(async () => (await ch.checkQueue(`${queue}.dlq`)).messageCount === 1, { timeout: 20000 })
    } finally {
      await conn.close().catch(() => {})
    }
    expect(runs).toBe(4)
  })

  test('Motia 0.17 subscribe(topic, stepName, handler, queueConfig) still works next to the RFC form', async () => {
    const topic = `rfc.mix.${randomUUID().slice(0, 8)}`
    const step = 'Step'
    queues.add(`motia.${topic}.${step}`).add(`motia.${topic}.${step}.dlq`)
    const a = rabbit()
    const stepGot = []
    const fanGot = []
    const h = await a.subscribe(topic, step, async (e) => void stepGot.push(e.data.id), {
      type: 'standard',
      maxRetries: 3,
      visibilityTimeout: 900,
      delaySeconds: 0,
    })
    expect(h).toMatchObject({ topic, id: expect.any(String) })
    expect(h.queue).toBeUndefined()
    await a.subscribe(topic, (e) => void fanGot.push(e.data.id))
    expect(await consumerCount(`motia.${topic}.${step}`)).toBe(1)
    await emitMany(a, topic, 'm', 5)
    await eventually(() => stepGot.length === 5 && fanGot.length === 5)
    expect(await a.getSubscriptionCount(topic)).toBe(2)
  })

  test('invalid RFC options reject with MOTIA_CONFIG', async () => {
    const a = rabbit()
    await expect(a.subscribe('t', () => {}, { queue: '' })).rejects.toThrow(/MOTIA_CONFIG.*options\.queue/)
    await expect(a.subscribe('t', () => {}, { prefetch: 0 })).rejects.toThrow(/options\.prefetch/)
    await expect(a.subscribe('t', () => {}, { durable: 'yes' })).rejects.toThrow(/options\.durable/)
    await expect(a.subscribe('t', () => {}, 'queue')).rejects.toThrow(/`options`/)
  })
})

describe('KafkaEventAdapter: RFC subscribe(topic, handler, {queue, prefetch})', () => {
  beforeAll(requireKafka)
  const kafka = (extra = {}) => {
    const a = new KafkaEventAdapter({ brokers: KAFKA_BROKERS, groupId: uniqueName('rfc'), rdkafka: TEST_RDKAFKA, ...extra })
    open.push(a)
    return a
  }

  test('without queue: fan-out, each of 2 subscribers (one in another process) gets every event, from the end of the topic', async () => {
    const topic = uniqueName('rfc-fan')
    const a = kafka()
    // an event from before any subscriber: a fan-out subscriber starts at the end, so never sees it
    await a.emit({ topic, data: { id: 'old' }, traceId: 't' })
    const got1 = []
    const got2 = []
    const h1 = await a.subscribe(topic, (e) => void got1.push(e.data.id))
    const h2 = await a.subscribe(topic, async (e) => void got2.push(e.data.id))
    expect(h1).toMatchObject({ topic, id: expect.any(String) })
    expect(h1.group).toMatch(new RegExp(`^${a.config.groupId.replace(/\./g, '\\.')}\\.fanout\\.[0-9a-f-]{36}$`))
    expect(h1.group).not.toBe(h2.group)
    const c = await child('kafka', { brokers: KAFKA_BROKERS, groupId: a.config.groupId, rdkafka: TEST_RDKAFKA }, topic, {})
    await emitMany(a, topic, 'f', 20)
    await eventually(() => got1.length === 20 && got2.length === 20 && c.handled().length === 20, { timeout: 30000 })
    expect(sorted(got1)).toEqual(sorted(ids('f', 20)))
    expect(sorted(got2)).toEqual(sorted(ids('f', 20)))
    expect(sorted(c.handled())).toEqual(sorted(ids('f', 20)))

    // unsubscribe() stops delivery to that subscriber only
    await h1.unsubscribe()
    expect(await a.getSubscriptionCount(topic)).toBe(1)
    await emitMany(a, topic, 'g', 5)
    await eventually(() => got2.length === 25, { timeout: 30000 })
    await sleep(500)
    expect(got1).toHaveLength(20)
  })

  test('same queue: 2 subscribers in 2 processes share the events (each once), as group ${groupId}.${queue}', async () => {
    const topic = uniqueName('rfc-grp')
    const a = kafka({ numPartitions: 4 })
    const groupId = a.config.groupId
    const got = []
    const h = await a.subscribe(topic, async (e) => void got.push(e.data.id), { queue: 'workers', prefetch: 5 })
    expect(h.group).toBe(`${groupId}.workers`)
    const c = await child('kafka', { brokers: KAFKA_BROKERS, groupId, numPartitions: 4, rdkafka: TEST_RDKAFKA }, topic, { queue: 'workers' })
    expect(c.lines[0]).toBe(`ready ${groupId}.workers`)
    // both members hold partitions once the group rebalanced: keep emitting until both handled some
    let n = 0
    await eventually(
      async () => {
        await emitMany(a, topic, `q${n++}`, 20)
        return got.length > 0 && c.handled().length > 0
      },
      { timeout: 60000, interval: 500 },
    )
    const total = n * 20
    await eventually(() => got.length + c.handled().length >= total, { timeout: 30000 })
    await sleep(1000)
    const all = [...got, ...c.handled()]
    expect(all).toHaveLength(total)
    expect(new Set(all).size).toBe(total)
  })

  test('unsubscribe() stops a queue subscriber; Motia 0.17 subscribe(topic, stepName, handler, queueConfig) still works', async () => {
    const topic = uniqueName('rfc-mix')
    const a = kafka()
    const stepGot = []
    const grpGot = []
    await a.subscribe(topic, 'Step', async (e) => void stepGot.push(e.data.id), {
      type: 'standard',
      maxRetries: 3,
      visibilityTimeout: 900,
      delaySeconds: 0,
    })
    const h = await a.subscribe(topic, (e) => void grpGot.push(e.data.id), { queue: 'g' })
    await emitMany(a, topic, 'm', 5)
    await eventually(() => stepGot.length === 5 && grpGot.length === 5, { timeout: 30000 })
    await h.unsubscribe()
    await emitMany(a, topic, 'n', 5)
    await eventually(() => stepGot.length === 10, { timeout: 30000 })
    await sleep(500)
    expect(grpGot).toHaveLength(5)
  })
})
