// RedisCronAdapter and PostgresCronAdapter against real Redis and PostgreSQL: semantics, the
// exactly-once-per-tick guard with skewed multi-process replicas, 20-process races, kill -9,
// watchdog, wire compatibility with @motiadev/adapter-redis-cron@0.17.14-beta.196.
import { createClient } from 'redis'
import pg from 'pg'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { RedisCronAdapter, PostgresCronAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, PG_URL, requireRedis, requirePostgres, uniquePrefix, uniqueTable, eventually, deleteMatching } from './helpers/env.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
let raw
let db
const prefixes = []
const tables = []
const adapters = []

beforeAll(async () => {
  await requireRedis()
  await requirePostgres()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
  db = new pg.Client({ connectionString: PG_URL })
  await db.connect()
})

afterAll(async () => {
  for (const a of adapters) await a.shutdown().catch(() => {})
  for (const p of prefixes) {
    await deleteMatching(raw, `*${p}*`)
  }
  for (const t of tables) await db.query(`DROP TABLE IF EXISTS "${t}"`)
  await raw.quit()
  await db.end()
})

const backends = {
  redis: (opts = {}) => {
    const keyPrefix = opts.keyPrefix ?? uniquePrefix('cron')
    prefixes.push(keyPrefix)
    const a = new RedisCronAdapter({ url: REDIS_URL }, { ...opts, keyPrefix })
    adapters.push(a)
    return a
  },
  postgres: (opts = {}) => {
    const tableName = opts.tableName ?? uniqueTable()
    tables.push(tableName)
    const a = new PostgresCronAdapter({ connectionString: PG_URL, ...opts, tableName })
    adapters.push(a)
    return a
  },
}
const shared = (backend, a) => (backend === 'redis' ? { keyPrefix: a.keyPrefix } : { tableName: a.tableName })

