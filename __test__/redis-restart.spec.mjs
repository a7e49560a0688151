// Riding through a Redis restart: a private redis-server (AOF, appendfsync always) on a free port is killed
// with -9 under 4 concurrent writers and restarted 1 s later. Calls made meanwhile wait and succeed (bounded
// by connectTimeout); nothing acknowledged is lost; a server that never comes back fails calls within the bound.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { RedisStateAdapter, RedisCronAdapter, RedisStreamAdapterManager, RedisEventAdapter, ErrorCodes } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'

let dir
let port
let server

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

const listening = () =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })

async function startServer() {
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', dir], { stdio: 'ignore' })
  await eventually(listening, { timeout: 10000 }).catch(() => {
    throw new Error('redis-server did not start: it must be on PATH (`bash scripts/services.sh redis` installs it)')
  })
}

async function killServer() {
  const p = server
  server = null
  p.kill('SIGKILL')
  await new Promise((r) => p.once('exit', r))
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-restart-'))
  port = await freePort()
  await startServer()
})

afterAll(async () => {
  if (server) await killServer()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('kill -9 and restart 1 s later under 4 writers: no call rejected, nothing acknowledged lost', async () => {
  const state = new RedisStateAdapter({ socket: { host: '127.0.0.1', port, connectTimeout: 10000 } }, { keyPrefix: 'restart:' })
  const cron = new RedisCronAdapter({ socket: { host: '127.0.0.1', port, connectTimeout: 10000 } }, { keyPrefix: 'restart:cron:' })
  const acked = []
  const errors = []
  let stop = false
  const writer = async (w) => {
    for (let i = 0; !stop; i++) {
      try {
        await state.set(`w${w}`, `k${i}`, { w, i })
        acked.push([w, i])
        const lock = await cron.acquireLock(`job${w}`, 5000)
        if (lock) await cron.releaseLock(lock)
      } catch (e) {
        errors.push(e.code)
      }
    }
  }
  const writers = [0, 1, 2, 3].map(writer)
  await new Promise((r) => setTimeout(r, 500))
  const before = acked.length
  await killServer()
  await new Promise((r) => setTimeout(r, 1000))
  await startServer()
  await new Promise((r) => setTimeout(r, 1000))
  stop = true
  await Promise.all(writers)
  expect(errors).toEqual([])
  expect(acked.length).toBeGreaterThan(before) // writes went on after the restart
  for (const [w, i] of acked) expect(await state.get(`w${w}`, `k${i}`)).toEqual({ w, i })
  await state.cleanup()
  await cron.shutdown()
}, 60000)

test('stream subscribers are back within ~100 ms of the restarted server accepting connections', async () => {
  const manager = new RedisStreamAdapterManager({ socket: { host: '127.0.0.1', port } }, { keyPrefix: 'restart:stream:' })
  const stream = manager.createStream('orders')
  const seen = []
  await stream.subscribe({ groupId: 'g' }, (e) => seen.push(e.data.id))
  await stream.set('g', 'before', { n: 0 })
  await eventually(() => seen.includes('before'), { timeout: 5000 })
  await killServer()
  await new Promise((r) => setTimeout(r, 1500)) // long enough for a doubling backoff to have grown
  await startServer()
  await new Promise((r) => setTimeout(r, 250))
  for (let i = 0; i < 30; i++) await stream.set('g', `after-${i}`, { n: i })
  await eventually(() => seen.filter((id) => id.startsWith('after-')).length === 30, { timeout: 5000 }).catch(() => {
    throw new Error(`only ${seen.filter((id) => id.startsWith('after-')).length} of 30 events published 250 ms after the restart arrived`)
  })
  await stream.unsubscribe({ groupId: 'g' })
  await manager.shutdown()
}, 30000)

test('Redis events: kill -9 and restart under 4 emitters: every acknowledged emit is handled, the consumer resumes', async () => {
  const conn = { socket: { host: '127.0.0.1', port, connectTimeout: 10000 } }
  const events = new RedisEventAdapter(conn, { keyPrefix: 'restart:events:' })
  const handled = new Set()
  await events.subscribe('orders', 'Ship', async (e) => handled.add(e.data.id), { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 })
  const acked = []
  const errors = []
  let stop = false
  const emitter = async (w) => {
    for (let i = 0; !stop; i++) {
      const id = `${w}-${i}`
      try {
        await events.emit({ topic: 'orders', data: { id } })
        acked.push(id)
      } catch (e) {
        errors.push(e.code)
      }
    }
  }
  const emitters = [0, 1, 2, 3].map(emitter)
  await new Promise((r) => setTimeout(r, 500))
  const before = acked.length
  await killServer()
  await new Promise((r) => setTimeout(r, 1000))
  await startServer()
  await new Promise((r) => setTimeout(r, 1000))
  stop = true
  await Promise.all(emitters)
  expect(errors).toEqual([])
  expect(acked.length).toBeGreaterThan(before)
  await eventually(() => acked.every((id) => handled.has(id)), { timeout: 15000 }).catch(() => {
    throw new Error(`${acked.filter((id) => !handled.has(id)).length} of ${acked.length} acknowledged emits never handled`)
  })
  await events.shutdown()
}, 60000)

test('a server that never comes back: calls fail with MOTIA_CONNECT within connectTimeout', async () => {
  const state = new RedisStateAdapter({ socket: { host: '127.0.0.1', port, connectTimeout: 1500 } }, { keyPrefix: 'gone:' })
  await state.set('t', 'k', 1)
  await killServer()
  const t = Date.now()
  const err = await state.get('t', 'k').catch((e) => e)
  expect(err.code).toBe(ErrorCodes.CONNECT)
  expect(Date.now() - t).toBeLessThanOrEqual(2500)
  expect(Date.now() - t).toBeGreaterThanOrEqual(1000) // it waited for the server first
  await state.cleanup()
  await startServer()
}, 30000)
