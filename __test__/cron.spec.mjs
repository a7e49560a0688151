// RedisCronAdapter, PostgresCronAdapter and MySqlCronAdapter against real Redis, PostgreSQL and MariaDB: semantics, the tick
// rule (each tick once, none skipped) with lagging multi-process replicas on default options,
// 20-process races, kill -9, watchdog, wire compatibility with @motiadev/adapter-redis-cron@0.17.14-beta.196.
import { createClient } from 'redis'
import pg from 'pg'
import { jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { RedisCronAdapter, PostgresCronAdapter, MySqlCronAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, PG_URL, MYSQL_URL, requireRedis, requirePostgres, requireMySql, mysqlQuery, uniquePrefix, uniqueTable, eventually, deleteMatching } from './helpers/env.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
let raw
let db
const prefixes = []
const tables = []
const mysqlTables = []
const adapters = []

beforeAll(async () => {
  await requireRedis()
  await requirePostgres()
  await requireMySql()
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
  for (const t of mysqlTables) await mysqlQuery(MYSQL_URL, `DROP TABLE IF EXISTS \`${t}\``)
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
  mysql: (opts = {}) => {
    const tableName = opts.tableName ?? uniqueTable()
    mysqlTables.push(tableName)
    const a = new MySqlCronAdapter({ connectionString: MYSQL_URL, ...opts, tableName })
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

describe.each(['redis', 'postgres', 'mysql'])('%s cron locks', (backend) => {
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

  test('20 fresh adapters take their first lock of a new job at once: one winner, no error', async () => {
    // each adapter's first acquire also purges old rows (MySQL): a just-seeded row must survive that
    const a = make()
    for (let round = 0; round < 5; round++) {
      const fresh = Array.from({ length: 19 }, () => make(shared(backend, a)))
      const job = `fresh-${round}`
      const results = await Promise.all([a, ...fresh].map((x) => x.acquireLock(job, 5000)))
      expect(results.filter(Boolean)).toHaveLength(1)
      // one connection each: close them before the next round (PostgreSQL allows 100 here)
      await Promise.all(fresh.map((x) => x.shutdown()))
      adapters.splice(adapters.length - fresh.length, fresh.length)
    }
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

  test("an adapter handed another instance's real lock object can neither renew nor release it", async () => {
    const a = make()
    const b = make(shared(backend, a))
    const lock = await a.acquireLock('job', 5000)
    expect(await b.renewLock(lock, 60000)).toBe(false) // upstream compares with the argument's instanceId and renews
    await b.releaseLock(lock) // upstream would delete it
    expect(await a.getActiveLocks()).toEqual([expect.objectContaining({ jobName: 'job', instanceId: a.instanceId })])
    expect(await b.acquireLock('job', 5000)).toBeNull()
    expect(await a.renewLock(lock, 5000)).toBe(true)
  })

  test('a released lock refuses its own tick to other replicas; the next tick gets it at once, the releaser at once', async () => {
    const a = make()
    const b = make(shared(backend, a))
    // start early in a second so the "same tick" calls stay inside it
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20))
    const lock = await a.acquireLock('job', 300000)
    await a.releaseLock(lock)
    expect(await b.acquireLock('job', 300000)).toBeNull() // a late replica of the same tick
    expect(await a.getActiveLocks()).toEqual([]) // released records are not active locks
    expect(await a.renewLock(lock, 5000)).toBe(false) // released locks cannot be renewed
    // the instance that released it can take it again at once (tight acquire/release loops)
    let last = lock.fencingToken
    for (let i = 0; i < 20; i++) {
      const again = await a.acquireLock('job', 300000)
      expect(again.fencingToken).toBeGreaterThan(last)
      last = again.fencingToken
      await a.releaseLock(again)
    }
    // the next tick (the next second) on another replica: free at once
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20))
    const next = await b.acquireLock('job', 300000)
    expect(next.fencingToken).toBeGreaterThan(last)
  })

  test('{scheduledAt}: one winner per tick from the first tick; a release frees the job for the next tick at once', async () => {
    const a = make()
    const b = make(shared(backend, a))
    const tick = Math.floor(Date.now() / 1000) * 1000 - 60000
    const lock = await a.acquireLock('sched', 300000, { scheduledAt: tick })
    expect(lock.scheduledAt).toBe(tick)
    expect(await b.acquireLock('sched', 300000, { scheduledAt: tick })).toBeNull() // held
    await a.releaseLock(lock)
    expect(await b.acquireLock('sched', 300000, { scheduledAt: new Date(tick) })).toBeNull() // same tick, released
    const next = await b.acquireLock('sched', 300000, { scheduledAt: tick + 1000 })
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken)
    await b.releaseLock(next)
    expect(await a.acquireLock('sched', 300000, { scheduledAt: tick + 500 })).toBeNull() // an older tick
    expect(await a.acquireLock('sched', 300000, { scheduledAt: tick + 2000 })).not.toBeNull()
    await expect(a.acquireLock('sched', 1000, { scheduledAt: 'soon' })).rejects.toMatchObject({ code: ErrorCodes.CONFIG })
  })

  test('a job still running when its next tick fires skips that tick, logged once across replicas', async () => {
    const a = make()
    const b = make(shared(backend, a))
    const c = make(shared(backend, a))
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const lock = await a.acquireLock('slow', 300000, { scheduledAt: 1_000_000 })
      expect(await b.acquireLock('slow', 300000, { scheduledAt: 1_000_000 })).toBeNull() // same tick: not a skip
      expect(warn).not.toHaveBeenCalled()
      expect(await b.acquireLock('slow', 300000, { scheduledAt: 1_005_000 })).toBeNull()
      expect(await c.acquireLock('slow', 300000, { scheduledAt: 1_005_000 })).toBeNull()
      expect(await a.acquireLock('slow', 300000, { scheduledAt: 1_005_000 })).toBeNull()
      expect(warn).toHaveBeenCalledTimes(1)
      expect(warn.mock.calls[0][0]).toMatch(/cron job "slow": tick 1970-01-01T00:16:45.000Z skipped, the run of 1970-01-01T00:16:40.000Z still holds the lock/)
      expect(await c.acquireLock('slow', 300000, { scheduledAt: 1_010_000 })).toBeNull()
      expect(warn).toHaveBeenCalledTimes(2)
      await a.releaseLock(lock)
      expect(await c.acquireLock('slow', 300000, { scheduledAt: 1_015_000 })).not.toBeNull()
    } finally {
      warn.mockRestore()
    }
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
    else if (backend === 'postgres') await db.query(`UPDATE "${a.tableName}" SET lock_id = 'stolen'`)
    else await mysqlQuery(MYSQL_URL, `UPDATE \`${a.tableName}\` SET lock_id = 'stolen'`)
    await eventually(() => lost.length === 1, { timeout: 3000 })
    expect(lost).toEqual([lock.lockId])
  })

  test('isHealthy', async () => {
    expect(await make().isHealthy()).toBe(true)
  })

  test('default options, 4 replicas firing 0–900 ms late at random: every tick of 1 s, 2 s and 5 s jobs runs exactly once, none skipped', async () => {
    const a = make()
    const ledger = `${uniquePrefix('ticks')}ledger`
    prefixes.push(ledger)
    const jobs = { every1s: 1000, every2s: 2000, every5s: 5000 }
    const from = Math.ceil((Date.now() + 3000) / 1000) * 1000 // after the children started
    const to = from + 15000
    const base = { url: REDIS_URL, pg: PG_URL, mysql: MYSQL_URL, keyPrefix: a.keyPrefix, table: a.tableName, jobs, from, to, maxLagMs: 900, holdMs: 20, ledger }
    await Promise.all(Array.from({ length: 4 }, () => runChild('cron-replica.mjs', [backend, JSON.stringify(base)])))
    for (const [job, period] of Object.entries(jobs)) {
      const wins = []
      for (let t = Math.ceil(from / period) * period; t < to; t += period) wins.push(await raw.lLen(`${ledger}:${job}:${t}`))
      expect(wins.length).toBeGreaterThanOrEqual(Math.floor((to - from) / period))
      expect({ job, wins }).toEqual({ job, wins: wins.map(() => 1) })
    }
  }, 60000)

  test('kill -9 of the holder mid-job at several ticks: the job is free after its TTL, later ticks run once each', async () => {
    const a = make()
    const ledger = `${uniquePrefix('killticks')}ledger`
    prefixes.push(ledger)
    const ttl = 1500
    const from = Math.ceil((Date.now() + 3000) / 1000) * 1000
    const to = from + 14000
    const base = { url: REDIS_URL, pg: PG_URL, mysql: MYSQL_URL, keyPrefix: a.keyPrefix, table: a.tableName, jobs: { job: 1000 }, from, to, minLagMs: 100, maxLagMs: 400, holdMs: 20, ttl, ledger }
    // two replicas die mid-job at the ticks from+2 s and from+7 s; two survive
    const killFrom = [from + 2000, from + 7000, undefined, undefined]
    const outcomes = await Promise.all(
      killFrom.map((k) => runChild('cron-replica.mjs', [backend, JSON.stringify({ ...base, killFrom: k })]).then(() => 'done', () => 'killed')),
    )
    expect(outcomes).toEqual(['killed', 'killed', 'done', 'done'])
    const wins = []
    for (let t = from; t < to; t += 1000) wins.push(await raw.lLen(`${ledger}:job:${t}`))
    expect(wins.every((n) => n <= 1)).toBe(true) // never twice
    // each dead holder blocks its job for its TTL only (the ticks within 1.5 s after it died)
    const lost = wins.map((n, i) => (n === 0 ? i : null)).filter((i) => i !== null)
    expect(lost.every((i) => (i > 2 && i <= 2 + Math.ceil(ttl / 1000)) || (i > 7 && i <= 7 + Math.ceil(ttl / 1000)))).toBe(true)
    expect(wins.slice(0, 3)).toEqual([1, 1, 1])
    expect(wins.slice(10)).toEqual([1, 1, 1, 1])
  }, 60000)

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
        JSON.stringify({ url: REDIS_URL, pg: PG_URL, mysql: MYSQL_URL, keyPrefix: a.keyPrefix, table: a.tableName, job: 'race', fireAt, holdUntil, holdMs: 0, counterKey, releaseGuard: 0 }),
      ]),
    )
    await Promise.all(children)
    const winners = []
    for (let r = 0; r < rounds; r++) winners.push(await raw.lLen(`${counterKey}:${r}`))
    expect(winners).toEqual(Array(rounds).fill(1))
  }, 90000)

  test("Motia's 300000 ms lock is a 10 s lease: kept while the holder blocks its JS thread for 20 s, freed within one lease after kill -9", async () => {
    const a = make()
    const child = spawn(process.execPath, [
      path.join(here, 'fixtures', 'cron-holder.mjs'),
      backend,
      JSON.stringify({ url: REDIS_URL, pg: PG_URL, mysql: MYSQL_URL, keyPrefix: a.keyPrefix, table: a.tableName, job: 'leased', ttl: 300000, autoRenew: false, blockMs: 20000 }),
    ], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = []
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)))
        buf = buf.slice(i + 1)
      }
    })
    await eventually(() => lines.length >= 1, { timeout: 10000 })
    const held = lines[0]
    expect(held.expiresAt - held.acquiredAt).toBe(300000) // the requested TTL stays the upper bound
    if (backend === 'redis') expect(await raw.pTTL(`${a.keyPrefix}leased`)).toBeLessThanOrEqual(10000)
    await new Promise((r) => setTimeout(r, 14000)) // past one lease, the child's JS thread still blocked
    expect(await a.acquireLock('leased', 300000, { scheduledAt: held.acquiredAt + 60000 })).toBeNull()
    await eventually(() => lines.length >= 2, { timeout: 15000 })
    expect(lines[1]).toEqual({ stillOwned: true })
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    const killedAt = Date.now()
    const lock = await eventually(() => a.acquireLock('leased', 300000, { scheduledAt: held.acquiredAt + 120000 }), { timeout: 15000, interval: 200 })
    expect(Date.now() - killedAt).toBeLessThanOrEqual(11000)
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
  }, 60000)

  test('kill -9 of the lock holder: the lock expires by its TTL and is taken again', async () => {
    const a = make()
    const child = spawn(process.execPath, [
      path.join(here, 'fixtures', 'cron-holder.mjs'),
      backend,
      JSON.stringify({ url: REDIS_URL, pg: PG_URL, mysql: MYSQL_URL, keyPrefix: a.keyPrefix, table: a.tableName, job: 'held', ttl: 1500 }),
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

test("the RFC's flat config: every option takes effect", async () => {
  const keyPrefix = uniquePrefix('cronrfc')
  prefixes.push(keyPrefix)
  const url = new URL(REDIS_URL)
  const a = new RedisCronAdapter({
    host: url.hostname,
    port: parseInt(url.port || '6379'),
    password: undefined,
    keyPrefix,
    lockTTL: 4000,
    instanceId: 'rfc-pod-1',
    lockRetryDelay: 50,
    lockRetryAttempts: 2,
    enableHealthCheck: false,
  })
  adapters.push(a)
  expect(a.instanceId).toBe('rfc-pod-1')
  const lock = await a.acquireLock('job')
  expect(lock).toMatchObject({ instanceId: 'rfc-pod-1', jobName: 'job' })
  expect(lock.expiresAt - lock.acquiredAt).toBe(4000) // lockTTL
  const stored = JSON.parse(await raw.get(`${keyPrefix}job`)) // keyPrefix
  expect(stored.instanceId).toBe('rfc-pod-1')
  const pttl = await raw.pTTL(`${keyPrefix}job`)
  expect(pttl).toBeGreaterThan(3000)
  expect(pttl).toBeLessThanOrEqual(4000)
  const t = Date.now()
  expect(await a.acquireLock('job')).toBeNull() // held by itself: 2 retries 50 ms apart
  expect(Date.now() - t).toBeGreaterThanOrEqual(90)
  const down = new RedisCronAdapter({ host: '127.0.0.1', port: 1, enableHealthCheck: false })
  expect(await down.isHealthy()).toBe(true) // enableHealthCheck: false
  await down.shutdown()
})

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
  test('mysql', async () => {
    const a = new MySqlCronAdapter({ connectionString: 'mysql://root:pw@127.0.0.1:1/test' })
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
    [() => new MySqlCronAdapter({ connectionString: 'mysql://x@h/db', tableName: 'x; DROP TABLE users' }), 'tableName'],
    [() => new MySqlCronAdapter({ connectionString: 'mysql://u:hunter2@h:notaport/db' }), 'connectionString'],
    [() => new MySqlCronAdapter({ connectionString: 'mysql://u:hunter2@h/db?connect_timeout=x' }), 'connectionString'],
    [() => new MySqlCronAdapter({}), 'connectionString'],
    [() => new MySqlCronAdapter({ connectionString: 'mysql://h/db', lockTTL: -1 }), 'lockTTL'],
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