function runChild(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'fixtures', script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`))))
  })
}

describe.each(['redis', 'postgres'])('%s cron locks', (backend) => {
  const make = backends[backend]

  test('acquire is exclusive and returns a CronLock with a fencing token', async () => {
    const a = make()
    const b = make(shared(backend, a))
    const lock = await a.acquireLock('job', 5000)
    expect(lock).toMatchObject({ jobName: 'job', instanceId: a.instanceId })
    expect(typeof lock.lockId).toBe('string')
    expect(lock.expiresAt - lock.acquiredAt).toBe(5000)
    expect(Number.isInteger(lock.fencingToken)).toBe(true)
    expect(await b.acquireLock('job', 5000)).toBeNull()
    expect(await a.acquireLock('job', 5000)).toBeNull() // not re-entrant either
    expect(await b.acquireLock('other-job', 5000)).not.toBeNull()
  })

  test('only the owner can release or renew', async () => {
    const a = make({ releaseGuard: 0 })
    const b = make({ ...shared(backend, a), releaseGuard: 0 })
    const lock = await a.acquireLock('job', 5000)
    await b.releaseLock({ ...lock, instanceId: b.instanceId })
    await b.releaseLock({ ...lock, lockId: 'forged' })
    expect(await b.renewLock({ ...lock, instanceId: b.instanceId }, 5000)).toBe(false)
    expect(await b.acquireLock('job', 5000)).toBeNull()
    expect(await a.renewLock(lock, 8000)).toBe(true)
    await a.releaseLock(lock)
    expect(await b.acquireLock('job', 5000)).not.toBeNull()
  })

  test('release keeps a guard until acquiredAt + releaseGuard, then frees the job', async () => {
    const a = make({ releaseGuard: 800 })
    const b = make({ ...shared(backend, a), releaseGuard: 800 })
    const lock = await a.acquireLock('job', 300000)
    await a.releaseLock(lock)
    expect(await b.acquireLock('job', 300000)).toBeNull() // a late replica of the same tick
    expect(await a.getActiveLocks()).toEqual([]) // released guards are not active locks
    expect(await a.renewLock(lock, 5000)).toBe(false) // released locks cannot be renewed
    const next = await eventually(() => b.acquireLock('job', 300000), { timeout: 3000, interval: 100 })
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken)
  })

  test('fencing tokens increase with every acquisition', async () => {
    const a = make({ releaseGuard: 0 })
    let last = -Infinity
    for (let i = 0; i < 10; i++) {
      const lock = await a.acquireLock('job', 5000)
      expect(lock.fencingToken).toBeGreaterThan(last)
      last = lock.fencingToken
      await a.releaseLock(lock)
    }
  })

  test('an expired lock can be taken by another instance', async () => {
    const a = make()
    const b = make(shared(backend, a))
    await a.acquireLock('job', 300)
    expect(await b.acquireLock('job', 300)).toBeNull()
    await new Promise((r) => setTimeout(r, 450))
    expect(await b.acquireLock('job', 300)).not.toBeNull()
  })

  test('getActiveLocks lists held locks as CronLockInfo', async () => {
    const a = make()
    await a.acquireLock('j1', 5000)
    await a.acquireLock('j2', 5000)
    const active = (await a.getActiveLocks()).sort((x, y) => x.jobName.localeCompare(y.jobName))
    expect(active.map((l) => l.jobName)).toEqual(['j1', 'j2'])
    expect(Object.keys(active[0]).sort()).toEqual(['acquiredAt', 'expiresAt', 'instanceId', 'jobName'])
  })

  test('lockRetryAttempts waits and retries', async () => {
    const a = make({ releaseGuard: 0 })
    const b = make({ ...shared(backend, a), lockRetryAttempts: 5, lockRetryDelay: 100, releaseGuard: 0 })
    const lock = await a.acquireLock('job', 5000)
    setTimeout(() => a.releaseLock(lock), 250)
    const t = Date.now()
    expect(await b.acquireLock('job', 5000)).not.toBeNull()
    expect(Date.now() - t).toBeGreaterThanOrEqual(200)
  })

  test('shutdown frees this instance’s held locks only', async () => {
    const a = make()
    const b = make(shared(backend, a))
    await a.acquireLock('mine', 60000)
    await b.acquireLock('theirs', 60000)
    await a.shutdown()
    const c = make({ ...shared(backend, a) })
    expect(await c.acquireLock('mine', 60000)).not.toBeNull()
    expect(await c.acquireLock('theirs', 60000)).toBeNull()
  })

  test('autoRenew keeps a lock alive past its TTL and reports when ownership is lost', async () => {
    const lost = []
    const a = make({ autoRenew: { interval: 100 }, onLockLost: (l) => lost.push(l.lockId) })
    const b = make(shared(backend, a))
    const lock = await a.acquireLock('job', 400)
    await new Promise((r) => setTimeout(r, 1000))
    expect(await b.acquireLock('job', 400)).toBeNull()
    // someone breaks the lock: the watchdog notices and reports it
    if (backend === 'redis') await raw.del(`${a.keyPrefix}job`)
    else await db.query(`UPDATE "${a.tableName}" SET lock_id = 'stolen'`)
    await eventually(() => lost.length === 1, { timeout: 3000 })
    expect(lost).toEqual([lock.lockId])
  })

  test('isHealthy', async () => {
    expect(await make().isHealthy()).toBe(true)
  })

  test('5 skewed replicas (timers up to 1 s apart), 10 ms job: one run per tick, and the next tick runs', async () => {
    const a = make({ releaseGuard: 2000 })
    const counterKey = `${uniquePrefix('ticks')}count`
    prefixes.push(counterKey)
    const t0 = Date.now() + 2500
    const skews = [0, 250, 500, 750, 1000]
    const children = skews.map((skew) =>
      runChild('cron-child.mjs', [
        backend,
        JSON.stringify({
          url: REDIS_URL,
          pg: PG_URL,
          keyPrefix: a.keyPrefix,
          table: a.tableName,
          job: 'every-tick',
          fireAt: [t0 + skew, t0 + 3000 + skew],
          holdMs: 10,
          counterKey,
          releaseGuard: 2000,
        }),
      ]),
    )
    await Promise.all(children)
    expect(await raw.lLen(`${counterKey}:0`)).toBe(1)
    expect(await raw.lLen(`${counterKey}:1`)).toBe(1)
  }, 30000)

  test('20 processes race for one job, 50 rounds: exactly one winner each round', async () => {
    const a = make({ releaseGuard: 0 })
    const counterKey = `${uniquePrefix('race')}winners`
    prefixes.push(counterKey)
    const rounds = 50
    const start = Date.now() + 6000
    // 400 ms rounds; the winner holds the job for 300 ms of it, so a replica that wakes up late (20 Node
    // processes on 2 cores) still finds it taken and cannot be counted as a second winner
    const fireAt = Array.from({ length: rounds }, (_, r) => start + r * 400)
    const holdUntil = fireAt.map((t) => t + 300)
    const children = Array.from({ length: 20 }, () =>
      runChild('cron-child.mjs', [
        backend,
        JSON.stringify({ url: REDIS_URL, pg: PG_URL, keyPrefix: a.keyPrefix, table: a.tableName, job: 'race', fireAt, holdUntil, holdMs: 0, counterKey, releaseGuard: 0 }),
      ]),
    )
    await Promise.all(children)
    const winners = []
    for (let r = 0; r < rounds; r++) winners.push(await raw.lLen(`${counterKey}:${r}`))
    expect(winners).toEqual(Array(rounds).fill(1))
  }, 90000)

  test('kill -9 of the lock holder: the lock expires by its TTL and is taken again', async () => {
    const a = make()
    const child = spawn(process.execPath, [
      path.join(here, 'fixtures', 'cron-holder.mjs'),
      backend,
      JSON.stringify({ url: REDIS_URL, pg: PG_URL, keyPrefix: a.keyPrefix, table: a.tableName, job: 'held', ttl: 1500 }),
    ], { stdio: ['ignore', 'pipe', 'inherit'] })
    const line = await new Promise((r) => child.stdout.once('data', (d) => r(String(d))))
    const held = JSON.parse(line)
    expect(held.jobName).toBe('held')
    await new Promise((r) => setTimeout(r, 1700)) // the holder's watchdog keeps it past its TTL
    expect(await a.acquireLock('held', 1500)).toBeNull()
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    const lock = await eventually(() => a.acquireLock('held', 1500), { timeout: 4000, interval: 100 })
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
  }, 20000)
})

test('control: the upstream adapter runs the same skewed tick more than once (the bug the guard fixes)', async () => {
  const keyPrefix = uniquePrefix('cronbug')
  const counterKey = `${uniquePrefix('cronbugcount')}count`
  prefixes.push(keyPrefix, counterKey)
  const t0 = Date.now() + 2500
  await Promise.all(
    [0, 250, 500, 750, 1000].map((skew) =>
      runChild('cron-child.mjs', ['upstream', JSON.stringify({ url: REDIS_URL, keyPrefix, job: 'every-tick', fireAt: [t0 + skew], holdMs: 10, counterKey })]),
    ),
  )
  expect(await raw.lLen(`${counterKey}:0`)).toBeGreaterThan(1)
}, 30000)

describe('backend down: acquire fails closed with a clear error', () => {
  test('redis', async () => {
    const a = new RedisCronAdapter({ socket: { host: '127.0.0.1', port: 1, connectTimeout: 500 } })
    await expect(a.acquireLock('job', 1000)).rejects.toMatchObject({ code: ErrorCodes.CONNECT })
    expect(await a.isHealthy()).toBe(false)
    expect(await a.renewLock({ jobName: 'job', lockId: 'x', instanceId: 'y', acquiredAt: 0, expiresAt: 0 }, 1000)).toBe(false)
    await a.shutdown()
  })
  test('postgres', async () => {
    const a = new PostgresCronAdapter({ connectionString: 'postgres://postgres:pw@127.0.0.1:1/postgres' })
    const err = await a.acquireLock('job', 1000).catch((e) => e)
    expect(err.code).toBe(ErrorCodes.CONNECT)
    expect(err.message).not.toContain('pw@')
    expect(await a.isHealthy()).toBe(false)
    await a.shutdown()
  })
})

describe('config errors name the field', () => {
  test.each([
    [() => new PostgresCronAdapter({ connectionString: 'postgres://x@h/db', tableName: 'x; DROP TABLE users' }), 'tableName'],
    [() => new PostgresCronAdapter({ connectionString: 'postgres://u:hunter2@h:notaport/db' }), 'connectionString'],
    [() => new PostgresCronAdapter({}), 'connectionString'],
    [() => new RedisCronAdapter({ url: REDIS_URL }, { lockTTL: -1 }), 'lockTTL'],
    [() => new RedisCronAdapter({ url: REDIS_URL }, { releaseGuard: 'x' }), 'releaseGuard'],
    [() => new RedisCronAdapter({ url: REDIS_URL }, { instanceId: 5 }), 'instanceId'],
    [() => new RedisCronAdapter({ socket: { port: 0 } }), 'socket.port'],
  ])('%#', (fn, field) => {
    let err
    try {
      fn()
    } catch (e) {
      err = e
    }
    expect(err?.code).toBe(ErrorCodes.CONFIG)
    expect(err.message).toContain(`\`${field}\``)
    expect(err.message).not.toContain('hunter2')
  })
})

