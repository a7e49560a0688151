// Redis Cluster: state, streams and cron on a private cluster (3 masters + 3 replicas on free loopback ports,
// started here and stopped by PID) give the results a standalone Redis gives, with keys on every master;
// then kill -9 of a master under writers.
import { jest } from '@jest/globals'
import { createCluster } from 'redis'
import { RedisStateAdapter, RedisCronAdapter, RedisStreamAdapterManager, RedisEventAdapter, ErrorCodes, adaptersFromEnv } from 'motia-native-adapters'
import { eventually, uniquePrefix, requireRedis, REDIS_URL, orderedHandler } from './helpers/env.mjs'
import { startCluster } from './helpers/cluster.mjs'
import { redisCmd } from './helpers/sentinel.mjs'
import { spawnChild } from './helpers/child.mjs'

jest.setTimeout(120000)

const CHILD = new URL('./fixtures/redis-events-child.mjs', import.meta.url).pathname
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }
const children = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})
const handledIds = (c) => c.lines.filter((l) => l.startsWith('handled ')).map((l) => Number(l.slice(8)))

let cluster
beforeAll(async () => {
  await requireRedis()
  cluster = await startCluster()
}, 60000)
afterAll(() => cluster?.stop())

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const TRACES = 300
const sortBy = (f) => (a, b) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0)

/** The same writes and reads on `conn`; returns what the reads gave. */
async function stateWorkload(conn, prefix) {
  const state = new RedisStateAdapter(conn, { keyPrefix: prefix })
  try {
    const writes = []
    for (let t = 0; t < TRACES; t++) {
      writes.push(state.set(`trace-${t}`, 'a', { t, v: 'a' }))
      writes.push(state.setMany(`trace-${t}`, { b: t, c: [t, 'c'] }))
    }
    await Promise.all(writes)
    const got = {}
    got.gets = await Promise.all([0, 7, 150, 299].map((t) => state.get(`trace-${t}`, 'a')))
    got.exists = await Promise.all([state.exists?.('trace-1', 'b'), state.exists?.('trace-1', 'zz')])
    got.group = (await state.getGroup('trace-42')).map((v) => JSON.stringify(v)).sort()
    got.keys = (await state.keys('trace-42')).sort()
    got.traceIds = (await state.traceIds()).sort()
    got.items = (await state.items({})).sort(sortBy((i) => `${i.groupId}/${i.key}`))
    got.filtered = (await state.items({ groupId: 'trace-9', filter: [{ valueKey: 'v', operation: 'eq', value: 'a' }] }))
    got.deleted = await state.delete('trace-3', 'a')
    await state.clear('trace-4')
    got.afterClear = await state.keys('trace-4')
    got.afterDelete = (await state.keys('trace-3')).sort()
    for (let t = 0; t < TRACES; t++) await state.clear(`trace-${t}`)
    got.empty = await state.traceIds()
    return got
  } finally {
    await state.cleanup()
  }
}

test('state on the cluster gives what standalone Redis gives, with keys on every master', async () => {
  const p = uniquePrefix('clu')
  const state = new RedisStateAdapter(cluster.connection, { keyPrefix: `${p}spread:` })
  try {
    await Promise.all(Array.from({ length: TRACES }, (_, t) => state.set(`t${t}`, 'k', t)))
    const masters = await cluster.masters()
    expect(masters.size).toBe(3)
    for (const port of masters.keys()) {
      expect((await cluster.keysOn(port, `${p}spread:*`)).length).toBeGreaterThan(TRACES / 6)
    }
    expect((await state.traceIds()).length).toBe(TRACES)
    expect((await state.items({})).length).toBe(TRACES)
  } finally {
    for (let t = 0; t < TRACES; t++) await state.clear(`t${t}`)
    await state.cleanup()
  }
  const onCluster = await stateWorkload(cluster.connection, `${p}state:`)
  const standalone = await stateWorkload({ url: REDIS_URL }, `${p}state:`)
  expect(onCluster.traceIds.length).toBe(TRACES)
  expect(onCluster.items.length).toBe(TRACES * 3)
  expect(onCluster.filtered).toEqual([expect.objectContaining({ groupId: 'trace-9', key: 'a' })])
  expect(onCluster).toEqual(standalone)
})

