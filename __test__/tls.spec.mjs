// TLS: rediss:// and socket.tls (with a CA, or rejectUnauthorized: false) for state and streams,
// including the streams' pub/sub connection (upstream's subscriber ignored TLS), and TLS to Redis
// Sentinel. Starts its own TLS-only redis-server (and a TLS-only sentinel in front of a plain master)
// on free ports with a throwaway CA made by openssl.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { RedisStateAdapter, RedisStreamAdapterManager, RedisCronAdapter, ErrorCodes } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'

let dir
let server
let port
let ca

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-tls-'))
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  try {
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=motia-test-ca'])
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'server.csr', '-subj', '/CN=localhost'])
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
    run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '1', '-extfile', 'ext.cnf'])
  } catch (e) {
    throw new Error(`openssl is needed for the TLS tests (apt-get install openssl): ${e.message}`)
  }
  ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')
  port = await freePort()
  server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', 'cert.pem', '--tls-key-file', 'key.pem', '--tls-auth-clients', 'no', '--save', '', '--bind', '127.0.0.1'], { cwd: dir, stdio: 'ignore' })
  await eventually(
    () =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy()
          resolve(true)
        })
        s.on('error', () => resolve(false))
      }),
    { timeout: 10000 },
  ).catch(() => {
    throw new Error('redis-server did not start with --tls-port: it must be built with TLS support (Debian redis-server is)')
  })
})

afterAll(() => {
  if (server) server.kill()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test('state over rediss:// with a CA, socket.tls, and rejectUnauthorized: false', async () => {
  const a = new RedisStateAdapter({ url: `rediss://127.0.0.1:${port}`, socket: { ca } }, { keyPrefix: 'tls:' })
  const b = new RedisStateAdapter({ socket: { host: 'localhost', port, tls: true, ca } }, { keyPrefix: 'tls:' })
  const c = new RedisStateAdapter({ url: `rediss://127.0.0.1:${port}`, socket: { rejectUnauthorized: false } }, { keyPrefix: 'tls:' })
  await a.set('t', 'k', { secure: true })
  expect(await b.get('t', 'k')).toEqual({ secure: true })
  expect(await c.get('t', 'k')).toEqual({ secure: true })
  for (const s of [a, b, c]) await s.cleanup()
})

test('an untrusted certificate is a clear connect error', async () => {
  const s = new RedisStateAdapter({ url: `rediss://127.0.0.1:${port}`, socket: { connectTimeout: 2000 } })
  const err = await s.get('t', 'k').catch((e) => e)
  expect(err.code).toBe(ErrorCodes.CONNECT)
  expect(err.message).toMatch(/certificate/i)
  await s.cleanup()
})

test('plain redis:// against a TLS port fails clearly, never hangs', async () => {
  const s = new RedisStateAdapter({ url: `redis://127.0.0.1:${port}`, socket: { connectTimeout: 1000 } })
  const t = Date.now()
  const err = await s.get('t', 'k').catch((e) => e)
  expect([ErrorCodes.CONNECT, ErrorCodes.TIMEOUT, ErrorCodes.BACKEND]).toContain(err.code)
  expect(Date.now() - t).toBeLessThan(5000)
  await s.cleanup()
})

test('streams: data and pub/sub both go over TLS', async () => {
  const m = new RedisStreamAdapterManager({ url: `rediss://127.0.0.1:${port}`, socket: { ca } })
  const s = m.createStream('secure')
  const events = []
  await s.subscribe({ groupId: 'g' }, (e) => events.push(e.type))
  await s.set('g', 'a', { v: 1 })
  await s.delete('g', 'a')
  await eventually(() => events.length === 2)
  expect(events).toEqual(['create', 'delete'])
  await m.shutdown()
})

describe('TLS to the sentinels (sentinelClientOptions.socket.tls)', () => {
  let master
  let sentinel
  let masterPort
  let sentinelPort
  const spawned = []

  const listening = (p) =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: p }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })

  beforeAll(async () => {
    // a plain master and one TLS-only sentinel (quorum 1) watching it, with the throwaway CA above
    masterPort = await freePort()
    master = spawn('redis-server', ['--port', String(masterPort), '--save', '', '--bind', '127.0.0.1'], { cwd: dir, stdio: 'ignore' })
    spawned.push(master)
    sentinelPort = await freePort()
    fs.writeFileSync(
      path.join(dir, 'sentinel.conf'),
      [
        'port 0',
        `tls-port ${sentinelPort}`,
        'tls-cert-file cert.pem',
        'tls-key-file key.pem',
        'tls-auth-clients no',
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor tlsgroup 127.0.0.1 ${masterPort} 1`,
        '',
      ].join('\n'),
    )
    sentinel = spawn('redis-server', [path.join(dir, 'sentinel.conf'), '--sentinel'], { cwd: dir, stdio: 'ignore' })
    spawned.push(sentinel)
    await eventually(async () => (await listening(masterPort)) && (await listening(sentinelPort)), { timeout: 10000 }).catch(() => {
      throw new Error('the TLS sentinel did not start: redis-server must be built with TLS support (Debian redis-server is)')
    })
  })

  afterAll(() => {
    for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  })

  const group = (sentinelClientOptions) => ({
    sentinelRootNodes: [{ host: '127.0.0.1', port: sentinelPort }],
    name: 'tlsgroup',
    sentinelClientOptions,
    nodeClientOptions: { socket: { connectTimeout: 2000 } },
  })

  test('state and cron find the master through a TLS sentinel (with its CA, or rejectUnauthorized: false)', async () => {
    const a = new RedisStateAdapter(group({ socket: { tls: true, ca } }), { keyPrefix: 'tls-sentinel:' })
    const b = new RedisStateAdapter(group({ socket: { tls: true, rejectUnauthorized: false } }), { keyPrefix: 'tls-sentinel:' })
    await a.set('t', 'k', { via: 'tls sentinel' })
    expect(await b.get('t', 'k')).toEqual({ via: 'tls sentinel' })
    expect(await a.getGroup('t')).toEqual([{ via: 'tls sentinel' }]) // the tokio path asks the sentinel too
    const cron = new RedisCronAdapter(group({ socket: { tls: true, ca } }), { keyPrefix: 'tls-sentinel:cron:' })
    const lock = await cron.acquireLock('job', 5000)
    expect(lock).toBeTruthy()
    await cron.releaseLock(lock)
    await cron.shutdown()
    await a.delete('t', 'k')
    for (const s of [a, b]) await s.cleanup()
  })

  test('plain text to a TLS sentinel, or an untrusted certificate, is a clear MOTIA_CONNECT', async () => {
    for (const opts of [{}, { socket: { tls: true } }]) {
      const s = new RedisStateAdapter(group(opts))
      const err = await s.get('t', 'k').catch((e) => e)
      expect(err.code).toBe(ErrorCodes.CONNECT)
      await s.cleanup()
    }
  })

  test('client certificates for the sentinels are refused with MOTIA_CONFIG', () => {
    expect(() => new RedisStateAdapter(group({ socket: { tls: true, cert: 'x', key: 'y' } }))).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  })
})
