// KafkaEventAdapter against the real local Kafka-API broker (tansu, started by scripts/services.sh kafka).
import { jest } from '@jest/globals'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { KafkaEventAdapter } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'
import { KAFKA_BROKERS, requireKafka, uniqueName, TEST_RDKAFKA } from './helpers/kafka.mjs'
import { spawnChild } from './helpers/child.mjs'

jest.setTimeout(120000)

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'kafka-child.mjs')
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
const open = []
const children = []

function make(extra = {}) {
  const a = new KafkaEventAdapter({ brokers: KAFKA_BROKERS, groupId: uniqueName('grp'), rdkafka: TEST_RDKAFKA, ...extra })
  open.push(a)
  return a
}

const child = (args) => spawnChild(CHILD, args, children)

beforeAll(requireKafka)

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const a of open.splice(0)) await a.shutdown().catch(() => {})
})

describe('configuration', () => {
  test('invalid config throws MOTIA_CONFIG naming the option', () => {
    expect(() => new KafkaEventAdapter()).toThrow(/MOTIA_CONFIG/)
    expect(() => new KafkaEventAdapter({ brokers: [] })).toThrow(/`brokers`/)
    expect(() => new KafkaEventAdapter({ brokers: [''] })).toThrow(/`brokers`/)
    expect(() => new KafkaEventAdapter({ brokers: KAFKA_BROKERS, numPartitions: 0 })).toThrow(/`numPartitions`/)
    let err
    try {
      new KafkaEventAdapter({ brokers: KAFKA_BROKERS, rdkafka: { 'no.such.property': 'x' } })
    } catch (e) {
      err = e
    }
    expect(err.code).toBe('MOTIA_CONFIG')
    expect(err.message).toMatch(/no\.such\.property/)
  })

  test('an invalid topic name rejects subscribe with MOTIA_CONFIG', async () => {
    const a = make()
    const err = await a.subscribe('bad topic*', 'S', () => {}, QC).catch((e) => e)
    expect(err.code).toBe('MOTIA_CONFIG')
    expect(await a.getSubscriptionCount('bad topic*')).toBe(0)
  })

  test('unreachable brokers: emit rejects after publishTimeout, subscribe resolves pending, no unhandled rejection', async () => {
    const unhandled = []
    const on = (e) => unhandled.push(e)
    process.on('unhandledRejection', on)
    try {
      const a = make({ brokers: ['127.0.0.1:1'], publishTimeout: 1500, connectionTimeout: 1000 })
      const t0 = Date.now()
      const err = await a.emit({ topic: 'nowhere', data: 1, traceId: 't' }).catch((e) => e)
      expect(['MOTIA_TIMEOUT', 'MOTIA_CONNECT']).toContain(err.code)
      expect(Date.now() - t0).toBeLessThan(8000)
      const h = await a.subscribe('nowhere', 'S', () => {}, QC)
      expect(h.topic).toBe('nowhere')
      await new Promise((r) => setTimeout(r, 200))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', on)
    }
  })
})

describe('delivery', () => {
  test('emit → handler: body has exactly {topic,data,traceId,flows,messageGroupId,timestamp}', async () => {
    const a = make()
    const topic = uniqueName('t')
    const got = []
    const h = await a.subscribe(topic, 'Step', (e) => got.push(e), QC)
    expect(await a.listTopics()).toEqual([topic])
    expect(await a.getSubscriptionCount(topic)).toBe(1)
    await a.emit({ topic, data: { id: 1 }, traceId: 'tr', flows: ['f'], messageGroupId: 'g', logger: {}, tracer: {} })
    await eventually(() => got.length === 1, { timeout: 20000 })
    expect(Object.keys(got[0]).sort()).toEqual(['data', 'flows', 'messageGroupId', 'timestamp', 'topic', 'traceId'])
    expect(got[0]).toMatchObject({ topic, data: { id: 1 }, traceId: 'tr', flows: ['f'], messageGroupId: 'g' })
    await h.unsubscribe()
    expect(await a.getSubscriptionCount(topic)).toBe(0)
  })

  test('two steps on one topic each get every event', async () => {
    const a = make()
    const topic = uniqueName('t')
    const A = new Set()
    const B = new Set()
    await Promise.all([a.subscribe(topic, 'A', (e) => A.add(e.data.i), QC), a.subscribe(topic, 'B', (e) => B.add(e.data.i), QC)])
    await Promise.all(Array.from({ length: 100 }, (_, i) => a.emit({ topic, data: { i }, traceId: `t${i}` })))
    await eventually(() => A.size === 100 && B.size === 100, { timeout: 30000 })
  })

  test('replicas of one step in two Node processes share the work, each event once', async () => {
    const groupId = uniqueName('grp')
    const topic = uniqueName('t')
    const c1 = child(['consume', KAFKA_BROKERS.join(','), groupId, topic, 'Work'])
    await eventually(() => c1.lines.includes('ready'), { timeout: 30000 })
    const c2 = child(['consume', KAFKA_BROKERS.join(','), groupId, topic, 'Work'])
    await eventually(() => c2.lines.includes('ready'), { timeout: 30000 })
    // let the group settle after the second join
    await new Promise((r) => setTimeout(r, 4000))
    const a = make()
    const N = 300
    await Promise.all(Array.from({ length: N }, (_, i) => a.emit({ topic, data: { id: i }, traceId: `trace-${i}` })))
    const handled = (c) => c.lines.filter((l) => l.startsWith('handled ')).map((l) => Number(l.slice(8)))
    await eventually(() => new Set([...handled(c1), ...handled(c2)]).size === N, { timeout: 60000 })
    await new Promise((r) => setTimeout(r, 500))
    const all = [...handled(c1), ...handled(c2)]
    expect(all.length).toBe(N)
    expect(handled(c1).length).toBeGreaterThan(0)
    expect(handled(c2).length).toBeGreaterThan(0)
  })

  test('consumerLag: the group\'s lag (high watermark − committed) rises and falls back to 0', async () => {
    const a = make()
    const topic = uniqueName('lag')
    let release
    const gate = new Promise((r) => (release = r))
    let got = 0
    await a.subscribe(topic, 'Slow', async () => {
      got++
      await gate
    }, { ...QC, concurrency: 2 })
    for (let n = 0; n < 7; n++) await a.emit({ topic, data: { n }, traceId: `t${n}` })
    await eventually(() => got >= 1, { timeout: 30000 })
    const lag = await a.consumerLag()
    expect(lag).toHaveLength(1)
    expect(lag[0]).toMatchObject({ topic, step: 'Slow', unsettled: null })
    expect(lag[0].waiting).toBe(7)
    release()
    await eventually(() => got === 7, { timeout: 30000 })
    await eventually(async () => (await a.consumerLag())[0].waiting === 0, { timeout: 30000 })
  })

  test('10,000 events are each handled exactly once', async () => {
    const a = make()
    const topic = uniqueName('bulk')
    const seen = new Map()
    await a.subscribe(topic, 'Count', (e) => seen.set(e.data.i, (seen.get(e.data.i) || 0) + 1), { ...QC, concurrency: 64 })
    const N = 10000
    for (let s = 0; s < N; s += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, k) => a.emit({ topic, data: { i: s + k }, traceId: `t${s + k}` })))
    }
    await eventually(() => seen.size === N, { timeout: 60000 })
    await new Promise((r) => setTimeout(r, 500))
    expect([...seen.values()].every((c) => c === 1)).toBe(true)
  })
})

