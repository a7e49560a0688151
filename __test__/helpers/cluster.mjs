// A private Redis Cluster on free loopback ports: 3 masters + 3 replicas (`--cluster-enabled yes`),
// no persistence, node-timeout 2000 ms. Started by the tests, stopped by PID.
import { spawn, execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { eventually } from './env.mjs'
import { freePort, redisCmd } from './sentinel.mjs'

const run = promisify(execFile)

function startNode(port, dir) {
  const p = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
      '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
    { stdio: 'ignore' },
  )
  p.on('error', () => {})
  return p
}

/** `CLUSTER INFO` / `INFO` text → {field: value}. */
function fields(text) {
  const out = {}
  for (const line of String(text).split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim()
  }
  return out
}

/**
 * Starts the cluster and waits until every node says `cluster_state:ok` and every replica's link
 * is up. `cluster.rootNodes` is the node-redis `createCluster` shape (one seed node).
 */
export async function startCluster({ masters = 3, replicas = 1 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-cluster-'))
  const ports = []
  for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort())
  const procs = new Map(ports.map((port) => [port, startNode(port, dir)]))
  const cluster = { dir, ports, procs }
  cluster.stop = () => {
    for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await eventually(async () => {
      for (const port of ports) await redisCmd(port, ['PING'])
      return true
    }, { timeout: 10000, interval: 50 }).catch(() => {
      throw new Error('cluster nodes did not start: redis-server must be on PATH (`bash scripts/services.sh redis` installs it)')
    })
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30000 })
      .catch((e) => {
        throw new Error(`redis-cli --cluster create failed (redis-cli comes with redis-server): ${e.message}`)
      })
    await eventually(async () => {
      for (const port of ports) {
        if (fields(await redisCmd(port, ['CLUSTER', 'INFO'])).cluster_state !== 'ok') return false
        const repl = fields(await redisCmd(port, ['INFO', 'replication']))
        if (repl.role === 'slave' && repl.master_link_status !== 'up') return false
      }
      return true
    }, { timeout: 20000, interval: 100 })
  } catch (e) {
    cluster.stop()
    throw new Error(`the Redis Cluster did not become ready: ${e.message}`)
  }
  // every node as a seed: a test may kill any of them
  cluster.rootNodes = ports.map((port) => ({ socket: { host: '127.0.0.1', port } }))
  cluster.connection = { rootNodes: cluster.rootNodes }

  /** Ports of the masters now, with the slot ranges each owns. */
  cluster.masters = async () => {
    const alive = [...procs.entries()].filter(([, p]) => p.exitCode === null && p.signalCode === null).map(([port]) => port)
    const slots = await redisCmd(alive[0], ['CLUSTER', 'SLOTS'])
    const out = new Map()
    for (const [from, to, master] of slots) {
      const port = Number(master[1])
      if (!out.has(port)) out.set(port, [])
      out.get(port).push([Number(from), Number(to)])
    }
    return out
  }
  /** Ports of the masters that have a replica now (one that a kill -9 of the master promotes). */
  cluster.replicated = async () => {
    const alive = [...procs.entries()].filter(([, p]) => p.exitCode === null && p.signalCode === null).map(([port]) => port)
    const slots = await redisCmd(alive[0], ['CLUSTER', 'SLOTS'])
    return new Set(slots.filter((e) => e.length > 3).map((e) => Number(e[2][1])))
  }
  /** The port of the master serving `key`'s slot now. */
  cluster.masterOf = async (key) => {
    const alive = [...procs.entries()].filter(([, p]) => p.exitCode === null && p.signalCode === null).map(([port]) => port)
    const slot = Number(await redisCmd(alive[0], ['CLUSTER', 'KEYSLOT', key]))
    for (const [port, ranges] of await cluster.masters()) if (ranges.some(([a, b]) => a <= slot && slot <= b)) return port
    return undefined
  }
  /** Number of keys on `port` matching `pattern` (SCAN on that node only). */
  cluster.keysOn = async (port, pattern) => {
    let cursor = '0'
    const keys = []
    do {
      const [next, found] = await redisCmd(port, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])
      cursor = String(next)
      keys.push(...found)
    } while (cursor !== '0')
    return keys
  }
  /** kill -9 of the node on `port`; resolves when it exited. */
  cluster.kill = async (port) => {
    const p = procs.get(port)
    if (!p || p.exitCode !== null) return
    const exited = new Promise((r) => p.once('exit', r))
    p.kill('SIGKILL')
    await exited
  }
  return cluster
}
