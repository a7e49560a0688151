// Shared test helpers: service URLs, unique names, and a loud failure when a service is missing.
import net from 'node:net'
import { randomUUID } from 'node:crypto'
import { execFile } from 'node:child_process'

export const REDIS_HOST = process.env.TEST_REDIS_HOST || '127.0.0.1'
export const REDIS_PORT = Number(process.env.TEST_REDIS_PORT || 6379)
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`

/** A prefix no other test (or run) uses, e.g. `test:3f2a…:`. */
export function uniquePrefix(tag = 'test') {
  return `${tag}:${randomUUID().slice(0, 8)}:`
}

function canConnect(host, port, timeoutMs = 1500) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const done = (ok) => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(timeoutMs, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

/** Fails (never skips) when the service is not listening, with the command that starts it. */
export async function requireService(name, host, port) {
  if (!(await canConnect(host, port))) {
    throw new Error(
      `${name} is not listening on ${host}:${port}. Start it with \`npm run services\` (bash scripts/services.sh ${name.toLowerCase()}).`,
    )
  }
}

export const requireRedis = () => requireService('Redis', REDIS_HOST, REDIS_PORT)

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function eventually(fn, { timeout = 10000, interval = 50 } = {}) {
  const end = Date.now() + timeout
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeout} ms (last: ${last})`)
    await new Promise((r) => setTimeout(r, interval))
  }
}

export const PG_HOST = process.env.TEST_PG_HOST || '127.0.0.1'
export const PG_PORT = Number(process.env.TEST_PG_PORT || 5432)
export const PG_URL = process.env.TEST_PG_URL || `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`
export const requirePostgres = () => requireService('Postgres', PG_HOST, PG_PORT)

export const MYSQL_HOST = process.env.TEST_MYSQL_HOST || '127.0.0.1'
export const MYSQL_PORT = Number(process.env.TEST_MYSQL_PORT || 3306)
export const MYSQL_URL = process.env.TEST_MYSQL_URL || `mysql://root@${MYSQL_HOST}:${MYSQL_PORT}/test`
/** MariaDB / MySQL (`npm run services mysql`). */
export const requireMySql = () => requireService('MySQL', MYSQL_HOST, MYSQL_PORT)

/**
 * Runs `sql` on the server of a `mysql://user[:pass]@host:port/db` URL with the `mysql` command-line
 * client (installed with the server by `npm run services mysql`); resolves its tab-separated output.
 */
export function mysqlQuery(url, sql) {
  const u = new URL(url)
  const args = ['-h', u.hostname, '-P', u.port || '3306', '-u', decodeURIComponent(u.username || 'root'), '--batch', '--skip-column-names']
  const env = { ...process.env }
  if (u.password) env.MYSQL_PWD = decodeURIComponent(u.password)
  const db = u.pathname.replace(/^\//, '')
  if (db) args.push(db)
  args.push('-e', sql)
  return new Promise((resolve, reject) =>
    execFile('mysql', args, { env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`mysql ${err.code === 'ENOENT' ? 'client not found (npm run services mysql installs it)' : `failed: ${stderr}`}`))
      else resolve(stdout)
    }),
  )
}

/** A SQL identifier no other test uses. */
export function uniqueTable(tag = 'motia_test') {
  return `${tag}_${randomUUID().replace(/-/g, '').slice(0, 10)}`
}

/** Ids of the connections currently open on the Redis server (CLIENT LIST). */
export async function clientIds(raw) {
  return new Set(
    (await raw.sendCommand(['CLIENT', 'LIST']))
      .split('\n')
      .map((l) => /\bid=(\d+)/.exec(l))
      .filter(Boolean)
      .map((m) => m[1]),
  )
}

/** Deletes every key matching `pattern` (test prefixes contain no glob characters). */
export async function deleteMatching(raw, pattern) {
  for await (const keys of raw.scanIterator({ MATCH: pattern, COUNT: 1000 })) if (keys.length) await raw.del(keys)
}

/**
 * A fifo test's handler: records `e.data.n` in `order`, and fails the first run of event `n === failAt` (so the
 * retry must keep the group's order).
 */
export function orderedHandler(order, failAt = 3) {
  let failOnce = true
  return async (e) => {
    if (e.data.n === failAt && failOnce) {
      failOnce = false
      throw new Error('once')
    }
    order.push(e.data.n)
  }
}