test('setMany is atomic per slot: a hash-tagged trace is written in one transaction on one node', async () => {
  const p = uniquePrefix('clu')
  const state = new RedisStateAdapter(cluster.connection, { keyPrefix: `${p}` })
  try {
    const values = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]))
    await state.setMany('{order-1}', values)
    const holders = []
    for (const port of (await cluster.masters()).keys()) {
      if ((await cluster.keysOn(port, `${p}*`)).length > 0) holders.push(port)
    }
    expect(holders.length).toBe(1)
    expect((await state.getGroup('{order-1}')).length).toBe(50)
    // a plain trace id spreads its keys over the masters; each slot's part is one MULTI/EXEC
    await state.setMany('plain', values)
    expect((await state.keys('plain')).length).toBe(50)
  } finally {
    await state.clear('{order-1}')
    await state.clear('plain')
    await state.cleanup()
  }
})

test('streams on the cluster: items, groups and subscriptions across masters', async () => {
  const p = uniquePrefix('clu')
  const manager = new RedisStreamAdapterManager(cluster.connection, { keyPrefix: `${p}stream:` })
  try {
    const stream = manager.createStream('orders')
    const seen = []
    await stream.subscribe({ groupId: 'g7' }, (e) => seen.push(e.data.id))
    await Promise.all(Array.from({ length: 60 }, (_, i) => stream.set(`g${i % 20}`, `o${i}`, { n: i })))
    const masters = await cluster.masters()
    let holders = 0
    for (const port of masters.keys()) if ((await cluster.keysOn(port, `${p}stream:*`)).length > 0) holders++
    expect(holders).toBe(3)
    expect(await stream.get('g3', 'o3')).toEqual(expect.objectContaining({ id: 'o3', n: 3 }))
    expect((await stream.getGroup('g3')).map((i) => i.id).sort()).toEqual(['o23', 'o3', 'o43'])
    await eventually(() => seen.length === 3, { timeout: 5000 })
    expect(seen.sort()).toEqual(['o27', 'o47', 'o7'])
    expect(await stream.delete('g3', 'o3')).toEqual(expect.objectContaining({ id: 'o3' }))
    expect((await stream.getGroup('g3')).length).toBe(2)
    for (let g = 0; g < 20; g++) await stream.clear(`g${g}`)
    let left = 0
    for (const port of masters.keys()) left += (await cluster.keysOn(port, `${p}stream:*`)).length
    expect(left).toBe(0)
  } finally {
    await manager.shutdown()
  }
})

test('cron on the cluster: one holder per job, the fence in the lock key\'s slot, shutdown releases locks on every master', async () => {
  const p = uniquePrefix('clu')
  const a = new RedisCronAdapter(cluster.connection, { keyPrefix: `${p}cron:`, instanceId: 'a' })
  const b = new RedisCronAdapter(cluster.connection, { keyPrefix: `${p}cron:`, instanceId: 'b' })
  try {
    const jobs = Array.from({ length: 30 }, (_, i) => `job-${i}`)
    const won = await Promise.all(jobs.flatMap((j) => [a.acquireLock(j, 30000), b.acquireLock(j, 30000)]))
    for (let i = 0; i < jobs.length; i++) expect([won[2 * i], won[2 * i + 1]].filter(Boolean).length).toBe(1)
    const lock = won.find((l) => l && l.jobName === 'job-0')
    const lockKey = `${p}cron:job-0`
    // the fence counter shares the lock key's slot (a one-slot acquire script)
    const slotOf = async (key) => Number(await redisCmd(cluster.ports[0], ['CLUSTER', 'KEYSLOT', key]))
    expect(await slotOf(`motia:cron:fence:{${lockKey}}${lockKey}`)).toBe(await slotOf(lockKey))
    expect(lock.fencingToken).toBeGreaterThan(0)
    const masters = await cluster.masters()
    let holders = 0
    for (const port of masters.keys()) if ((await cluster.keysOn(port, `${p}cron:*`)).length > 0) holders++
    expect(holders).toBe(3)
    expect((await a.getActiveLocks()).length + (await b.getActiveLocks()).length).toBe(2 * jobs.length)
    await a.shutdown()
    await b.shutdown()
    let left = 0
    for (const port of masters.keys()) left += (await cluster.keysOn(port, `${p}cron:*`)).length
    expect(left).toBe(0)
  } finally {
    await a.shutdown().catch(() => {})
    await b.shutdown().catch(() => {})
  }
})

