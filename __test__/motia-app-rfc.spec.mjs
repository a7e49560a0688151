// End to end with Motia itself on the RFC's own configuration: examples/motia-app started (`motia start`,
// motia@0.17.6-beta.187) with examples/motia-app/motia.config.rfc.ts as its motia.config.ts — the RFC's
// "motia.config.ts Configuration" example with only the adapter imports changed. Checks on the servers that state,
// streams, events and cron go through our adapters with the RFC's prefixes and options.
import { jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { REDIS_HOST, REDIS_PORT, REDIS_URL, requireRedis, eventually } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, admin, cleanupTopology, consumerCount } from './helpers/amqp.mjs'

jest.setTimeout(300000)

const here = path.dirname(fileURLToPath(import.meta.url))
const APP = path.join(here, '..', 'examples', 'motia-app')
const EXCHANGE = 'motia.events' // the RFC's
const STEPS = [
  ['order.created', 'RecordOrder'],
  ['order.created', 'PublishOrder'],
]
const PORT = 3211

let raw
let dir
let proc

beforeAll(async () => {
  await requireRedis()
  await requireRabbit()
  if (!fs.existsSync(path.join(APP, 'node_modules', 'motia'))) {
    throw new Error('examples/motia-app has no node_modules: run `bash scripts/test.sh` (it installs them) or `cd examples/motia-app && REDISMS_DISABLE_POSTINSTALL=1 npm install`')
  }
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})

afterAll(async () => {
  if (proc) await stop(proc)
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
  await raw?.quit()
})

/** A copy of the app whose motia.config.ts is the RFC example. */
function copyApp() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-app-rfc-'))
  fs.copyFileSync(path.join(APP, 'package.json'), path.join(d, 'package.json'))
  fs.copyFileSync(path.join(APP, 'motia.config.rfc.ts'), path.join(d, 'motia.config.ts'))
  fs.cpSync(path.join(APP, 'steps'), path.join(d, 'steps'), { recursive: true })
  fs.symlinkSync(path.join(APP, 'node_modules'), path.join(d, 'node_modules'), 'dir')
  return d
}

function start(instanceId) {
  dir = copyApp()
  const p = spawn(path.join(dir, 'node_modules', '.bin', 'motia'), ['start', '-p', String(PORT), '-H', '127.0.0.1'], {
    cwd: dir,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      INSTANCE_NAME: 'rfc',
      // what the RFC example reads
      REDIS_HOST,
      REDIS_PORT: String(REDIS_PORT),
      RABBITMQ_URL: RABBIT_URL,
      INSTANCE_ID: instanceId,
      // Motia's own traces/logs: the local Redis (the RFC example has no `redis:`; never download redis-memory-server)
      MOTIA_DISABLE_MEMORY_SERVER: 'true',
      MOTIA_REDIS_HOST: REDIS_HOST,
      MOTIA_REDIS_PORT: String(REDIS_PORT),
      MOTIA_ANALYTICS_DISABLED: 'true',
      MOTIA_DOCKER_DISABLE_WORKBENCH: 'true',
      REDISMS_DISABLE_POSTINSTALL: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  p.stderr.on('data', (d) => (out += d))
  return { p, log: () => out, exited: new Promise((r) => p.on('exit', r)) }
}

async function stop(inst) {
  if (inst.p.exitCode !== null || inst.p.signalCode !== null) return
  try {
    process.kill(-inst.p.pid, 'SIGTERM')
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-inst.p.pid, 'SIGKILL')
    } catch {}
  }, 5000)
  await inst.exited
  clearTimeout(t)
}

/** Keys matching `pattern` (SCAN). */
async function scan(pattern) {
  const out = []
  for await (const keys of raw.scanIterator({ MATCH: pattern, COUNT: 1000 })) out.push(...keys)
  return out
}

