// Broker-side failures: connections closed by the broker, and a broker restart. Counts every message.
// Uses rabbitmqctl on the local broker (it closes every client connection on it: run suites serially).
import { jest } from '@jest/globals'
import { RabbitMQEventAdapter } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, uniqueExchange, cleanupTopology, rabbitmqctl, queueDepth } from './helpers/amqp.mjs'

jest.setTimeout(180000)

const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
const open = []
const cleanups = []

beforeAll(requireRabbit)

afterEach(async () => {
  for (const a of open.splice(0)) await a.shutdown().catch(() => {})
  for (const c of cleanups.splice(0)) await c()
})

/**
 * Emits `n` events one after another (each awaited) while `disrupt()` runs at `at` ms, with two steps
 * consuming; returns what each step handled.
 */
async function emitThrough(disrupt, { n = 300, at = 500, gap = 5 } = {}) {
  const x = uniqueExchange()
  cleanups.push(() => cleanupTopology(x, [['r', 'A'], ['r', 'B']]))
  const lines = []
  const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((l) => [l, (message, meta) => lines.push({ l, message, meta })]))
  const a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName: x, reconnectDelay: 1000, logger })
  const b = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName: x, reconnectDelay: 1000 })
  open.push(a, b)
  const A = new Map()
  const B = new Map()
  const count = (m) => (e) => m.set(e.data.i, (m.get(e.data.i) || 0) + 1)
  await a.subscribe('r', 'A', count(A), { ...QC, concurrency: 10 })
  await b.subscribe('r', 'B', count(B), QC)
  const failures = []
  const started = Date.now()
  let disrupted = null
  for (let i = 0; i < n; i++) {
    if (!disrupted && Date.now() - started >= at) disrupted = disrupt()
    await a.emit({ topic: 'r', data: { i }, traceId: 't' }).catch((e) => failures.push([i, e.code]))
    await new Promise((r) => setTimeout(r, gap))
  }
  await disrupted
  expect(failures).toEqual([])
  await eventually(() => A.size === n && B.size === n, { timeout: 60000 })
  await new Promise((r) => setTimeout(r, 500))
  const dupes = (m) => [...m.values()].filter((c) => c > 1).length
  return { A, B, dupesA: dupes(A), dupesB: dupes(B), a, b, lines }
}

test('connections closed by the broker: reconnect, every consumer restored, nothing lost', async () => {
  const r = await emitThrough(() => rabbitmqctl('close_all_connections', 'motia test: forced close'))
  expect(r.A.size).toBe(300)
  // the Rust client's lines reach the adapter's logger (not stderr), and the reconnect is counted
  expect(r.lines).toContainEqual({ l: 'info', message: 'connected to RabbitMQ again', meta: { adapter: 'RabbitMQEventAdapter', op: 'connection' } })
  expect(r.lines.some((x) => x.l === 'error' && x.meta.code)).toBe(true)
  expect(r.a.metrics().counters.reconnects).toBeGreaterThanOrEqual(1)
  expect(r.B.size).toBe(300)
  // redelivery of unacked messages is at-least-once: a message being handled when the connection died may repeat
  expect(r.dupesA).toBeLessThanOrEqual(10)
  expect(r.dupesB).toBeLessThanOrEqual(1)
  expect(r.a.isConnected()).toBe(true)
  console.log(`forced close: duplicates A=${r.dupesA} B=${r.dupesB}`)
})

test('a broker restart: emits during the outage wait and succeed, consumers come back, nothing lost', async () => {
  const restart = async () => {
    await rabbitmqctl('stop_app')
    await new Promise((r) => setTimeout(r, 1500))
    await rabbitmqctl('start_app')
  }
  const r = await emitThrough(restart, { n: 200, at: 300, gap: 10 })
  expect(r.A.size).toBe(200)
  expect(r.B.size).toBe(200)
  expect(await queueDepth(`motia.r.A`)).toBe(0)
  console.log(`restart: duplicates A=${r.dupesA} B=${r.dupesB}`)
})

test('subscribe while the broker is down: the consumer starts when it comes back (no unhandled rejection)', async () => {
  const x = uniqueExchange()
  cleanups.push(() => cleanupTopology(x, [['late', 'S']]))
  const unhandled = []
  const onUnhandled = (e) => unhandled.push(e)
  process.on('unhandledRejection', onUnhandled)
  try {
    await rabbitmqctl('stop_app')
    let a
    try {
      a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName: x, connectionTimeout: 1000 }) // default reconnectDelay
      open.push(a)
      const got = []
      const h = await a.subscribe('late', 'S', (e) => got.push(e.data), QC)
      expect(h.topic).toBe('late')
      expect(a.isConnected()).toBe(false)
      // an emit during the outage waits for the broker
      const pending = a.emit({ topic: 'late', data: { ok: 1 }, traceId: 't' })
      await new Promise((r) => setTimeout(r, 2500)) // long enough for a doubling backoff to have grown
      await rabbitmqctl('start_app')
      const back = Date.now() // start_app returns once the broker accepts connections
      await pending
      const lag = Date.now() - back
      console.log(`first emit confirmed ${lag} ms after the broker accepted connections`)
      expect(lag).toBeLessThanOrEqual(500) // polls every <= 250 ms (was 0.8 s with a doubling backoff)
      await eventually(() => got.length === 1, { timeout: 30000 })
      expect(got[0]).toEqual({ ok: 1 })
    } finally {
      await rabbitmqctl('start_app').catch(() => {})
    }
    expect(unhandled).toEqual([])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})
