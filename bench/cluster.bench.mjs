// RedisStateAdapter on a Redis Cluster vs the same adapter on one standalone server, same run.
// Starts a private cluster (3 masters + 3 replicas) and a private standalone redis-server on free loopback ports and
// stops them by PID. Two tables: vs standalone on its default path (the event-loop connection), and vs standalone on
// the tokio path (the one the cluster uses for now: the cost of slot routing alone).
// Usage: node bench/cluster.bench.mjs   (env: BENCH_SCALE=0.2 for a quick run, BENCH_ROUNDS, BENCH_ONLY)
// In the tables "ours" is the cluster and "upstream" the standalone server: ratio = cluster / standalone.
import { spawn } from 'node:child_process'
import { RedisStateAdapter } from 'motia-native-adapters'
import { randomUUID } from 'node:crypto'
import { run, printTable, compareAll, orderValue, fillGroup } from './lib.mjs'
import { startCluster } from '../__test__/helpers/cluster.mjs'
import { freePort, redisCmd } from '../__test__/helpers/sentinel.mjs'
import { eventually } from '../__test__/helpers/env.mjs'

const scale = Number(process.env.BENCH_SCALE || 1)
const n = (x) => Math.max(10, Math.round(x * scale))
const value = orderValue

const cluster = await startCluster()
const port = await freePort()
const standalone = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
try {
  await eventually(() => redisCmd(port, ['PING']).then(() => true, () => false), { timeout: 10000 })
  const base = `bench:${randomUUID().slice(0, 8)}:`
  const fill = fillGroup
  const cases = []
  for (const c of [1, 64]) {
    const total = c === 1 ? n(4000) : n(40000)
    cases.push({ name: `set c=${c}`, go: (s) => run((i) => s.set(`t${i % 100}`, `k${i % 1000}`, value), { total, concurrency: c }) })
    cases.push({ name: `get c=${c}`, setup: (s) => fill(s, 'hot', 1000), go: (s) => run((i) => s.get('hot', `k${i % 1000}`), { total, concurrency: c }) })
    cases.push({ name: `setMany c=${c}`, go: (s) => run((i) => s.setMany(`m${i % 100}`, { [`k${i % 1000}`]: value, x: 1 }), { total: Math.round(total / 4), concurrency: c }) })
  }
  cases.push({ name: 'getGroup 1,000 keys', setup: (s) => fill(s, 'group', 1000), go: (s) => run(() => s.getGroup('group'), { total: n(100), concurrency: 1 }) })
  for (const jsloop of ['1', '0']) {
    const impls = { ours: new RedisStateAdapter(cluster.connection, { keyPrefix: `${base}cluster:` }) }
    if (jsloop === '0') process.env.MOTIA_NATIVE_JSLOOP = '0'
    impls.upstream = new RedisStateAdapter({ socket: { host: '127.0.0.1', port } }, { keyPrefix: `${base}standalone:` })
    delete process.env.MOTIA_NATIVE_JSLOOP
    for (const s of Object.values(impls)) await run((i) => s.set('warm', `k${i % 10}`, value), { total: 2000, concurrency: 16 })
    const rows = await compareAll(cases, impls)
    console.log(`\nRedisStateAdapter on a 3-master Redis Cluster ("ours") vs one standalone server ("upstream" column, ${jsloop === '1' ? 'its default event-loop path' : 'the tokio path, MOTIA_NATIVE_JSLOOP=0'}), scale ${scale}, median of ${process.env.BENCH_ROUNDS || 3} alternating rounds\n`)
    printTable(rows)
    for (const s of Object.values(impls)) await s.cleanup()
  }
} finally {
  standalone.kill('SIGKILL')
  cluster.stop()
}
