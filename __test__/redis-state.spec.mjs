// RedisStateAdapter against a real Redis: every method, config shapes, hostile ids, errors,
// wire compatibility with @motiadev/adapter-redis-state@0.17.14-beta.196, and two processes.
import { createClient } from 'redis'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { RedisStateAdapter, ErrorCodes } from 'motia-native-adapters'
import { REDIS_HOST, REDIS_PORT, REDIS_URL, requireRedis, uniquePrefix, clientIds } from './helpers/env.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
let raw
const adapters = []
const prefixes = []

function make(connection = { url: REDIS_URL }, options = {}) {
  const keyPrefix = options.keyPrefix ?? uniquePrefix('state')
  prefixes.push(keyPrefix)
  const a = new RedisStateAdapter(connection, { ...options, keyPrefix })
  adapters.push(a)
  return a
}

async function rawKeys(prefix) {
  const out = []
  for await (const batch of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) out.push(...batch)
  return out.sort()
}

beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})

afterAll(async () => {
  for (const a of adapters) await a.cleanup().catch(() => {})
  for (const p of prefixes) {
    const keys = await rawKeys(p)
    if (keys.length) await raw.del(keys)
  }
  await raw.quit()
})

describe('get / set / delete / exists', () => {
  test('round-trips JSON values of every type', async () => {
    const s = make()
    const values = { obj: { a: 1, nested: { b: [1, 2, null] } }, arr: [1, 'x'], str: 'hello', num: 42.5, t: true, f: false, zero: 0, empty: '', nul: null }
    for (const [k, v] of Object.entries(values)) expect(await s.set('trace', k, v)).toEqual(v)
    for (const [k, v] of Object.entries(values)) expect(await s.get('trace', k)).toEqual(v)
    expect(await s.get('trace', 'missing')).toBeNull()
  })

  test('set returns the very value passed in; Dates become ISO strings like JSON.stringify', async () => {
    const s = make()
    const v = { when: new Date('2025-01-02T03:04:05.000Z'), drop: undefined }
    expect(await s.set('t', 'k', v)).toBe(v)
    expect(await s.get('t', 'k')).toEqual({ when: '2025-01-02T03:04:05.000Z' })
  })

  test('wire format: STRING key ${prefix}${traceId}:${key} holding JSON', async () => {
    const s = make()
    await s.set('trace-123', 'userData', { name: 'ann' })
    expect(await raw.type(`${s.keyPrefix}trace-123:userData`)).toBe('string')
    expect(await raw.get(`${s.keyPrefix}trace-123:userData`)).toBe('{"name":"ann"}')
  })

  test('ttl uses SET … EX and is refreshed on each set', async () => {
    const s = make({ url: REDIS_URL }, { ttl: 100 })
    await s.set('t', 'k', 1)
    const ttl = await raw.ttl(`${s.keyPrefix}t:k`)
    expect(ttl).toBeGreaterThan(90)
    expect(ttl).toBeLessThanOrEqual(100)
    await raw.expire(`${s.keyPrefix}t:k`, 5)
    await s.set('t', 'k', 2)
    expect(await raw.ttl(`${s.keyPrefix}t:k`)).toBeGreaterThan(90)
  })

  test('without ttl keys do not expire', async () => {
    const s = make()
    await s.set('t', 'k', 1)
    expect(await raw.ttl(`${s.keyPrefix}t:k`)).toBe(-1)
  })

  test('delete returns the previous value and removes it; null when absent', async () => {
    const s = make()
    await s.set('t', 'k', { v: 1 })
    expect(await s.delete('t', 'k')).toEqual({ v: 1 })
    expect(await s.get('t', 'k')).toBeNull()
    expect(await s.delete('t', 'k')).toBeNull()
  })

  test('delete is atomic: concurrent deletes of one key return the value exactly once', async () => {
    const a = make()
    const b = make({ url: REDIS_URL }, { keyPrefix: a.keyPrefix })
    for (let round = 0; round < 20; round++) {
      await a.set('t', 'k', round)
      const results = await Promise.all([a.delete('t', 'k'), b.delete('t', 'k'), a.delete('t', 'k'), b.delete('t', 'k')])
      expect(results.filter((r) => r !== null)).toEqual([round])
    }
  })

  test('exists', async () => {
    const s = make()
    expect(await s.exists('t', 'k')).toBe(false)
    await s.set('t', 'k', 0)
    expect(await s.exists('t', 'k')).toBe(true)
  })

  test('many concurrent calls in one tick keep per-key order and all resolve', async () => {
    const s = make()
    const ops = []
    for (let i = 0; i < 2000; i++) ops.push(s.set('t', `k${i % 50}`, i))
    await Promise.all(ops)
    const got = await Promise.all(Array.from({ length: 50 }, (_, j) => s.get('t', `k${j}`)))
    got.forEach((v, j) => expect(v).toBe(1950 + j))
    // set then get issued in the same tick observe the set
    const [, v] = await Promise.all([s.set('t', 'seq', 'new'), s.get('t', 'seq')])
    expect(v).toBe('new')
  })
})

