// RedisStateAdapter through Redis Sentinel vs the same adapter on the same master directly (standalone), same run.
// Starts a private sentinel group (master + replica + 3 sentinels on free loopback ports) and stops it by PID.
// Usage: node bench/sentinel.bench.mjs   (env: BENCH_SCALE=0.2 for a quick run, BENCH_ROUNDS)
// In the table "ours" is the sentinel connection and "upstream" the standalone one: ratio = sentinel / standalone.
import { RedisStateAdapter } from 'motia-native-adapters'
import { randomUUID } from 'node:crypto'
import { run, printTable, compareAll, orderValue, fillGroup } from './lib.mjs'
import { startSentinelGroup } from '../__test__/helpers/sentinel.mjs'

const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const value = orderValue

const group = await startSentinelGroup()
try {
  const master = await group.masterPort()
  const base = `bench:${randomUUID().slice(0, 8)}:`
  const impls = {
    ours: new RedisStateAdapter(group.connection, { keyPrefix: `${base}sentinel:` }),
    upstream: new RedisStateAdapter({ socket: { host: '127.0.0.1', port: master } }, { keyPrefix: `${base}standalone:` }),
  }
  const fill = fillGroup
  const cases = []
  for (const c of [1, 64]) {
    const total = c === 1 ? n(4000) : n(40000)
    cases.push({ name: `set c=${c}`, go: (s) => run((i) => s.set('hot', `k${i % 1000}`, value), { total, concurrency: c }) })
    cases.push({ name: `get c=${c}`, setup: (s) => fill(s, 'hot', 1000), go: (s) => run((i) => s.get('hot', `k${i % 1000}`), { total, concurrency: c }) })
    cases.push({ name: `setMany c=${c}`, go: (s) => run((i) => s.setMany('many', { [`k${i % 1000}`]: value }), { total: Math.round(total / 4), concurrency: c }) })
  }
  cases.push({ name: 'getGroup 1,000 keys', setup: (s) => fill(s, 'group', 1000), go: (s) => run(() => s.getGroup('group'), { total: n(100), concurrency: 1 }) })
  for (const s of Object.values(impls)) await run((i) => s.set('warm', `k${i % 10}`, value), { total: 2000, concurrency: 16 })
  const rows = await compareAll(cases, impls)
  console.log(`\nRedisStateAdapter through Redis Sentinel ("ours") vs the same master directly ("upstream" column = standalone), scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds\n`)
  printTable(rows)
  for (const s of Object.values(impls)) await s.cleanup()
} finally {
  group.stop()
}
