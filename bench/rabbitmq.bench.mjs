// RabbitMQEventAdapter (ours) vs @motiadev/adapter-rabbitmq-events@0.17.14-beta.196 (upstream), same broker, same run.
// Note the guarantees differ: our emit resolves on the broker's publisher confirm; upstream's resolves when
// amqplib buffered the frame (no confirm), so upstream's emit numbers measure less work.
import { RabbitMQEventAdapter as Ours } from 'motia-native-adapters'
import { RabbitMQEventAdapter as Upstream } from '@motiadev/adapter-rabbitmq-events'
import amqplib from 'amqplib'
import { randomUUID } from 'node:crypto'
import { run, printTable, compareAll } from './lib.mjs'

const url = process.env.RABBITMQ_URL || 'amqp://guest:guest@127.0.0.1:5672'
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const tag = randomUUID().slice(0, 8)
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

function make(which, prefetch) {
  const exchangeName = `bench.${tag}.${which}.p${prefetch}`
  const cfg = { url, exchangeName, exchangeType: 'topic', prefetch }
  return which === 'ours' ? new Ours(cfg) : new Upstream(cfg)
}

const adapters = { ours: {}, upstream: {} }
// Upstream's emit throws when amqplib's write buffer is full (it never waits for 'drain'); a user would
// have to retry. We retry after 1 ms and count how often that happened.
let upstreamThrows = 0
async function emit(a, ev) {
  for (;;) {
    try {
      return await a.emit(ev)
    } catch (e) {
      if (!(a instanceof Upstream) || !/Failed to publish/.test(e.message)) throw e
      upstreamThrows++
      await new Promise((r) => setTimeout(r, 1))
    }
  }
}
function adapter(which, prefetch) {
  adapters[which][prefetch] ||= make(which, prefetch)
  return adapters[which][prefetch]
}
const impls = { ours: 'ours', upstream: 'upstream' }
const queues = new Set()
let seq = 0

const event = (topic, i) => ({ topic, data: { i, sent: 0, customer: `c${i % 50}`, note: 'x'.repeat(200) }, traceId: `t${i}` })

/** emit→handler→ack: `total` events emitted `burst` at a time; throughput and emit→handler latency. */
async function pipeline(which, { prefetch, total, burst, ratePerSec }) {
  const a = adapter(which, prefetch)
  const topic = `e2e.${seq++}`
  queues.add(`motia.${topic}.Bench`)
  const lat = new Float64Array(total)
  let handled = 0
  let done
  const finished = new Promise((r) => (done = r))
  const handle = await a.subscribe(topic, 'Bench', async (e) => {
    lat[e.data.i] = Number(process.hrtime.bigint() / 1000n) - e.data.sent
    if (++handled === total) done()
  }, QC)
  await new Promise((r) => setTimeout(r, 200))
  const t0 = process.hrtime.bigint()
  const pending = []
  for (let i = 0; i < total; i += burst) {
    const batch = []
    for (let k = i; k < Math.min(total, i + burst); k++) {
      const ev = event(topic, k)
      ev.data.sent = Number(process.hrtime.bigint() / 1000n)
      batch.push(emit(a, ev))
    }
    if (ratePerSec) {
      pending.push(...batch)
      const due = Number(t0 / 1000n) + ((i + burst) * 1e6) / ratePerSec
      const wait = (due - Number(process.hrtime.bigint() / 1000n)) / 1000
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    } else {
      await Promise.all(batch)
    }
  }
  await Promise.all(pending)
  await finished
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  await a.unsubscribe(handle)
  const sorted = Array.from(lat).sort((x, y) => x - y)
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return { opsPerSec: total / secs, p50us: pct(50), p99us: pct(99) }
}

const cases = []
for (const c of [1, 64]) {
  cases.push({
    name: `emit c=${c}`,
    go: (which) => {
      const a = adapter(which, 1)
      return run((i) => emit(a, event('emit.only', i)), { total: c === 1 ? n(3000) : n(30000), concurrency: c })
    },
  })
}
cases.push({ name: 'emit→handler→ack, prefetch 1', go: (w) => pipeline(w, { prefetch: 1, total: n(5000), burst: 100 }) })
cases.push({ name: 'emit→handler→ack, prefetch 64', go: (w) => pipeline(w, { prefetch: 64, total: n(20000), burst: 500 }) })
cases.push({
  name: 'latency at 1,000 msg/s, prefetch 1',
  go: (w) => pipeline(w, { prefetch: 1, total: n(3000), burst: 10, ratePerSec: 1000 }),
})
cases.push({
  name: 'latency at 1,000 msg/s, prefetch 64',
  go: (w) => pipeline(w, { prefetch: 64, total: n(3000), burst: 10, ratePerSec: 1000 }),
})

const rows = await compareAll(cases, impls)
console.log(
  `\nRabbitMQEventAdapter: ours vs @motiadev/adapter-rabbitmq-events@0.17.14-beta.196, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds`,
)
console.log('emit rows: p50/p99 of one emit; pipeline rows: ops/s end to end, p50/p99 emit→handler\n')
printTable(rows)
console.log(`\nupstream emit threw "Failed to publish" ${upstreamThrows} times under load (retried after 1 ms)`)

for (const w of ['ours', 'upstream']) for (const a of Object.values(adapters[w])) await a.shutdown()
const conn = await amqplib.connect(url)
for (const w of ['ours', 'upstream']) {
  for (const p of [1, 64]) {
    const x = `bench.${tag}.${w}.p${p}`
    for (const q of queues) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteQueue(q).catch(() => {})
      await ch.deleteQueue(`${q}.dlq`).catch(() => {})
      await ch.close().catch(() => {})
    }
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    await ch.deleteExchange(x).catch(() => {})
    await ch.deleteExchange(`${x}.dlq`).catch(() => {})
    await ch.close().catch(() => {})
  }
}
await conn.close()
process.exit(0)
