// Metrics and health (issue 16): adapter.metrics() snapshots counted where the work happens,
// prometheusMetrics() parsed by a real Prometheus text-format parser, registerOpenTelemetry() read
// through the OTel SDK, health() for a readiness endpoint. Real Redis and RabbitMQ.
import { jest } from '@jest/globals'
import { createRequire } from 'node:module'
import { createClient } from 'redis'
import {
  RedisStateAdapter,
  RedisStreamAdapterManager,
  RedisCronAdapter,
  RabbitMQEventAdapter,
  KafkaEventAdapter,
  prometheusMetrics,
  registerOpenTelemetry,
  health,
  ErrorCodes,
} from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix, deleteMatching, eventually } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, uniqueExchange, cleanupTopology } from './helpers/amqp.mjs'
import { KAFKA_BROKERS, requireKafka } from './helpers/kafka.mjs'
import { parsePrometheus } from './helpers/prometheus.mjs'

const require = createRequire(import.meta.url)
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics')

jest.setTimeout(60000)

let raw
const prefix = uniquePrefix('metrics')
const closers = []
beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})
afterAll(async () => {
  for (const c of closers.reverse()) await c()
  await deleteMatching(raw, `${prefix}*`)
  await deleteMatching(raw, `motia:cron:fence:${prefix}*`)
  await raw.quit()
})

function state(extra = {}) {
  const s = new RedisStateAdapter({ url: REDIS_URL }, { keyPrefix: `${prefix}s:`, ...extra })
  closers.push(() => s.cleanup())
  return s
}

test('state: calls, latency and errors by code per method, on both Redis paths', async () => {
  const s = state()
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.set('t', `k${i}`, { i })))
  for (let i = 0; i < 20; i++) await s.get('t', `k${i}`)
  await s.getGroup('t')
  await raw.set(`${prefix}s:t:bad`, 'not json')
  await expect(s.get('t', 'bad')).rejects.toMatchObject({ code: ErrorCodes.DECODE })
  const m = s.metrics()
  expect(m.adapter).toBe('RedisStateAdapter')
  expect(m.methods.set.calls).toBe(50)
  expect(m.methods.get).toMatchObject({ calls: 21, errors: 1 })
  expect(m.methods.getGroup.calls).toBe(1)
  expect(m.errors).toEqual([{ method: 'get', code: ErrorCodes.DECODE, count: 1 }])
  const lat = m.methods.get.seconds
  expect(lat.count).toBe(21)
  expect(lat.p50).toBeGreaterThan(0)
  expect(lat.p50).toBeLessThanOrEqual(lat.p99)
  expect(lat.p99).toBeLessThanOrEqual(lat.max)
  expect(lat.max).toBeLessThan(5)
  expect(m.gauges.inFlight).toBe(0)

  // the tokio path (TLS connections, Bun, Deno) records the same names from JS
  process.env.MOTIA_NATIVE_JSLOOP = '0'
  let t
  try {
    t = state()
  } finally {
    delete process.env.MOTIA_NATIVE_JSLOOP
  }
  expect(t._loop).toBeNull()
  await Promise.all([t.set('t2', 'a', 1), t.set('t2', 'b', 2), t.get('t2', 'a')])
  await expect(t.get('t', 'bad')).rejects.toMatchObject({ code: ErrorCodes.DECODE })
  expect(t.metrics().methods).toMatchObject({ set: { calls: 2, errors: 0 }, get: { calls: 2, errors: 1 } })
  expect(t.metrics().errors).toEqual([{ method: 'get', code: ErrorCodes.DECODE, count: 1 }])
})

test('streams and cron: per-method calls; cron acquired/refused/released and the fencing token', async () => {
  const mgr = new RedisStreamAdapterManager({ url: REDIS_URL }, { keyPrefix: `${prefix}st:` })
  closers.push(() => mgr.shutdown())
  const st = mgr.createStream('s')
  await st.set('g', '1', { a: 1 })
  await st.get('g', '1')
  await st.getGroup('g')
  expect(mgr.metrics().methods).toMatchObject({ set: { calls: 1 }, get: { calls: 1 }, getGroup: { calls: 1 } })
  expect(st.metrics().methods.set.calls).toBe(1) // one connection, one set of metrics

  const a = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: `${prefix}c:` })
  const b = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: `${prefix}c:` })
  closers.push(() => a.shutdown(), () => b.shutdown())
  const t = Math.floor(Date.now() / 1000) * 1000
  const lock = await a.acquireLock('job', 5000, { scheduledAt: t })
  expect(await b.acquireLock('job', 5000, { scheduledAt: t })).toBeNull()
  await a.releaseLock(lock)
  const ma = a.metrics()
  expect(ma.counters).toMatchObject({ cronAcquired: 1, cronReleased: 1 })
  expect(ma.gauges.cronFencingToken).toBe(lock.fencingToken)
  expect(ma.methods).toMatchObject({ acquireLock: { calls: 1 }, releaseLock: { calls: 1 } })
  expect(b.metrics().counters).toEqual({ cronRefused: 1 })
})

