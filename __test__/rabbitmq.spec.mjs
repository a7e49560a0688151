// RabbitMQEventAdapter against the real local RabbitMQ (no mocks).
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { RabbitMQEventAdapter } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'
import {
  RABBIT_URL,
  RABBIT_HOST,
  RABBIT_PORT,
  requireRabbit,
  uniqueExchange,
  admin,
  queueDepth,
  cleanupTopology,
} from './helpers/amqp.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'rabbit-child.mjs')
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

import { jest } from '@jest/globals'
import { spawnChild } from './helpers/child.mjs'
jest.setTimeout(120000)

const cleanups = []
const adapters = []
const children = []

function make(exchangeName, extra = {}) {
  const a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName, exchangeType: 'topic', reconnectDelay: 500, ...extra })
  adapters.push(a)
  return a
}

function track(exchange, ...pairs) {
  cleanups.push(() => cleanupTopology(exchange, pairs))
}

const child = (args) => spawnChild(CHILD, args, children)

beforeAll(requireRabbit)

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const a of adapters.splice(0)) await a.shutdown().catch(() => {})
  for (const c of cleanups.splice(0)) await c()
})

describe('configuration', () => {
  test('invalid config throws MOTIA_CONFIG synchronously, naming the option', () => {
    expect(() => new RabbitMQEventAdapter()).toThrow(/MOTIA_CONFIG.*config/)
    expect(() => new RabbitMQEventAdapter({})).toThrow(/`url`/)
    expect(() => new RabbitMQEventAdapter({ url: 'http://u:secret@h' })).toThrow(/`url`/)
    expect(() => new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeType: 'bogus' })).toThrow(/`exchangeType`/)
    expect(() => new RabbitMQEventAdapter({ url: RABBIT_URL, prefetch: 0 })).toThrow(/`prefetch`/)
    try {
      new RabbitMQEventAdapter({ url: 'http://u:secret@h' })
    } catch (e) {
      expect(e.code).toBe('MOTIA_CONFIG')
      expect(e.message).not.toContain('secret')
    }
  })

  test('wrong password: emit rejects and subscribe reports MOTIA_AUTH quickly, without the password', async () => {
    const a = new RabbitMQEventAdapter({ url: `amqp://guest:wrong-s3cret@${RABBIT_HOST}:${RABBIT_PORT}`, exchangeName: 'x' })
    adapters.push(a)
    const t0 = Date.now()
    const err = await a.emit({ topic: 't', data: 1, traceId: 'x' }).catch((e) => e)
    expect(err.code).toBe('MOTIA_AUTH')
    expect(err.message).not.toContain('wrong-s3cret')
    expect(Date.now() - t0).toBeLessThan(8000)
    // subscribe() resolves (a rejection would crash a Motia app) and keeps the error for inspection
    const h = await a.subscribe('t', 's', () => {}, QC)
    expect(a.subscriptionError(h).code).toBe('MOTIA_AUTH')
    expect(a.subscriptionError(h).message).not.toContain('wrong-s3cret')
    expect(await a.getSubscriptionCount('t')).toBe(1)
  })

  test('unreachable broker: emit rejects after publishTimeout; subscribe resolves a pending handle and never an unhandled rejection', async () => {
    const unhandled = []
    const onUnhandled = (e) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    try {
      const a = new RabbitMQEventAdapter({
        url: 'amqp://guest:guest@127.0.0.1:1',
        exchangeName: 'x',
        connectionTimeout: 500,
        publishTimeout: 1500,
      })
      adapters.push(a)
      const t0 = Date.now()
      const err = await a.emit({ topic: 't', data: 1, traceId: 'x' }).catch((e) => e)
      expect(err.code).toBe('MOTIA_TIMEOUT')
      expect(err.message).toMatch(/publishTimeout/)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400)
      expect(Date.now() - t0).toBeLessThan(5000)
      // Motia core calls subscribe() without awaiting it
      const h = await a.subscribe('t', 's', () => {}, QC)
      expect(h.topic).toBe('t')
      expect(await a.getSubscriptionCount('t')).toBe(1)
      await new Promise((r) => setTimeout(r, 200))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  test('a value JSON cannot hold rejects with MOTIA_SERIALIZE and nothing is published', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['t', 's'])
    await a.subscribe('t', 's', () => {}, QC)
    const err = await a.emit({ topic: 't', data: { n: 1n }, traceId: 'x' }).catch((e) => e)
    expect(err.code).toBe('MOTIA_SERIALIZE')
    const bad = await a.emit({ topic: '', data: 1 }).catch((e) => e)
    expect(bad.code).toBe('MOTIA_CONFIG')
  })
})