describe('getMany / setMany (RFC)', () => {
  test('getMany returns values in order with null for missing', async () => {
    const s = make()
    await s.setMany('t', { a: 1, b: { x: 2 } })
    expect(await s.getMany('t', ['b', 'missing', 'a'])).toEqual([{ x: 2 }, null, 1])
    expect(await s.getMany('t', [])).toEqual([])
  })

  test('setMany writes nothing when one value cannot be JSON', async () => {
    const s = make()
    await expect(s.setMany('t', { a: 1, b: 10n })).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    expect(await rawKeys(s.keyPrefix)).toEqual([])
  })

  test('setMany honours ttl', async () => {
    const s = make({ url: REDIS_URL }, { ttl: 50 })
    await s.setMany('t', { a: 1 })
    expect(await raw.ttl(`${s.keyPrefix}t:a`)).toBeGreaterThan(40)
  })
})

describe('getGroup / keys / clear / traceIds', () => {
  test('getGroup returns every value of a trace, and only that trace', async () => {
    const s = make()
    for (let i = 0; i < 1500; i++) await s.set('big', `k${i}`, { i })
    await s.set('big0', 'x', 'other trace')
    const group = await s.getGroup('big')
    expect(group).toHaveLength(1500)
    expect(new Set(group.map((g) => g.i)).size).toBe(1500)
    expect(await s.getGroup('nobody')).toEqual([])
  })

  test('keys strips the prefix; clear removes only that trace', async () => {
    const s = make()
    await Promise.all([s.set('t1', 'a', 1), s.set('t1', 'b', 2), s.set('t10', 'c', 3), s.set('t2', 'd', 4)])
    expect((await s.keys('t1')).sort()).toEqual(['a', 'b'])
    await s.clear('t1')
    expect(await s.keys('t1')).toEqual([])
    expect(await s.get('t10', 'c')).toBe(3)
    expect(await s.get('t2', 'd')).toBe(4)
    expect((await s.traceIds()).sort()).toEqual(['t10', 't2'])
  })

  test('clear of a large trace', async () => {
    const s = make()
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.set('t', `k${i}`, i)))
    await s.clear('t')
    expect(await rawKeys(s.keyPrefix)).toEqual([])
  })
})

describe('hostile ids never touch other traces', () => {
  const hostile = ['*', '?', 't1', 'a[b]', '[ab]', 'a\\', 'x*y', '\\*', 'a:b', '']
  test.each(hostile)('trace id %j', async (id) => {
    const s = make()
    const others = ['t10', 'ab', 'a', 'b', 'xzy', 'victim', 'a[b]x', 'a:bc', 'zz']
    for (const o of others) if (o !== id) await s.set(o, 'k', `value of ${o}`)
    await s.set(id, 'mine', 'mine')
    const group = await s.getGroup(id)
    expect(group).toEqual(['mine'])
    expect(await s.keys(id)).toEqual(['mine'])
    const items = await s.items({ groupId: id })
    expect(items).toEqual([{ groupId: id, key: 'mine', type: 'string', value: 'mine' }])
    await s.clear(id)
    expect(await s.get(id, 'mine')).toBeNull()
    for (const o of others) if (o !== id) expect(await s.get(o, 'k')).toBe(`value of ${o}`)
  })

  test('a key prefix with glob characters is escaped too', async () => {
    const base = uniquePrefix('glob')
    const s = make({ url: REDIS_URL }, { keyPrefix: `${base}[x]*:` })
    const neighbour = make({ url: REDIS_URL }, { keyPrefix: `${base}x-:` })
    await neighbour.set('t', 'k', 'neighbour')
    await s.set('t', 'k', 'mine')
    expect(await s.traceIds()).toEqual(['t'])
    await s.clear('t')
    expect(await neighbour.get('t', 'k')).toBe('neighbour')
  })
})

