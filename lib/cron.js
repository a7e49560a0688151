'use strict'
/**
 * Cron lock adapters (Motia `CronAdapter`): RedisCronAdapter (drop-in for
 * @motiadev/adapter-redis-cron@0.17), PostgresCronAdapter (RFC "Example 6") and MySqlCronAdapter
 * (MySQL / MariaDB, RFC `adapter-mysql-cron`).
 *
 * All three: acquire is atomic, is for a tick (`{scheduledAt}`, or the call time floored to the second)
 * and carries a fencing token; a released lock refuses only its own tick to other instances, so a
 * replica whose timer fires late cannot run the same tick again and the next tick is never
 * skipped (the rule: src/core/cron_lock.rs); release/renew/shutdown check ownership (lockId + this
 * adapter's instanceId) atomically on the server; an opt-in watchdog (`autoRenew`) keeps renewing
 * held locks.
 */
const { NativeRedisCron, NativePostgresCron, NativeMySqlCron, createRedisCronLoop, DEFAULT_RELEASE_GUARD_MS, MAX_LOCK_TTL_MS, DEFAULT_CRON_PREFIX } = require('./native.js')
const { jsLoopAllowed } = require('./jsloop.js')
const { AdapterLog, checkLogger } = require('./log.js')
const { AdapterMetrics, COUNTERS, GAUGES } = require('./metrics.js')
const { normalizeRedis, isRedisClient, pgSsl, resolveOptions } = require('./config.js')
const { fromNative, configError, MotiaAdapterError } = require('./errors.js')

const DEFAULT_RELEASE_GUARD = DEFAULT_RELEASE_GUARD_MS

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Options a flat config (the RFC's `new RedisCronAdapter({host, port, ..., lockTTL, instanceId})`) may carry. */
const CRON_OPTION_KEYS = ['keyPrefix', 'lockTTL', 'lockRetryDelay', 'lockRetryAttempts', 'instanceId', 'enableHealthCheck', 'releaseGuard', 'autoRenew', 'onLockLost', 'logger']

function scheduledAtOf(options) {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object') throw configError('options', 'must be an object {scheduledAt?}')
  const at = options.scheduledAt
  if (at === undefined || at === null) return undefined
  const ms = at instanceof Date ? at.getTime() : at
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw configError('scheduledAt', 'must be a Date or a time in milliseconds')
  return ms
}

/** A lock TTL in ms (`lockTTL`, or the ttl of one call); undefined/null means the default. */
function lockTtl(v, field) {
  if (v === undefined || v === null || v === 0) return undefined // 0: the default, as `ttl || lockTTL` upstream
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > MAX_LOCK_TTL_MS) {
    throw configError(field, `must be a number of milliseconds from 1 to ${MAX_LOCK_TTL_MS}`)
  }
  return v
}

/** The options Rust resolves (`CronOptions`: defaults and checks); the rest are JavaScript values kept here. */
const RESOLVED_KEYS = ['lockTTL', 'lockRetryDelay', 'lockRetryAttempts', 'releaseGuard', 'instanceId', 'keyPrefix', 'tableName', 'connectionString']

function commonOptions(opts, kind = 'cron') {
  const picked = {}
  for (const k of RESOLVED_KEYS) if (opts[k] !== undefined) picked[k] = opts[k]
  const r = resolveOptions(kind, picked)
  const autoRenew = opts.autoRenew
  if (autoRenew !== undefined && typeof autoRenew !== 'boolean' && (typeof autoRenew !== 'object' || autoRenew === null)) {
    throw configError('autoRenew', 'must be a boolean or {interval}')
  }
  if (opts.onLockLost !== undefined && typeof opts.onLockLost !== 'function') throw configError('onLockLost', 'must be a function')
  return {
    ...r,
    enableHealthCheck: opts.enableHealthCheck ?? true,
    autoRenew: autoRenew === true ? {} : autoRenew || null,
    onLockLost: opts.onLockLost || null,
    logger: checkLogger(opts.logger),
  }
}

/** The cron options given in a flat connection object (`{host, port, password, keyPrefix, lockTTL, instanceId, ...}`). */
function flatCronOptions(connection) {
  const out = {}
  if (!connection || typeof connection !== 'object' || isRedisClient(connection)) return out
  for (const k of CRON_OPTION_KEYS) if (connection[k] !== undefined) out[k] = connection[k]
  return out
}

/** Marks adapters whose `acquireLock(job, ttl, {scheduledAt})` locks one tick (used by CronScheduler). */
const TICK_AWARE = Symbol.for('motia-native-adapters.cron.tickAware')

/** Shared behaviour of the lock adapters; subclasses provide `_native`. */
class LockAdapter {
  get [TICK_AWARE]() {
    return true
  }

