// RedisCronAdapter (ours) vs @motiadev/adapter-redis-cron@0.17.14-beta.196: acquire+release cycles per second,
// both with default options (ours keeps a released record for its tick; the releaser may take it again at once),
// and a contended race: 20 adapter instances acquire one job at once, the winner releases, next round.
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
  ours: new Ours({ url }, { keyPrefix: `${base}ours:` }),
  upstream: new Upstream({ url }, { keyPrefix: `${base}up:` }),
}

const cycle = (s, job) => async () => {
  const lock = await s.acquireLock(job, 30000)
  if (!lock) throw new Error(`lock ${job} not acquired`)
  await s.releaseLock(lock)
}

const racers = {
  ours: Array.from({ length: 20 }, () => new Ours({ url }, { keyPrefix: `${base}raceours:` })),
  upstream: Array.from({ length: 20 }, () => new Upstream({ url }, { keyPrefix: `${base}raceup:` })),
}
const race = (s) => async () => {
  const all = racers[s === impls.ours ? 'ours' : 'upstream']
  const locks = await Promise.all(all.map((a) => a.acquireLock('race', 30000)))
  const won = locks.map((l, i) => [l, all[i]]).filter(([l]) => l)
  if (won.length !== 1) throw new Error(`${won.length} winners`)
  await won[0][1].releaseLock(won[0][0])
}

const cases = [
  { name: 'acquire+release c=1 (one job)', go: (s) => run(cycle(s, 'job'), { total: n(3000), concurrency: 1 }) },
  { name: 'acquire+release c=16 (16 jobs)', go: (s) => run((i, w) => cycle(s, `job${w}`)(), { total: n(20000), concurrency: 16 }) },
  { name: 'contended race, 20 instances, one winner per round', go: (s) => run(race(s), { total: n(1000), concurrency: 1 }) },
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
for (const s of [...Object.values(impls), ...racers.ours, ...racers.upstream]) await s.shutdown()
const raw = createClient({ url })
await raw.connect()
for await (const keys of raw.scanIterator({ MATCH: `*${base}*`, COUNT: 1000 })) if (keys.length) await raw.del(keys)
await raw.quit()
fs.mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('./results/cron.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), scale, rows }, null, 2))