describe('ordering, retries, dead-letter, commits', () => {
  test('fifo: order per messageGroupId holds, also across retries', async () => {
    const a = make()
    const topic = uniqueName('fifo')
    const order = { a: [], b: [], c: [] }
    const failed = new Set()
    await a.subscribe(
      topic,
      'Ordered',
      async (e) => {
        const { g, n } = e.data
        if (n % 5 === 2 && !failed.has(`${g}${n}`)) {
          failed.add(`${g}${n}`)
          throw new Error('retry me')
        }
        order[g].push(n)
      },
      { type: 'fifo', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0.02 },
    )
    for (let n = 0; n < 40; n++) {
      await Promise.all(['a', 'b', 'c'].map((g) => a.emit({ topic, data: { g, n }, traceId: `t${n}`, messageGroupId: g })))
    }
    await eventually(() => order.a.length + order.b.length + order.c.length === 120, { timeout: 30000 })
    const expected = Array.from({ length: 40 }, (_, n) => n)
    expect(order).toEqual({ a: expected, b: expected, c: expected })
    expect(failed.size).toBeGreaterThan(0)
  })

  test('rejections retry after delaySeconds, maxRetries times, then go to `${topic}.${step}.dlq`', async () => {
    const a = make()
    const topic = uniqueName('fail')
    const times = []
    await a.subscribe(
      topic,
      'Always',
      () => {
        times.push(Date.now())
        return Promise.reject(times.length === 2 ? 'a string' : new Error('boom'))
      },
      { type: 'standard', maxRetries: 2, visibilityTimeout: 900, delaySeconds: 0.3 },
    )
    const dead = []
    await a.subscribe(`${topic}.Always.dlq`, 'Inspect', (e) => dead.push(e), QC)
    await a.emit({ topic, data: { id: 9 }, traceId: 't' })
    await eventually(() => dead.length === 1, { timeout: 30000 })
    expect(times.length).toBe(3)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(280)
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(280)
    expect(dead[0]).toMatchObject({ topic, data: { id: 9 } })
  })

  test('offsets are committed only for settled events: an unfinished one is consumed again by the next replica', async () => {
    const groupId = uniqueName('grp')
    const topic = uniqueName('commit')
    const a = make({ groupId, shutdownTimeout: 300 })
    const firstRun = new Set()
    await a.subscribe(
      topic,
      'Step',
      (e) => {
        firstRun.add(e.data.i)
        if (e.data.i === 5) return new Promise(() => {}) // never settles
      },
      { ...QC, concurrency: 20 },
    )
    await Promise.all(Array.from({ length: 10 }, (_, i) => a.emit({ topic, data: { i }, traceId: 'same-key' })))
    await eventually(() => firstRun.size === 10, { timeout: 20000 })
    await a.shutdown()
    const b = make({ groupId })
    const secondRun = []
    await b.subscribe(topic, 'Step', (e) => secondRun.push(e.data.i), QC)
    await eventually(() => secondRun.includes(5), { timeout: 30000 })
    await new Promise((r) => setTimeout(r, 500))
    // 0..4 were committed; 5 was not (and everything after it on the partition is redelivered too)
    expect(secondRun.filter((i) => i < 5)).toEqual([])
    expect(secondRun).toEqual([5, 6, 7, 8, 9])
  })
})