test('config: a createCluster instance, REDIS_CLUSTER_NODES, and clear errors for what is not supported', async () => {
  const p = uniquePrefix('clu')
  const nodeRedis = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${cluster.ports[1]}` }] })
  const fromInstance = new RedisStateAdapter(nodeRedis, { keyPrefix: `${p}state:` })
  const env = adaptersFromEnv({ STATE_ADAPTER: 'redis', REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.ports[2]}`, REDIS_KEY_PREFIX: p, REDIS_WAIT_REPLICAS: '1' })
  try {
    await fromInstance.set('t', 'k', { ok: 1 })
    expect(await env.state.get('t', 'k')).toEqual({ ok: 1 })
    expect(nodeRedis.isOpen).toBe(false) // read, never used
  } finally {
    await fromInstance.clear('t')
    await fromInstance.cleanup()
    await env.state.cleanup()
  }
  expect(() => new RedisStateAdapter({ rootNodes: [] })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('rootNodes') }))
  expect(() => new RedisStateAdapter({ rootNodes: [{ socket: { host: '127.0.0.1', port: 70000 } }] })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('rootNodes[0].socket.port') }))
  expect(() => new RedisStateAdapter({ rootNodes: [{ url: 'http://x' }] })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  expect(() => new RedisStateAdapter({ rootNodes: cluster.rootNodes, nodeAddressMap: {} })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('nodeAddressMap') }))
  expect(() => new RedisStateAdapter({ rootNodes: cluster.rootNodes, defaults: { database: 2 } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG, message: expect.stringContaining('database 0') }))
  // waitReplicas on a cluster: WAIT goes to every master (each has one replica here)
  const durable = new RedisStateAdapter({ ...cluster.connection, waitReplicas: 1 }, { keyPrefix: `${p}wait:` })
  await Promise.all(Array.from({ length: 30 }, (_, i) => durable.set(`t${i}`, 'k', i)))
  expect(await durable.get('t7', 'k')).toBe(7)
  for (let i = 0; i < 30; i++) await durable.clear(`t${i}`)
  await durable.cleanup()
  const tooMany = new RedisStateAdapter({ ...cluster.connection, waitReplicas: 2, waitTimeout: 200 }, { keyPrefix: `${p}wait:` })
  await expect(tooMany.set('t', 'k', 1)).rejects.toEqual(expect.objectContaining({ code: ErrorCodes.BACKEND, message: expect.stringContaining('waitReplicas') }))
  await tooMany.cleanup()
  const plain = new RedisStateAdapter(cluster.connection, { keyPrefix: `${p}wait:` })
  expect(await plain.get('t', 'k')).toBe(1) // written on the master, not undone
  await plain.clear('t')
  await plain.cleanup()
  // a password in a root node's URL is used, and never shown
  const wrong = new RedisStateAdapter({ rootNodes: [{ url: `redis://:hunter2secret@127.0.0.1:${cluster.ports[0]}` }], defaults: { socket: { connectTimeout: 1500 } } })
  const err = await wrong.get('t', 'k').then(() => null, (e) => e)
  expect(err).not.toBeNull()
  expect(String(err.message)).not.toContain('hunter2secret')
  await wrong.cleanup()
})