  constructor(opts) {
    this._log = new AdapterLog(new.target.name, opts.logger)
    this._metrics = new AdapterMetrics(new.target.name, opts.instanceId)
    this._opts = opts
    this.instanceId = opts.instanceId
    this.lockTTL = opts.lockTTL
    this.releaseGuard = opts.releaseGuard
    this._watchdogs = new Map()
  }

  /**
   * Tries to take `jobName` for `ttl` ms (default lockTTL) for one tick: `options.scheduledAt` when
   * the caller knows it, else the tick this call's time falls in. Resolves the lock or null (another
   * replica has this tick, or the job is still running from an earlier tick: logged once per skipped
   * tick); rejects (fails closed) when the backend is down.
   */
  async acquireLock(jobName, ttl, options) {
    const t = lockTtl(ttl, 'ttl') ?? this.lockTTL
    if (typeof jobName !== 'string' && typeof jobName !== 'number') throw configError('jobName', 'must be a string')
    const scheduledAt = scheduledAtOf(options)
    const calledAt = Date.now()
    const attempts = 1 + this._opts.lockRetryAttempts
    for (let i = 0; i < attempts; i++) {
      let result
      try {
        // the event-loop path records its calls in Rust; time the tokio path here
        result = await (this._loop
          ? this._loop.tryAcquire(`${jobName}`, t, calledAt, scheduledAt)
          : this._metrics.time('acquireLock', this._native.tryAcquire(`${jobName}`, t, calledAt, scheduledAt)))
      } catch (e) {
        throw fromNative(e)
      }
      if (result.lock) {
        const lock = JSON.parse(result.lock)
        this._metrics.incr(COUNTERS.acquired)
        if (typeof lock.fencingToken === 'number') this._metrics.gauge(GAUGES.fencingToken, lock.fencingToken)
        if (this._opts.autoRenew) this._startWatchdog(lock, t)
        return lock
      }
      const skipped = result.skippedSince !== undefined && result.skippedSince !== null
      this._metrics.incr(skipped ? COUNTERS.skipped : COUNTERS.refused)
      if (skipped) {
        const tick = new Date(scheduledAt ?? Math.floor(calledAt / 1000) * 1000).toISOString()
        this._log.warn('acquireLock', `cron job "${jobName}": tick ${tick} skipped, the run of ${new Date(result.skippedSince).toISOString()} still holds the lock`, {
          job: `${jobName}`,
          tick,
        })
      }
      if (i + 1 < attempts) await sleep(this._opts.lockRetryDelay)
    }
    return null
  }