describe('items with the 12 filter operations', () => {
  let s
  beforeAll(async () => {
    s = make()
    await s.set('g', 'ann', { name: 'ann', age: 30, tag: null })
    await s.set('g', 'bob', { name: 'bob', age: 25, tag: 'vip' })
    await s.set('g', 'cat', { name: 'catherine', age: 41 })
    await s.set('g', 'str', 'plain string')
    await s.set('h', 'dan', { name: 'dan', age: 30 })
  })
  const names = async (filter, groupId = 'g') =>
    (await s.items({ groupId, filter })).map((i) => i.key).sort()

  test('no filter: every item with its type', async () => {
    const items = await s.items({ groupId: 'g' })
    expect(items.find((i) => i.key === 'str')).toEqual({ groupId: 'g', key: 'str', type: 'string', value: 'plain string' })
    expect(items.find((i) => i.key === 'ann')).toEqual({ groupId: 'g', key: 'ann', type: 'object', value: { name: 'ann', age: 30, tag: null } })
    expect(items).toHaveLength(4)
  })
  test('without groupId: every group', async () => {
    const items = await s.items({})
    expect(items.map((i) => `${i.groupId}/${i.key}`).sort()).toEqual(['g/ann', 'g/bob', 'g/cat', 'g/str', 'h/dan'])
  })
  test('eq / neq are strict against the filter string', async () => {
    expect(await names([{ valueKey: 'name', operation: 'eq', value: 'bob' }])).toEqual(['bob'])
    expect(await names([{ valueKey: 'age', operation: 'eq', value: '30' }])).toEqual([])
    expect(await names([{ valueKey: 'name', operation: 'neq', value: 'bob' }])).toEqual(['ann', 'cat', 'str'])
  })
  test('gt / gte / lt / lte compare like JavaScript', async () => {
    // 'str' holds a plain string, so the string itself is compared: "plain string" > "29" in JS
    expect(await names([{ valueKey: 'age', operation: 'gt', value: '29' }])).toEqual(['ann', 'cat', 'str'])
    expect(await names([{ valueKey: 'age', operation: 'gte', value: '30' }])).toEqual(['ann', 'cat', 'str'])
    expect(await names([{ valueKey: 'age', operation: 'lt', value: '30' }])).toEqual(['bob'])
    expect(await names([{ valueKey: 'age', operation: 'lte', value: '30' }])).toEqual(['ann', 'bob'])
  })
  test('contains / notContains / startsWith / endsWith only match strings', async () => {
    expect(await names([{ valueKey: 'name', operation: 'contains', value: 'at' }])).toEqual(['cat'])
    expect(await names([{ valueKey: 'name', operation: 'notContains', value: 'at' }])).toEqual(['ann', 'bob', 'str'])
    expect(await names([{ valueKey: 'name', operation: 'startsWith', value: 'b' }])).toEqual(['bob'])
    expect(await names([{ valueKey: 'name', operation: 'endsWith', value: 'ine' }])).toEqual(['cat'])
    expect(await names([{ valueKey: 'x', operation: 'contains', value: 'plain' }])).toEqual(['str'])
  })
  test('isNull / isNotNull treat missing as null', async () => {
    expect(await names([{ valueKey: 'tag', operation: 'isNull', value: '' }])).toEqual(['ann', 'cat'])
    expect(await names([{ valueKey: 'tag', operation: 'isNotNull', value: '' }])).toEqual(['bob', 'str'])
  })
  test('several filters are ANDed', async () => {
    expect(await names([
      { valueKey: 'age', operation: 'gte', value: '25' },
      { valueKey: 'name', operation: 'startsWith', value: 'a' },
    ])).toEqual(['ann'])
  })
  test('an unknown operation is a clear error', async () => {
    await expect(s.items({ groupId: 'g', filter: [{ valueKey: 'a', operation: 'like', value: 'x' }] })).rejects.toMatchObject({ code: ErrorCodes.CONFIG })
  })
})

