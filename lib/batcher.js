'use strict'
/**
 * Coalesces the single-key calls issued in one tick into one native call.
 *
 * Crossing into Rust costs ~15-70 µs per awaited call on small machines (thread wake-ups), so one
 * call per Redis command is no faster than a JS client. Instead, calls are queued as rows of a few
 * columns; a flush is scheduled on a microtask, and while `maxInFlight` batches are already running,
 * new calls wait and go out together when one returns (like auto-pipelining). Rust sends a whole
 * batch as one Redis pipeline, in order, so calls from one process keep their order.
 */
const { fromNative } = require('./errors.js')

const MAX_BATCH = 512

class Batcher {
  /**
   * @param {(...columns: any[][]) => Promise<string>} send  receives one array per column, resolves
   *        a JSON array with `[0, value]` or `[1, code, message]` per row
   * @param {number} columns
   * @param {number} maxInFlight
   */
  constructor(send, columns, maxInFlight = Number(process.env.MOTIA_NATIVE_MAX_IN_FLIGHT || 2)) {
    this.send = send
    this.columns = columns
    this.maxInFlight = maxInFlight
    this.inFlight = 0
    this.scheduled = false
    this.idleWaiters = []
    this.flush = this.flush.bind(this)
    this.reset()
  }

  reset() {
    this.cols = Array.from({ length: this.columns }, () => [])
    this.waiters = []
  }

  /** Queues one row; `result(value)` maps the row's reply to what the promise resolves with. */
  push(row, result) {
    return new Promise((resolve, reject) => {
      for (let c = 0; c < this.columns; c++) this.cols[c].push(row[c])
      this.waiters.push({ resolve, reject, result })
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true
        queueMicrotask(this.flush)
      }
    })
  }

  flush() {
    this.scheduled = false
    if (this.waiters.length === 0 || this.inFlight >= this.maxInFlight) return
    let cols = this.cols
    let waiters = this.waiters
    if (waiters.length > MAX_BATCH) {
      this.cols = cols.map((col) => col.slice(MAX_BATCH))
      this.waiters = waiters.slice(MAX_BATCH)
      cols = cols.map((col) => col.slice(0, MAX_BATCH))
      waiters = waiters.slice(0, MAX_BATCH)
    } else {
      this.reset()
    }
    this.inFlight++
    let call
    try {
      call = this.send(...cols)
    } catch (e) {
      call = Promise.reject(e)
    }
    call
      .then(
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
      )
      .finally(() => {
        this.inFlight--
        if (this.waiters.length > 0) {
          if (!this.scheduled) {
            this.scheduled = true
            queueMicrotask(this.flush)
          }
        } else if (this.inFlight === 0) {
          const ws = this.idleWaiters
          this.idleWaiters = []
          for (const w of ws) w()
        }
      })
  }

  /** Resolves when every queued and in-flight call has settled. */
  idle() {
    if (this.inFlight === 0 && this.waiters.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

module.exports = { Batcher, MAX_BATCH }
