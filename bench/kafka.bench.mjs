// KafkaEventAdapter (ours) vs the RFC's "Example 4" kafkajs adapter (bench/peers/rfc-kafkajs-adapter.mjs),
// same broker (tansu on 127.0.0.1:9092, `bash scripts/services.sh kafka`), same run.
// Ours: emit resolves on the delivery report with acks=all + idempotence; offsets committed after the handler.
// The RFC's: kafkajs default acks (-1), one send per emit, kafkajs auto-commit.
import kafkajs from 'kafkajs'
import { randomUUID } from 'node:crypto'
import { KafkaEventAdapter as Ours } from 'motia-native-adapters'
import { RfcKafkaEventAdapter } from './peers/rfc-kafkajs-adapter.mjs'
import { run, printTable, compareAll } from './lib.mjs'

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',')
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const tag = randomUUID().slice(0, 8)
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

const adapters = {
  ours: new Ours({ clientId: 'bench', brokers, groupId: `bench.${tag}.ours`, rdkafka: { 'session.timeout.ms': '6000' }, prefetch: 64 }),
  upstream: new RfcKafkaEventAdapter({ clientId: 'bench', brokers, groupId: `bench.${tag}.rfc` }),
}
const admin = new kafkajs.Kafka({ clientId: 'bench-admin', brokers, logLevel: kafkajs.logLevel.NOTHING }).admin()
await admin.connect()
const topics = []
async function topic(name) {
  const t = `bench.${tag}.${name}`
  await admin.createTopics({ topics: [{ topic: t, numPartitions: 3, replicationFactor: 1 }] }).catch(() => {})
  topics.push(t)
  return t
}
let seq = 0
const event = (t, i) => ({ topic: t, data: { i, sent: 0, customer: `c${i % 50}`, note: 'x'.repeat(200) }, traceId: `t${i}` })
const nowUs = () => Number(process.hrtime.bigint() / 1000n)

async function pipeline(which, { total, burst, ratePerSec }) {
  const a = adapters[which]
  const t = await topic(`e2e${seq++}${which}`)
  const lat = new Float64Array(total)
  let handled = 0
  let warm
  const warmed = new Promise((r) => (warm = r))
  let done
  const finished = new Promise((r) => (done = r))
  const h = await a.subscribe(t, 'Bench', async (e) => {
    if (e.data.i < 0) return warm()
    lat[e.data.i] = nowUs() - e.data.sent
    if (++handled === total) done()
  }, QC)
  await a.emit(event(t, -1))
  await warmed // the group has joined and consumes
  const t0 = process.hrtime.bigint()
  const pending = []
  for (let i = 0; i < total; i += burst) {
    const batch = []
    for (let k = i; k < Math.min(total, i + burst); k++) {
      const ev = event(t, k)
      ev.data.sent = nowUs()
      batch.push(a.emit(ev))
    }
    if (ratePerSec) {
      pending.push(...batch)
      const due = Number(t0 / 1000n) + ((i + burst) * 1e6) / ratePerSec
      const wait = (due - nowUs()) / 1000
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    } else await Promise.all(batch)
  }
  await Promise.all(pending)
  await finished
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  await a.unsubscribe(h)
  const sorted = Array.from(lat).sort((x, y) => x - y)
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return { opsPerSec: total / secs, p50us: pct(50), p99us: pct(99) }
}

const emitTopic = await topic('emit')
const cases = []
for (const c of [1, 64]) {
  cases.push({ name: `emit c=${c}`, go: (w) => run((i) => adapters[w].emit(event(emitTopic, i)), { total: c === 1 ? n(2000) : n(20000), concurrency: c }) })
}
cases.push({ name: 'emit→handler→commit', go: (w) => pipeline(w, { total: n(10000), burst: 500 }) })
cases.push({ name: 'latency at 1,000 msg/s', go: (w) => pipeline(w, { total: n(3000), burst: 10, ratePerSec: 1000 }) })

const rows = await compareAll(cases, { ours: 'ours', upstream: 'upstream' })
console.log(`\nKafkaEventAdapter: ours vs the RFC "Example 4" kafkajs adapter, ${brokers}, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds`)
console.log('("upstream" column = the RFC kafkajs adapter; emit rows: one emit; pipeline rows: end to end, p50/p99 emit→handler)\n')
printTable(rows)
await adapters.ours.shutdown()
await adapters.upstream.shutdown()
await admin.deleteTopics({ topics: [...topics, ...topics.map((t) => `${t}.Bench.dlq`)] }).catch(() => {})
await admin.disconnect()
process.exit(0)
