// The event-loop Redis path (issue 12): re-entrancy, 20 MB values (partial writes and frames), an
// error reply inside a pipeline, a server closing mid-reply, a silent server (commandTimeout),
// reconnects, MOTIA_CLOSED, and the process exiting on its own. Real Redis plus tiny fake servers.
import { createClient } from 'redis'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { RedisStateAdapter, RedisStreamAdapterManager, ErrorCodes } from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix } from './helpers/env.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
let raw
const adapters = []
const prefixes = []
const servers = []

function make(connection = { url: REDIS_URL }, options = {}) {
  const keyPrefix = options.keyPrefix ?? uniquePrefix('jsloop')
  prefixes.push(keyPrefix)
  const a = new RedisStateAdapter(connection, { ...options, keyPrefix })
  adapters.push(a)
  return a
}

/**
 * A fake Redis: `answer(cmdName, connectionIndex)` returns the bytes to send for each command
 * (null = stay silent, 'close' = destroy the socket, `{partial}` = write it, then destroy). Commands are
 * split naively (test values only).
 */
async function fakeRedis(answer) {
  let conns = 0
  const sockets = new Set()
  const server = net.createServer((sock) => {
    const index = conns++
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    sock.on('data', (chunk) => {
      const lines = chunk.toString('latin1').split('\r\n')
      for (let i = 0; i < lines.length; i++) {
        if (!/^\*\d+$/.test(lines[i])) continue
        const name = (lines[i + 2] || '').toUpperCase()
        const out = answer(name, index)
        if (out === 'close') return sock.destroy()
        if (out && out.partial) {
          sock.write(out.partial)
          return sock.destroy()
        }
        if (out) sock.write(out)
      }
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  servers.push({ server, sockets })
  return { port: server.address().port, connections: () => conns }
}

beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})

afterAll(async () => {
  for (const a of adapters) await a.cleanup().catch(() => {})
  for (const { server, sockets } of servers) {
    for (const s of sockets) s.destroy()
    server.close()
  }
  for (const p of prefixes) {
    const keys = []
    for await (const batch of raw.scanIterator({ MATCH: `${p}*`, COUNT: 1000 })) keys.push(...batch)
    if (keys.length) await raw.del(keys)
  }
  await raw.quit()
})

test('plain redis:// connections use the event-loop path; TLS keeps tokio', () => {
  expect(make()._loop).toBeTruthy()
  expect(make({ url: REDIS_URL.replace('redis://', 'rediss://') })._loop).toBeNull()
})

test('re-entrancy: reactions that call the adapter while replies are being resolved', async () => {
  const s = make()
  const n = 200
  // each reaction issues more calls from inside the resolution of the previous ones; n spans several
  // settle chunks (SETTLE_CHUNK = 32 in src/binding/jsloop/mod.rs), so writes between chunks are covered too
  const chains = Array.from({ length: n }, (_, i) =>
    s
      .set('t', `k${i}`, { i })
      .then((v) => s.get('t', `k${i}`).then((got) => [v, got]))
      .then(([v, got]) => s.set('t', `k${i}`, { i, again: got.i === v.i }))
      .then(() => Promise.all([s.get('t', `k${i}`), s.exists('t', `k${i}`), s.delete('t', `nope${i}`)])),
  )
  const results = await Promise.all(chains)
  results.forEach(([got, ex, del], i) => {
    expect(got).toEqual({ i, again: true })
    expect(ex).toBe(true)
    expect(del).toBeNull()
  })
  // a synchronous burst from inside one reaction
  const burst = await s.get('t', 'k0').then(() => Promise.all(Array.from({ length: 1000 }, (_, i) => s.exists('t', `k${i}`))))
  expect(burst.filter(Boolean).length).toBe(n)
})

test('20 MB values: partial writes and partial frames', async () => {
  const s = make()
  const big = 'x'.repeat(20 * 1024 * 1024)
  const value = { big, tail: 'end' }
  const [a, b] = await Promise.all([s.set('t', 'big1', value), s.set('t', 'big2', { big: big.slice(1), tail: 'two' })])
  expect(a).toBe(value)
  expect(b.tail).toBe('two')
  const [g1, small, g2] = await Promise.all([s.get('t', 'big1'), s.get('t', 'missing'), s.get('t', 'big2')])
  expect(g1.big.length).toBe(big.length)
  expect(g1.tail).toBe('end')
  expect(small).toBeNull()
  expect(g2.big.length).toBe(big.length - 1)
  expect(await raw.strLen(`${s.keyPrefix}t:big1`)).toBe(JSON.stringify(value).length)
}, 60000)

test('an error reply in the middle of a pipeline fails only its call', async () => {
  const s = make()
  await raw.hSet(`${s.keyPrefix}t:hash`, 'f', 'v')
  await s.set('t', 'a', 1)
  const r = await Promise.allSettled([s.get('t', 'a'), s.get('t', 'hash'), s.set('t', 'b', 2), s.delete('t', 'hash'), s.get('t', 'b')])
  expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
  expect(r[1].reason.code).toBe(ErrorCodes.BACKEND)
  expect(r[1].reason.message).toContain('WRONGTYPE')
  expect(r[3].reason.code).toBe(ErrorCodes.BACKEND)
  expect([r[0].value, r[2].value, r[4].value]).toEqual([1, 2, 2])
  expect(await s.get('t', 'a')).toBe(1) // the connection stays usable
})

test('a server that closes mid-reply every time: resent until connectTimeout, then MOTIA_CONNECT', async () => {
  const fake = await fakeRedis((cmd) => (cmd === 'CLIENT' ? '+OK\r\n' : { partial: '$10\r\n"par' }))
  const s = make({ socket: { host: '127.0.0.1', port: fake.port, connectTimeout: 1000 } })
  const t0 = Date.now()
  const e = await s.get('t', 'k').catch((x) => x)
  expect(e.code).toBe(ErrorCodes.CONNECT)
  expect(Date.now() - t0).toBeGreaterThanOrEqual(700) // it rode the outage first
  expect(Date.now() - t0).toBeLessThan(3000)
  expect(fake.connections()).toBeGreaterThan(2)
})

test('LOADING (a restarted server loading its dataset): calls wait and are resent', async () => {
  let loading = 3
  const seen = []
  const fake = await fakeRedis((cmd) => {
    if (cmd === 'CLIENT') return '+OK\r\n'
    seen.push(cmd)
    if (loading > 0) {
      loading--
      return '-LOADING Redis is loading the dataset in memory\r\n'
    }
    return '$4\r\n"ok"\r\n'
  })
  const s = make({ socket: { host: '127.0.0.1', port: fake.port } })
  expect(await s.get('t', 'k')).toBe('ok')
  expect(seen).toEqual(['GET', 'GET', 'GET', 'GET'])
  expect(fake.connections()).toBe(1)
})

test('half a reply then silence: MOTIA_TIMEOUT, and the next call reconnects', async () => {
  const fake = await fakeRedis((cmd, conn) => {
    if (cmd === 'CLIENT') return '+OK\r\n'
    return conn === 0 ? '$10\r\n"par' : '$4\r\n"ok"\r\n'
  })
  const s = make({ socket: { host: '127.0.0.1', port: fake.port } }, { commandTimeout: 300 })
  const r = await s.get('t', 'k').catch((x) => x)
  expect(r.code).toBe(ErrorCodes.TIMEOUT)
  expect(await s.get('t', 'k')).toBe('ok')
  expect(fake.connections()).toBe(2)
})

test('server closes mid-reply and comes back: pending calls are retried once, then succeed', async () => {
  const fake = await fakeRedis((cmd, conn) => {
    if (cmd === 'CLIENT') return '+OK\r\n'
    if (conn === 0) return 'close'
    return '$5\r\n"yes"\r\n'
  })
  const s = make({ socket: { host: '127.0.0.1', port: fake.port } })
  expect(await Promise.all([s.get('t', 'a'), s.get('t', 'b')])).toEqual(['yes', 'yes'])
  expect(fake.connections()).toBe(2)
})

test('a silent server: MOTIA_TIMEOUT after commandTimeout, not connectTimeout', async () => {
  const fake = await fakeRedis(() => null)
  const s = make({ socket: { host: '127.0.0.1', port: fake.port, connectTimeout: 10000 } }, { commandTimeout: 400 })
  const t0 = Date.now()
  const e = await s.get('t', 'k').catch((x) => x)
  const took = Date.now() - t0
  expect(e.code).toBe(ErrorCodes.TIMEOUT)
  expect(took).toBeGreaterThanOrEqual(350)
  expect(took).toBeLessThan(3000)
})

test('connection killed by the server while idle: the next call reconnects', async () => {
  const s = make()
  await s.set('t', 'k', 'v1')
  const list = await raw.sendCommand(['CLIENT', 'LIST'])
  const ids = list
    .split('\n')
    .filter((l) => l.includes('lib-name=motia-native-adapters'))
    .map((l) => /id=(\d+)/.exec(l)[1])
  for (const id of ids) await raw.sendCommand(['CLIENT', 'KILL', 'ID', id])
  await new Promise((r) => setTimeout(r, 50))
  expect(await s.get('t', 'k')).toBe('v1')
})

test('unreachable, then reachable: calls wait within connectTimeout, later ones try again', async () => {
  const port = await new Promise((r) => {
    const probe = net.createServer()
    probe.listen(0, '127.0.0.1', () => {
      const p = probe.address().port
      probe.close(() => r(p))
    })
  })
  const s = make({ socket: { host: '127.0.0.1', port, connectTimeout: 1000 } })
  await expect(s.get('t', 'k')).rejects.toMatchObject({ code: ErrorCodes.CONNECT })
  // a call made while the server is down waits for it (up to connectTimeout)
  const waiting = make({ socket: { host: '127.0.0.1', port, connectTimeout: 5000 } }).set('t', 'w', 2)
  await new Promise((r) => setTimeout(r, 300))
  const server = net.createServer((sock) =>
    sock.on('data', (c) => {
      const n = c.toString().split('\r\n').filter((l) => /^\*\d+$/.test(l)).length
      sock.write('+OK\r\n'.repeat(n))
    }),
  )
  await new Promise((r) => server.listen(port, '127.0.0.1', r))
  servers.push({ server, sockets: new Set() })
  await expect(s.set('t', 'k', 1)).resolves.toBe(1)
  await expect(waiting).resolves.toBe(2)
})

test('after cleanup: pending calls finish, new ones reject with MOTIA_CLOSED', async () => {
  const s = make()
  const pending = Array.from({ length: 100 }, (_, i) => s.set('t', `k${i}`, i))
  const closed = s.cleanup()
  await expect(s.get('t', 'k1')).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
  await closed
  expect((await Promise.all(pending)).length).toBe(100)
  await expect(s.exists('t', 'k1')).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
})

describe('streams on the event-loop path', () => {
  function streams(connection = { url: REDIS_URL }) {
    const keyPrefix = uniquePrefix('jsloop-stream')
    prefixes.push(keyPrefix)
    const m = new RedisStreamAdapterManager(connection, { keyPrefix })
    adapters.push({ cleanup: () => m.shutdown() })
    return m
  }

  test('get/set/delete through the scripts, _createdAt kept on update, re-entrant calls', async () => {
    const m = streams()
    expect(m._core.loop).toBeTruthy()
    const s = m.createStream('orders')
    const created = await s.set('g', 'a', { n: 1 })
    expect(created).toMatchObject({ n: 1, id: 'a' })
    expect(typeof created._createdAt).toBe('number')
    const updated = await s.set('g', 'a', { n: 2 }).then((v) => s.get('g', 'a').then((got) => [v, got]))
    expect(updated[0]._createdAt).toBe(created._createdAt)
    expect(updated[1]).toEqual({ n: 2, id: 'a', _createdAt: created._createdAt })
    const explicit = await s.set('g', 'b', { n: 3, _createdAt: 5 })
    expect(explicit._createdAt).toBe(5)
    expect(await s.delete('g', 'a')).toEqual({ n: 2, id: 'a', _createdAt: created._createdAt })
    expect(await Promise.all([s.get('g', 'a'), s.delete('g', 'a'), s.get('g', 'b')])).toEqual([null, null, { n: 3, id: 'b', _createdAt: 5 }])
  })

  test('pub/sub on the event loop: each message once per subscriber (channels subscribed while connecting too), re-entrant handlers', async () => {
    const m = streams()
    expect(m._core.sub).toBeTruthy()
    const s = m.createStream('live')
    const got = { a: [], b: [], c: [] }
    const reads = []
    // subscribed before the pub/sub connection is up: the handshake and the pending calls both subscribe
    await Promise.all(
      Object.keys(got).map((g) =>
        s.subscribe({ groupId: g }, (e) => {
          got[g].push(e.data.n)
          reads.push(s.get(g, e.data.id)) // calls the adapter from inside the delivery
        }),
      ),
    )
    for (const [i, g] of Object.keys(got).entries()) await s.set(g, `i${i}`, { n: i })
    await new Promise((r) => setTimeout(r, 300))
    expect(got).toEqual({ a: [0], b: [1], c: [2] })
    expect((await Promise.all(reads)).map((v) => v.n)).toEqual([0, 1, 2])
    await s.unsubscribe({ groupId: 'b' })
    await s.set('b', 'later', { n: 9 })
    await s.set('a', 'later', { n: 9 })
    await new Promise((r) => setTimeout(r, 200))
    expect(got).toEqual({ a: [0, 9], b: [1], c: [2] })
  })

  test('NOSCRIPT: the call is sent again as EVAL with the script body', async () => {
    const seen = []
    const fake = await fakeRedis((cmd) => {
      seen.push(cmd)
      if (cmd === 'CLIENT') return '+OK\r\n'
      if (cmd === 'EVALSHA') return '-NOSCRIPT No matching script. Please use EVAL.\r\n'
      if (cmd === 'EVAL') return '*2\r\n$6\r\ncreate\r\n$0\r\n\r\n'
      return '-ERR unexpected\r\n'
    })
    const s = streams({ socket: { host: '127.0.0.1', port: fake.port } }).createStream('x')
    const before = Date.now()
    const item = await s.set('g', 'i', { v: 1 })
    expect(item).toMatchObject({ v: 1, id: 'i' })
    expect(item._createdAt).toBeGreaterThanOrEqual(before)
    expect(seen).toEqual(['CLIENT', 'EVALSHA', 'EVAL'])
  })

  test('a hash field that is not JSON fails only that call', async () => {
    const m = streams()
    const s = m.createStream('bad')
    await raw.hSet(`${m.keyPrefix}bad:group:g`, 'x', 'not json')
    await s.set('g', 'ok', { fine: true })
    const [bad, ok] = await Promise.allSettled([s.get('g', 'x'), s.get('g', 'ok')])
    expect(bad.reason.code).toBe(ErrorCodes.DECODE)
    expect(bad.reason.message).toContain('"x"')
    expect(ok.value).toMatchObject({ fine: true })
  })
})

function runChild(mode) {
  const keyPrefix = uniquePrefix('jsloop-child')
  prefixes.push(keyPrefix)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'fixtures/jsloop-child.mjs'), REDIS_URL, keyPrefix, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child (${mode}) did not exit on its own within 10 s`))
    }, 10000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out: JSON.parse(out || 'null') })
    })
  })
}

test('the process exits on its own after cleanup()', async () => {
  const { code, out } = await runChild('cleanup')
  expect(code).toBe(0)
  expect(out).toEqual({ got: 7, loop: true })
})

test('an idle adapter does not keep Node alive', async () => {
  const { code, out } = await runChild('idle')
  expect(code).toBe(0)
  expect(out).toEqual({ got: 7, loop: true })
})

test('worker threads: the env teardown closes the connection without crashing', async () => {
  const keyPrefix = uniquePrefix('jsloop-worker')
  prefixes.push(keyPrefix)
  const { code, out } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'fixtures/jsloop-worker.cjs'), REDIS_URL, keyPrefix], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let text = ''
    child.stdout.on('data', (d) => (text += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('worker child did not exit within 10 s'))
    }, 10000)
    child.on('exit', (c, signal) => {
      clearTimeout(timer)
      resolve({ code: signal ? signal : c, out: text ? JSON.parse(text) : null })
    })
  })
  expect(code).toBe(0)
  expect(out).toEqual({
    cleanup: { mode: 'cleanup' },
    idle: { mode: 'idle' },
    pending: { mode: 'pending' },
    cleanupExit: 0,
    idleExit: 0,
    pendingExit: 0,
  })
})
