// Broker-free unit tests of the two JS engines every adapter shares: the event Dispatcher (lib/events.js:
// retries, dead-lettering, FIFO per group, concurrency, drain on stop) and the call Batcher (lib/batcher.js:
// order, max in flight, error fan-out). The native side is faked with plain functions; no broker, no Redis.
import { createRequire } from 'node:module'
import { jest } from '@jest/globals'

const require = createRequire(import.meta.url)
const { Dispatcher, Outcome, normalizeQueueConfig } = require('../lib/events.js')
const { Batcher, MAX_BATCH } = require('../lib/batcher.js')
const { MotiaAdapterError } = require('../lib/errors.js')

// everything here settles in milliseconds: a promise that never settles is a failure, not a 60 s wait
jest.setTimeout(10000)

/** A promise with its resolve/reject outside. */
function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Lets every queued promise callback run (setImmediate comes after the microtask queue is empty). */
const tick = () => new Promise((r) => setImmediate(r))

const delivery = (id, event = { topic: 't', id }, extra = {}) => ({ id, event, priorFailures: 0, ...extra })

describe('Dispatcher', () => {
  let warnings, errors
  beforeEach(() => {
    warnings = []
    errors = []
    jest.spyOn(console, 'warn').mockImplementation((m) => warnings.push(String(m)))
    jest.spyOn(console, 'error').mockImplementation((m) => errors.push(String(m)))
  })
  afterEach(() => jest.restoreAllMocks())

  /** A Dispatcher whose settle() records `[delivery id, outcome]`. */
  function dispatcher({ handler, queue = {}, limit = 1 }) {
    const settled = []
    const d = new Dispatcher({
      handler,
      queue: normalizeQueueConfig(queue),
      limit,
      label: 'test-queue',
      settle: (del, outcome) => settled.push([del.id, outcome]),
    })
    return { d, settled }
  }

  /** A handler that records the ids it started and finishes each one when told to. */
  function gated() {
    const started = []
    const gates = new Map()
    let running = 0
    let maxRunning = 0
    const handler = (event) => {
      started.push(event.id)
      running++
      maxRunning = Math.max(maxRunning, running)
      const g = deferred()
      gates.set(event.id, g)
      return g.promise.finally(() => running--)
    }
    return { handler, started, gates, maxRunning: () => maxRunning }
  }

  /** A handler that always throws, counting its runs. */
  function alwaysFails() {
    let runs = 0
    const handler = () => {
      runs++
      throw new Error('fails')
    }
    return { handler, runs: () => runs }
  }

  test('a failed handler runs again after delaySeconds with the same event, and is acked once it succeeds', async () => {
    const runs = []
    const handler = async (event) => {
      runs.push({ event, at: Date.now() })
      if (runs.length < 3) throw new Error(`boom ${runs.length}`)
    }
    const { d, settled } = dispatcher({ handler, queue: { maxRetries: 3, delaySeconds: 0.1 } })
    const event = { topic: 't', id: 1, data: { n: 1 } }
    d.push(delivery(1, event))
    expect(settled).toEqual([])
    expect(await d.idle(5000)).toBe(true)
    expect(runs).toHaveLength(3)
    for (const r of runs) expect(r.event).toBe(event)
    expect(runs[1].at - runs[0].at).toBeGreaterThanOrEqual(95)
    expect(runs[2].at - runs[1].at).toBeGreaterThanOrEqual(95)
    expect(settled).toEqual([[1, Outcome.ACK]])
    expect(warnings).toHaveLength(2)
    expect(warnings[0]).toMatch(/test-queue: handler failed \(attempt 1 of 4\), retrying in 0\.1s: boom 1/)
    expect(warnings[1]).toMatch(/attempt 2 of 4.*boom 2/)
    expect(errors).toEqual([])
  })

  test('after maxRetries retries (maxRetries + 1 runs) it is dead-lettered, whatever the handler threw', async () => {
    // a synchronous throw, a rejection with a string and a rejection with undefined are all failures
    const failures = [
      () => {
        throw new Error('sync')
      },
      () => Promise.reject('a string'),
      () => Promise.reject(undefined),
    ]
    let runs = 0
    const { d, settled } = dispatcher({ handler: () => failures[runs++](), queue: { maxRetries: 2 } })
    d.push(delivery(7))
    expect(await d.idle(5000)).toBe(true)
    expect(runs).toBe(3)
    expect(settled).toEqual([[7, Outcome.DEAD_LETTER]])
    expect(warnings).toHaveLength(2)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/test-queue: handler failed 3 time\(s\), dead-lettering/)
  })

  test('priorFailures (runs that failed on other pods) count against maxRetries', async () => {
    const failing = alwaysFails()
    const { d, settled } = dispatcher({ handler: failing.handler, queue: { maxRetries: 2 } })
    d.push(delivery(1, undefined, { priorFailures: 2 })) // one run left
    d.push(delivery(2, undefined, { priorFailures: 3 })) // none left: never runs
    expect(await d.idle(5000)).toBe(true)
    expect(failing.runs()).toBe(1)
    expect(settled).toEqual([
      [1, Outcome.DEAD_LETTER],
      [2, Outcome.DEAD_LETTER],
    ])
  })

  test('a delivery that is not an event is dead-lettered without running the handler', async () => {
    const handler = jest.fn()
    const { d, settled } = dispatcher({ handler })
    d.push({ id: 3, event: null, priorFailures: 0, bad: 'the message body is not an event object' })
    expect(await d.idle(1000)).toBe(true)
    expect(handler).not.toHaveBeenCalled()
    expect(settled).toEqual([[3, Outcome.DEAD_LETTER]])
    expect(errors[0]).toMatch(/test-queue: dead-lettering a message that is not an event: the message body is not an event object/)
  })

  test('fifo: one messageGroupId runs in arrival order, also across a retry; groups run in parallel', async () => {
    const g = gated()
    const { d, settled } = dispatcher({ handler: g.handler, queue: { type: 'fifo', maxRetries: 1 }, limit: 1 })
    const ev = (id, group) => ({ topic: 't', id, messageGroupId: group })
    d.push(delivery('a1', ev('a1', 'A')))
    d.push(delivery('b1', ev('b1', 'B')))
    d.push(delivery('a2', ev('a2', 'A')))
    d.push(delivery('b2', ev('b2', 'B')))
    d.push(delivery('a3', ev('a3', 'A')))
    await tick()
    expect(g.started).toEqual(['a1', 'b1'])
    g.gates.get('b1').reject(new Error('retry me'))
    await tick()
    // the retry keeps its place: b1 runs again before b2
    expect(g.started).toEqual(['a1', 'b1', 'b1'])
    g.gates.get('a1').resolve()
    await tick()
    expect(g.started).toEqual(['a1', 'b1', 'b1', 'a2'])
    g.gates.get('b1').resolve()
    await tick()
    expect(g.started).toEqual(['a1', 'b1', 'b1', 'a2', 'b2'])
    g.gates.get('a2').resolve()
    g.gates.get('b2').resolve()
    await tick()
    g.gates.get('a3').resolve()
    expect(await d.idle(1000)).toBe(true)
    expect(g.started).toEqual(['a1', 'b1', 'b1', 'a2', 'b2', 'a3'])
    expect(settled.filter(([id]) => id.startsWith('a'))).toEqual([
      ['a1', Outcome.ACK],
      ['a2', Outcome.ACK],
      ['a3', Outcome.ACK],
    ])
    expect(settled.filter(([id]) => id.startsWith('b'))).toEqual([
      ['b1', Outcome.ACK],
      ['b2', Outcome.ACK],
    ])
  })

  test('standard: at most `limit` handlers run at once, the rest start in arrival order', async () => {
    const g = gated()
    const { d, settled } = dispatcher({ handler: g.handler, queue: { type: 'standard' }, limit: 2 })
    for (let i = 1; i <= 5; i++) d.push(delivery(i))
    await tick()
    expect(g.started).toEqual([1, 2])
    g.gates.get(2).resolve()
    await tick()
    expect(g.started).toEqual([1, 2, 3])
    g.gates.get(1).resolve()
    g.gates.get(3).resolve()
    await tick()
    expect(g.started).toEqual([1, 2, 3, 4, 5])
    g.gates.get(4).resolve()
    g.gates.get(5).resolve()
    expect(await d.idle(1000)).toBe(true)
    expect(g.maxRunning()).toBe(2)
    expect(settled.map(([id]) => id).sort()).toEqual([1, 2, 3, 4, 5])
    expect(settled.every(([, o]) => o === Outcome.ACK)).toBe(true)
  })

  test('stop(): queued deliveries go back to the broker at once, running ones finish, idle() waits for them', async () => {
    const g = gated()
    const { d, settled } = dispatcher({ handler: g.handler, limit: 1 })
    d.push(delivery(1))
    d.push(delivery(2))
    d.push(delivery(3))
    await tick()
    expect(g.started).toEqual([1])
    d.stop()
    expect(settled).toEqual([
      [2, Outcome.REQUEUE],
      [3, Outcome.REQUEUE],
    ])
    // after stop, a new delivery is handed back without running
    d.push(delivery(4))
    expect(settled).toEqual([
      [2, Outcome.REQUEUE],
      [3, Outcome.REQUEUE],
      [4, Outcome.REQUEUE],
    ])
    let drained = null
    const idle = d.idle(5000).then((v) => (drained = v))
    await tick()
    expect(drained).toBe(null)
    g.gates.get(1).resolve()
    await idle
    expect(drained).toBe(true)
    expect(g.started).toEqual([1])
    expect(settled[3]).toEqual([1, Outcome.ACK])
  })

  test('stop() during a retry delay requeues that delivery instead of waiting out the delay', async () => {
    const failing = alwaysFails()
    const { d, settled } = dispatcher({ handler: failing.handler, queue: { maxRetries: 3, delaySeconds: 60 } })
    d.push(delivery(1))
    await tick()
    expect(warnings[0]).toMatch(/retrying in 60s/)
    const t0 = Date.now()
    d.stop()
    expect(await d.idle(5000)).toBe(true)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(failing.runs()).toBe(1)
    expect(settled).toEqual([[1, Outcome.REQUEUE]])
  })

  test('fifo stop(): deliveries waiting behind their group are requeued without running', async () => {
    const g = gated()
    const { d, settled } = dispatcher({ handler: g.handler, queue: { type: 'fifo' } })
    const ev = (id) => ({ topic: 't', id, messageGroupId: 'G' })
    d.push(delivery('x1', ev('x1')))
    d.push(delivery('x2', ev('x2')))
    await tick()
    d.stop()
    g.gates.get('x1').resolve()
    expect(await d.idle(1000)).toBe(true)
    expect(g.started).toEqual(['x1'])
    expect(settled).toEqual([
      ['x1', Outcome.ACK],
      ['x2', Outcome.REQUEUE],
    ])
  })

  test('idle(timeoutMs) resolves false while a handler is still running past the timeout', async () => {
    const g = gated()
    const { d } = dispatcher({ handler: g.handler })
    expect(await d.idle(10)).toBe(true) // nothing running
    d.push(delivery(1))
    expect(await d.idle(50)).toBe(false)
    g.gates.get(1).resolve()
    expect(await d.idle(1000)).toBe(true)
  })
})

