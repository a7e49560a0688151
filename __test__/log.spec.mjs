// The adapters' log lines go to the `logger` option with structured meta (adapter, op, code), and a failure
// that repeats is summarised instead of spamming. No console.* outside lib/log.js.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { RedisCronAdapter, RedisStateAdapter, RabbitMQEventAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix, deleteMatching } from './helpers/env.mjs'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const { AdapterLog, REPEAT_SUMMARY_MS } = require('../lib/log.js')

function recorder() {
  const lines = []
  const at = (level) => (message, meta) => lines.push({ level, message, meta })
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

test('no console.* in the package outside lib/log.js', () => {
  for (const f of fs.readdirSync(path.join(root, 'lib')).filter((f) => f.endsWith('.js') && f !== 'log.js')) {
    expect({ f, uses: /\bconsole\.(log|warn|error|info|debug)\(/.test(fs.readFileSync(path.join(root, 'lib', f), 'utf8')) }).toEqual({ f, uses: false })
  }
})

test('repeated failures: the first line at once, then one summary per window, and one line on recovery', () => {
  let now = 1000
  const { lines, logger } = recorder()
  const log = new AdapterLog('X', logger, () => now)
  const err = Object.assign(new Error('down'), { code: ErrorCodes.CONNECT })
  for (let i = 0; i < 50; i++) {
    log.repeated('error', 'redis', 'get', 'Redis unreachable', { error: err })
    now += 100
  }
  expect(lines).toHaveLength(1)
  expect(lines[0]).toEqual({ level: 'error', message: 'Redis unreachable', meta: { adapter: 'X', op: 'get', code: 'MOTIA_CONNECT', error: 'down' } })
  now += REPEAT_SUMMARY_MS
  log.repeated('error', 'redis', 'get', 'Redis unreachable', { error: err })
  expect(lines).toHaveLength(2)
  expect(lines[1].message).toMatch(/50 more time\(s\)/)
  log.recovered('redis', 'get', 'Redis is back')
  log.recovered('redis', 'get', 'Redis is back') // once
  expect(lines.slice(2)).toEqual([{ level: 'info', message: 'Redis is back', meta: { adapter: 'X', op: 'get' } }])
  // a logger that throws never breaks the adapter
  new AdapterLog('X', { warn: () => { throw new Error('x') }, error: () => { throw new Error('x') } }).error('op', 'm')
})

test('a skipped cron tick is logged once to the logger, with the job', async () => {
  await requireRedis()
  const prefix = uniquePrefix('logcron')
  const { lines, logger } = recorder()
  const a = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: prefix, logger })
  const b = new RedisCronAdapter({ url: REDIS_URL }, { keyPrefix: prefix, logger })
  try {
    const t = Math.floor(Date.now() / 1000) * 1000
    expect(await a.acquireLock('job', 60000, { scheduledAt: t })).not.toBeNull()
    expect(await b.acquireLock('job', 60000, { scheduledAt: t + 1000 })).toBeNull() // still running: skipped
    expect(await a.acquireLock('job', 60000, { scheduledAt: t + 1000 })).toBeNull() // same tick: not logged again
    const skips = lines.filter((l) => /skipped/.test(l.message))
    expect(skips).toHaveLength(1)
    expect(skips[0]).toMatchObject({ level: 'warn', meta: { adapter: 'RedisCronAdapter', op: 'acquireLock', job: 'job' } })
  } finally {
    await a.shutdown()
    await b.shutdown()
    const { createClient } = await import('redis')
    const raw = createClient({ url: REDIS_URL })
    await raw.connect()
    await deleteMatching(raw, `${prefix}*`)
    await deleteMatching(raw, `motia:cron:fence:${prefix}*`)
    await raw.quit()
  }
})

test('a logger without warn/error is a config error; every adapter accepts one', () => {
  expect(() => new RedisStateAdapter({ url: REDIS_URL }, { logger: {} })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  expect(() => new RedisCronAdapter({ url: REDIS_URL }, { logger: 'console' })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  const s = new RedisStateAdapter({ url: REDIS_URL, logger: console })
  const r = new RabbitMQEventAdapter({ url: 'amqp://guest:guest@127.0.0.1:5672', logger: console })
  return Promise.all([s.cleanup(), r.shutdown()])
})
