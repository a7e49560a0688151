'use strict'
/**
 * CronScheduler: runs handlers on node-cron style schedules across replicas, once per tick.
 *
 * With our lock adapters every replica asks for the job's lock with the tick it fires for
 * (`acquireLock(name, ttl, {scheduledAt})`): one winner per tick however far apart the timers fire,
 * the lock is released when the handler ends (the record still refuses that tick), and a tick that
 * comes while the previous run is still going is skipped (`onSkip`). With other CronAdapters (which
 * know no ticks) each tick's lock is named `${name}@${scheduledTimeMs}` and left to expire, so a late
 * replica cannot take it again. A watchdog renews the lock while the handler runs.
 */
const native = require('./native.js')
const { AdapterLog, checkLogger } = require('./log.js')
const { fromNative, configError } = require('./errors.js')
const { TICK_AWARE } = require('./cron.js')

const DEFAULT_SCHEDULER_LOCK_TTL = 60000
const MAX_TIMEOUT = 2 ** 31 - 1

function nextRuns(expression, { timezone, after = Date.now(), count = 1 } = {}) {
  if (typeof expression !== 'string') throw configError('expression', 'must be a string')
  try {
    return native.nextCronTimes(expression, timezone ?? null, after, count)
  } catch (e) {
    throw fromNative(e)
  }
}

/** True when `expression` is a valid node-cron style expression (5 fields, or 6 with seconds). */
function validateCronExpression(expression) {
  try {
    nextRuns(expression)
    return true
  } catch {
    return false
  }
}

class CronScheduler {
  /**
   * @param cronAdapter any Motia CronAdapter (ours or upstream)
   * @param options {onError?(error, jobName), onSkip?(jobName, scheduledAt), logger?}
   */
  constructor(cronAdapter, options = {}) {
    if (!cronAdapter || typeof cronAdapter.acquireLock !== 'function') throw configError('cronAdapter', 'must implement CronAdapter')
    this.adapter = cronAdapter
    this.options = options || {}
    this._log = new AdapterLog('CronScheduler', checkLogger(this.options.logger))
    this.jobs = new Map()
    this.running = new Set()
    this.stopped = false
  }

  /**
   * Schedules `handler` under `name`. Rejects (MOTIA_CONFIG, quoting the expression) for an invalid
   * expression or time zone. The handler gets `{name, scheduledAt, lock}` and is awaited.
   */
  async schedule(name, expression, handler, options = {}) {
    if (typeof name !== 'string' || name === '') throw configError('name', 'must be a non-empty string')
    if (typeof handler !== 'function') throw configError('handler', 'must be a function')
    if (this.jobs.has(name)) throw configError('name', `a job named "${name}" is already scheduled`)
    if (this.stopped) throw configError('scheduler', 'was stopped')
    const timezone = options.timezone
    const lockTTL = options.lockTTL ?? DEFAULT_SCHEDULER_LOCK_TTL
    if (typeof lockTTL !== 'number' || !(lockTTL > 0)) throw configError('lockTTL', 'must be a positive number of milliseconds')
    nextRuns(expression, { timezone }) // throws with the expression quoted
    const job = { name, expression, handler, timezone, lockTTL, timer: null, runs: 0 }
    this.jobs.set(name, job)
    this._arm(job)
  }

  /** Stops one job's future ticks. */
  unschedule(name) {
    const job = this.jobs.get(name)
    if (job) {
      clearTimeout(job.timer)
      this.jobs.delete(name)
    }
  }

  /** Stops all future ticks and waits for running handlers to finish. */
  async stop() {
    this.stopped = true
    for (const name of [...this.jobs.keys()]) this.unschedule(name)
    await Promise.allSettled([...this.running])
  }

  _arm(job, after = Date.now()) {
    if (!this.jobs.has(job.name)) return
    const [at] = nextRuns(job.expression, { timezone: job.timezone, after })
    const wait = Math.min(MAX_TIMEOUT, Math.max(0, at - Date.now()))
    job.timer = setTimeout(() => {
      if (Date.now() < at) return this._arm(job, after) // a long wait was capped
      this._arm(job, at)
      const run = this._tick(job, at)
      this.running.add(run)
      run.finally(() => this.running.delete(run))
    }, wait)
  }

  async _tick(job, scheduledAt) {
    const ticks = this.adapter[TICK_AWARE] === true
    let lock
    try {
      lock = ticks
        ? await this.adapter.acquireLock(job.name, job.lockTTL, { scheduledAt })
        : await this.adapter.acquireLock(`${job.name}@${scheduledAt}`, job.lockTTL)
    } catch (e) {
      this._report(e, job.name) // backend down: fail closed, no run
      return
    }
    if (!lock) {
      if (this.options.onSkip) this.options.onSkip(job.name, scheduledAt)
      return
    }
    const renewEvery = Math.max(50, Math.floor(job.lockTTL / 3))
    const renewer = setInterval(() => {
      Promise.resolve(this.adapter.renewLock(lock, job.lockTTL)).catch(() => {})
    }, renewEvery)
    renewer.unref()
    try {
      job.runs++
      await job.handler({ name: job.name, scheduledAt, lock })
    } catch (e) {
      this._report(e, job.name)
    } finally {
      clearInterval(renewer)
      // a tick-aware lock keeps refusing this tick after release; a per-tick lock is left to expire
      if (ticks) await Promise.resolve(this.adapter.releaseLock(lock)).catch(() => {})
    }
  }

  _report(error, name) {
    if (this.options.onError) {
      try {
        this.options.onError(error, name)
      } catch {}
    } else {
      this._log.error('run', `cron job "${name}" failed`, { job: name, error })
    }
  }
}

module.exports = { CronScheduler, validateCronExpression, nextCronRuns: nextRuns }
