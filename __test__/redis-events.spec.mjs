// RedisEventAdapter against the real local Redis (no mocks), several Node processes where it matters.
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { jest } from '@jest/globals'
import { createClient } from 'redis'
import { RedisEventAdapter, ErrorCodes, adaptersFromEnv, prometheusMetrics } from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix, eventually, deleteMatching, orderedHandler } from './helpers/env.mjs'
import { spawnChild } from './helpers/child.mjs'

jest.setTimeout(120000)

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'redis-events-child.mjs')
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

let raw
const adapters = []
const children = []
const prefixes = []

beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const a of adapters.splice(0)) await a.shutdown().catch(() => {})
  for (const p of prefixes.splice(0)) await deleteMatching(raw, `${p}*`)
})

afterAll(async () => {
  await raw?.quit()
})

function prefix(tag) {
  const p = uniquePrefix(`ev-${tag}`)
  prefixes.push(p)
  return p
}

function make(keyPrefix, options = {}) {
  const a = new RedisEventAdapter({ url: REDIS_URL }, { keyPrefix, ...options })
  adapters.push(a)
  return a
}

const child = (args) => spawnChild(CHILD, args, children)

const handledIds = (c) => c.lines.filter((l) => l.startsWith('handled ')).map((l) => Number(l.slice(8)))