test('kill -9 of the subscriber master under writers: the replica takes its slots, no acknowledged write lost, the subscriber receives again, cron keeps one holder', async () => {
  const p = uniquePrefix('clufail')
  const conn = { ...cluster.connection, defaults: { socket: { connectTimeout: 15000 } } }
  const state = new RedisStateAdapter(conn, { keyPrefix: p })
  const manager = new RedisStreamAdapterManager(conn, { keyPrefix: `${p}stream:` })
  const stream = manager.createStream('s')
  const seen = new Set()
  await stream.subscribe({ groupId: 'g' }, (e) => seen.add(e.data.id))
  const cronA = new RedisCronAdapter(conn, { keyPrefix: `${p}cron:`, instanceId: 'a' })
  const cronB = new RedisCronAdapter(conn, { keyPrefix: `${p}cron:`, instanceId: 'b' })
  const jobs = Array.from({ length: 12 }, (_, i) => `job-${i}`)
  const holders = []
  for (const j of jobs) {
    const [la, lb] = await Promise.all([cronA.acquireLock(j, 60000), cronB.acquireLock(j, 60000)])
    expect([la, lb].filter(Boolean).length).toBe(1)
    holders.push(la ? cronB : cronA) // the one that must keep being refused
  }
  const acked = []
  const errors = []
  let stop = false
  let lastAck = Date.now()
  let gap = 0
  const writer = (w) =>
    (async () => {
      for (let i = 0; !stop; i++) {
        const id = `${w}-${i}`
        try {
          await state.set(`t${i % 50}`, id, i)
          const now = Date.now()
          gap = Math.max(gap, now - lastAck)
          lastAck = now
          acked.push([`t${i % 50}`, id])
        } catch (e) {
          errors.push(`${e.code} ${e.message}`)
          await sleep(20)
        }
      }
    })()
  const writers = [0, 1, 2, 3].map(writer)
  try {
    await sleep(500)
    // the master our stream subscriber is connected to (a client in pub/sub mode)
    let victim
    await eventually(async () => {
      for (const port of (await cluster.masters()).keys()) {
        if (/flags=P/.test(await redisCmd(port, ['CLIENT', 'LIST']))) victim = port
      }
      return victim !== undefined
    }, { timeout: 10000, interval: 100 })
    lastAck = Date.now()
    gap = 0
    const t0 = Date.now()
    await cluster.kill(victim)
    await eventually(async () => {
      const now = await cluster.masters()
      return now.size === 3 && !now.has(victim)
    }, { timeout: 30000, interval: 100 })
    const promoted = Date.now() - t0
    await sleep(2000)
    stop = true
    await Promise.all(writers)
    console.log(`cluster failover: master ${victim} killed, replica promoted after ${promoted} ms; longest write gap ${gap} ms; acked ${acked.length}; errors ${errors.length}`)
    expect(errors).toEqual([])
    const missing = []
    for (let i = 0; i < acked.length; i += 500) {
      const chunk = acked.slice(i, i + 500)
      const got = await Promise.all(chunk.map(([t, k]) => state.get(t, k)))
      chunk.forEach((c, j) => got[j] === null && missing.push(c.join('/')))
    }
    expect(missing).toEqual([])
    // the subscriber moved to a live node and receives again
    await eventually(async () => {
      await stream.set('g', `after-${seen.size}`, { n: 1 })
      return [...seen].some((id) => id.startsWith('after-'))
    }, { timeout: 15000, interval: 200 })
    // every lock survived on the promoted replica: the other instance is still refused
    const again = await Promise.all(jobs.map((j, i) => holders[i].acquireLock(j, 60000)))
    expect(again.filter(Boolean)).toEqual([])
  } finally {
    stop = true
    await Promise.all(writers)
    for (let t = 0; t < 50; t++) await state.clear(`t${t}`).catch(() => {})
    await state.cleanup()
    await manager.shutdown()
    await cronA.shutdown().catch(() => {})
    await cronB.shutdown().catch(() => {})
  }
})

