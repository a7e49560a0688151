'use strict'
/**
 * The one place the package writes log lines. Every adapter takes `logger` (anything with
 * `debug/info/warn/error(message, meta?)`: console, pino, Motia's logger); without one, lines go to
 * the console. Each line's meta carries the adapter, the operation and, for failures, the error code.
 * A failure that repeats (same key) is logged once, then summarised at most once per
 * `REPEAT_SUMMARY_MS`, and one line says when it recovered.
 */
const { configError } = require('./errors.js')

const PREFIX = '[motia-native-adapters]'
/** Repeated failures: at most one summary line per this many ms per key. */
const REPEAT_SUMMARY_MS = 30000
const LEVELS = ['debug', 'info', 'warn', 'error']

/** Validates a `logger` option: undefined/null (console) or an object with the four level methods. */
function checkLogger(logger, field = 'logger') {
  if (logger === undefined || logger === null) return null
  if (typeof logger !== 'object' && typeof logger !== 'function') throw configError(field, 'must be an object with debug/info/warn/error methods')
  for (const l of ['warn', 'error']) {
    if (typeof logger[l] !== 'function') throw configError(field, `must have a ${l}(message, meta) method`)
  }
  return logger
}

function codeOf(err) {
  return err && typeof err.code === 'string' ? err.code : undefined
}

/** A thrown value as text: an Error's message, a string as is, anything else as JSON. */
function describe(err) {
  if (err instanceof Error) return err.message
  try {
    return typeof err === 'string' ? err : JSON.stringify(err)
  } catch {
    return String(err)
  }
}

class AdapterLog {
  /**
   * @param {string} adapter class name, e.g. 'RedisCronAdapter'
   * @param {object|null} logger
   * @param {() => number} [now]
   */
  constructor(adapter, logger, now = Date.now) {
    this.adapter = adapter
    this.logger = logger || null
    this.now = now
    this.repeats = new Map()
  }

  /** `meta.error` (an Error or anything thrown) becomes `error` (its message) and `code`. */
  line(level, op, message, meta) {
    const m = { adapter: this.adapter, op }
    if (meta) {
      for (const [k, v] of Object.entries(meta)) {
        if (k === 'error') {
          m.error = describe(v)
          const code = codeOf(v)
          if (code && m.code === undefined) m.code = code
        } else if (v !== undefined) m[k] = v
      }
    }
    const lg = this.logger
    if (lg) {
      const f = typeof lg[level] === 'function' ? lg[level] : level === 'error' ? lg.error : lg.warn
      try {
        f.call(lg, message, m)
      } catch {
        // a broken logger must not break the adapter
      }
      return
    }
    const detail = m.error ? `: ${m.error}` : ''
    const code = m.code ? ` [${m.code}]` : ''
    console[level](`${PREFIX} ${this.adapter} ${op}: ${message}${code}${detail}`)
  }

  /**
   * A failure that may repeat (backend down, consumer retrying): logged at once the first time for
   * `key`, then as one summary line per REPEAT_SUMMARY_MS with the count.
   */
  repeated(level, key, op, message, meta) {
    const now = this.now()
    const r = this.repeats.get(key)
    if (!r) {
      this.repeats.set(key, { last: now, count: 0 })
      this.line(level, op, message, meta)
      return
    }
    r.count++
    if (now - r.last >= REPEAT_SUMMARY_MS) {
      this.line(level, op, `${message} (${r.count} more time(s) in the last ${Math.round((now - r.last) / 1000)} s)`, meta)
      r.last = now
      r.count = 0
    }
  }

  /** Ends a `repeated` series with one line (nothing when `key` was not failing). */
  recovered(key, op, message) {
    if (this.repeats.delete(key)) this.line('info', op, message)
  }
}

for (const level of LEVELS) {
  AdapterLog.prototype[level] = function (op, message, meta) {
    this.line(level, op, message, meta)
  }
}

module.exports = { AdapterLog, checkLogger, describe, REPEAT_SUMMARY_MS }
