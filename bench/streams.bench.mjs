// RedisStreamAdapterManager (ours) vs @motiadev/adapter-redis-streams@0.17.14-beta.196 (upstream), same Redis, same run.
import { RedisStreamAdapterManager as Ours } from 'motia-native-adapters'
import { RedisStreamAdapterManager as Upstream } from '@motiadev/adapter-redis-streams'
import { createClient } from 'redis'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import { run, printTable, compareAll } from './lib.mjs'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const base = `benchstream:${randomUUID().slice(0, 8)}:`
const managers = { ours: new Ours({ url }, { keyPrefix: `${base}ours:` }), upstream: new Upstream({ url }, { keyPrefix: `${base}up:` }) }
const streams = { ours: managers.ours.createStream('orders'), upstream: managers.upstream.createStream('orders') }
const data = (i) => ({ customer: `c${i % 50}`, status: i % 3 ? 'open' : 'done', total: (i * 7) % 1000, items: [{ sku: 'a', qty: 1 }], note: 'x'.repeat(100) })

async function fill(s, group, count) {
  for (let i = 0; i < count; i += 250) await Promise.all(Array.from({ length: Math.min(250, count - i) }, (_, j) => s.set(group, `o${i + j}`, data(i + j))))
}

const cases = []
for (const c of [1, 64]) {
  cases.push({ name: `set c=${c}`, go: (s) => run((i) => s.set('hot', `o${i % 500}`, data(i)), { total: c === 1 ? n(3000) : n(20000), concurrency: c }) })
  cases.push({ name: `get c=${c}`, setup: (s) => fill(s, 'hot', 500), go: (s) => run((i) => s.get('hot', `o${i % 500}`), { total: c === 1 ? n(3000) : n(20000), concurrency: c }) })
}
cases.push({ name: 'getGroup 1,000 items', setup: (s) => fill(s, 'big', 1000), go: (s) => run(() => s.getGroup('big'), { total: n(100), concurrency: 1 }) })
cases.push({
  name: 'query 1,000 items',
  setup: (s) => fill(s, 'big', 1000),
  go: (s) => run(() => s.query('big', { where: { status: 'open' }, orderBy: 'total', orderDirection: 'desc', limit: 20 }), { total: n(100), concurrency: 1 }),
})
cases.push({
  name: 'pub/sub set→event latency',
  go: async (s) => {
    let resolve
    await s.subscribe({ groupId: 'live', id: 'x' }, () => resolve && resolve()) // upstream publishes item events only on the item channel
    await new Promise((r) => setTimeout(r, 100))
    const r = await run(() => new Promise((res) => { resolve = res; s.set('live', 'x', { t: Date.now() }) }), { total: n(1000), concurrency: 1 })
    await s.unsubscribe({ groupId: 'live', id: 'x' })
    return r
  },
})

for (const s of Object.values(streams)) await run((i) => s.set('warm', `w${i % 10}`, data(i)), { total: 1000, concurrency: 16 })
const rows = await compareAll(cases, streams)
console.log(`\nRedisStreamAdapterManager: ours vs @motiadev/adapter-redis-streams@0.17.14-beta.196, ${url}, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds\n`)
printTable(rows)
await managers.ours.shutdown()
await managers.upstream.shutdown()
const raw = createClient({ url })
await raw.connect()
for await (const keys of raw.scanIterator({ MATCH: `${base}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
await raw.quit()
fs.mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('./results/streams.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), scale, rows }, null, 2))
process.exit(0) // upstream's subscriber client is never closed by its shutdown()