describe('delivery', () => {
  test('emit → handler: the body has exactly the upstream fields; logger/tracer never leave', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['order.created', 'Notify'])
    const got = []
    const h = await a.subscribe('order.created', 'Notify', (e) => got.push(e), QC)
    expect(h).toEqual({ topic: 'order.created', id: expect.any(String), unsubscribe: expect.any(Function) })
    await a.emit({
      topic: 'order.created',
      data: { id: 7, nested: { ok: true } },
      traceId: 'trace-1',
      flows: ['orders'],
      messageGroupId: 'g1',
      logger: { info() {} },
      tracer: { span() {} },
    })
    await eventually(() => got.length === 1)
    expect(Object.keys(got[0]).sort()).toEqual(['data', 'flows', 'messageGroupId', 'timestamp', 'topic', 'traceId'])
    expect(got[0]).toMatchObject({ topic: 'order.created', data: { id: 7, nested: { ok: true } }, traceId: 'trace-1' })
    expect(typeof got[0].timestamp).toBe('number')
    expect(await a.getSubscriptionCount('order.created')).toBe(1)
    expect(await a.listTopics()).toEqual(['order.created'])
    await h.unsubscribe()
    expect(await a.getSubscriptionCount('order.created')).toBe(0)
    // the queue stays (as upstream): an event emitted now waits for the next consumer
    await a.emit({ topic: 'order.created', data: { id: 8 }, traceId: 't' })
    await eventually(async () => (await queueDepth('motia.order.created.Notify')) === 1)
    expect(got.length).toBe(1)
  })

  test('two steps on one topic each get every event', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['t', 'A'], ['t', 'B'])
    const A = []
    const B = []
    await a.subscribe('t', 'A', (e) => A.push(e.data.i), QC)
    await a.subscribe('t', 'B', (e) => B.push(e.data.i), QC)
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.emit({ topic: 't', data: { i }, traceId: 't' })))
    await eventually(() => A.length === 50 && B.length === 50)
    expect(new Set(A).size).toBe(50)
    expect(new Set(B).size).toBe(50)
  })

  test('competing consumers in two Node processes: each event handled once, both share the work', async () => {
    const x = uniqueExchange()
    track(x, ['jobs', 'Work'])
    const c1 = child(['consume', RABBIT_URL, x, 'jobs', 'Work'])
    const c2 = child(['consume', RABBIT_URL, x, 'jobs', 'Work'])
    await eventually(() => c1.lines.includes('ready') && c2.lines.includes('ready'), { timeout: 20000 })
    const a = make(x)
    const N = 400
    await Promise.all(Array.from({ length: N }, (_, i) => a.emit({ topic: 'jobs', data: { id: i }, traceId: 't' })))
    const handled = (c) => c.lines.filter((l) => l.startsWith('handled ')).map((l) => Number(l.slice(8)))
    await eventually(() => handled(c1).length + handled(c2).length >= N, { timeout: 30000 })
    await new Promise((r) => setTimeout(r, 300))
    const h1 = handled(c1)
    const h2 = handled(c2)
    expect(h1.length + h2.length).toBe(N)
    expect(new Set([...h1, ...h2]).size).toBe(N)
    expect(h1.length).toBeGreaterThan(0)
    expect(h2.length).toBeGreaterThan(0)
  })

  test('10,000 events are each handled exactly once', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['bulk', 'Count'])
    const seen = new Map()
    await a.subscribe('bulk', 'Count', (e) => seen.set(e.data.i, (seen.get(e.data.i) || 0) + 1), {
      ...QC,
      concurrency: 64,
    })
    const N = 10000
    for (let start = 0; start < N; start += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, k) => a.emit({ topic: 'bulk', data: { i: start + k }, traceId: 't' })),
      )
    }
    await eventually(() => seen.size === N, { timeout: 60000 })
    await new Promise((r) => setTimeout(r, 500))
    expect([...seen.values()].every((n) => n === 1)).toBe(true)
    await eventually(async () => (await queueDepth('motia.bulk.Count')) === 0)
  })
})