describe('connection shapes', () => {
  const check = async (s) => {
    await s.set('shape', 'k', { ok: true })
    expect(await raw.get(`${s.keyPrefix}shape:k`)).toBe('{"ok":true}')
  }
  test('node-redis options with url', async () => check(make({ url: REDIS_URL })))
  test('node-redis options with socket', async () => check(make({ socket: { host: REDIS_HOST, port: REDIS_PORT, connectTimeout: 2000 } })))
  test('legacy flat form, keyPrefix and ttl honoured', async () => {
    const keyPrefix = uniquePrefix('legacy')
    prefixes.push(keyPrefix)
    const s = new RedisStateAdapter({ host: REDIS_HOST, port: String(REDIS_PORT), keyPrefix, ttl: 77 })
    adapters.push(s)
    expect(s.keyPrefix).toBe(keyPrefix)
    await check(s)
    expect(await raw.ttl(`${keyPrefix}shape:k`)).toBeGreaterThan(60)
  })
  test('a node-redis client instance: its options are used, and it is never closed', async () => {
    const client = createClient({ url: `${REDIS_URL}/0` })
    await client.connect()
    const s = make(client)
    await check(s)
    await s.cleanup()
    expect(client.isOpen).toBe(true)
    expect(await client.ping()).toBe('PONG')
    await client.quit()
  })
  test('an unconnected node-redis client instance works too', async () => {
    const client = createClient({ socket: { host: REDIS_HOST, port: REDIS_PORT } })
    await check(make(client))
    expect(client.isOpen).toBe(false)
  })
  test('database selects the logical database', async () => {
    const s = make({ url: REDIS_URL, database: 3 })
    await s.set('db', 'k', 1)
    const db3 = createClient({ url: REDIS_URL, database: 3 })
    await db3.connect()
    expect(await db3.get(`${s.keyPrefix}db:k`)).toBe('1')
    await db3.del(`${s.keyPrefix}db:k`)
    await db3.quit()
    expect(await raw.get(`${s.keyPrefix}db:k`)).toBeNull()
  })
  test('url database path', async () => {
    const s = make({ url: `${REDIS_URL}/4` })
    await s.set('db', 'k', 1)
    const db4 = createClient({ url: `${REDIS_URL}/4` })
    await db4.connect()
    expect(await db4.get(`${s.keyPrefix}db:k`)).toBe('1')
    await db4.del(`${s.keyPrefix}db:k`)
    await db4.quit()
  })
})

describe('malformed config fails at construction naming the field', () => {
  const cases = [
    [{ url: 'http://localhost' }, 'url'],
    [{ url: 42 }, 'url'],
    [{ socket: { port: 99999 } }, 'socket.port'],
    [{ port: 'abc' }, 'port'],
    [{ host: '' }, 'host'],
    [{ socket: 'localhost' }, 'socket'],
    [{ socket: { tls: 'yes' } }, 'socket.tls'],
    [{ database: -1 }, 'database'],
    [{ socket: { connectTimeout: -5 } }, 'socket.connectTimeout'],
    [{ password: 1234 }, 'password'],
    ['redis://localhost', 'connection'],
  ]
  test.each(cases)('%j -> %s', (conn, field) => {
    let err
    try {
      new RedisStateAdapter(conn)
    } catch (e) {
      err = e
    }
    expect(err).toBeDefined()
    expect(err.code).toBe(ErrorCodes.CONFIG)
    expect(err.message).toContain(`\`${field}\``)
  })
  test('options: keyPrefix and ttl are validated', () => {
    expect(() => new RedisStateAdapter({ url: REDIS_URL }, { ttl: -1 })).toThrow(/`ttl`/)
    expect(() => new RedisStateAdapter({ url: REDIS_URL }, { ttl: 'soon' })).toThrow(/`ttl`/)
    expect(() => new RedisStateAdapter({ url: REDIS_URL }, { keyPrefix: 5 })).toThrow(/`keyPrefix`/)
  })
  test('the password in a bad url never appears in the error', () => {
    try {
      new RedisStateAdapter({ url: 'http://user:hunter2@localhost' })
      throw new Error('expected a throw')
    } catch (e) {
      expect(e.code).toBe(ErrorCodes.CONFIG)
      expect(e.message).not.toContain('hunter2')
    }
  })
})

