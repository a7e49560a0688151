// Redis Sentinel: every Redis class through a private sentinel group (master + replica + 3 sentinels on
// free loopback ports, started here and stopped by PID), then kill -9 of the master under load.
import { jest } from '@jest/globals'
import { createClient } from 'redis'
import { RedisStateAdapter, RedisCronAdapter, RedisStreamAdapterManager, RedisEventAdapter, ErrorCodes, adaptersFromEnv } from 'motia-native-adapters'
import { eventually, uniquePrefix } from './helpers/env.mjs'
import { startSentinelGroup, redisCmd, freePort } from './helpers/sentinel.mjs'

jest.setTimeout(120000)

/** How long after the switch was seen an acknowledged write may still be lost (in-flight on the old connection). */
const LATE_MS = 500
/** Acknowledged writes a live demoted master may still take: those in flight when the promotion started (4 writers). */
const MAX_IN_FLIGHT_LOST = 50
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
let group

beforeAll(async () => {
  group = await startSentinelGroup()
}, 60000)

afterAll(() => group?.stop())

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

describe.each([
  ['event-loop path', '1'],
  ['tokio path', '0'],
])('through the sentinels (%s)', (_label, jsloop) => {
  let saved
  beforeAll(() => {
    saved = process.env.MOTIA_NATIVE_JSLOOP
    process.env.MOTIA_NATIVE_JSLOOP = jsloop
  })
  afterAll(() => {
    if (saved === undefined) delete process.env.MOTIA_NATIVE_JSLOOP
    else process.env.MOTIA_NATIVE_JSLOOP = saved
  })

  test('state, streams, cron and events read and write the master the sentinels name', async () => {
    const p = uniquePrefix('sent')
    const conn = { ...group.connection, nodeClientOptions: { socket: { connectTimeout: 5000 } } }
    const state = new RedisStateAdapter(conn, { keyPrefix: `${p}state:` })
    const manager = new RedisStreamAdapterManager(conn, { keyPrefix: `${p}stream:` })
    const cron = new RedisCronAdapter(conn, { keyPrefix: `${p}cron:` })
    const events = new RedisEventAdapter(conn, { keyPrefix: `${p}events:` })
    try {
      await state.set('t1', 'a', { v: 1 })
      await state.setMany('t1', { b: 2 })
      expect(await state.get('t1', 'a')).toEqual({ v: 1 })
      expect((await state.getGroup('t1')).length).toBe(2)
      expect(await state.keys('t1')).toEqual(expect.arrayContaining(['a', 'b']))
      // the value is on the master, as the 0.17 layout has it
      const master = await group.masterPort()
      expect(await redisCmd(master, ['GET', `${p}state:t1:a`])).toBe('{"v":1}')

      const stream = manager.createStream('orders')
      const seen = []
      await stream.subscribe({ groupId: 'g' }, (e) => seen.push(e.data.id))
      await stream.set('g', 'o1', { n: 1 })
      expect(await stream.get('g', 'o1')).toEqual(expect.objectContaining({ id: 'o1', n: 1 }))
      await eventually(() => seen.includes('o1'), { timeout: 5000 })

      const lock = await cron.acquireLock('job', 5000)
      expect(lock).toEqual(expect.objectContaining({ jobName: 'job' }))
      expect(await cron.acquireLock('job', 5000)).toBeNull()
      await cron.releaseLock(lock)

      const handled = []
      await events.subscribe('orders', 'Ship', async (e) => handled.push(e.data.id), QC)
      await events.emit({ topic: 'orders', data: { id: 'e1' } })
      await eventually(() => handled.includes('e1'), { timeout: 5000 })
    } finally {
      await state.clear('t1').catch(() => {})
      await events.shutdown()
      await manager.shutdown()
      await cron.shutdown()
      await state.cleanup()
    }
  })
})

