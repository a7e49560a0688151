// Cron with zero configuration, proven in a real Motia 0.17 app: examples/motia-cron-app (cron steps every
// 1 s, 2 s and 5 s, RedisCronAdapter with default options) on 3 replicas started 0/400/900 ms apart for
// over 60 s. Every acquireLock call Motia core makes is recorded by a ledger wrapper in the app's config
// (node-redis, outside the adapter); each tick of each schedule must have exactly one winner, none missing.
import { jest } from '@jest/globals'
import { createClient } from 'redis'
import { REDIS_URL, requireRedis, uniquePrefix, deleteMatching } from './helpers/env.mjs'
import { requireMotiaApp, startApp, stopApp, appReady } from './helpers/motia.mjs'

jest.setTimeout(240000)

const JOBS = { Every1s: 1000, Every2s: 2000, Every5s: 5000 }
const WINDOW_MS = Number(process.env.CRON_PROOF_MS || 62000)

let raw
beforeAll(async () => {
  await requireRedis()
  requireMotiaApp()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})
afterAll(async () => {
  await raw?.quit()
})

test('3 replicas, default options: every tick of every 1 s, 2 s and 5 s cron step runs exactly once, none skipped', async () => {
  const prefix = uniquePrefix('cronproof')
  const fleet = []
  try {
    for (const [i, delay] of [0, 400, 900].entries()) {
      if (delay) await new Promise((r) => setTimeout(r, delay - (i > 1 ? 400 : 0)))
      fleet.push(startApp('motia-cron-app', `r${i}`, 3301 + i, { APP_PREFIX: prefix, REDIS_URL }))
    }
    await Promise.all(fleet.map(appReady))
    // every replica is calling for every job before the measured window starts
    const from = Date.now() + 6000
    await new Promise((r) => setTimeout(r, from - Date.now() + WINDOW_MS))
    const to = Date.now() - 1000

    for (const [job, period] of Object.entries(JOBS)) {
      const calls = (await raw.lRange(`${prefix}ledger:${job}`, 0, -1)).map((s) => JSON.parse(s))
      // the schedules are aligned to whole periods of the epoch; a call belongs to the last tick before it
      const perTick = new Map()
      for (const c of calls) {
        const tick = Math.floor(c.at / period) * period
        const t = perTick.get(tick) || { calls: new Set(), wins: [], log: [] }
        t.calls.add(c.instance)
        t.log.push(`${c.instance}@+${c.at - tick}${c.won ? ' won' : ''}`)
        if (c.won) t.wins.push(c.instance)
        perTick.set(tick, t)
      }
      const expected = []
      for (let t = Math.ceil(from / period) * period; t + period <= to; t += period) expected.push(t)
      expect(expected.length).toBeGreaterThanOrEqual(Math.floor(WINDOW_MS / period) - 2)
      const lags = calls.map((c) => c.at % period).sort((x, y) => x - y)
      console.log(`${job}: ${expected.length} ticks, ${calls.length} calls, fire lag p50 ${lags[lags.length >> 1]} ms, max ${lags[lags.length - 1]} ms`)
      const bad = expected
        .map((t) => ({ tick: new Date(t).toISOString(), callers: perTick.get(t)?.calls.size ?? 0, wins: perTick.get(t)?.wins ?? [], log: perTick.get(t)?.log ?? [] }))
        .filter((t) => t.wins.length !== 1)
      expect({ job, bad }).toEqual({ job, bad: [] })
      // all three replicas competed for the ticks (the test measured a fleet, not one instance)
      const competed = expected.filter((t) => (perTick.get(t)?.calls.size ?? 0) === 3).length
      expect(competed).toBeGreaterThanOrEqual(expected.length - 1)
    }
  } finally {
    await Promise.all(fleet.map(stopApp))
    await deleteMatching(raw, `${prefix}*`)
  }
})
