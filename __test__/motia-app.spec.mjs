// End to end with Motia itself: two instances of examples/motia-app (motia@0.17.6-beta.187 `motia start`)
// on two ports, sharing Redis and RabbitMQ through our adapters; then a mixed fleet (one instance on the
// upstream @motiadev/adapter-* packages).
import { jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { REDIS_URL, requireRedis, uniquePrefix, eventually, deleteMatching } from './helpers/env.mjs'
import { RABBIT_URL, requireRabbit, admin, cleanupTopology, consumerCount } from './helpers/amqp.mjs'
import { parsePrometheus, promValue } from './helpers/prometheus.mjs'

jest.setTimeout(300000)

const here = path.dirname(fileURLToPath(import.meta.url))
const APP = path.join(here, '..', 'examples', 'motia-app')
const STEPS = [
  ['order.created', 'RecordOrder'],
  ['order.created', 'PublishOrder'],
]

let raw
const procs = []
const dirs = []

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
  await raw?.quit()
})

afterEach(async () => {
  await Promise.all(procs.splice(0).map(stop))
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** A copy of the app (instances cannot share a folder: they compile into .motia/compiled). */
function copyApp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-app-'))
  dirs.push(dir)
  for (const f of ['package.json', 'motia.config.ts']) fs.copyFileSync(path.join(APP, f), path.join(dir, f))
  fs.cpSync(path.join(APP, 'steps'), path.join(dir, 'steps'), { recursive: true })
  fs.symlinkSync(path.join(APP, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return dir
}

function start(name, port, prefix, adapters = 'native', events = 'rabbitmq') {
  const dir = copyApp()
  const p = spawn(path.join(dir, 'node_modules', '.bin', 'motia'), ['start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: dir,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      INSTANCE_NAME: name,
      APP_PREFIX: prefix,
      MOTIA_ADAPTERS: adapters,
      MOTIA_EVENTS: events,
      REDIS_URL,
      RABBITMQ_URL: RABBIT_URL,
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
  const inst = { name, port, p, log: () => out, exited: new Promise((r) => p.on('exit', r)) }
  procs.push(inst)
  return inst
}

async function stop(inst) {
  if (inst.p.exitCode !== null || inst.p.signalCode !== null) return
  try {
    process.kill(-inst.p.pid, 'SIGTERM') // the CLI and the step child processes it started
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-inst.p.pid, 'SIGKILL')
    } catch {}
  }, 5000)
  await inst.exited
  clearTimeout(t)
}

async function ready(inst) {
  await eventually(() => /Server ready and listening on port/.test(inst.log()), { timeout: 120000, interval: 250 }).catch((e) => {
    throw new Error(`${inst.name} did not start: ${e.message}\n${inst.log().slice(-3000)}`)
  })
  if (/Failed to load motia.config/.test(inst.log())) throw new Error(`${inst.name}: motia.config.ts failed to load\n${inst.log()}`)
}

async function post(inst, body) {
  const r = await fetch(`http://127.0.0.1:${inst.port}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (r.status !== 202) throw new Error(`${inst.name}: POST /orders → ${r.status} ${await r.text()}`)
  return r.json()
}

async function values(prefix, group) {
  const out = []
  for await (const keys of raw.scanIterator({ MATCH: `${prefix}state:${group}:*`, COUNT: 1000 })) {
    for (const k of keys) out.push(JSON.parse(await raw.get(k)))
  }
  return out
}

async function cleanup(prefix) {
  await deleteMatching(raw, `${prefix}*`)
  await cleanupTopology(`${prefix}events`, STEPS)
}

/** Starts two instances, sends orders to both, checks once-per-step, sharing, visibility; returns cron runs. */
async function fleet(kinds, { orders = 30, cronWindowMs = 12000, events = 'rabbitmq' } = {}) {
  const prefix = uniquePrefix('e2e')
  // queue names do not contain the exchange: drop queues an earlier run or the demo left with another DLX
  await cleanupTopology(`${prefix}events`, STEPS)
  try {
    const a = start('a', 3201, prefix, kinds[0], events)
    await new Promise((r) => setTimeout(r, 500))
    const b = start('b', 3202, prefix, kinds[1], events)
    await Promise.all([ready(a), ready(b)])

    // our adapters, not Motia's defaults, are in use: RabbitMQ exchange and queues with a consumer per instance
    // Redis events: both steps registered for the topic across the fleet, each with its stream and group
    if (events === 'redis') {
      const registry = `${prefix}events:order.created:steps`
      await eventually(async () => (await raw.sMembers(registry)).sort().join() === 'PublishOrder,RecordOrder', { timeout: 30000 }).catch(() => {
        throw new Error(`${registry}: steps not registered\n--- a:\n${a.log().slice(-2000)}\n--- b:\n${b.log().slice(-2000)}`)
      })
      for (const [, step] of STEPS) expect(await raw.type(`${prefix}events:order.created:q:${step}`)).toBe('stream')
    }
    for (const q of events === 'redis' ? [] : ['motia.order.created.RecordOrder', 'motia.order.created.PublishOrder']) {
      await eventually(async () => (await consumerCount(q)) === 2, { timeout: 30000 }).catch(async (e) => {
        throw new Error(`${q}: ${await consumerCount(q)} consumers, not 2 (${e.message})\n--- a:\n${a.log().slice(-2000)}\n--- b:\n${b.log().slice(-2000)}`)
      })
    }
    if (events === 'rabbitmq') {
      const { conn, ch } = await admin()
      try {
        await ch.checkExchange(`${prefix}events`)
      } finally {
        await conn.close().catch(() => {})
      }
    }

    const ids = Array.from({ length: orders }, (_, i) => `order-${i}`)
    await Promise.all(ids.map((orderId, i) => post(i % 2 ? b : a, { orderId, amount: i })))

    for (const step of ['RecordOrder', 'PublishOrder']) {
      await eventually(async () => (await values(prefix, `handled-${step}`)).length >= orders, { timeout: 60000 })
    }
    await new Promise((r) => setTimeout(r, 1500)) // any duplicate would show up now
    const result = {}
    // our instances serve GET /health and GET /metrics (Prometheus text) from their adapters
    result.scrapes = []
    for (const [inst, kind] of [[a, kinds[0]], [b, kinds[1]]]) {
      if (kind !== 'native') continue
      const h = await fetch(`http://127.0.0.1:${inst.port}/health`)
      const body = await h.json()
      expect({ status: h.status, ok: body.ok, names: body.adapters.map((x) => x.name) }).toEqual({
        status: 200,
        ok: true,
        names: ['RedisStateAdapter', 'RedisStreamAdapterManager', events === 'redis' ? 'RedisEventAdapter' : 'RabbitMQEventAdapter', 'RedisCronAdapter'],
      })
      const m = await fetch(`http://127.0.0.1:${inst.port}/metrics`)
      expect(m.headers.get('content-type')).toMatch(/^text\/plain/)
      result.scrapes.push(parsePrometheus(await m.text()))
    }
    for (const step of ['RecordOrder', 'PublishOrder']) {
      const handled = await values(prefix, `handled-${step}`)
      const perOrder = new Map()
      for (const h of handled) perOrder.set(h.orderId, (perOrder.get(h.orderId) || 0) + 1)
      result[step] = { perOrder, byInstance: new Set(handled.map((h) => h.instance)), count: handled.length }
    }
    // state and stream items written by one instance are visible from the other
    for (const [inst, id] of [[a, 'order-1'], [b, 'order-0']]) {
      const r = await (await fetch(`http://127.0.0.1:${inst.port}/orders/${id}`)).json()
      expect(r.order).toMatchObject({ orderId: id })
      expect(r.item).toMatchObject({ orderId: id })
    }
    // cron: collect runs over a window
    const t0 = Date.now()
    await new Promise((r) => setTimeout(r, cronWindowMs))
    const runs = (await values(prefix, 'cron-runs')).filter((r) => r.at >= t0 && r.at < t0 + cronWindowMs - 1000)
    return { ...result, runs, orders }
  } finally {
    await Promise.all(procs.splice(0).map(stop))
    await cleanup(prefix)
  }
}

function ticks(runs) {
  const perTick = new Map()
  for (const r of runs) perTick.set(r.tick, (perTick.get(r.tick) || 0) + 1)
  return perTick
}

test('two instances on our adapters: each event once per step, shared work, shared state/streams, each cron tick once', async () => {
  const r = await fleet(['native', 'native'])
  for (const step of ['RecordOrder', 'PublishOrder']) {
    expect(r[step].count).toBe(r.orders)
    expect([...r[step].perOrder.values()].every((n) => n === 1)).toBe(true)
  }
  // both instances consumed (competing consumers on one queue per step)
  expect(new Set([...r.RecordOrder.byInstance, ...r.PublishOrder.byInstance])).toEqual(new Set(['a', 'b']))
  // the scraped counters add up across the two replicas: each order emitted once, acked once per step
  const sum = (fam, sample, labels) => r.scrapes.reduce((acc, families) => acc + promValue(families, fam, sample, labels), 0)
  const events = { adapter: 'RabbitMQEventAdapter' }
  expect(sum('motia_adapter_calls', 'motia_adapter_calls_total', { ...events, method: 'emit' })).toBe(r.orders)
  expect(sum('motia_adapter_events_acked', 'motia_adapter_events_acked_total', events)).toBe(r.orders * 2)
  expect(sum('motia_adapter_calls', 'motia_adapter_calls_total', { ...events, method: 'handler' })).toBe(r.orders * 2)
  const perTick = ticks(r.runs)
  expect(perTick.size).toBeGreaterThanOrEqual(2)
  expect([...perTick.values()].every((n) => n === 1)).toBe(true)
})

test('two instances with events in Redis (RedisEventAdapter): each event once per step, shared work, counters add up', async () => {
  const r = await fleet(['native', 'native'], { orders: 30, cronWindowMs: 4000, events: 'redis' })
  for (const step of ['RecordOrder', 'PublishOrder']) {
    expect(r[step].count).toBe(r.orders)
    expect([...r[step].perOrder.values()].every((n) => n === 1)).toBe(true)
  }
  expect(new Set([...r.RecordOrder.byInstance, ...r.PublishOrder.byInstance])).toEqual(new Set(['a', 'b']))
  const sum = (fam, sample, labels) => r.scrapes.reduce((acc, families) => acc + promValue(families, fam, sample, labels), 0)
  const events = { adapter: 'RedisEventAdapter' }
  expect(sum('motia_adapter_calls', 'motia_adapter_calls_total', { ...events, method: 'emit' })).toBe(r.orders)
  expect(sum('motia_adapter_events_acked', 'motia_adapter_events_acked_total', events)).toBe(r.orders * 2)
})

test('a mixed fleet (one instance on the upstream @motiadev adapters, one on ours) shares events and state', async () => {
  const r = await fleet(['native', 'upstream'], { orders: 20, cronWindowMs: 4000 })
  for (const step of ['RecordOrder', 'PublishOrder']) {
    expect(r[step].count).toBe(r.orders)
    expect([...r[step].perOrder.values()].every((n) => n === 1)).toBe(true)
  }
  expect(new Set([...r.RecordOrder.byInstance, ...r.PublishOrder.byInstance])).toEqual(new Set(['a', 'b']))
})