describe('Batcher', () => {
  /** A fake native call: records each call's columns and answers when told to. */
  function fakeNative() {
    const calls = []
    const send = (...cols) => {
      const answer = deferred()
      calls.push({ cols, answer })
      return answer.promise
    }
    return { calls, send }
  }
  const ok = (values) => JSON.stringify(values.map((v) => [0, v]))

  test('the calls of one tick go out as one native call, in order, one array per column', async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 2, 2)
    const ps = [b.push(['a', 1], (v) => v), b.push(['b', 2], (v) => v.toUpperCase()), b.push(['c', 3], (v) => `${v}!`)]
    expect(calls).toHaveLength(0) // flushed on a microtask, not synchronously
    await tick()
    expect(calls.map((c) => c.cols)).toEqual([
      [
        ['a', 'b', 'c'],
        [1, 2, 3],
      ],
    ])
    calls[0].answer.resolve(ok(['r1', 'r2', 'r3']))
    // each row's reply goes to its own caller, through its own `result`
    expect(await Promise.all(ps)).toEqual(['r1', 'R2', 'r3!'])
  })

  test('at most maxInFlight native calls at once; what queues meanwhile goes out together, in order', async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 1, 2)
    const p1 = b.push(['a'], (v) => v)
    await tick()
    const p2 = b.push(['b'], (v) => v)
    await tick()
    expect(calls).toHaveLength(2)
    const rest = [b.push(['c'], (v) => v), b.push(['d'], (v) => v)]
    await tick()
    expect(calls).toHaveLength(2) // two in flight: c and d wait
    calls[1].answer.resolve(ok(['B']))
    expect(await p2).toBe('B')
    await tick()
    expect(calls).toHaveLength(3)
    expect(calls[2].cols).toEqual([['c', 'd']])
    calls[0].answer.resolve(ok(['A']))
    calls[2].answer.resolve(ok(['C', 'D']))
    expect(await p1).toBe('A')
    expect(await Promise.all(rest)).toEqual(['C', 'D'])
  })

  test(`a call of more than ${MAX_BATCH} rows is split in order; the rest goes out when a call returns`, async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 1, 1)
    const n = MAX_BATCH + 88
    const ps = Array.from({ length: n }, (_, i) => b.push([i], (v) => v))
    await tick()
    expect(calls).toHaveLength(1)
    expect(calls[0].cols[0]).toEqual(Array.from({ length: MAX_BATCH }, (_, i) => i))
    calls[0].answer.resolve(ok(calls[0].cols[0].map((i) => i * 10)))
    await tick()
    expect(calls).toHaveLength(2)
    expect(calls[1].cols[0]).toEqual(Array.from({ length: 88 }, (_, i) => MAX_BATCH + i))
    calls[1].answer.resolve(ok(calls[1].cols[0].map((i) => i * 10)))
    expect(await Promise.all(ps)).toEqual(Array.from({ length: n }, (_, i) => i * 10))
  })

  test('a failed native call rejects every caller of that batch with the mapped, redacted error', async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 1, 1)
    const ps = [b.push(['a'], (v) => v), b.push(['b'], (v) => v)]
    await tick()
    calls[0].answer.reject(new Error('[MOTIA_CONNECT] cannot reach redis://user:secret@host:6379'))
    const out = await Promise.allSettled(ps)
    for (const r of out) {
      expect(r.status).toBe('rejected')
      expect(r.reason).toBeInstanceOf(MotiaAdapterError)
      expect(r.reason.code).toBe('MOTIA_CONNECT')
      expect(r.reason.message).not.toContain('secret')
    }
    // the batcher keeps working after a failed call
    const next = b.push(['c'], (v) => v)
    await tick()
    expect(calls).toHaveLength(2)
    calls[1].answer.resolve(ok(['C']))
    expect(await next).toBe('C')
  })

  test('a row-level error rejects only its own caller', async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 1, 1)
    const ps = [b.push(['a'], (v) => v), b.push(['b'], (v) => v), b.push(['c'], (v) => v)]
    await tick()
    calls[0].answer.resolve(JSON.stringify([[0, 'A'], [1, 'MOTIA_BACKEND', '[MOTIA_BACKEND] WRONGTYPE'], [0, 'C']]))
    const out = await Promise.allSettled(ps)
    expect(out[0]).toEqual({ status: 'fulfilled', value: 'A' })
    expect(out[1].status).toBe('rejected')
    expect(out[1].reason.code).toBe('MOTIA_BACKEND')
    expect(out[1].reason.message).toBe('[MOTIA_BACKEND] WRONGTYPE')
    expect(out[2]).toEqual({ status: 'fulfilled', value: 'C' })
  })

  test('a send that throws or answers with something that is not JSON rejects the whole batch', async () => {
    const thrower = new Batcher(
      () => {
        throw new Error('[MOTIA_CLOSED] the adapter was shut down')
      },
      1,
      1,
    )
    const t = await Promise.allSettled([thrower.push(['a'], (v) => v), thrower.push(['b'], (v) => v)])
    expect(t.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(t.map((r) => r.reason.code)).toEqual(['MOTIA_CLOSED', 'MOTIA_CLOSED'])

    const garbled = new Batcher(() => Promise.resolve('not json'), 1, 1)
    const g = await Promise.allSettled([garbled.push(['a'], (v) => v), garbled.push(['b'], (v) => v)])
    expect(g.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    for (const r of g) expect(r.reason).toBeInstanceOf(MotiaAdapterError)
  })

  test('idle() resolves only once every queued and in-flight call has settled', async () => {
    const { calls, send } = fakeNative()
    const b = new Batcher(send, 1, 2)
    await b.idle() // nothing queued
    const p1 = b.push(['a'], (v) => v)
    await tick()
    const p2 = b.push(['b'], (v) => v)
    await tick()
    const p3 = b.push(['c'], (v) => v) // queued: two calls in flight
    let idle = false
    const done = b.idle().then(() => (idle = true))
    calls[0].answer.resolve(ok(['A']))
    await p1
    await tick()
    expect(calls).toHaveLength(3)
    calls[2].answer.resolve(ok(['C']))
    await p3
    await tick()
    expect(idle).toBe(false) // nothing queued, but b is still in flight
    calls[1].answer.resolve(ok(['B']))
    await p2
    await done
    expect(idle).toBe(true)
  })
})
