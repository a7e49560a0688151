// CronScheduler: node-cron style expressions (the `cron` crate), one run per tick across skewed
// replicas, error isolation, lock renewal for long handlers, stop().
import { createClient } from 'redis'
import pg from 'pg'
import { RedisCronAdapter, PostgresCronAdapter, CronScheduler, validateCronExpression, nextCronRuns, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, PG_URL, requireRedis, requirePostgres, uniquePrefix, uniqueTable, deleteMatching } from './helpers/env.mjs'

let raw
let db
const cleanup = []
beforeAll(async () => {
  await requireRedis()
  await requirePostgres()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
  db = new pg.Client({ connectionString: PG_URL })
  await db.connect()
})
afterAll(async () => {
  for (const fn of cleanup) await fn().catch(() => {})
  await raw.quit()
  await db.end()
})

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A replica's adapter whose timer fires `skew` ms late. */
// a wrapper that forwards everything, including the tick-aware marker CronScheduler looks for
const TICK_AWARE = Symbol.for('motia-native-adapters.cron.tickAware')
function skewed(adapter, skew) {
  return {
    [TICK_AWARE]: adapter[TICK_AWARE],
    acquireLock: async (...args) => {
      await sleep(skew)
      return adapter.acquireLock(...args)
    },
    renewLock: (lock, ttl) => adapter.renewLock(lock, ttl),
    releaseLock: (lock) => adapter.releaseLock(lock),
  }
}

const makers = {
  redis: () => {
    const keyPrefix = uniquePrefix('sched')
    cleanup.push(async () => {
      await deleteMatching(raw, `*${keyPrefix}*`)
    })
    return () => {
      const a = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix })
      cleanup.push(() => a.shutdown())
      return a
    }
  },
  postgres: () => {
    const tableName = uniqueTable('sched')
    cleanup.push(() => db.query(`DROP TABLE IF EXISTS "${tableName}"`))
    return () => {
      const a = new PostgresCronAdapter({ connectionString: PG_URL, tableName })
      cleanup.push(() => a.shutdown())
      return a
    }
  },
}

describe('expressions', () => {
  test('5-field and 6-field node-cron expressions', () => {
    expect(validateCronExpression('*/5 * * * *')).toBe(true)
    expect(validateCronExpression('*/10 * * * * *')).toBe(true)
    expect(validateCronExpression('0 9 * * 1-5')).toBe(true)
    expect(validateCronExpression('0 9 * * MON-FRI')).toBe(true)
    expect(validateCronExpression('61 * * * *')).toBe(false)
    expect(validateCronExpression('* * *')).toBe(false)
    expect(validateCronExpression(42)).toBe(false)
    const [a, b] = nextCronRuns('*/10 * * * * *', { count: 2, after: Date.UTC(2025, 0, 1, 0, 0, 3) })
    expect([a, b]).toEqual([Date.UTC(2025, 0, 1, 0, 0, 10), Date.UTC(2025, 0, 1, 0, 0, 20)])
    // Sunday is 0 and 7 as in node-cron: 2025-01-01 is a Wednesday -> next Sunday is the 5th
    expect(nextCronRuns('0 12 * * 0', { after: Date.UTC(2025, 0, 1) })).toEqual([Date.UTC(2025, 0, 5, 12)])
    expect(nextCronRuns('0 12 * * 7', { after: Date.UTC(2025, 0, 1) })).toEqual([Date.UTC(2025, 0, 5, 12)])
    expect(nextCronRuns('0 9 * * *', { timezone: 'Europe/Paris', after: Date.UTC(2025, 0, 1) })).toEqual([Date.UTC(2025, 0, 1, 8)])
  })

  test('an invalid expression or time zone rejects with a message quoting it', async () => {
    const s = new CronScheduler({ acquireLock: async () => null, renewLock: async () => true })
    await expect(s.schedule('bad', '*/0 * * *', () => {})).rejects.toMatchObject({
      code: ErrorCodes.CONFIG,
      message: expect.stringContaining('"*/0 * * *"'),
    })
    await expect(s.schedule('tz', '* * * * *', () => {}, { timezone: 'Mars/Base' })).rejects.toThrow(/Mars\/Base/)
    await s.stop()
  })
})

describe.each(['redis', 'postgres'])('%s: CronScheduler across replicas', (backend) => {
  test('3 replicas with 0/300/700 ms skew: every tick runs exactly once', async () => {
    const make = makers[backend]()
    const runs = []
    const schedulers = [0, 300, 700].map((skew) => new CronScheduler(skewed(make(), skew), { onError: (e) => runs.push(`error ${e}`) }))
    await Promise.all(
      schedulers.map((s, i) => s.schedule('every-second', '* * * * * *', async ({ scheduledAt }) => {
        runs.push({ replica: i, scheduledAt })
        await sleep(10)
      })),
    )
    await sleep(4200)
    await Promise.all(schedulers.map((s) => s.stop()))
    const ticks = runs.map((r) => r.scheduledAt)
    expect(runs.every((r) => typeof r === 'object')).toBe(true)
    expect(ticks.length).toBeGreaterThanOrEqual(3)
    expect(new Set(ticks).size).toBe(ticks.length) // no tick twice
    for (const t of ticks) expect(t % 1000).toBe(0)
  }, 20000)

  test('a throwing handler is reported and the schedule goes on', async () => {
    const make = makers[backend]()
    const errors = []
    let calls = 0
    const s = new CronScheduler(make(), { onError: (e, name) => errors.push([String(e.message || e), name]) })
    await s.schedule('flaky', '* * * * * *', async () => {
      calls++
      if (calls === 1) throw new Error('first run fails')
      if (calls === 2) return Promise.reject('a string rejection')
    })
    await sleep(3900) // three ticks even if timers fire late under load
    await s.stop()
    expect(calls).toBeGreaterThanOrEqual(3)
    expect(errors).toEqual([['first run fails', 'flaky'], ['a string rejection', 'flaky']])
  }, 10000)

  test('a handler longer than lockTTL keeps its tick: the lock is renewed while it runs', async () => {
    const make = makers[backend]()
    const runs = []
    const skips = []
    const a = new CronScheduler(make())
    const late = new CronScheduler(skewed(make(), 900), { onSkip: (name, at) => skips.push(at) })
    const handler = (who) => async ({ scheduledAt }) => {
      runs.push([who, scheduledAt])
      await sleep(1500)
    }
    // every 3 s: one tick inside the test window
    await a.schedule('long', '*/3 * * * * *', handler('a'), { lockTTL: 300 })
    await late.schedule('long', '*/3 * * * * *', handler('late'), { lockTTL: 300 })
    await sleep(3500)
    await Promise.all([a.stop(), late.stop()])
    expect(runs.filter(([who]) => who === 'late')).toEqual([])
    expect(runs.length).toBeGreaterThanOrEqual(1)
    expect(skips.length).toBe(runs.length)
  }, 15000)
})

test('stop() ends future ticks and waits for the running handler', async () => {
  const make = makers.redis()
  let running = 0
  let finished = 0
  const s = new CronScheduler(make())
  await s.schedule('slow', '* * * * * *', async () => {
    running++
    await sleep(600)
    finished++
  })
  while (running === 0) await sleep(50)
  await s.stop()
  expect(finished).toBe(running)
  const before = running
  await sleep(1500)
  expect(running).toBe(before)
}, 10000)
