'use strict'
/**
 * Metrics and health of the adapters. Each adapter owns an `AdapterMetrics`: a handle to its
 * Rust-side `NativeMetrics` (counters, gauges, hdrhistogram latencies per method). The event-loop
 * Redis path records its calls in Rust; the JS layer records what it does (tokio-path calls,
 * handler runs, event outcomes, cron decisions) through sync calls. `adapter.metrics()` returns a
 * snapshot; `prometheusMetrics(adapters)` the Prometheus text format; `registerOpenTelemetry`
 * observable OTel instruments; `health(adapters)` a readiness summary.
 */
const os = require('node:os')
const { NativeMetrics } = require('./native.js')

/** Prefix of every Prometheus metric name. */
const PROM_PREFIX = 'motia_adapter_'
/** Default bound of one adapter's health round trip. */
const DEFAULT_HEALTH_TIMEOUT_MS = 2000
const DEFAULT_INSTANCE = `${os.hostname()}:${process.pid}`

/** Every counter an adapter may report (camelCase here; `snake_case_total` in Prometheus). */
const COUNTERS = {
  reconnects: 'reconnects',
  delivered: 'eventsDelivered',
  redelivered: 'eventsRedelivered',
  retried: 'eventsRetried',
  acked: 'eventsAcked',
  deadLettered: 'eventsDeadLettered',
  requeued: 'eventsRequeued',
  acquired: 'cronAcquired',
  refused: 'cronRefused',
  skipped: 'cronTicksSkipped',
  released: 'cronReleased',
  renewed: 'cronRenewed',
  lost: 'cronLost',
  pairSwitches: 'redisSwitches',
}
/** Every gauge an adapter may report. */
const GAUGES = { inFlight: 'inFlight', fencingToken: 'cronFencingToken', pairServer: 'redisServer' }

/** The error code a failure is counted under: a code string as is, an error's `code`, else MOTIA_ERROR. */
function codeOf(err) {
  if (typeof err === 'string') return err
  return (err && typeof err.code === 'string' && err.code) || 'MOTIA_ERROR'
}

class AdapterMetrics {
  /**
   * @param {string} adapter class name, the `adapter` label
   * @param {string} [instance] the `instance` label (default `hostname:pid`)
   */
  constructor(adapter, instance) {
    this.adapter = adapter
    this.instance = instance || DEFAULT_INSTANCE
    // MOTIA_NATIVE_METRICS=0: record nothing (to measure what metrics cost; bench/metrics.bench.mjs)
    this.native = new NativeMetrics(process.env.MOTIA_NATIVE_METRICS !== '0')
    /** Event-loop connections whose in-flight calls and reconnects the snapshot adds. */
    this.loops = []
    /** The native class whose `pairState()` ([switches, server in use]) a primary/secondary pair reports. */
    this.pair = null
    this.inFlight = 0
  }

  /** Times `promise`, a call of `method`: counts it, its latency and, when it rejects, its error code. */
  time(method, promise) {
    const t0 = performance.now()
    this.inFlight++
    return promise.then(
      (v) => {
        this.inFlight--
        this.native.record(method, (performance.now() - t0) / 1000, null)
        return v
      },
      (e) => {
        this.inFlight--
        this.native.record(method, (performance.now() - t0) / 1000, codeOf(e))
        throw e
      },
    )
  }

  /** Records one finished `method` run of `seconds` (failed with `err`, an error or a code, when given). */
  record(method, seconds, err) {
    this.native.record(method, seconds, err === undefined || err === null ? null : codeOf(err))
  }

  incr(name, n = 1) {
    if (n > 0) this.native.incr(name, n)
  }

  gauge(name, value) {
    this.native.gauge(name, value)
  }

  /** `{adapter, instance, methods, errors, counters, gauges}`; see `metrics()` in the README. */
  snapshot() {
    const s = JSON.parse(this.native.snapshot())
    let inFlight = this.inFlight
    let reconnects = 0
    for (const loop of this.loops) {
      if (!loop) continue
      const [pending, r] = loop.stats()
      inFlight += pending
      reconnects += r
    }
    s.gauges[GAUGES.inFlight] = inFlight
    const pair = this.pair ? this.pair.pairState() : null
    if (pair) {
      s.counters[COUNTERS.pairSwitches] = pair[0]
      s.gauges[GAUGES.pairServer] = pair[1] // 0: the primary, 1: the secondary
    }
    if (reconnects) s.counters[COUNTERS.reconnects] = (s.counters[COUNTERS.reconnects] || 0) + reconnects
    return { adapter: this.adapter, instance: this.instance, ...s }
  }
}