test('adaptersFromEnv: REDIS_SENTINELS + REDIS_SENTINEL_NAME', async () => {
  const base = uniquePrefix('sentenv')
  const a = adaptersFromEnv({
    STATE_ADAPTER: 'redis',
    EVENT_ADAPTER: 'redis',
    REDIS_SENTINELS: group.ports.sentinels.map((p) => `127.0.0.1:${p}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_KEY_PREFIX: base,
  })
  try {
    await a.state.set('t', 'k', 'v')
    expect(await redisCmd(await group.masterPort(), ['GET', `${base}state:t:k`])).toBe('"v"')
    const got = []
    await a.events.subscribe('x', 'S', async (e) => got.push(e.data), QC)
    await a.events.emit({ topic: 'x', data: 1 })
    await eventually(() => got.length === 1, { timeout: 5000 })
  } finally {
    await a.state.clear('t')
    await a.state.cleanup()
    await a.events.shutdown()
  }
})

test('a name no sentinel monitors fails with MOTIA_CONFIG; unreachable sentinels with MOTIA_CONNECT', async () => {
  const state = new RedisStateAdapter({ sentinelRootNodes: group.sentinelRootNodes, name: 'nosuchmaster', nodeClientOptions: { socket: { connectTimeout: 1500 } } })
  await expect(state.get('t', 'k')).rejects.toEqual(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('nosuchmaster') }))
  await state.cleanup()
  const dead = await freePort()
  const t0 = Date.now()
  const lost = new RedisStateAdapter({ sentinelRootNodes: [{ host: '127.0.0.1', port: dead }], name: 'mymaster', nodeClientOptions: { socket: { connectTimeout: 1000 } } })
  await expect(lost.set('t', 'k', 1)).rejects.toEqual(expect.objectContaining({ code: ErrorCodes.CONNECT }))
  expect(Date.now() - t0).toBeLessThan(5000)
  await lost.cleanup()
})

test('waitReplicas: a call resolves once the replica has its write; a frozen replica makes it reject with MOTIA_BACKEND; bad values are MOTIA_CONFIG', async () => {
  const p = uniquePrefix('wait')
  const replica = group.ports.replica
  const state = new RedisStateAdapter({ ...group.connection, waitReplicas: 1, waitTimeout: 300 }, { keyPrefix: p })
  const onReplica = new RedisStateAdapter({ socket: { host: '127.0.0.1', port: replica } }, { keyPrefix: p })
  const frozen = group.data.get(replica)
  try {
    for (let i = 0; i < 20; i++) {
      await state.set('t', `k${i}`, { i })
      // confirmed means the replica has it the moment the call resolved
      expect(await onReplica.get('t', `k${i}`)).toEqual({ i })
    }
    frozen.kill('SIGSTOP')
    const t0 = Date.now()
    const err = await state.set('t', 'late', 1).then(() => null, (e) => e)
    expect(err).toEqual(expect.objectContaining({ code: ErrorCodes.BACKEND, message: expect.stringContaining('waitReplicas') }))
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    frozen.kill('SIGCONT')
    await eventually(() => state.set('t', 'again', 2).then(() => true, () => false), { timeout: 10000 })
    expect(await onReplica.get('t', 'again')).toBe(2)
  } finally {
    frozen.kill('SIGCONT')
    await state.clear('t').catch(() => {})
    await state.cleanup()
    await onReplica.cleanup()
  }
  const bad = (conn, field) => expect(() => new RedisStateAdapter(conn)).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining(field) }))
  bad({ ...group.connection, waitReplicas: -1 }, 'waitReplicas')
  bad({ ...group.connection, waitReplicas: 'two' }, 'waitReplicas')
  bad({ url: 'redis://127.0.0.1:6379', waitReplicas: 1, waitTimeout: 40000 }, 'waitTimeout')
})

/**
 * Writers on both paths (2 `set` on the event-loop path, 1 `setMany` on tokio, 1 `emit`), a stream subscriber and an
 * event consumer; `disrupt(oldMaster)` makes the failover. Then: no call rejected, every acknowledged write on the new
 * master, every acknowledged emit handled, the subscriber receives again.
 */
async function underWriters(label, disrupt, opts = {}) {
  const p = uniquePrefix('failover')
  const conn = { ...group.connection, nodeClientOptions: { socket: { connectTimeout: 15000 } } }
  const state = new RedisStateAdapter(conn, { keyPrefix: `${p}state:` })
  const manager = new RedisStreamAdapterManager(conn, { keyPrefix: `${p}stream:` })
  const events = new RedisEventAdapter(conn, { keyPrefix: `${p}events:` })
  const stream = manager.createStream('s')
  const streamSeen = new Set()
  await stream.subscribe({ groupId: 'g' }, (e) => streamSeen.add(e.data.id))
  const handled = new Set()
  await events.subscribe('orders', 'Ship', async (e) => handled.add(e.data.id), QC)

  const acked = { set: [], setMany: [], emit: [] }
  const ackAt = new Map()
  const errors = []
  let stop = false
  let lastAck = Date.now()
  let gap = 0
  const ack = (kind, id) => {
    const now = Date.now()
    gap = Math.max(gap, now - lastAck)
    lastAck = now
    acked[kind].push(id)
    ackAt.set(`${kind === 'setMany' ? 'm' : 't'}:${id}`, now)
  }
  const writer = (kind, w) =>
    (async () => {
      for (let i = 0; !stop; i++) {
        const id = `${w}-${i}`
        try {
          if (kind === 'set') await state.set('t', id, i)
          else if (kind === 'setMany') await state.setMany('m', { [id]: i })
          else await events.emit({ topic: 'orders', data: { id } })
          ack(kind, id)
        } catch (e) {
          errors.push(`${kind}: ${e.code} ${e.message}`)
          await sleep(20)
        }
      }
    })()
  const writers = [writer('set', 0), writer('set', 1), writer('setMany', 2), writer('emit', 3)]
  await sleep(500)
  const oldMaster = await group.masterPort()
  const startedAt = Date.now()
  lastAck = startedAt
  gap = 0
  await disrupt(oldMaster)
  await eventually(async () => (await group.masterPort()) !== oldMaster, { timeout: 20000, interval: 100 })
  const switchMs = Date.now() - startedAt
  await disrupt.after?.(oldMaster)
  await sleep(2500)
  stop = true
  await Promise.all(writers)
  const newMaster = await group.masterPort()
  expect(newMaster).not.toBe(oldMaster)
  console.log(`sentinel ${label}: master ${oldMaster} → ${newMaster} after ${switchMs} ms; longest write gap ${gap} ms; acked ${acked.set.length} set, ${acked.setMany.length} setMany, ${acked.emit.length} emit; errors ${errors.length}`)
  expect(errors).toEqual([])
  expect(acked.set.length).toBeGreaterThan(20)

  // every acknowledged write is on the new master (a write that had landed on the restarted old master
  // would be gone: its data was replaced when it became a replica)
  const master = createClient({ socket: { host: '127.0.0.1', port: newMaster } })
  await master.connect()
  const missing = []
  let keys = []
  try {
    keys = [...acked.set.map((id) => `${p}state:t:${id}`), ...acked.setMany.map((id) => `${p}state:m:${id}`)]
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000)
      const found = await Promise.all(chunk.map((k) => master.exists(k)))
      chunk.forEach((k, j) => found[j] !== 1 && missing.push(k))
    }
  } finally {
    await master.quit()
  }
  // lost: acknowledged, yet not on the new master. Only a master demoted while alive may lose writes, and only
  // those it took before the sentinels announced the switch (Redis replication is asynchronous: the old master
  // keeps accepting writes after the replica's promotion until it hears of it); never one acknowledged later.
  const lostAt = missing.map((k) => ackAt.get(k.split(':').slice(-2).join(':')) - startedAt)
  const stats = { lost: missing.length, writes: keys.length, lostAckedUntilMs: missing.length ? Math.max(...lostAt) : null, switchMs }
  console.log(`sentinel ${label}: ${JSON.stringify(stats)}`)
  if (opts.mayLoseBeforeSwitch) {
    // without the hold on +failover-state-send-slaveof-noone ~7,000 of ~33,000 were lost here (the old master
    // takes writes until the switch); with it 0 in every run so far. A few may remain possible: writes already
    // in flight when the leader sent SLAVEOF NO ONE.
    expect(missing.length).toBeLessThanOrEqual(MAX_IN_FLIGHT_LOST)
    // switchMs is when this test saw the sentinels' new answer (polled every 100 ms); commands already in flight
    // on the old connection when the announcement arrived may still be acknowledged there a little later
    expect(lostAt.filter((t) => t > switchMs + LATE_MS)).toEqual([])
  } else {
    expect(missing).toEqual([])
  }
  // every acknowledged emit is handled (at least once); with a live demoted master: every one acknowledged after the switch
  const mustHandle = acked.emit.filter((id) => !opts.mayLoseBeforeSwitch || ackAt.get(`t:${id}`) - startedAt > switchMs + LATE_MS)
  await eventually(() => mustHandle.every((id) => handled.has(id)), { timeout: 15000 }).catch(() => {
    throw new Error(`${mustHandle.filter((id) => !handled.has(id)).length} of ${mustHandle.length} acknowledged emits never handled`)
  })
  console.log(`sentinel ${label}: emits acknowledged ${acked.emit.length}, never handled ${acked.emit.filter((id) => !handled.has(id)).length}`)
  // the stream subscriber follows the master too
  for (let i = 0; i < 5; i++) await stream.set('g', `after-${i}`, { n: i })
  await eventually(() => [0, 1, 2, 3, 4].every((i) => streamSeen.has(`after-${i}`)), { timeout: 10000 })

  await events.shutdown()
  await manager.shutdown()
  await state.cleanup()
}

test('SENTINEL FAILOVER (the master is demoted while alive) under writers: no call rejected; writes wait out the promotion, so (almost) nothing acknowledged is lost', async () => {
  const disrupt = (oldMaster) => redisCmd(group.ports.sentinels[0], ['SENTINEL', 'FAILOVER', group.name]).then(() => oldMaster)
  await underWriters('SENTINEL FAILOVER', disrupt, { mayLoseBeforeSwitch: true })
}, 90000)

test('kill -9 of the master under writers, the old master restarted empty: no call rejected, nothing acknowledged lost, none written to the old master', async () => {
  // after the previous test the demoted master must be a replica in sync, else the failover has no candidate
  const replica = (await group.masterPort()) === group.ports.replica ? group.ports.master : group.ports.replica
  await eventually(async () => /master_link_status:up/.test(await redisCmd(replica, ['INFO', 'replication'])), { timeout: 30000, interval: 100 })
  const disrupt = (oldMaster) => group.kill(oldMaster)
  // the old master comes back empty, believing it is a master, until the sentinels demote it: a write that
  // landed there would be gone (its data is replaced when it becomes a replica), so "nothing lost" proves none did
  disrupt.after = (oldMaster) => group.restart(oldMaster)
  await underWriters('kill -9', disrupt)
}, 90000)

test('kill -9 of the master with waitReplicas: 1 — every acknowledged write is on the new master; unconfirmed calls reject', async () => {
  const master = await group.masterPort()
  const replica = master === group.ports.replica ? group.ports.master : group.ports.replica
  await eventually(async () => /master_link_status:up/.test(await redisCmd(replica, ['INFO', 'replication'])), { timeout: 30000, interval: 100 })
  const p = uniquePrefix('waitkill')
  const state = new RedisStateAdapter({ ...group.connection, nodeClientOptions: { socket: { connectTimeout: 15000 } }, waitReplicas: 1, waitTimeout: 300 }, { keyPrefix: p })
  const acked = []
  const errors = []
  let stop = false
  const writer = (w) =>
    (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await state.set('t', `${w}-${i}`, i)
          acked.push(`${w}-${i}`)
        } catch (e) {
          errors.push(e.code)
          await sleep(20)
        }
      }
    })()
  const writers = [writer(0), writer(1)]
  try {
    await sleep(500)
    await group.kill(master)
    await eventually(async () => (await group.masterPort()) !== master, { timeout: 20000, interval: 100 })
    await sleep(1000) // the new master has no replica: WAIT cannot be met
    const before = acked.length
    await group.restart(master) // comes back, is made a replica of the new master: WAIT is met again
    await eventually(() => acked.length > before + 20, { timeout: 30000, interval: 100 })
    stop = true
    await Promise.all(writers)
    const newMaster = await group.masterPort()
    const direct = new RedisStateAdapter({ socket: { host: '127.0.0.1', port: newMaster } }, { keyPrefix: p })
    const got = await Promise.all(acked.map((id) => direct.get('t', id)))
    const missing = acked.filter((_, i) => got[i] === null)
    await direct.clear('t')
    await direct.cleanup()
    console.log(`sentinel kill -9 with waitReplicas 1: acked ${acked.length}, lost ${missing.length}, rejected ${errors.length} (${[...new Set(errors)].join(', ')})`)
    expect(missing).toEqual([])
    // not confirmed (no replica yet: BACKEND) or the connection died during the WAIT (CONNECT): rejected, not lost
    expect(errors).toContain(ErrorCodes.BACKEND)
    expect(errors.filter((c) => c !== ErrorCodes.BACKEND && c !== ErrorCodes.CONNECT)).toEqual([])
  } finally {
    stop = true
    await Promise.all(writers)
    await state.cleanup()
  }
}, 90000)
