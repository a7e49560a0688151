// A primary/secondary pair of independent Redis servers (the multi-Redis plan): two private redis-server processes
// on free loopback ports, started here and stopped by PID. Kill the primary → calls move to the secondary after
// probeInterval × failAfter; the primary back → calls return after recoverAfter; cron refuses on the new server for
// one lock TTL; adaptersFromEnv routes per adapter.
import { jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import { RedisStateAdapter, RedisCronAdapter, RedisEventAdapter, ErrorCodes, adaptersFromEnv } from 'motia-native-adapters'
import { eventually, uniquePrefix, requireRedis } from './helpers/env.mjs'
import { freePort, redisCmd } from './helpers/sentinel.mjs'

jest.setTimeout(60000)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const servers = new Map() // port → process
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

async function start(port) {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  p.on('error', () => {})
  servers.set(port, p)
  await eventually(() => redisCmd(port, ['PING']).then(() => true, () => false), { timeout: 10000 }).catch(() => {
    throw new Error(`redis-server did not start on ${port}: it must be on PATH (\`bash scripts/services.sh redis\` installs it)`)
  })
}

async function kill(port) {
  const p = servers.get(port)
  servers.delete(port)
  if (!p || p.exitCode !== null) return
  const exited = new Promise((r) => p.once('exit', r))
  p.kill('SIGKILL')
  await exited
}

let P, S
beforeEach(async () => {
  await requireRedis()
  P = await freePort()
  await start(P)
  S = await freePort()
  await start(S)
})
afterEach(async () => {
  for (const port of [...servers.keys()]) await kill(port)
})

const pair = (extra = {}) => ({
  failover: { primary: { url: `redis://127.0.0.1:${P}` }, secondary: { url: `redis://127.0.0.1:${S}` }, probeInterval: 100, failAfter: 3, recoverAfter: 1500, ...extra },
})
const on = (port, keyPrefix) => new RedisStateAdapter({ url: `redis://127.0.0.1:${port}` }, { keyPrefix })

test('kill the primary: calls move to the secondary after ~probeInterval × failAfter; the primary back: calls return after recoverAfter; metrics() counts the switches', async () => {
  const p = uniquePrefix('pair')
  const state = new RedisStateAdapter(pair(), { keyPrefix: p })
  const onP = on(P, p)
  const onS = on(S, p)
  const errors = []
  let stop = false
  let lastAck = Date.now()
  let gap = 0
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        await state.set('t', `k${i}`, i)
        gap = Math.max(gap, Date.now() - lastAck)
        lastAck = Date.now()
      } catch (e) {
        errors.push(e.code)
        await sleep(20)
      }
    }
  })()
  const pairMetrics = () => [state.metrics().counters.redisSwitches, state.metrics().gauges.redisServer]
  try {
    await state.set('t', 'before', 1)
    expect(await onP.get('t', 'before')).toBe(1)
    expect(pairMetrics()).toEqual([0, 0])
    await sleep(300)
    const t0 = Date.now()
    lastAck = t0
    gap = 0
    await kill(P)
    await eventually(async () => (await onS.keys('t')).length > 0, { timeout: 10000, interval: 20 })
    const switched = Date.now() - t0
    // what was written on the primary is not on the secondary: two servers that do not replicate
    expect(await state.get('t', 'before')).toBeNull()
    await state.set('t', 'during', 2)
    expect(await onS.get('t', 'during')).toBe(2)
    expect(pairMetrics()).toEqual([1, 1]) // metrics(): one switch, calls on the secondary
    await start(P)
    const back0 = Date.now()
    await eventually(async () => (await onP.get('t', 'after')) === 3 || (await state.set('t', 'after', 3), false), { timeout: 15000, interval: 100 })
    const back = Date.now() - back0
    expect(pairMetrics()).toEqual([2, 0])
    stop = true
    await writer
    console.log(`primary/secondary: switched after ${switched} ms (probe 100 ms × 3), longest write gap ${gap} ms, ${errors.length} calls rejected; back on the primary ${back} ms after it returned (recoverAfter 1500 ms)`)
    expect(switched).toBeLessThan(3000)
    expect(back).toBeGreaterThanOrEqual(1400)
    expect(errors).toEqual([])
  } finally {
    stop = true
    await writer
    await state.cleanup()
    await onP.cleanup()
    await onS.cleanup()
  }
})

