// RedisStateAdapter (ours) vs @motiadev/adapter-redis-state@0.17.14-beta.196 (upstream), same Redis, same run.
// Usage: npm run bench   (env: REDIS_URL, BENCH_SCALE=0.2 for a quick run)
import { RedisStateAdapter as Ours } from 'motia-native-adapters'
import { RedisStateAdapter as Upstream } from '@motiadev/adapter-redis-state'
import { createClient } from 'redis'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import { run, printTable, compareAll, orderValue } from './lib.mjs'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const value = orderValue

const base = `bench:${randomUUID().slice(0, 8)}:`
const mk = {
  ours: () => new Ours({ url }, { keyPrefix: `${base}ours:` }),
  upstream: () => new Upstream({ url }, { keyPrefix: `${base}up:` }),
}
const impls = { ours: mk.ours(), upstream: mk.upstream() }

async function fill(s, trace, count) {
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => s.set(trace, `k${i + j}`, { ...value, i: i + j })))
  }
}

const cases = []
for (const c of [1, 64]) {
  const total = c === 1 ? n(4000) : n(40000)
  cases.push({
    name: `set c=${c}`,
    go: (s) => run((i) => s.set('hot', `k${i % 1000}`, value), { total, concurrency: c }),
  })
  cases.push({
    name: `get c=${c}`,
    setup: (s) => fill(s, 'hot', 1000),
    go: (s) => run((i) => s.get('hot', `k${i % 1000}`), { total, concurrency: c }),
  })
  cases.push({
    // upstream has no exists(): it is timed doing get() on the same keys, what an app would do instead
    name: `exists c=${c} (upstream: get)`,
    setup: (s) => fill(s, 'hot', 1000),
    go: (s) => run((i) => (s.exists ? s.exists('hot', `k${i % 2000}`) : s.get('hot', `k${i % 2000}`)), { total, concurrency: c }),
  })
  cases.push({
    name: `delete c=${c}`,
    setup: (s) => fill(s, `del${c}`, total),
    go: (s) => run((i) => s.delete(`del${c}`, `k${i}`), { total, concurrency: c }),
  })
}
cases.push({
  name: 'getGroup 1,000 keys',
  setup: (s) => fill(s, 'group', 1000),
  go: (s) => run(() => s.getGroup('group'), { total: n(100), concurrency: 1 }),
})
cases.push({
  name: 'items 1,000 keys',
  setup: (s) => fill(s, 'group', 1000),
  go: (s) => run(() => s.items({ groupId: 'group' }), { total: n(50), concurrency: 1 }),
})
cases.push({
  name: 'items+filter 1,000 keys',
  setup: (s) => fill(s, 'group', 1000),
  go: (s) => run(() => s.items({ groupId: 'group', filter: [{ valueKey: 'status', operation: 'eq', value: 'paid' }] }), { total: n(50), concurrency: 1 }),
})
cases.push({
  name: 'clear 1,000 keys',
  // each timed clear is preceded by an untimed refill
  go: async (s) => {
    const reps = n(20)
    let acc = []
    for (let r = 0; r < reps; r++) {
      await fill(s, 'clear', 1000)
      acc.push(await run(() => s.clear('clear'), { total: 1, concurrency: 1 }))
    }
    const secs = acc.reduce((a, x) => a + 1 / x.opsPerSec, 0)
    const lat = acc.map((x) => x.p50us).sort((a, b) => a - b)
    return { opsPerSec: reps / secs, p50us: lat[Math.floor(lat.length / 2)], p99us: lat[lat.length - 1] }
  },
})

// warm up both (connections, JIT)
for (const s of Object.values(impls)) await run((i) => s.set('warm', `k${i % 10}`, value), { total: 2000, concurrency: 16 })
const rows = await compareAll(cases, impls)
console.log(`\nRedisStateAdapter: ours (motia-native-adapters) vs @motiadev/adapter-redis-state@0.17.14-beta.196, ${url}, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds\n`)
printTable(rows)

// cleanup
for (const s of Object.values(impls)) await s.cleanup()
const raw = createClient({ url })
await raw.connect()
for await (const keys of raw.scanIterator({ MATCH: `${base}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
await raw.quit()
fs.mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('./results/state.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), scale, rows }, null, 2))