describe('retries and dead-letter', () => {
  test('a rejection (Error, string, undefined) is retried after delaySeconds, maxRetries times, then dead-lettered', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['fail', 'Always'])
    const times = []
    const reasons = [new Error('boom'), 'Process exited with code 1', undefined]
    await a.subscribe(
      'fail',
      'Always',
      async () => {
        times.push(Date.now())
        return Promise.reject(reasons[(times.length - 1) % 3])
      },
      { type: 'standard', maxRetries: 2, visibilityTimeout: 900, delaySeconds: 0.3 },
    )
    await a.emit({ topic: 'fail', data: { id: 1 }, traceId: 't' })
    await eventually(async () => (await queueDepth('motia.fail.Always.dlq')) === 1, { timeout: 10000 })
    expect(times.length).toBe(3)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(280)
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(280)
    // the dead-lettered message is the original body
    const { conn, ch } = await admin()
    const m = await ch.get('motia.fail.Always.dlq', { noAck: true })
    await conn.close()
    expect(JSON.parse(m.content.toString())).toMatchObject({ topic: 'fail', data: { id: 1 } })
    expect(await queueDepth('motia.fail.Always')).toBe(0)
  })

  test('a handler that fails once then succeeds is acked, not dead-lettered; a sync throw counts as failure', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['flaky', 'Once'])
    let calls = 0
    let done = false
    await a.subscribe(
      'flaky',
      'Once',
      () => {
        calls++
        if (calls === 1) throw new Error('first time')
        done = true
      },
      { type: 'standard', maxRetries: 1, visibilityTimeout: 900, delaySeconds: 0 },
    )
    await a.emit({ topic: 'flaky', data: {}, traceId: 't' })
    await eventually(() => done)
    await new Promise((r) => setTimeout(r, 300))
    expect(calls).toBe(2)
    expect(await queueDepth('motia.flaky.Once.dlq')).toBe(0)
    expect(await queueDepth('motia.flaky.Once')).toBe(0)
  })

  test('a message that is not JSON is dead-lettered, not dropped and not handled', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['raw', 'Step'])
    const got = []
    await a.subscribe('raw', 'Step', (e) => got.push(e), QC)
    const { conn } = await admin()
    const ch = await conn.createConfirmChannel()
    ch.publish(x, 'raw', Buffer.from('not json {'))
    await ch.waitForConfirms()
    await conn.close()
    await eventually(async () => (await queueDepth('motia.raw.Step.dlq')) === 1)
    expect(got).toEqual([])
  })
})