describe('errors at runtime', () => {
  test('unreachable server rejects fast with MOTIA_CONNECT', async () => {
    const s = make({ socket: { host: '127.0.0.1', port: 1, connectTimeout: 1000 } })
    const t = Date.now()
    await expect(s.get('t', 'k')).rejects.toMatchObject({ code: ErrorCodes.CONNECT })
    expect(Date.now() - t).toBeLessThan(3000)
  })

  test('a server that accepts but never answers rejects within connectTimeout (+ slack)', async () => {
    const silent = net.createServer(() => {})
    await new Promise((r) => silent.listen(0, '127.0.0.1', r))
    const { port } = silent.address()
    try {
      const s = make({ socket: { host: '127.0.0.1', port, connectTimeout: 800 } })
      const t = Date.now()
      await expect(s.get('t', 'k')).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT })
      const took = Date.now() - t
      expect(took).toBeGreaterThanOrEqual(700)
      expect(took).toBeLessThan(3000)
    } finally {
      silent.close()
    }
  })

  test('wrong password is an auth error that does not leak the password', async () => {
    const user = `motia-test-${uniquePrefix('u').replace(/:/g, '')}`
    await raw.sendCommand(['ACL', 'SETUSER', user, 'on', '>RightPassword1', '~*', '+@all'])
    try {
      const wrong = make({ url: `redis://${user}:SuperSecret123@${REDIS_HOST}:${REDIS_PORT}` })
      const err = await wrong.get('t', 'k').catch((e) => e)
      expect(err.code).toBe(ErrorCodes.AUTH)
      expect(err.message).not.toContain('SuperSecret123')
      const wrongFlat = make({ host: REDIS_HOST, port: REDIS_PORT, username: user, password: 'SuperSecret123' })
      await expect(wrongFlat.set('t', 'k', 1)).rejects.toMatchObject({ code: ErrorCodes.AUTH })
      const right = make({ socket: { host: REDIS_HOST, port: REDIS_PORT }, username: user, password: 'RightPassword1' })
      await right.set('t', 'k', 'authed')
      expect(await right.get('t', 'k')).toBe('authed')
    } finally {
      await raw.sendCommand(['ACL', 'DELUSER', user])
    }
  })

  test('values JSON cannot hold reject and write nothing', async () => {
    const s = make()
    const circular = {}
    circular.self = circular
    await expect(s.set('t', 'big', 10n)).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    await expect(s.set('t', 'circ', circular)).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    await expect(s.set('t', 'undef', undefined)).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    await expect(s.set('t', 'fn', () => 1)).rejects.toMatchObject({ code: ErrorCodes.SERIALIZE })
    expect(await rawKeys(s.keyPrefix)).toEqual([])
  })

  test('non-JSON bytes written by someone else: clear error, other calls unaffected', async () => {
    const s = make()
    await raw.set(`${s.keyPrefix}t:bad`, 'not json {')
    await raw.set(`${s.keyPrefix}t:bin`, Buffer.from([0xff, 0xfe, 0x00]))
    await s.set('t', 'good', 1)
    const [bad, good, bin] = await Promise.allSettled([s.get('t', 'bad'), s.get('t', 'good'), s.get('t', 'bin')])
    expect(bad.reason.code).toBe(ErrorCodes.DECODE)
    expect(bad.reason.message).toContain('bad')
    expect(good.value).toBe(1)
    expect(bin.reason.code).toBe(ErrorCodes.DECODE)
    await expect(s.getGroup('t')).rejects.toMatchObject({ code: ErrorCodes.DECODE })
    await expect(s.delete('t', 'bad')).rejects.toMatchObject({ code: ErrorCodes.DECODE })
  })

  test('a key of another Redis type is a backend error, not a crash', async () => {
    const s = make()
    await raw.hSet(`${s.keyPrefix}t:hash`, 'f', 'v')
    await expect(s.get('t', 'hash')).rejects.toMatchObject({ code: ErrorCodes.BACKEND })
  })

  test('a connection the server dropped is replaced without surfacing an error', async () => {
    const before = await clientIds(raw)
    const s = make()
    await s.set('t', 'k', 'before')
    // kill the connection this adapter opened (the one that was not there before)
    const mine = [...(await clientIds(raw))].filter((id) => !before.has(id))
    expect(mine.length).toBe(1) // one multiplexed connection per adapter
    for (const id of mine) await raw.sendCommand(['CLIENT', 'KILL', 'ID', id])
    expect(await s.get('t', 'k')).toBe('before')
    await s.set('t', 'k', 'after')
    expect(await s.get('t', 'k')).toBe('after')
  })

  test('after cleanup calls reject with MOTIA_CLOSED', async () => {
    const s = make()
    await s.set('t', 'k', 1)
    await s.cleanup()
    await expect(s.get('t', 'k')).rejects.toMatchObject({ code: ErrorCodes.CLOSED })
  })

  test('cleanup waits for calls already issued', async () => {
    const s = make()
    const writes = Array.from({ length: 100 }, (_, i) => s.set('t', `k${i}`, i))
    await s.cleanup()
    await Promise.all(writes)
    expect((await rawKeys(s.keyPrefix)).length).toBe(100)
  })

  test('isHealthy', async () => {
    expect(await make().isHealthy()).toBe(true)
    expect(await make({ socket: { host: '127.0.0.1', port: 1, connectTimeout: 500 } }).isHealthy()).toBe(false)
  })
})