test('events: emits, deliveries, handler runs, retries and outcomes', async () => {
  await requireRabbit()
  const exchangeName = uniqueExchange('metrics')
  const r = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName, exchangeType: 'topic' })
  closers.push(async () => {
    await r.shutdown()
    await cleanupTopology(exchangeName, [['t', 'S']])
  })
  let calls = 0
  const handled = []
  await r.subscribe(
    't',
    'S',
    async (e) => {
      calls++
      if (e.data.i === 0 && calls === 1) throw new Error('first attempt fails')
      handled.push(e.data.i)
    },
    { type: 'standard', maxRetries: 2, visibilityTimeout: 900, delaySeconds: 0 },
  )
  for (let i = 0; i < 3; i++) await r.emit({ topic: 't', data: { i }, traceId: 'x' })
  await eventually(() => handled.length === 3, { timeout: 15000 })
  expect({ calls, handled: [...handled].sort() }).toEqual({ calls: 4, handled: [0, 1, 2] })
  await r.settled()
  const m = r.metrics()
  expect(m.methods.emit).toMatchObject({ calls: 3, errors: 0 })
  expect(m.methods.handler).toMatchObject({ calls: 4, errors: 1 })
  expect(m.errors).toEqual([{ method: 'handler', code: 'HANDLER_ERROR', count: 1 }])
  expect(m.counters).toMatchObject({ eventsDelivered: 3, eventsRetried: 1, eventsAcked: 3 })
  expect(m.counters.eventsDeadLettered ?? 0).toBe(0)
})

test('prometheusMetrics: valid text format (parsed by a real parser), conventional names and labels', async () => {
  const s = state()
  const c = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: `${prefix}p:`, instanceId: 'pod-1' })
  closers.push(() => c.shutdown())
  for (let i = 0; i < 10; i++) await s.set('p', `k${i}`, i)
  await c.acquireLock('j', 5000)
  const s2 = state() // a second adapter of the same class gets its own series
  await s2.get('p', 'k1')
  const text = prometheusMetrics([s, c, s2])
  const families = parsePrometheus(text)
  const byName = Object.fromEntries(families.map((f) => [f.name, f]))
  // the parser names counter families without `_total`; their samples keep it
  expect(byName.motia_adapter_calls.type).toBe('counter')
  expect(byName.motia_adapter_call_duration_seconds.type).toBe('histogram')
  expect(byName.motia_adapter_cron_acquired.type).toBe('counter')
  expect(byName.motia_adapter_in_flight.type).toBe('gauge')
  const sample = (fam, name, labels) => byName[fam].samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  expect(sample('motia_adapter_calls', 'motia_adapter_calls_total', { adapter: 'RedisStateAdapter', method: 'set' })).toEqual([
    expect.objectContaining({ value: 10 }),
  ])
  expect(sample('motia_adapter_calls', 'motia_adapter_calls_total', { adapter: 'RedisStateAdapter#2' }).map((x) => x.labels.method)).toEqual(['get'])
  const H = 'motia_adapter_call_duration_seconds'
  const l = { adapter: 'RedisStateAdapter', method: 'set' }
  expect(sample(H, `${H}_count`, l)[0].value).toBe(10)
  expect(sample(H, `${H}_sum`, l)[0].value).toBeGreaterThan(0)
  const buckets = sample(H, `${H}_bucket`, l)
  expect(buckets[buckets.length - 1].labels.le).toBe('+Inf')
  expect(buckets[buckets.length - 1].value).toBe(10)
  const counts = buckets.map((b) => b.value)
  expect(counts.every((v, i) => i === 0 || v >= counts[i - 1])).toBe(true) // cumulative
  expect(sample('motia_adapter_cron_acquired', 'motia_adapter_cron_acquired_total', { adapter: 'RedisCronAdapter' })).toEqual([
    { name: 'motia_adapter_cron_acquired_total', value: 1, labels: { adapter: 'RedisCronAdapter', instance: 'pod-1' } },
  ])
})

class TestReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

test('registerOpenTelemetry: the same counts as observable OTel instruments', async () => {
  const s = state()
  for (let i = 0; i < 7; i++) await s.set('o', `k${i}`, i)
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  const unregister = registerOpenTelemetry([s], { meter: provider.getMeter('test') })
  const { resourceMetrics } = await reader.collect()
  const metrics = resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics)
  const calls = metrics.find((m) => m.descriptor.name === 'motia.adapter.calls')
  const point = calls.dataPoints.find((p) => p.attributes.method === 'set')
  expect(point.value).toBe(7)
  expect(point.attributes.adapter).toBe('RedisStateAdapter')
  const p99 = metrics.find((m) => m.descriptor.name === 'motia.adapter.call.duration').dataPoints.find((p) => p.attributes.quantile === 'p99')
  expect(p99.value).toBeGreaterThan(0)
  unregister()
  await provider.shutdown()
})

test('health: ok with round-trip latency; an unreachable server is not ok within the bound', async () => {
  const s = state()
  const down = new RedisStateAdapter({ url: 'redis://127.0.0.1:1', socket: { connectTimeout: 300 } })
  closers.push(() => down.cleanup())
  const h = await health([s, down], { timeoutMs: 1500 })
  expect(h.ok).toBe(false)
  expect(h.adapters[0]).toMatchObject({ name: 'RedisStateAdapter', ok: true })
  expect(h.adapters[0].latencyMs).toBeGreaterThan(0)
  expect(h.adapters[1]).toMatchObject({ name: 'RedisStateAdapter', ok: false })
  expect(h.adapters[1].latencyMs).toBeLessThan(1600)
  expect(await health({ state: s })).toMatchObject({ ok: true })

  // event adapters: RabbitMQ's open connection, a metadata round trip to Kafka
  await requireRabbit()
  await requireKafka()
  const r = new RabbitMQEventAdapter({ url: RABBIT_URL })
  const k = new KafkaEventAdapter({ clientId: 'metrics-test', brokers: KAFKA_BROKERS })
  closers.push(() => r.shutdown(), () => k.shutdown())
  await eventually(() => r.isConnected(), { timeout: 10000 })
  expect(await health([r, k], { timeoutMs: 5000 })).toMatchObject({ ok: true, adapters: [{ name: 'RabbitMQEventAdapter', ok: true }, { name: 'KafkaEventAdapter', ok: true }] })
  await r.shutdown()
  expect(await r.isHealthy()).toBe(false)
})