describe('ordering and concurrency', () => {
  test('fifo keeps order per messageGroupId, also across retries', async () => {
    const x = uniqueExchange()
    const a = make(x, { prefetch: 20 })
    track(x, ['fifo', 'Ordered'])
    const order = { a: [], b: [], c: [] }
    const failedOnce = new Set()
    await a.subscribe(
      'fifo',
      'Ordered',
      async (e) => {
        const { g, n } = e.data
        if (n % 7 === 3 && !failedOnce.has(`${g}${n}`)) {
          failedOnce.add(`${g}${n}`)
          throw new Error('retry me')
        }
        await new Promise((r) => setTimeout(r, Math.random() * 3))
        order[g].push(n)
      },
      { type: 'fifo', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0.02 },
    )
    const emits = []
    for (let n = 0; n < 60; n++) for (const g of ['a', 'b', 'c']) emits.push(a.emit({ topic: 'fifo', data: { g, n }, traceId: 't', messageGroupId: g }))
    await Promise.all(emits)
    await eventually(() => order.a.length + order.b.length + order.c.length === 180, { timeout: 30000 })
    const expected = Array.from({ length: 60 }, (_, n) => n)
    expect(order.a).toEqual(expected)
    expect(order.b).toEqual(expected)
    expect(order.c).toEqual(expected)
    expect(failedOnce.size).toBeGreaterThan(0)
  })

  test('consumerLag: the queue\'s ready messages while the handler slots are busy', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['lag', 'Slow'])
    let release
    const gate = new Promise((r) => (release = r))
    let got = 0
    await a.subscribe('lag', 'Slow', async () => {
      got++
      await gate
    }, { ...QC, concurrency: 2 })
    for (let n = 0; n < 7; n++) await a.emit({ topic: 'lag', data: { n } })
    await eventually(() => got === 2)
    await eventually(async () => (await a.consumerLag())[0].waiting === 5)
    expect(await a.consumerLag()).toEqual([{ topic: 'lag', step: 'Slow', waiting: 5, unsettled: null }])
    release()
    await eventually(() => got === 7)
    await eventually(async () => (await a.consumerLag())[0].waiting === 0)
  })

  test('standard queues honour concurrency', async () => {
    const x = uniqueExchange()
    const a = make(x)
    track(x, ['conc', 'Par'])
    let running = 0
    let peak = 0
    let done = 0
    await a.subscribe(
      'conc',
      'Par',
      async () => {
        running++
        peak = Math.max(peak, running)
        await new Promise((r) => setTimeout(r, 30))
        running--
        done++
      },
      { ...QC, concurrency: 5 },
    )
    await Promise.all(Array.from({ length: 40 }, () => a.emit({ topic: 'conc', data: {}, traceId: 't' })))
    await eventually(() => done === 40, { timeout: 20000 })
    expect(peak).toBe(5)
  })
})

describe('durability and shutdown', () => {
  test('an event whose emit resolved survives the emitting process being killed at once', async () => {
    const x = uniqueExchange()
    track(x, ['kill', 'After'])
    // declare the queue (ours), then leave it without a consumer
    const a = make(x)
    const h = await a.subscribe('kill', 'After', () => {}, QC)
    await h.unsubscribe()
    const c = child(['emit', RABBIT_URL, x, 'kill', '500'])
    await eventually(() => c.lines.includes('emitted'), { timeout: 30000, interval: 1 })
    c.p.kill('SIGKILL')
    await c.exited
    await eventually(async () => (await queueDepth('motia.kill.After')) === 500, { timeout: 5000 })
    const seen = new Set()
    await a.subscribe('kill', 'After', (e) => seen.add(e.data.id), { ...QC, concurrency: 50 })
    await eventually(() => seen.size === 500, { timeout: 20000 })
  })

  test('shutdown() lets a running handler finish and ack, then the process exits on its own', async () => {
    const x = uniqueExchange()
    track(x, ['drain', 'Slow'])
    const c = child(['drain', RABBIT_URL, x, 'drain', 'Slow'])
    await eventually(() => c.lines.includes('ready'), { timeout: 20000 })
    const a = make(x)
    await a.emit({ topic: 'drain', data: {}, traceId: 't' })
    let timer
    const { code } = await Promise.race([
      c.exited,
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`child did not exit: ${c.stderr()}`)), 15000)
      }),
    ]).finally(() => clearTimeout(timer))
    expect(code).toBe(0)
    expect(c.lines).toEqual(['ready', 'handled', 'closed'])
    expect(await queueDepth('motia.drain.Slow')).toBe(0)
  })
})
