'use strict'
/**
 * Coalesces the single-key calls issued in one tick into one native call.
 *
 * Crossing into Rust costs ~15-45 µs per awaited call, so one call per Redis command is no
 * faster than a JS client. Instead, calls are queued; a flush is scheduled on a microtask, and
 * while `maxInFlight` batches are already running, new calls wait and go out together when one
 * returns (like auto-pipelining). Rust sends a whole batch as one Redis pipeline, in order, so
 * calls from one process keep their order.
 */
const { fromNative } = require('./errors.js')

const MAX_BATCH = 512

class Batcher {
  /**
   * @param {(kinds: number[], traces: string[], keys: string[], values: string[]) => Promise<string>} send
   * @param {number} maxInFlight
   */
  constructor(send, maxInFlight = Number(process.env.MOTIA_NATIVE_MAX_IN_FLIGHT || 2)) {
    this.send = send
    this.maxInFlight = maxInFlight
    this.inFlight = 0
    this.scheduled = false
    this.reset()
    this.flush = this.flush.bind(this)
    this.idleWaiters = []
  }

  reset() {
    this.kinds = []
    this.traces = []
    this.keys = []
    this.values = []
    this.waiters = []
  }

  /** Queues one op; `result(raw)` maps the op's parsed reply to the resolved value. */
  push(kind, trace, key, value, result) {
    return new Promise((resolve, reject) => {
      this.kinds.push(kind)
      this.traces.push(trace)
      this.keys.push(key)
      this.values.push(value)
      this.waiters.push({ resolve, reject, result })
      this.schedule()
    })
  }

  schedule() {
    if (!this.scheduled && this.inFlight < this.maxInFlight) {
      this.scheduled = true
      queueMicrotask(this.flush)
    }
  }

  flush() {
    this.scheduled = false
    if (this.waiters.length === 0 || this.inFlight >= this.maxInFlight) return
    let { kinds, traces, keys, values, waiters } = this
    if (waiters.length > MAX_BATCH) {
      this.kinds = kinds.slice(MAX_BATCH)
      this.traces = traces.slice(MAX_BATCH)
      this.keys = keys.slice(MAX_BATCH)
      this.values = values.slice(MAX_BATCH)
      this.waiters = waiters.slice(MAX_BATCH)
      kinds = kinds.slice(0, MAX_BATCH)
      traces = traces.slice(0, MAX_BATCH)
      keys = keys.slice(0, MAX_BATCH)
      values = values.slice(0, MAX_BATCH)
      waiters = waiters.slice(0, MAX_BATCH)
    } else {
      this.reset()
    }
    this.inFlight++
    let call
    try {
      call = this.send(kinds, traces, keys, values)
    } catch (e) {
      call = Promise.reject(e)
    }
    call.then(
      (text) => {
        let replies
        try {
          replies = JSON.parse(text)
        } catch (e) {
          for (const w of waiters) w.reject(fromNative(e))
          return
        }
        for (let i = 0; i < waiters.length; i++) {
          const r = replies[i]
          const w = waiters[i]
          if (r[0] === 0) w.resolve(w.result(r[1]))
          else w.reject(fromNative(new Error(r[2])))
        }
      },
      (err) => {
        const e = fromNative(err)
        for (const w of waiters) w.reject(e)
      },
    ).finally(() => {
      this.inFlight--
      if (this.waiters.length > 0) this.schedule()
      else if (this.inFlight === 0) this.notifyIdle()
    })
  }

  notifyIdle() {
    const ws = this.idleWaiters
    this.idleWaiters = []
    for (const w of ws) w()
  }

  /** Resolves when every queued and in-flight call has settled. */
  idle() {
    if (this.inFlight === 0 && this.waiters.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

module.exports = { Batcher }
