// A private Redis Sentinel group on free loopback ports: master + replica + 3 sentinels
// (`redis-server --sentinel`), no persistence. Started by the tests, stopped by PID.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { createClient } from 'redis'
import { eventually } from './env.mjs'

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

const DATA_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']

function startRedis(args, what) {
  const p = spawn('redis-server', args, { stdio: 'ignore' })
  p.on('error', () => {})
  p.what = what
  return p
}

async function waitListening(port, what) {
  await eventually(() => listening(port), { timeout: 10000 }).catch(() => {
    throw new Error(`${what} did not start on ${port}: redis-server must be on PATH (\`bash scripts/services.sh redis\` installs it)`)
  })
}

/** Sends one command to 127.0.0.1:port with a short-lived node-redis client. */
export async function redisCmd(port, args) {
  const c = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false, connectTimeout: 2000 } })
  c.on('error', () => {})
  await c.connect()
  try {
    return await c.sendCommand(args)
  } finally {
    try {
      c.destroy() // sentinels refuse QUIT
    } catch {}
  }
}

/**
 * Starts the group and waits until every sentinel sees the master, the replica (link up) and the
 * other two sentinels. `down-after` 1000 ms, so a killed master is replaced in ~2–3 s.
 */
export async function startSentinelGroup(name = 'mymaster') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-sentinel-'))
  const procs = []
  const masterPort = await freePort()
  const replicaPort = await freePort()
  const group = {
    name,
    dir,
    ports: { master: masterPort, replica: replicaPort, sentinels: [] },
    data: new Map(), // port → process
  }
  const dataProc = (port, extra) => {
    const p = startRedis(['--port', String(port), '--dir', dir, ...DATA_ARGS, ...extra], `redis ${port}`)
    group.data.set(port, p)
    procs.push(p)
    return p
  }
  dataProc(masterPort, [])
  await waitListening(masterPort, 'the sentinel group master')
  dataProc(replicaPort, ['--replicaof', '127.0.0.1', String(masterPort)])
  await waitListening(replicaPort, 'the sentinel group replica')
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const conf = path.join(dir, `sentinel-${port}.conf`)
    fs.writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    )
    const p = startRedis([conf, '--sentinel'], `sentinel ${port}`)
    procs.push(p)
    group.ports.sentinels.push(port)
  }
  for (const port of group.ports.sentinels) await waitListening(port, 'a sentinel')
  group.sentinelRootNodes = group.ports.sentinels.map((port) => ({ host: '127.0.0.1', port }))
  group.connection = { sentinelRootNodes: group.sentinelRootNodes, name }

  /** The master's port as the first sentinel says now. */
  group.masterPort = async (sentinelPort = group.ports.sentinels[0]) => {
    const r = await redisCmd(sentinelPort, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])
    return Number(r[1])
  }
  group.stop = () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const ready = async () => {
    for (const port of group.ports.sentinels) {
      const flat = await redisCmd(port, ['SENTINEL', 'MASTER', name])
      const info = {}
      for (let i = 0; i + 1 < flat.length; i += 2) info[flat[i]] = flat[i + 1]
      if (Number(info['num-slaves']) < 1 || Number(info['num-other-sentinels']) < 2) return false
    }
    const repl = await redisCmd(replicaPort, ['INFO', 'replication'])
    return /master_link_status:up/.test(repl)
  }
  await eventually(ready, { timeout: 20000, interval: 100 }).catch((e) => {
    group.stop()
    throw new Error(`the sentinel group did not become ready: ${e.message}`)
  })

  /** kill -9 of the server on `port`; resolves when it exited. */
  group.kill = async (port) => {
    const p = group.data.get(port)
    group.data.delete(port)
    if (!p || p.exitCode !== null) return
    const exited = new Promise((r) => p.once('exit', r))
    p.kill('SIGKILL')
    await exited
  }
  /** Starts an empty server on `port` again (as it comes back after a crash: it believes it is a master). */
  group.restart = async (port) => {
    dataProc(port, [])
    await waitListening(port, `redis ${port}`)
  }
  return group
}
