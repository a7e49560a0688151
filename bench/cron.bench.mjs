// RedisCronAdapter (ours) vs @motiadev/adapter-redis-cron@0.17.14-beta.196: acquire+release cycles per second.
// Ours runs with releaseGuard: 0 here so both free the lock at release (same work per cycle).
import { RedisCronAdapter as Ours } from 'motia-native-adapters'
import { RedisCronAdapter as Upstream } from '@motiadev/adapter-redis-cron'
import { createClient } from 'redis'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import { run, printTable, compareAll } from './lib.mjs'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const base = `benchcron:${randomUUID().slice(0, 8)}:`
const impls = {
  ours: new Ours({ url }, { keyPrefix: `${base}ours:`, releaseGuard: 0 }),
  upstream: new Upstream({ url }, { keyPrefix: `${base}up:` }),
}

const cycle = (s, job) => async () => {
  const lock = await s.acquireLock(job, 30000)
  if (!lock) throw new Error(`lock ${job} not acquired`)
  await s.releaseLock(lock)
}

const cases = [
  { name: 'acquire+release c=1 (one job)', go: (s) => run(cycle(s, 'job'), { total: n(3000), concurrency: 1 }) },
  { name: 'acquire+release c=16 (16 jobs)', go: (s) => run((i, w) => cycle(s, `job${w}`)(), { total: n(20000), concurrency: 16 }) },
  {
    name: 'contended acquire c=16 (held)',
    setup: async (s) => s.acquireLock('held', 600000),
    go: (s) => run(() => s.acquireLock('held', 30000), { total: n(20000), concurrency: 16 }),
  },
]

for (const s of Object.values(impls)) await run(cycle(s, 'warm'), { total: 300, concurrency: 1 })
const rows = await compareAll(cases, impls)
console.log(`\nRedisCronAdapter: ours vs @motiadev/adapter-redis-cron@0.17.14-beta.196, ${url}, scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds\n`)
printTable(rows)
for (const s of Object.values(impls)) await s.shutdown()
const raw = createClient({ url })
await raw.connect()
for await (const keys of raw.scanIterator({ MATCH: `*${base}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
await raw.quit()
fs.mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('./results/cron.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), scale, rows }, null, 2))
