// PostgresCronAdapter over TLS: libpq's sslmode (require, verify-ca, verify-full), sslrootcert, and the
// `ssl: { ca, rejectUnauthorized }` option, against a private PostgreSQL started here on a free port with
// a throwaway CA made by openssl. Its pg_hba refuses plain-text connections, so a working call proves TLS.
import { jest } from '@jest/globals'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { PostgresCronAdapter, ErrorCodes } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'

jest.setTimeout(60000)

let dir
let server
let port
let ca
let otherCa

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function pgBin(name) {
  const base = '/usr/lib/postgresql'
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) {
    const p = path.join(base, v, 'bin', name)
    if (fs.existsSync(p)) return p
  }
  throw new Error(`PostgreSQL's ${name} was not found under ${base}: run \`npm run services postgres\` (installs postgresql)`)
}

beforeAll(async () => {
  const initdb = pgBin('initdb')
  const postgres = pgBin('postgres')
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-pgtls-'))
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  try {
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=motia-pg-test-ca'])
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-key.pem', '-out', 'other.pem', '-days', '1', '-subj', '/CN=other-ca'])
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'])
    // the certificate names localhost only: connecting to 127.0.0.1 passes verify-ca, not verify-full
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
    run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf'])
  } catch (e) {
    throw new Error(`openssl is needed for the TLS tests (apt-get install openssl): ${e.message}`)
  }
  ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')
  otherCa = fs.readFileSync(path.join(dir, 'other.pem'), 'utf8')
  const data = path.join(dir, 'data')
  // PostgreSQL refuses to run as root: run it as the postgres user when we are root
  let ids = {}
  if (process.getuid && process.getuid() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    ids = { uid, gid }
    execFileSync('chown', ['-R', `${uid}:${gid}`, dir])
    fs.chmodSync(dir, 0o755)
  }
  fs.chmodSync(path.join(dir, 'server.key'), 0o600)
  execFileSync(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { stdio: 'pipe', ...ids })
  fs.writeFileSync(
    path.join(data, 'pg_hba.conf'),
    'hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\nhostnossl all all 127.0.0.1/32 reject\nhostnossl all all ::1/128 reject\n',
  )
  port = await freePort()
  server = spawn(
    postgres,
    ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'ssl=on', '-c', `ssl_cert_file=${dir}/server.crt`, '-c', `ssl_key_file=${dir}/server.key`, '-c', 'fsync=off'],
    { stdio: 'ignore', ...ids },
  )
  await eventually(
    () =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy()
          resolve(true)
        })
        s.on('error', () => resolve(false))
      }),
    { timeout: 20000 },
  )
})

afterAll(async () => {
  if (server) {
    server.kill('SIGINT') // fast shutdown
    await new Promise((r) => server.once('exit', r))
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

const url = (query, host = '127.0.0.1') => `postgres://postgres:s3cret@${host}:${port}/postgres?connect_timeout=5&${query}`

async function roundTrip(config) {
  const cron = new PostgresCronAdapter({ tableName: `tls_${process.pid}`, ...config })
  try {
    const lock = await cron.acquireLock('tls-job', 5000, { scheduledAt: Date.now() })
    expect(lock).toMatchObject({ jobName: 'tls-job' })
    await cron.releaseLock(lock)
    return true
  } finally {
    await cron.shutdown()
  }
}

async function refused(config) {
  const cron = new PostgresCronAdapter({ tableName: `tls_${process.pid}`, ...config })
  try {
    const e = await cron.acquireLock('tls-job', 5000).then(
      () => null,
      (err) => err,
    )
    expect(e).not.toBeNull()
    expect(e.message).not.toContain('s3cret')
    return e
  } finally {
    await cron.shutdown()
  }
}

test('verify-full with the private CA (ssl.ca) works over TLS; plain text is refused by the server', async () => {
  expect(await roundTrip({ connectionString: url('sslmode=verify-full', 'localhost'), ssl: { ca } })).toBe(true)
  expect(await roundTrip({ connectionString: url('', 'localhost'), ssl: { ca: Buffer.from(ca) } })).toBe(true)
  const plain = await refused({ connectionString: url('sslmode=disable') })
  expect([ErrorCodes.AUTH, ErrorCodes.CONNECT, ErrorCodes.BACKEND]).toContain(plain.code)
})

test('sslrootcert in the connection string', async () => {
  const file = path.join(dir, 'ca.pem')
  expect(await roundTrip({ connectionString: url(`sslmode=verify-full&sslrootcert=${encodeURIComponent(file)}`, 'localhost') })).toBe(true)
  expect(await roundTrip({ connectionString: `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=verify-ca sslrootcert=${file}` })).toBe(true)
})

test('verify-full checks the host name, verify-ca only the chain', async () => {
  const e = await refused({ connectionString: url('sslmode=verify-full'), ssl: { ca } })
  expect(e.code).toBe(ErrorCodes.CONNECT)
  expect(e.message).toMatch(/certificate|name/i)
  expect(await roundTrip({ connectionString: url('sslmode=verify-ca'), ssl: { ca } })).toBe(true)
})

test('a certificate from another CA is refused unless rejectUnauthorized is false; require does not verify', async () => {
  const e = await refused({ connectionString: url('sslmode=verify-ca'), ssl: { ca: otherCa } })
  expect(e.code).toBe(ErrorCodes.CONNECT)
  expect(e.message).toMatch(/certificate|issuer/i)
  // no CA at all: the Mozilla roots do not know the throwaway CA
  expect((await refused({ connectionString: url('sslmode=verify-full', 'localhost') })).code).toBe(ErrorCodes.CONNECT)
  expect(await roundTrip({ connectionString: url('sslmode=verify-full'), ssl: { ca: otherCa, rejectUnauthorized: false } })).toBe(true)
  expect(await roundTrip({ connectionString: url('sslmode=require') })).toBe(true)
})

test('bad TLS options are config errors', () => {
  expect(() => new PostgresCronAdapter({ connectionString: url('sslmode=bogus') })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  expect(() => new PostgresCronAdapter({ connectionString: url(''), ssl: { ca: 'not a pem' } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  expect(() => new PostgresCronAdapter({ connectionString: url(''), ssl: { rejectUnauthorized: 'no' } })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
  expect(() => new PostgresCronAdapter({ connectionString: url(''), ssl: 42 })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG }))
})
