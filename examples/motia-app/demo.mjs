// `npm run demo`: two replicas of a real Motia 0.17 app (this folder) behind no load balancer but two ports,
// sharing state, streams, events (RedisEventAdapter) and cron locks in one Redis through motia-native-adapters
// (MOTIA_EVENTS=rabbitmq puts the events in RabbitMQ instead).
// Sends orders to both, then shows who handled what: each event once per step, both replicas working, every
// cron tick run once.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'

const APP = path.dirname(fileURLToPath(import.meta.url))
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const RABBITMQ_URL = process.env.RABBITMQ_URL || 'amqp://guest:guest@127.0.0.1:5672'
const EVENTS = process.env.MOTIA_EVENTS || 'redis'
const prefix = `motia-demo-${Date.now().toString(36)}:`
const ORDERS = 12
const dirs = []
const procs = []

function copyApp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-demo-'))
  dirs.push(dir)
  for (const f of ['package.json', 'motia.config.ts']) fs.copyFileSync(path.join(APP, f), path.join(dir, f))
  fs.cpSync(path.join(APP, 'steps'), path.join(dir, 'steps'), { recursive: true })
  fs.symlinkSync(path.join(APP, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return dir
}

function start(name, port) {
  const dir = copyApp()
  const p = spawn(path.join(dir, 'node_modules', '.bin', 'motia'), ['start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INSTANCE_NAME: name, APP_PREFIX: prefix, REDIS_URL, RABBITMQ_URL, MOTIA_EVENTS: EVENTS, MOTIA_ANALYTICS_DISABLED: 'true', MOTIA_DOCKER_DISABLE_WORKBENCH: 'true' },
  })
  let log = ''
  p.stdout.on('data', (d) => (log += d))
  p.stderr.on('data', (d) => (log += d))
  const inst = { name, port, p, log: () => log }
  procs.push(inst)
  return inst
}

async function waitFor(fn, what, timeout = 120000) {
  const end = Date.now() + timeout
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

const redis = createClient({ url: REDIS_URL })
async function values(group) {
  const out = []
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}state:${group}:*`, COUNT: 1000 })) for (const k of keys) out.push(JSON.parse(await redis.get(k)))
  return out
}

/** Deletes the demo's RabbitMQ queues and exchanges (through the management-free AMQP API of amqplib, if present). */
async function removeQueues() {
  if (EVENTS !== 'rabbitmq') return
  let amqplib
  try {
    amqplib = (await import('amqplib')).default
  } catch {
    return
  }
  const conn = await amqplib.connect(RABBITMQ_URL)
  try {
    for (const q of ['RecordOrder', 'PublishOrder'].flatMap((s) => [`motia.order.created.${s}`, `motia.order.created.${s}.dlq`])) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteQueue(q).catch(() => {})
      await ch.close().catch(() => {})
    }
    for (const x of [`${prefix}events`, `${prefix}events.dlq`]) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteExchange(x).catch(() => {})
      await ch.close().catch(() => {})
    }
  } finally {
    await conn.close().catch(() => {})
  }
}

let ok = false
try {
  await redis.connect()
  console.log(`Starting two replicas of examples/motia-app (motia start) on ports 3101 and 3102, key prefix ${prefix}…`)
  const a = start('replica-A', 3101)
  const b = start('replica-B', 3102)
  for (const i of [a, b]) {
    await waitFor(() => /Server ready and listening/.test(i.log()), `${i.name} to start`).catch((e) => {
      throw new Error(`${e.message}\n${i.log().slice(-2000)}`)
    })
  }
  console.log('Both replicas are up. Sending orders alternately to each…')
  const t0 = Date.now()
  for (let n = 0; n < ORDERS; n++) {
    const inst = n % 2 ? b : a
    const r = await fetch(`http://127.0.0.1:${inst.port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderId: `order-${n}`, amount: 10 * n }) })
    if (r.status !== 202) throw new Error(`POST to ${inst.name} → ${r.status}`)
  }
  await waitFor(async () => (await values('handled-RecordOrder')).length >= ORDERS && (await values('handled-PublishOrder')).length >= ORDERS, 'the events to be handled', 60000)
  await new Promise((r) => setTimeout(r, 6500)) // let the 3-second cron tick a few times
  const rec = await values('handled-RecordOrder')
  const pub = await values('handled-PublishOrder')
  console.log('\norder      accepted by  RecordOrder ran on  PublishOrder ran on')
  for (let n = 0; n < ORDERS; n++) {
    const id = `order-${n}`
    const on = (list) => list.filter((h) => h.orderId === id).map((h) => h.instance).join(', ')
    console.log(`${id.padEnd(10)} ${(n % 2 ? 'replica-B' : 'replica-A').padEnd(12)} ${on(rec).padEnd(19)} ${on(pub)}`)
  }
  const cross = await (await fetch(`http://127.0.0.1:${b.port}/orders/order-0`)).json()
  console.log(`\nGET /orders/order-0 on replica-B (order accepted by replica-A): state ${JSON.stringify(cross.order)}, stream item ${JSON.stringify(cross.item && { orderId: cross.item.orderId, publishedBy: cross.item.publishedBy })}`)
  const runs = (await values('cron-runs')).filter((r) => r.at >= t0)
  const perTick = new Map()
  for (const r of runs) perTick.set(r.tick, [...(perTick.get(r.tick) || []), r.instance])
  console.log(`\nCron "Tick" (every 3 s) since the orders: ${[...perTick.entries()].sort((x, y) => x[0] - y[0]).map(([t, who]) => `${new Date(t).toISOString().slice(11, 19)}→${who.join('+')}`).join('  ')}`)
  // what an operator sees: GET /health and GET /metrics (Prometheus text) of each replica
  const line = (text, name, labels) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)))
      .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  for (const inst of [a, b]) {
    const h = await (await fetch(`http://127.0.0.1:${inst.port}/health`)).json()
    const m = await (await fetch(`http://127.0.0.1:${inst.port}/metrics`)).text()
    const ev = EVENTS === 'rabbitmq' ? 'adapter="RabbitMQEventAdapter"' : 'adapter="RedisEventAdapter"'
    console.log(
      `${inst.name}: /health ${h.ok ? 'ok' : 'NOT ok'} (${h.adapters.map((x) => `${x.name.replace(/Adapter(Manager)?$/, '')} ${x.latencyMs} ms`).join(', ')}); ` +
        `/metrics: ${line(m, 'motia_adapter_calls_total', [ev, 'method="emit"'])} emitted, ${line(m, 'motia_adapter_events_acked_total', [ev])} acked, ` +
        `${line(m, 'motia_adapter_calls_total', ['adapter="RedisStateAdapter"'])} state calls, ${line(m, 'motia_adapter_cron_acquired_total', [])} cron locks won`,
    )
  }
  const once = new Set(rec.map((h) => h.orderId)).size === rec.length && new Set(pub.map((h) => h.orderId)).size === pub.length
  const shared = new Set([...rec, ...pub].map((h) => h.instance)).size === 2
  const ticksOnce = [...perTick.values()].every((w) => w.length === 1)
  console.log(`\neach event once per step: ${once ? 'yes' : 'NO'}; both replicas handled events: ${shared ? 'yes' : 'NO'}; each cron tick once: ${ticksOnce ? 'yes' : 'NO'}`)
  ok = once && shared && ticksOnce && cross.order !== null
} catch (e) {
  console.error(`Demo failed: ${e.message}`)
} finally {
  for (const i of procs) {
    try {
      process.kill(-i.p.pid, 'SIGTERM')
    } catch {}
  }
  await new Promise((r) => setTimeout(r, 1500))
  for (const i of procs) {
    try {
      process.kill(-i.p.pid, 'SIGKILL')
    } catch {}
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  // the step queues are named without the exchange (upstream's topology): remove them so the next run, or
  // another app, does not find queues bound to this run's dead-letter exchange
  await removeQueues().catch((e) => console.error(`could not remove the demo's queues: ${e.message}`))
  if (redis.isOpen) {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length) await redis.del(keys)
    await redis.quit()
  }
}
console.log(ok ? '\nDemo OK.' : '\nDemo FAILED.')
process.exit(ok ? 0 : 1)