  /** Releases a lock this instance holds (lockId and this adapter's instanceId checked on the server); the record stays to refuse its own tick to late replicas. */
  async releaseLock(lock) {
    if (!lock || typeof lock !== 'object') throw configError('lock', 'must be the CronLock returned by acquireLock')
    this._stopWatchdog(lock.lockId)
    try {
      const text = JSON.stringify(lock)
      const held = await (this._loop ? this._loop.release(text) : this._metrics.time('releaseLock', this._native.release(text)))
      if (held) this._metrics.incr(COUNTERS.released)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Extends a lock this instance holds to now + ttl. False when this adapter does not hold it (or the backend is unreachable). */
  async renewLock(lock, ttl) {
    if (!lock || typeof lock !== 'object') return false
    const t = lockTtl(ttl, 'ttl') ?? this.lockTTL
    try {
      const ok = await this._metrics.time('renewLock', this._native.renew(JSON.stringify(lock), t))
      this._metrics.incr(ok ? COUNTERS.renewed : COUNTERS.lost)
      return ok
    } catch {
      return false
    }
  }

  /** Locks currently held by any instance (released guards excluded). */
  async getActiveLocks() {
    try {
      return JSON.parse(await this._native.activeLocks())
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Acquisitions (acquired, refused, ticks skipped), releases, renewals, lost locks, the last fencing token and call latencies: see README "Metrics". */
  metrics() {
    return this._metrics.snapshot()
  }

  /** True when the backend answers (always true with enableHealthCheck: false). */
  async isHealthy() {
    if (!this._opts.enableHealthCheck) return true
    try {
      return await this._native.ping()
    } catch {
      return false
    }
  }

  _startWatchdog(lock, ttl) {
    const interval = (this._opts.autoRenew && this._opts.autoRenew.interval) || Math.max(50, Math.floor(ttl / 3))
    let failures = 0
    const timer = setInterval(async () => {
      let ok
      try {
        ok = await this._native.renew(JSON.stringify(lock), ttl)
      } catch (e) {
        // backend unreachable: keep trying until the lock would have expired
        if (++failures * interval >= ttl) ok = false
        else return
      }
      if (!this._watchdogs.has(lock.lockId)) return
      if (ok) {
        failures = 0
        lock.expiresAt = Date.now() + ttl
        this._metrics.incr(COUNTERS.renewed)
        return
      }
      this._metrics.incr(COUNTERS.lost)
      this._stopWatchdog(lock.lockId)
      const report = this._opts.onLockLost
      if (report) {
        try {
          report(lock)
        } catch {}
      } else {
        this._log.warn('renewLock', `lost cron lock "${lock.jobName}" (${lock.lockId}); stopped renewing it`, { job: lock.jobName, lockId: lock.lockId })
      }
    }, interval)
    timer.unref()
    this._watchdogs.set(lock.lockId, timer)
  }

  _stopWatchdog(lockId) {
    const t = this._watchdogs.get(lockId)
    if (t) {
      clearInterval(t)
      this._watchdogs.delete(lockId)
    }
  }

  _stopAllWatchdogs() {
    for (const id of [...this._watchdogs.keys()]) this._stopWatchdog(id)
  }
}

/**
 * Drop-in for `@motiadev/adapter-redis-cron@0.17`: same key (`${keyPrefix}${jobName}`) and lock JSON,
 * so upstream pods and ours exclude each other.
 */
class RedisCronAdapter extends LockAdapter {
  constructor(connection, options) {
    const { connection: conn, legacy } = normalizeRedis(connection)
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw configError('options', 'must be an object')
    }
    const raw = { ...legacy, ...flatCronOptions(connection), ...(options || {}) }
    const opts = commonOptions(raw)
    const keyPrefix = opts.keyPrefix
    super(opts)
    this.keyPrefix = keyPrefix
    const connJson = JSON.stringify(conn)
    try {
      this._native = new NativeRedisCron(connJson, keyPrefix, opts.instanceId, opts.releaseGuard)
      // acquire/release on Node's own event loop (no thread hop); null for TLS, Bun, Deno
      this._loop = jsLoopAllowed() ? createRedisCronLoop(this._native, connJson, MotiaAdapterError, this._metrics.native) : null
    } catch (e) {
      throw fromNative(e)
    }
    this._metrics.loops.push(this._loop)
    this._metrics.pair = this._native
  }

  /** Stops watchdogs, deletes the unreleased locks this instance holds, and closes our connections. */
  async shutdown() {
    this._stopAllWatchdogs()
    try {
      if (this._loop) await this._loop.close()
      await this._native.shutdown()
    } catch {
      // backend down: held locks expire by their TTL
    }
  }
}

/** The `{connectionString, tableName}` config of the SQL lock adapters (checked by Rust's `CronOptions`). */
function sqlConfig(config) {
  if (!config || typeof config !== 'object') throw configError('config', 'expected {connectionString, lockTTL?, instanceId?, tableName?}')
  const opts = commonOptions(config, 'cron-sql')
  return { opts, tableName: opts.tableName }
}

/** Cron locks in a PostgreSQL table (created on first use). */
class PostgresCronAdapter extends LockAdapter {
  constructor(config) {
    const { opts, tableName } = sqlConfig(config)
    const ssl = pgSsl(config.ssl)
    super(opts)
    this.tableName = tableName
    try {
      this._native = new NativePostgresCron(config.connectionString, tableName, opts.instanceId, opts.releaseGuard, ssl)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Stops watchdogs, frees the locks this instance holds, and closes the connection. */
  async shutdown() {
    this._stopAllWatchdogs()
    try {
      await this._native.shutdown()
    } catch {
      // database down: held locks expire by their TTL
    }
  }
}

/**
 * Cron locks in a MySQL or MariaDB (InnoDB) table, created on first use; the semantics of
 * PostgresCronAdapter. `connectionString`: `mysql://user:pass@host:3306/database` (no TLS; `connect_timeout`
 * in seconds, default 10).
 */
class MySqlCronAdapter extends LockAdapter {
  constructor(config) {
    const { opts, tableName } = sqlConfig(config)
    super(opts)
    this.tableName = tableName
    try {
      this._native = new NativeMySqlCron(config.connectionString, tableName, opts.instanceId, opts.releaseGuard)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Stops watchdogs, frees the locks this instance holds, and closes the connections. */
  async shutdown() {
    this._stopAllWatchdogs()
    try {
      await this._native.shutdown()
    } catch {
      // database down: held locks expire by their TTL
    }
  }
}

module.exports = { RedisCronAdapter, PostgresCronAdapter, MySqlCronAdapter, DEFAULT_CRON_PREFIX, DEFAULT_RELEASE_GUARD, TICK_AWARE }
