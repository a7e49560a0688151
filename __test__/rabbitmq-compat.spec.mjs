// Wire compatibility with @motiadev/adapter-rabbitmq-events@0.17.14-beta.196 (installed as a devDependency):
// the same queues, arguments and bodies, so old and new pods share one broker during a migration.
import { jest } from '@jest/globals'
import { RabbitMQEventAdapter as Upstream } from '@motiadev/adapter-rabbitmq-events'
import { RabbitMQEventAdapter } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, uniqueExchange, cleanupTopology, admin } from './helpers/amqp.mjs'

jest.setTimeout(60000)

const FIFO = { type: 'fifo', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
const STANDARD = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

const open = []
const cleanups = []

function ours(exchangeName) {
  const a = new RabbitMQEventAdapter({ url: RABBIT_URL, exchangeName, exchangeType: 'topic' })
  open.push(a)
  return a
}

async function upstream(exchangeName) {
  const a = new Upstream({ url: RABBIT_URL, exchangeName, exchangeType: 'topic' })
  open.push(a)
  return a
}

beforeAll(requireRabbit)

afterEach(async () => {
  for (const a of open.splice(0)) await a.shutdown().catch(() => {})
  for (const c of cleanups.splice(0)) await c()
})

describe.each([
  ['standard', STANDARD],
  ['fifo', FIFO],
])('%s queue declared by both adapters', (_name, qc) => {
  test('upstream declares, then ours: no 406, and ours consumes what upstream emits', async () => {
    const x = uniqueExchange()
    cleanups.push(() => cleanupTopology(x, [['t', 'S']]))
    const up = await upstream(x)
    const h = await up.subscribe('t', 'S', () => {}, qc)
    await up.unsubscribe(h)
    const a = ours(x)
    const got = []
    await a.subscribe('t', 'S', (e) => got.push(e), qc)
    await up.emit({ topic: 't', data: { from: 'upstream' }, traceId: 'tr', flows: ['f'], messageGroupId: 'g' })
    await eventually(() => got.length === 1)
    expect(got[0]).toMatchObject({ topic: 't', data: { from: 'upstream' }, traceId: 'tr', flows: ['f'], messageGroupId: 'g' })
  })

  test('ours declares, then upstream: no 406, and upstream consumes what ours emits', async () => {
    const x = uniqueExchange()
    cleanups.push(() => cleanupTopology(x, [['t', 'S']]))
    const a = ours(x)
    const h = await a.subscribe('t', 'S', () => {}, qc)
    await h.unsubscribe()
    const up = await upstream(x)
    const got = []
    await up.subscribe('t', 'S', (e) => got.push(e), qc)
    await a.emit({ topic: 't', data: { from: 'native' }, traceId: 'tr', messageGroupId: 'g', logger: {} })
    await eventually(() => got.length === 1)
    expect(got[0]).toMatchObject({ topic: 't', data: { from: 'native' }, traceId: 'tr', messageGroupId: 'g' })
    expect(got[0].logger).toBeUndefined()
  })
})

test('a mixed fleet: upstream and native consumers compete on one step queue, both produce; each event once', async () => {
  const x = uniqueExchange()
  cleanups.push(() => cleanupTopology(x, [['mixed', 'Step']]))
  const up = await upstream(x)
  const a = ours(x)
  const seen = []
  const byUp = []
  const byUs = []
  await up.subscribe('mixed', 'Step', async (e) => {
    byUp.push(e.data.i)
    seen.push(e.data.i)
  }, STANDARD)
  await a.subscribe('mixed', 'Step', async (e) => {
    byUs.push(e.data.i)
    seen.push(e.data.i)
  }, STANDARD)
  const N = 300
  for (let i = 0; i < N; i++) {
    const producer = i % 2 ? up : a
    await producer.emit({ topic: 'mixed', data: { i }, traceId: 't' })
  }
  await eventually(() => seen.length >= N, { timeout: 30000 })
  await new Promise((r) => setTimeout(r, 300))
  expect(seen.length).toBe(N)
  expect(new Set(seen).size).toBe(N)
  expect(byUp.length).toBeGreaterThan(0)
  expect(byUs.length).toBeGreaterThan(0)
})

test('a message upstream re-published with x-retry-count counts those failures (no extra runs)', async () => {
  const x = uniqueExchange()
  cleanups.push(() => cleanupTopology(x, [['hdr', 'Step']]))
  const a = ours(x)
  const h = await a.subscribe('hdr', 'Step', () => {}, STANDARD)
  await h.unsubscribe()
  // what an upstream pod does after a failed run: a copy to the queue with x-retry-count + 1
  const { conn } = await admin()
  const ch = await conn.createConfirmChannel()
  const body = JSON.stringify({ topic: 'hdr', data: {}, traceId: 't', timestamp: Date.now() })
  ch.sendToQueue('motia.hdr.Step', Buffer.from(body), { headers: { 'x-retry-count': 3 }, persistent: true })
  await ch.waitForConfirms()
  await conn.close()
  let runs = 0
  await a.subscribe('hdr', 'Step', () => {
    runs++
    throw new Error('still failing')
  }, STANDARD)
  // 3 failures already happened elsewhere; maxRetries 3 allows one more run, then the DLQ
  await eventually(async () => {
    const { conn: c, ch: q } = await admin()
    const n = (await q.checkQueue('motia.hdr.Step.dlq')).messageCount
    await c.close()
    return n === 1
  })
  expect(runs).toBe(1)
})

test('a queue declared with other arguments: a clear error on the subscription (never a crash), emit still works', async () => {
  const x = uniqueExchange()
  cleanups.push(() => cleanupTopology(x, [['conflict', 'S']]))
  const up = await upstream(x)
  // declared as fifo (x-single-active-consumer), then asked for as standard
  const h = await up.subscribe('conflict', 'S', () => {}, FIFO)
  await up.unsubscribe(h)
  const a = ours(x)
  const mine = await a.subscribe('conflict', 'S', () => {}, STANDARD)
  const err = a.subscriptionError(mine)
  expect(err.code).toBe('MOTIA_BACKEND')
  expect(err.message).toMatch(/PRECONDITION_FAILED/)
  expect(err.message).toMatch(/motia\.conflict\.S/)
  await mine.unsubscribe()
  expect(await a.getSubscriptionCount('conflict')).toBe(0)
  await a.emit({ topic: 'conflict', data: {}, traceId: 't' })
})