test('cron after a switch: the new server refuses acquisitions for one lock TTL (a holder on the old one may still run)', async () => {
  const p = uniquePrefix('paircron')
  const cron = new RedisCronAdapter(pair(), { keyPrefix: p })
  try {
    expect(await cron.acquireLock('job', 1500)).not.toBeNull()
    await kill(P)
    // switched once the lock taken on the primary is no longer seen (the secondary never had it)
    await eventually(async () => (await cron.getActiveLocks().catch(() => [1])).length === 0, { timeout: 10000, interval: 20 })
    const t0 = Date.now()
    expect(await cron.acquireLock('job', 1500)).toBeNull()
    expect(await cron.acquireLock('other-job', 1500)).toBeNull()
    await eventually(async () => (await cron.acquireLock('job', 1500)) !== null, { timeout: 5000, interval: 50 })
    // the hold is one lock TTL from the switch, which came at most a probe round before t0
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500)
  } finally {
    await cron.shutdown().catch(() => {})
  }
})

test('an event consumer follows the switch: an emit after it is handled from the secondary', async () => {
  const p = uniquePrefix('pairev')
  const events = new RedisEventAdapter(pair(), { keyPrefix: p })
  const got = []
  try {
    await events.subscribe('t', 'S', async (e) => got.push(e.data.n), QC)
    await events.emit({ topic: 't', data: { n: 1 } })
    await eventually(() => got.includes(1))
    await kill(P)
    // the registry lives on the primary: on the secondary the step subscribes again as its consumer reconnects
    await eventually(async () => {
      await events.emit({ topic: 't', data: { n: 2 } }).catch(() => {})
      return got.includes(2)
    }, { timeout: 15000, interval: 200 })
  } finally {
    await events.shutdown()
  }
})

test('adaptersFromEnv: REDIS_PRIMARY_URL + REDIS_SECONDARY_URL, STREAM_REDIS=secondary routes streams to the secondary; bad shapes are MOTIA_CONFIG', async () => {
  const p = uniquePrefix('pairenv')
  const env = adaptersFromEnv({
    STATE_ADAPTER: 'redis',
    STREAM_ADAPTER: 'redis',
    REDIS_PRIMARY_URL: `redis://127.0.0.1:${P}`,
    REDIS_SECONDARY_URL: `redis://127.0.0.1:${S}`,
    STREAM_REDIS: 'secondary',
    REDIS_KEY_PREFIX: p,
  })
  try {
    await env.state.set('t', 'k', 1)
    await env.streams.createStream('s').set('g', 'i', { v: 1 })
    expect(Number(await redisCmd(P, ['DBSIZE']))).toBeGreaterThan(0)
    expect(await redisCmd(P, ['KEYS', `${p}stream:*`])).toEqual([])
    expect((await redisCmd(S, ['KEYS', `${p}stream:*`])).length).toBeGreaterThan(0)
    expect(await redisCmd(S, ['KEYS', `${p}state:*`])).toEqual([])
  } finally {
    await env.state.cleanup()
    await env.streams.shutdown?.()
  }
  const config = expect.objectContaining({ code: ErrorCodes.CONFIG })
  expect(() => adaptersFromEnv({ STATE_ADAPTER: 'redis', REDIS_PRIMARY_URL: `redis://127.0.0.1:${P}` })).toThrow(config)
  expect(() => adaptersFromEnv({ STATE_ADAPTER: 'redis', REDIS_PRIMARY_URL: 'redis://a', REDIS_SECONDARY_URL: 'redis://b', STATE_REDIS: 'tertiary' })).toThrow(config)
  expect(() => new RedisStateAdapter({ failover: { primary: { url: 'redis://a' } } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('failover.secondary') }))
  expect(() => new RedisStateAdapter({ failover: { primary: { url: 'redis://a' }, secondary: { rootNodes: [] } } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('failover.secondary') }))
  expect(() => new RedisStateAdapter({ failover: { primary: { url: 'redis://a' }, secondary: { url: 'redis://b' }, failAfter: 0 } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('failover.failAfter') }))
  expect(() => new RedisStateAdapter({ failover: { primary: { url: 'redis://a' }, secondary: { url: 'redis://b' }, every: 1 } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('failover.every') }))
})
