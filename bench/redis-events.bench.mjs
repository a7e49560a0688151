// RedisEventAdapter (ours) vs @motiadev/adapter-bullmq-events@0.17.14-beta.196 (BullMQ, Motia 0.17's CLI default),
// same Redis, same run. Both have one live subscriber per topic (BullMQ only enqueues for steps subscribed in the
// emitting process). Ours writes each event to every step's stream in one script; BullMQ adds one job per step.
import { RedisEventAdapter as Ours } from 'motia-native-adapters'
import { BullMQEventAdapter as Upstream } from '@motiadev/adapter-bullmq-events'
import { createClient } from 'redis'
import { randomUUID } from 'node:crypto'
import { run, printTable, compareAll } from './lib.mjs'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const { hostname: host, port } = new URL(url)
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const tag = randomUUID().slice(0, 8)
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
const prefixOf = (which, prefetch) => `bench-ev-${tag}-${which}-p${prefetch}:`

function make(which, prefetch) {
  if (which === 'ours') return new Ours({ url }, { keyPrefix: prefixOf(which, prefetch), prefetch })
  return new Upstream({
    connection: { host, port: Number(port || 6379), maxRetriesPerRequest: null },
    concurrency: prefetch,
    prefix: prefixOf(which, prefetch).slice(0, -1),
  })
}

const adapters = { ours: {}, upstream: {} }
function adapter(which, prefetch) {
  adapters[which][prefetch] ||= make(which, prefetch)
  return adapters[which][prefetch]
}
const impls = { ours: 'ours', upstream: 'upstream' }
let seq = 0
const event = (topic, i) => ({ topic, data: { i, sent: 0, customer: `c${i % 50}`, note: 'x'.repeat(200) }, traceId: `t${i}` })

/** emit→handler→ack: `total` events emitted `burst` at a time (or at `ratePerSec`); throughput and latency. */
async function pipeline(which, { prefetch, total, burst, ratePerSec }) {
  const a = adapter(which, prefetch)
  const topic = `e2e.${seq++}`
  const lat = new Float64Array(total)
  let handled = 0
  let done
  const finished = new Promise((r) => (done = r))
  const handle = await a.subscribe(topic, 'Bench', async (e) => {
    lat[e.data.i] = Number(process.hrtime.bigint() / 1000n) - e.data.sent
    if (++handled === total) done()
  }, { ...QC, concurrency: prefetch })
  await new Promise((r) => setTimeout(r, 200))
  const t0 = process.hrtime.bigint()
  const pending = []
  for (let i = 0; i < total; i += burst) {
    const batch = []
    for (let k = i; k < Math.min(total, i + burst); k++) {
      const ev = event(topic, k)
      ev.data.sent = Number(process.hrtime.bigint() / 1000n)
      batch.push(a.emit(ev))
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

const sinks = {}
async function sink(which) {
  if (!sinks[which]) {
    const a = adapter(which, 64)
    sinks[which] = await a.subscribe('emit.only', 'Sink', async () => {}, { ...QC, concurrency: 64 })
  }
  return adapter(which, 64)
}

const cases = []
for (const c of [1, 64]) {
  cases.push({
    name: `emit c=${c}`,
    go: async (which) => {
      const a = await sink(which)
      return run((i) => a.emit(event('emit.only', i)), { total: c === 1 ? n(3000) : n(20000), concurrency: c })
    },
  })
}
cases.push({ name: 'emit→handler→ack, concurrency 10', go: (w) => pipeline(w, { prefetch: 10, total: n(20000), burst: 500 }) })
cases.push({ name: 'emit→handler→ack, concurrency 64', go: (w) => pipeline(w, { prefetch: 64, total: n(20000), burst: 500 }) })
cases.push({
  name: 'latency at 2,000 msg/s, concurrency 10',
  go: (w) => pipeline(w, { prefetch: 10, total: n(6000), burst: 10, ratePerSec: 2000 }),
})

const rows = await compareAll(cases, impls)
console.log(
  `\nRedisEventAdapter: ours vs @motiadev/adapter-bullmq-events@0.17.14-beta.196, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds`,
)
console.log('emit rows: p50/p99 of one emit; pipeline rows: ops/s end to end, p50/p99 emit→handler\n')
printTable(rows)

const raw = createClient({ url })
await raw.connect()

/**
 * Redis memory per pending event: `count` events emitted to a topic whose only step holds the first one in a handler
 * that never finishes (prefetch 1), so the rest wait in Redis; used_memory before and after, per event, minus the
 * event's data as JSON. Measured with the adapters already used above (their connections and scripts exist).
 */
async function memoryPerPending(which, count) {
  const a = adapter(which, 1)
  const topic = `mem.${seq++}`
  let release
  const stuck = new Promise((r) => (release = r))
  const handle = await a.subscribe(topic, 'Mem', () => stuck, { ...QC, concurrency: 1 })
  await new Promise((r) => setTimeout(r, 200))
  const used = async () => Number(/used_memory:(\d+)/.exec(await raw.info('memory'))[1])
  const before = await used()
  const payload = JSON.stringify(event(topic, 0).data).length
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, k) => a.emit(event(topic, i + k))))
  }
  await new Promise((r) => setTimeout(r, 200))
  const perEvent = ((await used()) - before) / count
  release()
  await a.unsubscribe(handle).catch(() => {})
  return { perEvent, payload }
}
const memCount = n(20000)
const mem = { ours: await memoryPerPending('ours', memCount), upstream: await memoryPerPending('upstream', memCount) }
console.log(
  `\nRedis memory per pending event (${memCount} waiting, data ${mem.ours.payload} bytes as JSON): ours ${Math.round(mem.ours.perEvent)} bytes ` +
    `(${Math.round(mem.ours.perEvent - mem.ours.payload)} + data), BullMQ ${Math.round(mem.upstream.perEvent)} bytes ` +
    `(${Math.round(mem.upstream.perEvent - mem.upstream.payload)} + data); ratio ${(mem.ours.perEvent / mem.upstream.perEvent).toFixed(2)}x`,
)
for (const w of ['ours', 'upstream']) for (const a of Object.values(adapters[w])) await a.shutdown().catch(() => {})
for (const w of ['ours', 'upstream']) {
  for (const p of [1, 10, 64]) {
    for await (const keys of raw.scanIterator({ MATCH: `${prefixOf(w, p)}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
  }
}
await raw.quit()
process.exit(0)
