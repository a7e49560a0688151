// `motia-native-adapters migrate-state`: FileStateAdapter state file (made by @motiadev/core itself) → Redis.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { FileStateAdapter } from '@motiadev/core'
import { RedisStateAdapter } from 'motia-native-adapters'
import { REDIS_URL, requireRedis, uniquePrefix, deleteMatching } from './helpers/env.mjs'

const run = promisify(execFile)
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'motia-native-adapters.js')
let dir
let prefix
let raw

beforeAll(async () => {
  await requireRedis()
  raw = createClient({ url: REDIS_URL })
  await raw.connect()
})
afterAll(() => raw.quit())
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-state-'))
  prefix = uniquePrefix('migrate')
})
afterEach(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await deleteMatching(raw, `${prefix}*`)
})

const cli = (...args) => run(process.execPath, [CLI, 'migrate-state', ...args], { timeout: 60000 })

test('copies FileStateAdapter state into our Redis layout; --dry-run writes nothing; a second run changes nothing', async () => {
  const file = new FileStateAdapter({ filePath: path.join(dir, '.motia') })
  await file.set('trace-1', 'user', { name: 'Ada', tags: ['x'] })
  await file.set('trace-1', 'count', 42)
  await file.set('trace-2', 'a:b:c', 'colons in the key')
  await file.set('tr*ce[3]', 'k?', { hostile: true })
  await file.set('trace-4', 'nothing', null)

  const dry = await cli('--from', path.join(dir, '.motia'), '--to', REDIS_URL, '--prefix', prefix, '--dry-run')
  expect(dry.stdout).toMatch(/\[dry run\] would write 5 keys/)
  expect(await raw.keys(`${prefix}*`)).toEqual([])

  const first = await cli('--from', path.join(dir, '.motia'), '--to', REDIS_URL, '--prefix', prefix)
  const report = JSON.parse(first.stdout.trim().split('\n').pop())
  expect(report).toMatchObject({ total: 5, written: 5, unchanged: 0, invalid: 0, traces: 4 })
  expect(first.stderr).toMatch(/\[#+\] 5\/5 keys/)

  const ours = new RedisStateAdapter({ url: REDIS_URL }, { keyPrefix: prefix })
  try {
    for (const [t, k] of [['trace-1', 'user'], ['trace-1', 'count'], ['trace-2', 'a:b:c'], ['tr*ce[3]', 'k?'], ['trace-4', 'nothing']]) {
      expect(await ours.get(t, k)).toEqual(await file.get(t, k))
    }
    expect(await raw.get(`${prefix}trace-1:count`)).toBe('42')
    expect((await ours.getGroup('trace-1')).length).toBe(2)
  } finally {
    await ours.cleanup()
  }

  const again = await cli('--from', path.join(dir, '.motia', 'motia.state.json'), '--to', REDIS_URL, '--prefix', prefix)
  expect(JSON.parse(again.stdout.trim().split('\n').pop())).toMatchObject({ written: 0, unchanged: 5 })
})

test('bad input: missing file, invalid JSON, bad URL → exit 1 with a clear message (no password echoed)', async () => {
  await expect(cli('--from', path.join(dir, 'nope'), '--to', REDIS_URL)).rejects.toMatchObject({ stderr: expect.stringMatching(/does not exist/) })
  fs.writeFileSync(path.join(dir, 'motia.state.json'), '{oops')
  await expect(cli('--from', dir, '--to', REDIS_URL)).rejects.toMatchObject({ stderr: expect.stringMatching(/not valid JSON/) })
  fs.writeFileSync(path.join(dir, 'motia.state.json'), '{}')
  const e = await cli('--from', dir, '--to', 'http://user:s3cret@h').catch((x) => x)
  expect(e.code).toBe(1)
  expect(e.stderr).toMatch(/--to must be a redis/)
  expect(e.stderr).not.toMatch(/s3cret/)
})

test('entries that are not "<traceId>:<key>" with a JSON value are skipped and counted, the rest migrates', async () => {
  fs.writeFileSync(path.join(dir, 'motia.state.json'), JSON.stringify({ 't:k': '{"ok":1}', nokey: '1', 't:bad': '{oops' }))
  const r = await cli('--from', dir, '--to', REDIS_URL, '--prefix', prefix)
  expect(JSON.parse(r.stdout.trim().split('\n').pop())).toMatchObject({ total: 3, written: 1, invalid: 2 })
  expect(await raw.get(`${prefix}t:k`)).toBe('{"ok":1}')
})