describe('wire compatibility with @motiadev/adapter-redis-cron@0.17.14-beta.196', () => {
  let Upstream
  beforeAll(async () => {
    ;({ RedisCronAdapter: Upstream } = await import('@motiadev/adapter-redis-cron'))
  })

  test('upstream and our pods exclude each other on the same key and JSON', async () => {
    const keyPrefix = uniquePrefix('cronwire')
    prefixes.push(keyPrefix)
    const up = new Upstream({ url: REDIS_URL }, { keyPrefix })
    const ours = backends.redis({ keyPrefix, releaseGuard: 0 })

    const upLock = await up.acquireLock('job', 10000)
    expect(upLock).not.toBeNull()
    expect(await ours.acquireLock('job', 10000)).toBeNull()
    const active = await ours.getActiveLocks()
    expect(active).toEqual([{ jobName: 'job', instanceId: upLock.instanceId, acquiredAt: upLock.acquiredAt, expiresAt: upLock.expiresAt }])
    await ours.releaseLock({ ...upLock, instanceId: ours.instanceId }) // not ours: no effect
    expect(await ours.acquireLock('job', 10000)).toBeNull()
    await up.releaseLock(upLock)

    const ourLock = await ours.acquireLock('job', 10000)
    expect(ourLock).not.toBeNull()
    const stored = JSON.parse(await raw.get(`${keyPrefix}job`))
    expect(Object.keys(stored).slice(0, 5)).toEqual(['jobName', 'lockId', 'acquiredAt', 'expiresAt', 'instanceId'])
    expect(await up.acquireLock('job', 10000)).toBeNull()
    expect(await up.getActiveLocks()).toEqual([{ jobName: 'job', instanceId: ours.instanceId, acquiredAt: ourLock.acquiredAt, expiresAt: ourLock.expiresAt }])
    expect(await up.renewLock({ ...ourLock, instanceId: 'someone-else' }, 10000)).toBe(false)
    expect(await up.renewLock(ourLock, 20000)).toBe(true) // upstream's Lua accepts our JSON
    await ours.releaseLock(ourLock)
    expect(await up.acquireLock('job', 10000)).not.toBeNull()
    await up.shutdown()
  })
})