describe('RedisEventAdapter on the cluster', () => {
  // reads go to the master serving the key, one plain connection each (a cluster client would also dial the
  // node killed by the test before)
  const on = async (key, args) => redisCmd(await cluster.masterOf(key), args)
  const nr = {
    sMembers: (k) => on(k, ['SMEMBERS', k]),
    xLen: async (k) => Number(await on(k, ['XLEN', k])),
    xRange: async (k) =>
      (await on(k, ['XRANGE', k, '-', '+'])).map(([id, flat]) => {
        const message = {}
        for (let i = 0; i + 1 < flat.length; i += 2) message[flat[i]] = flat[i + 1]
        return { id, message }
      }),
  }

  test('topics spread over the masters; the keys of a topic share its slot; every step gets every event once; listTopics sees them all', async () => {
    const p = uniquePrefix('cluev')
    const a = new RedisEventAdapter(cluster.connection, { keyPrefix: p })
    try {
      const topics = Array.from({ length: 12 }, (_, i) => `topic.${i}`)
      const seen = new Map()
      for (const t of topics) {
        for (const step of ['A', 'B']) {
          await a.subscribe(t, step, async (e) => seen.set(`${t}/${step}/${e.data.n}`, (seen.get(`${t}/${step}/${e.data.n}`) ?? 0) + 1), QC)
        }
      }
      await Promise.all(topics.flatMap((t) => Array.from({ length: 20 }, (_, n) => a.emit({ topic: t, data: { n } }))))
      await eventually(() => seen.size === topics.length * 2 * 20, { timeout: 20000 })
      expect([...seen.values()].every((c) => c === 1)).toBe(true)
      expect(await a.listTopics()).toEqual([...topics].sort())
      // the registry and streams of a topic live on one node, and the topics on more than one
      const owners = new Set()
      for (const t of topics) {
        const at = await cluster.masterOf(`${p}{${t}}:steps`)
        expect(await cluster.masterOf(`${p}{${t}}:q:A`)).toBe(at)
        owners.add(at)
      }
      expect(owners.size).toBeGreaterThan(1)
      expect((await nr.sMembers(`${p}{topic.3}:steps`)).sort()).toEqual(['A', 'B'])
      await eventually(async () => (await nr.xLen(`${p}{topic.3}:q:A`)) === 0)
    } finally {
      await a.shutdown()
    }
  })

  test('two processes compete on the cluster: 1,000 events each handled exactly once', async () => {
    const p = uniquePrefix('cluev')
    const conn = JSON.stringify(cluster.connection)
    const c1 = spawnChild(CHILD, ['consume', conn, p, 'work', 'Worker', JSON.stringify(QC)], children)
    const c2 = spawnChild(CHILD, ['consume', conn, p, 'work', 'Worker', JSON.stringify(QC)], children)
    await eventually(() => c1.lines.includes('ready') && c2.lines.includes('ready'), { timeout: 20000 })
    const a = new RedisEventAdapter(cluster.connection, { keyPrefix: p })
    try {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => a.emit({ topic: 'work', data: { id: i } })))
      await eventually(() => handledIds(c1).length + handledIds(c2).length >= 1000, { timeout: 30000 })
      await sleep(300)
      const all = [...handledIds(c1), ...handledIds(c2)]
      expect(all.length).toBe(1000)
      expect(new Set(all).size).toBe(1000)
      expect(handledIds(c1).length).toBeGreaterThan(0)
      expect(handledIds(c2).length).toBeGreaterThan(0)
    } finally {
      await a.shutdown()
    }
  })

  test('retries then the dead-letter move (one slot: an atomic MULTI), and fifo order across two replicas', async () => {
    const p = uniquePrefix('cluev')
    const a = new RedisEventAdapter(cluster.connection, { keyPrefix: p })
    const r2 = new RedisEventAdapter(cluster.connection, { keyPrefix: p })
    try {
      const runs = []
      await a.subscribe('pay', 'Charge', async () => {
        runs.push(Date.now())
        throw new Error('card declined')
      }, { ...QC, maxRetries: 2, delaySeconds: 0.1 })
      await a.emit({ topic: 'pay', data: { id: 9 } })
      await eventually(async () => (await nr.xLen(`${p}{pay}:dlq:Charge`)) === 1, { timeout: 10000 })
      expect(runs.length).toBe(3)
      const [entry] = await nr.xRange(`${p}{pay}:dlq:Charge`)
      expect(entry.message.reason).toMatch(/card declined/)
      expect(await nr.xLen(`${p}{pay}:q:Charge`)).toBe(0)

      const order = []
      const handler = orderedHandler(order)
      const qc = { ...QC, type: 'fifo', delaySeconds: 0.05 }
      await a.subscribe('f', 'Ordered', handler, qc)
      await r2.subscribe('f', 'Ordered', handler, qc)
      for (let n = 0; n < 20; n++) await a.emit({ topic: 'f', data: { n }, messageGroupId: 'g1' })
      await eventually(() => order.length === 20, { timeout: 15000 })
      expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i))
    } finally {
      await a.shutdown()
      await r2.shutdown()
    }
  })

  test('kill -9 of the master serving a topic: the consumer reads from the promoted replica; no acknowledged emit lost', async () => {
    const p = uniquePrefix('cluevfail')
    const conn = { ...cluster.connection, defaults: { socket: { connectTimeout: 15000 } } }
    const withReplica = await cluster.replicated()
    let topic
    for (let i = 0; !topic && i < 200; i++) {
      if (withReplica.has(await cluster.masterOf(`${p}{t${i}}:steps`))) topic = `t${i}`
    }
    expect(topic).toBeDefined()
    const victim = await cluster.masterOf(`${p}{${topic}}:steps`)
    const a = new RedisEventAdapter(conn, { keyPrefix: p })
    const got = new Set()
    try {
      await a.subscribe(topic, 'S', async (e) => got.add(e.data.id), QC)
      const acked = []
      const errors = []
      let stop = false
      const emitter = (async () => {
        for (let i = 0; !stop; i++) {
          try {
            await a.emit({ topic, data: { id: i } })
            acked.push(i)
          } catch (e) {
            errors.push(e.code)
            await sleep(20)
          }
        }
      })()
      await sleep(300)
      await cluster.kill(victim)
      await eventually(async () => {
        const m = await cluster.masters()
        return m.size === 3 && !m.has(victim)
      }, { timeout: 30000, interval: 100 })
      await sleep(1000)
      stop = true
      await emitter
      console.log(`cluster events failover: ${acked.length} emits acknowledged, ${errors.length} rejected`)
      expect(errors).toEqual([])
      await eventually(() => acked.every((i) => got.has(i)), { timeout: 20000 })
    } finally {
      await a.shutdown()
    }
  })
})