/** `isHealthy()` of one adapter bounded by `timeoutMs`: `{name, ok, latencyMs, error?}`. */
async function checkOne(adapter, timeoutMs) {
  const name = (adapter && adapter.constructor && adapter.constructor.name) || 'adapter'
  const t0 = performance.now()
  let timer
  try {
    if (!adapter || typeof adapter.isHealthy !== 'function') throw new Error('has no isHealthy()')
    const ok = await Promise.race([
      Promise.resolve().then(() => adapter.isHealthy()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    const latencyMs = Math.round((performance.now() - t0) * 1000) / 1000
    return ok === true ? { name, ok: true, latencyMs } : { name, ok: false, latencyMs, error: 'not connected' }
  } catch (e) {
    return { name, ok: false, latencyMs: Math.round((performance.now() - t0) * 1000) / 1000, error: e && e.message ? e.message : String(e) }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Readiness of several adapters at once: `{ ok, adapters: [{ name, ok, latencyMs, error? }] }`,
 * each check bounded by `options.timeoutMs` (default 2000). `ok` is true when every adapter is.
 */
async function health(adapters, options = {}) {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS
  const list = Array.isArray(adapters) ? adapters : Object.values(adapters || {})
  const results = await Promise.all(list.map((a) => checkOne(a, timeoutMs)))
  return { ok: results.every((r) => r.ok), adapters: results }
}

function snapshots(adapters) {
  const list = Array.isArray(adapters) ? adapters : Object.values(adapters || {})
  const out = []
  const seen = new Map()
  for (const a of list) {
    if (!a || typeof a.metrics !== 'function') continue
    const s = a.metrics()
    // two adapters of one class in a process: the second is `Class#2`, so no series repeats
    const n = (seen.get(s.adapter) || 0) + 1
    seen.set(s.adapter, n)
    if (n > 1) s.adapter = `${s.adapter}#${n}`
    out.push(s)
  }
  return out
}

const escapeLabel = (v) => String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const snake = (name) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()
function labels(obj) {
  return `{${Object.entries(obj)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`
}

/**
 * The adapters' metrics in the Prometheus text exposition format (version 0.0.4), for a
 * `GET /metrics` endpoint. Names: `motia_adapter_calls_total`, `motia_adapter_errors_total`,
 * `motia_adapter_call_duration_seconds` (histogram), `motia_adapter_<counter>_total` (e.g.
 * `events_acked`, `cron_acquired`), `motia_adapter_<gauge>` (e.g. `in_flight`); labels `adapter`,
 * `instance`, and `method`/`code` where they apply.
 */
function prometheusMetrics(adapters) {
  const families = new Map() // name -> {type, help, lines[]}
  const family = (name, type, help) => {
    let f = families.get(name)
    if (!f) families.set(name, (f = { type, help, lines: [] }))
    return f
  }
  for (const s of snapshots(adapters)) {
    const base = { adapter: s.adapter, instance: s.instance }
    for (const [method, m] of Object.entries(s.methods)) {
      const l = { ...base, method }
      family(`${PROM_PREFIX}calls_total`, 'counter', 'Calls made, by method.').lines.push(`${PROM_PREFIX}calls_total${labels(l)} ${m.calls}`)
      const h = family(`${PROM_PREFIX}call_duration_seconds`, 'histogram', 'Call latency in seconds, by method.')
      for (const [le, count] of m.seconds.buckets) h.lines.push(`${PROM_PREFIX}call_duration_seconds_bucket${labels({ ...l, le })} ${count}`)
      h.lines.push(`${PROM_PREFIX}call_duration_seconds_bucket${labels({ ...l, le: '+Inf' })} ${m.seconds.count}`)
      h.lines.push(`${PROM_PREFIX}call_duration_seconds_sum${labels(l)} ${m.seconds.sum}`)
      h.lines.push(`${PROM_PREFIX}call_duration_seconds_count${labels(l)} ${m.seconds.count}`)
    }
    for (const e of s.errors) {
      family(`${PROM_PREFIX}errors_total`, 'counter', 'Failed calls, by method and error code.').lines.push(
        `${PROM_PREFIX}errors_total${labels({ ...base, method: e.method, code: e.code })} ${e.count}`,
      )
    }
    for (const [name, v] of Object.entries(s.counters)) {
      const n = `${PROM_PREFIX}${snake(name)}_total`
      family(n, 'counter', `Count of ${snake(name).replace(/_/g, ' ')}.`).lines.push(`${n}${labels(base)} ${v}`)
    }
    for (const [name, v] of Object.entries(s.gauges)) {
      const n = `${PROM_PREFIX}${snake(name)}`
      family(n, 'gauge', `Current ${snake(name).replace(/_/g, ' ')}.`).lines.push(`${n}${labels(base)} ${v}`)
    }
    for (const r of s.lag || []) {
      const l = labels({ ...base, topic: r.topic, step: r.step ?? '' })
      family(`${PROM_PREFIX}consumer_lag_events`, 'gauge', 'Events waiting for a consumer of the step (last sample).').lines.push(
        `${PROM_PREFIX}consumer_lag_events${l} ${r.waiting}`,
      )
      if (r.unsettled !== null && r.unsettled !== undefined) {
        family(`${PROM_PREFIX}consumer_unsettled_events`, 'gauge', 'Events delivered and not settled yet (last sample).').lines.push(
          `${PROM_PREFIX}consumer_unsettled_events${l} ${r.unsettled}`,
        )
      }
    }
  }
  let text = ''
  for (const [name, f] of families) text += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`
  return text
}

/**
 * Exposes the same metrics as observable OpenTelemetry instruments on `options.meter` (default:
 * `@opentelemetry/api`'s global meter provider, meter `motia-native-adapters`; the package must be
 * installed). Instruments: `motia.adapter.calls`, `motia.adapter.errors`, `motia.adapter.<counter>`
 * (counters) and `motia.adapter.call.duration` (gauge of p50/p90/p99 in seconds, attribute
 * `quantile`), `motia.adapter.<gauge>`. Returns a function that unregisters them.
 */
function registerOpenTelemetry(adapters, options = {}) {
  let meter = options.meter
  if (!meter) {
    let api
    try {
      api = require('@opentelemetry/api')
    } catch {
      throw Object.assign(new Error('registerOpenTelemetry needs @opentelemetry/api (npm install @opentelemetry/api)'), { code: 'MOTIA_CONFIG' })
    }
    meter = api.metrics.getMeter('motia-native-adapters')
  }
  const calls = meter.createObservableCounter('motia.adapter.calls', { description: 'Calls made, by method.' })
  const errors = meter.createObservableCounter('motia.adapter.errors', { description: 'Failed calls, by method and error code.' })
  const duration = meter.createObservableGauge('motia.adapter.call.duration', { description: 'Call latency quantiles.', unit: 's' })
  const otelName = (name) => `motia.adapter.${snake(name).replace(/_/g, '.')}`
  const counters = new Map(Object.values(COUNTERS).map((n) => [n, meter.createObservableCounter(otelName(n))]))
  const gauges = new Map(Object.values(GAUGES).map((n) => [n, meter.createObservableGauge(otelName(n))]))
  const lag = meter.createObservableGauge('motia.adapter.consumer.lag', { description: 'Events waiting for a consumer of the step.' })
  const callback = (result) => {
    for (const s of snapshots(adapters)) {
      const base = { adapter: s.adapter, instance: s.instance }
      for (const [method, m] of Object.entries(s.methods)) {
        result.observe(calls, m.calls, { ...base, method })
        for (const q of ['p50', 'p90', 'p99']) result.observe(duration, m.seconds[q], { ...base, method, quantile: q })
      }
      for (const e of s.errors) result.observe(errors, e.count, { ...base, method: e.method, code: e.code })
      for (const [name, v] of Object.entries(s.counters)) if (counters.has(name)) result.observe(counters.get(name), v, base)
      for (const [name, v] of Object.entries(s.gauges)) if (gauges.has(name)) result.observe(gauges.get(name), v, base)
      for (const r of s.lag || []) result.observe(lag, r.waiting, { ...base, topic: r.topic, step: r.step ?? '' })
    }
  }
  const observables = () => [calls, errors, duration, lag, ...counters.values(), ...gauges.values()]
  meter.addBatchObservableCallback(callback, observables())
  return () => meter.removeBatchObservableCallback(callback, observables())
}

module.exports = { AdapterMetrics, COUNTERS, GAUGES, health, prometheusMetrics, registerOpenTelemetry, PROM_PREFIX, DEFAULT_HEALTH_TIMEOUT_MS }