test('the RFC motia.config.ts example runs a Motia 0.17 app on our adapters, every option taking effect', async () => {
  const run = randomUUID().slice(0, 8)
  const instanceId = `rfc-pod-${run}`
  const orderIds = Array.from({ length: 6 }, (_, i) => `rfc-${run}-${i}`)
  // queues are named by topic and step only: drop ones an earlier run (or the other e2e test) left with another DLX
  await cleanupTopology(EXCHANGE, STEPS)
  await raw.del('motia:cron:Tick')
  const monitor = raw.duplicate()
  await monitor.connect()
  const seen = []
  try {
    proc = start(instanceId)
    await eventually(() => /Server ready and listening on port/.test(proc.log()), { timeout: 120000, interval: 250 }).catch((e) => {
      throw new Error(`the app did not start: ${e.message}\n${proc.log().slice(-3000)}`)
    })
    expect(proc.log()).not.toMatch(/Failed to load motia.config/)

    // events: RabbitMQ exchange `motia.events` (topic, durable) with one consumer per step queue and the DLX
    for (const [topic, step] of STEPS) {
      await eventually(async () => (await consumerCount(`motia.${topic}.${step}`)) === 1, { timeout: 30000 }).catch((e) => {
        throw new Error(`motia.${topic}.${step}: no consumer (${e.message})\n${proc.log().slice(-2000)}`)
      })
    }
    {
      const { conn, ch } = await admin()
      try {
        await ch.checkExchange(EXCHANGE)
        await ch.checkExchange(`${EXCHANGE}.dlq`)
        // durable: true — re-declaring it durable is accepted (a non-durable one would be a 406)
        await ch.assertExchange(EXCHANGE, 'topic', { durable: true })
      } finally {
        await conn.close().catch(() => {})
      }
    }

    // watch the stream writes: ours are one atomic script per set (upstream: HGET/HSET/PUBLISH)
    await monitor.monitor((line) => {
      if (line.includes('motia:stream:orders:group:all')) seen.push(line)
    })
    for (const [i, orderId] of orderIds.entries()) {
      const r = await fetch(`http://127.0.0.1:${PORT}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId, amount: i }),
      })
      expect(r.status).toBe(202)
    }

    // state: `motia:state:` prefix, `ttl: 3600` on every key
    for (const id of orderIds) {
      await eventually(async () => (await raw.get(`motia:state:orders:${id}`)) !== null, { timeout: 60000 })
      expect(JSON.parse(await raw.get(`motia:state:orders:${id}`))).toMatchObject({ orderId: id, recordedBy: 'rfc' })
      const ttl = await raw.ttl(`motia:state:orders:${id}`)
      expect(ttl).toBeGreaterThan(3500)
      expect(ttl).toBeLessThanOrEqual(3600)
    }
    // streams: `motia:stream:` prefix, 0.17 layout, written by our adapter
    for (const id of orderIds) {
      await eventually(async () => (await raw.hGet('motia:stream:orders:group:all', id)) !== null, { timeout: 60000 })
      expect(JSON.parse(await raw.hGet('motia:stream:orders:group:all', id))).toMatchObject({ id, orderId: id, publishedBy: 'rfc' })
    }
    await eventually(() => seen.some((l) => /"evalsha"/i.test(l) && orderIds.some((id) => l.includes(`"${id}"`))), { timeout: 10000 }).catch(() => {
      throw new Error(`no script call of ours on the stream hash; MONITOR saw:\n${seen.slice(0, 20).join('\n')}`)
    })
    // both read back through the app
    const r = await (await fetch(`http://127.0.0.1:${PORT}/orders/${orderIds[0]}`)).json()
    expect(r.order).toMatchObject({ orderId: orderIds[0] })
    expect(r.item).toMatchObject({ orderId: orderIds[0] })

    // cron: the lock lives at `motia:cron:${jobName}` (upstream's default would be motia:cron:lock:), held by
    // INSTANCE_ID; the tick ran
    const lock = await eventually(async () => raw.get('motia:cron:Tick'), { timeout: 15000, interval: 50 })
    expect(JSON.parse(lock)).toMatchObject({ jobName: 'Tick', instanceId })
    await eventually(async () => (await scan('motia:state:cron-runs:*')).length > 0, { timeout: 15000 })
  } finally {
    monitor.destroy() // quit() never resolves in MONITOR mode
    await stop(proc)
    proc = undefined
    for (const id of orderIds) {
      await raw.del(`motia:state:orders:${id}`)
      await raw.hDel('motia:stream:orders:group:all', id)
    }
    for (const pattern of [`motia:state:handled-*:rfc-${run}-*`, 'motia:state:cron-runs:*']) {
      const keys = await scan(pattern)
      if (keys.length) await raw.del(keys)
    }
    await raw.del('motia:cron:Tick')
    await cleanupTopology(EXCHANGE, STEPS)
  }
})
