// What metrics cost: RedisStateAdapter with metrics on vs off (MOTIA_NATIVE_METRICS=0) in the same run,
// state set/get at c=1 and c=64 (issue target: c=64 within 3%). Usage: node bench/metrics.bench.mjs
import { RedisStateAdapter } from 'motia-native-adapters'
import { createClient } from 'redis'
import { randomUUID } from 'node:crypto'
import { run, fmt, compareAll } from './lib.mjs'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const value = { id: 'order-123', status: 'paid', amount: 42.5, items: [{ sku: 'a', qty: 2 }], note: 'x'.repeat(200) }
const base = `bench:${randomUUID().slice(0, 8)}:`

const on = new RedisStateAdapter({ url }, { keyPrefix: `${base}on:` })
process.env.MOTIA_NATIVE_METRICS = '0'
const off = new RedisStateAdapter({ url }, { keyPrefix: `${base}off:` })
delete process.env.MOTIA_NATIVE_METRICS
// compareAll's two slots: "ours" = metrics on, "upstream" = metrics off
const impls = { ours: on, upstream: off }

const cases = []
for (const c of [1, 64]) {
  const total = c === 1 ? n(20000) : n(100000)
  cases.push({ name: `set c=${c}`, go: (s) => run((i) => s.set('hot', `k${i % 1000}`, value), { total, concurrency: c }) })
  cases.push({ name: `get c=${c}`, go: (s) => run((i) => s.get('hot', `k${i % 1000}`), { total, concurrency: c }) })
}
for (const s of [on, off]) await run((i) => s.set('hot', `k${i % 1000}`, value), { total: 5000, concurrency: 16 })
const rows = await compareAll(cases, impls, { rounds: Number(process.env.BENCH_ROUNDS || 5) })
console.log(`\nRedisStateAdapter metrics on vs off, ${url}, scale ${scale}, median of alternating rounds\n`)
console.log('operation   on ops/s    off ops/s   on/off')
for (const r of rows) console.log(`${r.name.padEnd(10)}  ${fmt(r.ours.opsPerSec).padStart(9)}  ${fmt(r.upstream.opsPerSec).padStart(10)}  ${fmt(r.ours.opsPerSec / r.upstream.opsPerSec, 3)}x`)
if (on.metrics().methods.set.calls === 0 || Object.keys(off.metrics().methods).length !== 0) throw new Error('metrics on/off not as configured')

await on.cleanup()
await off.cleanup()
const raw = createClient({ url })
await raw.connect()
for await (const keys of raw.scanIterator({ MATCH: `${base}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
await raw.quit()