describe('wire compatibility with @motiadev/adapter-redis-state@0.17.14-beta.196', () => {
  let Upstream
  beforeAll(async () => {
    ;({ RedisStateAdapter: Upstream } = await import('@motiadev/adapter-redis-state'))
  })

  test('upstream writes, we read; we write, upstream reads', async () => {
    const keyPrefix = uniquePrefix('compat')
    prefixes.push(keyPrefix)
    const up = new Upstream({ url: REDIS_URL }, { keyPrefix, ttl: 300 })
    const ours = make({ url: REDIS_URL }, { keyPrefix })
    const value = { nested: { list: [1, 'two', null, { x: true }] }, unicode: 'héllo ✓', n: -1.5e-7 }

    await up.set('trace-a', 'fromUpstream', value)
    expect(await ours.get('trace-a', 'fromUpstream')).toEqual(value)
    expect(await raw.ttl(`${keyPrefix}trace-a:fromUpstream`)).toBeGreaterThan(250)

    await ours.set('trace-a', 'fromOurs', value)
    expect(await up.get('trace-a', 'fromOurs')).toEqual(value)
    expect((await up.getGroup('trace-a')).length).toBe(2)
    expect((await ours.getGroup('trace-a')).length).toBe(2)
    expect((await up.keys('trace-a')).sort()).toEqual((await ours.keys('trace-a')).sort())
    expect((await up.traceIds()).sort()).toEqual((await ours.traceIds()).sort())

    const filter = [{ valueKey: 'unicode', operation: 'startsWith', value: 'hé' }]
    const sortItems = (xs) => xs.sort((a, b) => a.key.localeCompare(b.key))
    expect(sortItems(await ours.items({ groupId: 'trace-a', filter }))).toEqual(sortItems(await up.items({ groupId: 'trace-a', filter })))
    expect(sortItems(await ours.items({}))).toEqual(sortItems(await up.items({})))

    // every filter operation gives upstream's result on the same data
    const data = { a: { n: 5, s: 'apple', z: null }, b: { n: 50, s: 'banana' }, c: 'cherry', d: 7, e: [1, 2], f: true, g: null, h: { n: '10', s: 42 } }
    for (const [k, v] of Object.entries(data)) await up.set('filters', k, v)
    const ops = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'contains', 'notContains', 'startsWith', 'endsWith', 'isNotNull', 'isNull']
    for (const operation of ops) {
      for (const [valueKey, value] of [['n', '10'], ['s', 'an'], ['s', 'apple'], ['z', ''], ['missing', 'x'], ['0', '1'], ['n', 'abc']]) {
        const filter = [{ valueKey, operation, value }]
        const got = sortItems(await ours.items({ groupId: 'filters', filter })).map((i) => i.key)
        const want = sortItems(await up.items({ groupId: 'filters', filter })).map((i) => i.key)
        expect({ operation, valueKey, value, got }).toEqual({ operation, valueKey, value, got: want })
      }
    }

    expect(await ours.delete('trace-a', 'fromUpstream')).toEqual(value)
    expect(await up.get('trace-a', 'fromUpstream')).toBeNull()
    await up.clear('trace-a')
    expect(await ours.keys('trace-a')).toEqual([])
    await up.cleanup()
  })
})

describe('two Node processes share state through Redis', () => {
  test('a child process writes, we read; we write, the child reads', async () => {
    const keyPrefix = uniquePrefix('proc')
    prefixes.push(keyPrefix)
    const s = make({ url: REDIS_URL }, { keyPrefix })
    await s.set('shared', 'fromParent', { pid: process.pid })
    const child = spawn(process.execPath, [path.join(here, 'fixtures', 'state-child.mjs'), REDIS_URL, keyPrefix], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise((r) => child.on('exit', r))
    expect(code).toBe(0)
    const report = JSON.parse(out)
    expect(report.sawParent).toEqual({ pid: process.pid })
    expect(await s.get('shared', 'fromChild')).toEqual({ pid: report.pid })
    expect(report.pid).not.toBe(process.pid)
  })
})