describe('RedisEventAdapter', () => {
  test('emit → every step of the topic once, with the 0.17 event fields; keys as documented', async () => {
    const p = prefix('basic')
    const a = make(p)
    const seen = { A: [], B: [] }
    await a.subscribe('order.created', 'A', async (e) => seen.A.push(e), QC)
    await a.subscribe('order.created', 'B', async (e) => seen.B.push(e), QC)
    expect(await a.getSubscriptionCount('order.created')).toBe(2)
    expect(await a.listTopics()).toEqual(['order.created'])
    await a.emit({ topic: 'order.created', data: { id: 1 }, traceId: 'tr-1', messageGroupId: 'g' })
    await eventually(() => seen.A.length === 1 && seen.B.length === 1)
    expect(seen.A[0]).toMatchObject({ topic: 'order.created', data: { id: 1 }, traceId: 'tr-1', messageGroupId: 'g' })
    expect(typeof seen.A[0].timestamp).toBe('number')
    expect((await raw.sMembers(`${p}order.created:steps`)).sort()).toEqual(['A', 'B'])
    expect(await raw.type(`${p}order.created:q:A`)).toBe('stream')
    // handled entries are acked and deleted: the stream holds only unhandled events
    await eventually(async () => (await raw.xLen(`${p}order.created:q:A`)) === 0)
  })

  test('an emit from a process with no local subscription reaches a step subscribed elsewhere (and while it was down)', async () => {
    const p = prefix('fleet')
    const consumer = make(p)
    const got = []
    const h = await consumer.subscribe('t', 'Step', async (e) => got.push(e.data.n), QC)
    await h.unsubscribe()
    // the step is registered across the fleet: events emitted while no process runs it wait for it
    const api = make(p)
    for (let n = 0; n < 5; n++) await api.emit({ topic: 't', data: { n } })
    expect(await raw.xLen(`${p}t:q:Step`)).toBe(5)
    await consumer.subscribe('t', 'Step', async (e) => got.push(e.data.n), QC)
    await eventually(() => got.length === 5)
    expect(got).toEqual([0, 1, 2, 3, 4])
  })

  test('listTopics lists the topics subscribed anywhere in the fleet; hostile topic names round-trip', async () => {
    const p = prefix('topics')
    const api = make(p)
    const worker = make(p)
    await worker.subscribe('a:q:b', 'S', async () => {}, QC)
    await worker.subscribe('{x}*%', 'S', async () => {}, QC)
    await worker.subscribe('fan.out', async () => {})
    // api subscribes to nothing: it still sees the fleet's topics, and nothing of another prefix
    const other = make(prefix('topics-other'))
    await other.subscribe('foreign', 'S', async () => {}, QC)
    expect(await api.listTopics()).toEqual(['a:q:b', 'fan.out', '{x}*%'].sort())
    expect(await api.getSubscriptionCount('a:q:b')).toBe(0)
  })

  test('emit runs on the event-loop connection and survives a flushed script cache (NOSCRIPT → EVAL)', async () => {
    const p = prefix('noscript')
    const a = make(p)
    expect(a.loop).toBeTruthy()
    const got = []
    await a.subscribe('t', 'S', async (e) => got.push(e.data.n), QC)
    await a.emit({ topic: 't', data: { n: 1 } })
    await raw.sendCommand(['SCRIPT', 'FLUSH'])
    await a.emit({ topic: 't', data: { n: 2 } })
    await eventually(() => got.length === 2)
    expect(got.sort()).toEqual([1, 2])
    expect(a.metrics().methods.emit.calls).toBe(2)
  })

  test('consumerLag: waiting and unsettled entries of the step, in metrics() and Prometheus text', async () => {
    const p = prefix('lag')
    const a = make(p)
    let release
    const gate = new Promise((r) => (release = r))
    let got = 0
    await a.subscribe('t', 'Slow', async () => {
      got++
      await gate
    }, { ...QC, concurrency: 2 })
    for (let n = 0; n < 7; n++) await a.emit({ topic: 't', data: { n } })
    await eventually(() => got === 2)
    expect(await a.consumerLag()).toEqual([{ topic: 't', step: 'Slow', waiting: 5, unsettled: 2 }])
    expect(a.metrics().lag).toEqual([{ topic: 't', step: 'Slow', waiting: 5, unsettled: 2 }])
    const text = prometheusMetrics([a])
    expect(text).toMatch(/motia_adapter_consumer_lag_events\{adapter="RedisEventAdapter",instance="[^"]+",topic="t",step="Slow"\} 5/)
    expect(text).toMatch(/motia_adapter_consumer_unsettled_events\{[^}]*step="Slow"\} 2/)
    release()
    await eventually(() => got === 7)
    await eventually(async () => (await a.consumerLag())[0].waiting === 0 && (await a.consumerLag())[0].unsettled === 0)
  })

  test('two processes compete: 2,000 events each handled exactly once', async () => {
    const p = prefix('compete')
    const c1 = child(['consume', REDIS_URL, p, 'work', 'Worker', JSON.stringify(QC)])
    const c2 = child(['consume', REDIS_URL, p, 'work', 'Worker', JSON.stringify(QC)])
    await eventually(() => c1.lines.includes('ready') && c2.lines.includes('ready'), { timeout: 20000 })
    const a = make(p)
    await Promise.all(Array.from({ length: 2000 }, (_, i) => a.emit({ topic: 'work', data: { id: i } })))
    await eventually(() => handledIds(c1).length + handledIds(c2).length >= 2000, { timeout: 30000 })
    await new Promise((r) => setTimeout(r, 300))
    const all = [...handledIds(c1), ...handledIds(c2)]
    expect(all.length).toBe(2000)
    expect(new Set(all).size).toBe(2000)
    expect(handledIds(c1).length).toBeGreaterThan(0)
    expect(handledIds(c2).length).toBeGreaterThan(0)
  })

  test('retries after delaySeconds, then an atomic move to the dead-letter stream with reason and attempts', async () => {
    const p = prefix('dlq')
    const a = make(p)
    const runs = []
    await a.subscribe(
      'pay',
      'Charge',
      async () => {
        runs.push(Date.now())
        throw new Error('card declined')
      },
      { ...QC, maxRetries: 2, delaySeconds: 0.2 },
    )
    await a.emit({ topic: 'pay', data: { id: 9 } })
    await eventually(async () => (await raw.xLen(`${p}pay:dlq:Charge`)) === 1, { timeout: 10000 })
    expect(runs.length).toBe(3)
    expect(runs[2] - runs[1]).toBeGreaterThanOrEqual(180)
    const [entry] = await raw.xRange(`${p}pay:dlq:Charge`, '-', '+')
    expect(JSON.parse(entry.message.d).data).toEqual({ id: 9 })
    expect(entry.message.reason).toMatch(/card declined/)
    expect(entry.message.attempts).toBe('3')
    expect(await raw.xLen(`${p}pay:q:Charge`)).toBe(0)
    expect(a.metrics().counters.eventsDeadLettered).toBe(1)
  })

  test('a foreign non-JSON entry is dead-lettered with a reason, never a crash', async () => {
    const p = prefix('foreign')
    const a = make(p)
    const got = []
    await a.subscribe('t', 'S', async (e) => got.push(e.data), QC)
    await raw.xAdd(`${p}t:q:S`, '*', { d: 'not json {' })
    await raw.xAdd(`${p}t:q:S`, '*', { other: 'field' })
    await a.emit({ topic: 't', data: 'fine' })
    await eventually(async () => got.length === 1 && (await raw.xLen(`${p}t:dlq:S`)) === 2)
    const dl = await raw.xRange(`${p}t:dlq:S`, '-', '+')
    expect(dl[0].message.reason).toMatch(/not an event|MOTIA_DECODE/)
  })

  test('kill -9 of a consumer mid-handler: its event is handled by another replica after visibilityTimeout', async () => {
    const p = prefix('kill')
    const qc = { ...QC, visibilityTimeout: 2 }
    const dying = child(['consume', REDIS_URL, p, 'k', 'Slow', JSON.stringify(qc), '60000'])
    await eventually(() => dying.lines.includes('ready'), { timeout: 20000 })
    const a = make(p)
    await a.emit({ topic: 'k', data: { id: 1 } })
    await eventually(() => dying.lines.includes('got 1'))
    dying.p.kill('SIGKILL')
    await dying.exited
    const t0 = Date.now()
    const got = []
    await a.subscribe('k', 'Slow', async (e) => got.push(e.data.id), qc)
    await eventually(() => got.length === 1, { timeout: 15000 })
    expect(got).toEqual([1])
    expect(Date.now() - t0).toBeLessThan(8000)
    expect(a.metrics().counters.eventsRedelivered).toBe(1)
  })

  test('a live slow handler (longer than visibilityTimeout) is not stolen by another replica', async () => {
    const p = prefix('slow')
    const qc = { ...QC, visibilityTimeout: 1 }
    const slow = child(['consume', REDIS_URL, p, 's', 'Slow', JSON.stringify(qc), '3500'])
    await eventually(() => slow.lines.includes('ready'), { timeout: 20000 })
    const a = make(p)
    const stolen = []
    await a.emit({ topic: 's', data: { id: 1 } })
    await eventually(() => slow.lines.includes('got 1'))
    await a.subscribe('s', 'Slow', async (e) => stolen.push(e.data.id), qc)
    await eventually(() => slow.lines.includes('handled 1'), { timeout: 10000 })
    await new Promise((r) => setTimeout(r, 1500))
    expect(stolen).toEqual([])
  })

  test('kill -9 of the emitter right after emit resolved: nothing lost', async () => {
    const p = prefix('emitkill')
    const a = make(p)
    const seen = new Set()
    const h = await a.subscribe('e', 'After', async (e) => seen.add(e.data.id), QC)
    await h.unsubscribe()
    const c = child(['emit', REDIS_URL, p, 'e', '500'])
    await eventually(() => c.lines.includes('emitted'), { timeout: 30000, interval: 1 })
    c.p.kill('SIGKILL')
    await c.exited
    expect(await raw.xLen(`${p}e:q:After`)).toBe(500)
    await a.subscribe('e', 'After', async (e) => seen.add(e.data.id), { ...QC, concurrency: 50 })
    await eventually(() => seen.size === 500, { timeout: 20000 })
  })

  test('fifo: one message group in order across two replicas and retries', async () => {
    const p = prefix('fifo')
    const order = []
    const handler = orderedHandler(order)
    const qc = { ...QC, type: 'fifo', delaySeconds: 0.05 }
    const r1 = make(p)
    const r2 = make(p)
    await r1.subscribe('f', 'Ordered', handler, qc)
    await r2.subscribe('f', 'Ordered', handler, qc)
    const em = make(p)
    for (let n = 0; n < 20; n++) await em.emit({ topic: 'f', data: { n }, messageGroupId: 'g1' })
    await eventually(() => order.length === 20, { timeout: 15000 })
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  test('RFC form: named queues share events, fan-out subscribers each get every event and leave no keys', async () => {
    const p = prefix('rfc')
    const a = make(p)
    const q = []
    const f1 = []
    const f2 = []
    const h1 = await a.subscribe('n', async (e) => q.push(['a', e.data]), { queue: 'workers' })
    await a.subscribe('n', async (e) => q.push(['b', e.data]), { queue: 'workers' })
    const fa = await a.subscribe('n', async (e) => f1.push(e.data))
    const fb = await a.subscribe('n', async (e) => f2.push(e.data))
    expect(h1.queue).toBe('workers')
    expect(fa.queue).toMatch(/^fanout\./)
    for (let i = 0; i < 10; i++) await a.emit({ topic: 'n', data: i })
    await eventually(() => q.length === 10 && f1.length === 10 && f2.length === 10)
    await fa.unsubscribe()
    await fb.unsubscribe()
    expect(await raw.zCard(`${p}n:fanout`)).toBe(0)
    expect(await raw.exists(`${p}n:q:${fa.queue}`)).toBe(0)
  })

  test('shutdown() lets a running handler finish and ack, then the process exits on its own', async () => {
    const p = prefix('drain')
    const c = child(['drain', REDIS_URL, p, 'drain', 'Slow'])
    await eventually(() => c.lines.includes('ready'), { timeout: 20000 })
    const a = make(p)
    await a.emit({ topic: 'drain', data: {} })
    let timer
    const { code } = await Promise.race([
      c.exited,
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`child did not exit: ${c.stderr()}`)), 15000)
      }),
    ]).finally(() => clearTimeout(timer))
    expect(code).toBe(0)
    expect(c.lines).toEqual(['ready', 'handled', 'closed'])
    expect(await raw.xLen(`${p}drain:q:Slow`)).toBe(0)
    expect(await raw.xPending(`${p}drain:q:Slow`, 'motia')).toMatchObject({ pending: 0 })
  })

  test('bad input: unserialisable data is MOTIA_SERIALIZE and writes nothing; hostile names stay under the prefix', async () => {
    const p = prefix('bad')
    const a = make(p)
    await a.subscribe('t', 'S', async () => {}, QC)
    const cyclic = {}
    cyclic.self = cyclic
    await expect(a.emit({ topic: 't', data: cyclic })).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    await expect(a.emit({ topic: 't', data: 10n })).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    expect(await raw.xLen(`${p}t:q:S`)).toBe(0)
    const got = []
    await a.subscribe('x:q:y*', '{S}:*', async (e) => got.push(e.topic), QC)
    await a.emit({ topic: 'x:q:y*', data: 1 })
    await eventually(() => got.length === 1)
    const keys = []
    for await (const ks of raw.scanIterator({ MATCH: `${p}*`, COUNT: 1000 })) keys.push(...ks)
    expect(keys.every((k) => k.startsWith(p))).toBe(true)
    expect(keys).toContain(`${p}x%3Aq%3Ay*:q:%7BS%7D%3A*`)
    expect(() => new RedisEventAdapter({ url: REDIS_URL }, { prefetch: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  })

  test('Redis unreachable: subscribe resolves (never rejects), emit fails with a stable code', async () => {
    const a = new RedisEventAdapter({ url: 'redis://127.0.0.1:1', socket: { connectTimeout: 500 } }, { connectionTimeout: 500 })
    adapters.push(a)
    const h = await a.subscribe('t', 'S', async () => {}, QC)
    expect(h.topic).toBe('t')
    await expect(a.emit({ topic: 't', data: 1 })).rejects.toMatchObject({ code: expect.stringMatching(/MOTIA_(CONNECT|TIMEOUT)/) })
    expect(await a.isHealthy()).toBe(false)
  })

  test('EVENT_ADAPTER=redis in adaptersFromEnv', async () => {
    const { events } = adaptersFromEnv({ EVENT_ADAPTER: 'redis', REDIS_URL, EVENTS_KEY_PREFIX: 'env-ev:' })
    adapters.push(events)
    expect(events).toBeInstanceOf(RedisEventAdapter)
    expect(events.keyPrefix).toBe('env-ev:')
    expect(await events.isHealthy()).toBe(true)
  })

  test('consumers of stopped processes are deleted once idle and holding nothing; one that holds an entry stays', async () => {
    const p = prefix('gc')
    const stream = `${p}gc:q:Step`
    // two consumers of processes that are gone: one holds nothing, one holds an entry it never acknowledged
    await raw.sendCommand(['XGROUP', 'CREATE', stream, 'motia', '0', 'MKSTREAM'])
    await raw.sendCommand(['XADD', stream, '*', 'body', '{}'])
    await raw.sendCommand(['XREADGROUP', 'GROUP', 'motia', 'ghost-holding', 'COUNT', '1', 'STREAMS', stream, '>'])
    await raw.sendCommand(['XGROUP', 'CREATECONSUMER', stream, 'motia', 'ghost-idle'])
    await new Promise((r) => setTimeout(r, 300))
    const names = async () => (await raw.sendCommand(['XINFO', 'CONSUMERS', stream, 'motia'])).map((c) => c[1])
    expect(await names()).toEqual(expect.arrayContaining(['ghost-holding', 'ghost-idle']))
    // a new replica (its GC idle bound lowered from 10 min to 200 ms) collects them on its first maintenance pass
    const c = spawnChild(CHILD, ['consume', REDIS_URL, p, 'gc', 'Step', JSON.stringify(QC)], children, { MOTIA_EVENTS_CONSUMER_GC_IDLE_MS: '200' })
    await eventually(() => c.lines.includes('ready'), { timeout: 15000 })
    await eventually(async () => !(await names()).includes('ghost-idle'), { timeout: 10000 }).catch(async (e) => {
      const keys = []
      for await (const k of raw.scanIterator({ MATCH: `${p}*` })) keys.push(k)
      throw new Error(`${e.message}; consumers ${JSON.stringify(await names())}; keys ${JSON.stringify(keys)}; child lines ${JSON.stringify(c.lines)} stderr: ${c.stderr()}`)
    })
    const left = await names()
    // its entry is still pending: it is never deleted with it (the new replica's own consumer may be listed too)
    expect(left.filter((n) => n.startsWith('ghost-'))).toEqual(['ghost-holding'])
  })
})
