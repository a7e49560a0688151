// Each name is defined once: the error codes live in Rust (`src/error.rs` codes::ALL); the JS object, the
// public typings and the README table are checked against that list here. `redact` is Rust's, used by JS.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { ErrorCodes } from 'motia-native-adapters'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const native = require('../binding.js')
const { fromNative, redact } = require('../lib/errors.js')

test('JS, typings and README list exactly the Rust error codes, in order', () => {
  const rust = native.errorCodes()
  expect(rust.length).toBeGreaterThan(5)
  expect(Object.values(ErrorCodes)).toEqual(rust)
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const block = dts.slice(dts.indexOf('export declare const ErrorCodes'), dts.indexOf('export type ErrorCode'))
  expect([...block.matchAll(/'(MOTIA_[A-Z_]+)'/g)].map((m) => m[1])).toEqual(rust)
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  const table = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 5))
  expect([...table.matchAll(/^\| `(MOTIA_[A-Z_]+)` \|/gm)].map((m) => m[1])).toEqual(rust)
})

test('one redact: credentials end at the last @ of the authority, every URL in the text', () => {
  expect(redact('cannot reach redis://user:s3cret@host:6379/0')).toBe('cannot reach redis://***@host:6379/0')
  expect(redact('redis://u:p@ss@host/0 and amqp://g:g@h:5672')).toBe('redis://***@host/0 and amqp://***@h:5672')
  expect(redact('no url here')).toBe('no url here')
  const e = fromNative(new Error('[MOTIA_CONNECT] cannot reach rediss://a:b@c@d:1'))
  expect(e.code).toBe('MOTIA_CONNECT')
  expect(e.message).toBe('[MOTIA_CONNECT] cannot reach rediss://***@d:1')
})

test('cron defaults come from Rust', () => {
  expect(native.DEFAULT_LOCK_TTL_MS).toBe(300000)
  expect(native.DEFAULT_RELEASE_GUARD_MS).toBe(5000)
})

test('wire codes come from the Rust enums: distinct per group, and no JS file defines them again', () => {
  const w = native.wireCodes()
  const groups = { outcome: [], state: [], stream: [], log: [] }
  expect(w.logRecovered).toBe('MOTIA_RECOVERED')
  for (const [k, v] of Object.entries(w)) {
    if (k === 'logRecovered') continue
    expect(Number.isInteger(v)).toBe(true)
    groups[k.match(/^(outcome|state|stream|log)/)[1]].push(v)
  }
  for (const vals of Object.values(groups)) expect(new Set(vals).size).toBe(vals.length)
  expect(groups.outcome.length).toBe(3)
  for (const f of ['events.js', 'state.js', 'streams.js']) {
    const src = fs.readFileSync(path.join(root, 'lib', f), 'utf8')
    expect(src).not.toMatch(/const OP_[A-Z_]+ = \d/)
    expect(src).not.toMatch(/ACK: 0/)
  }
})

test('index.d.ts is the hand-written public API: nothing generated or test-only in it, nor in the exports', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  expect(dts).not.toMatch(/testPanic|ProbeChannel|probeEchoAsync|__napiBindingTarget|declare class NativeRedis|auto-generated/)
  const pub = require('motia-native-adapters')
  for (const k of ['testPanic', 'probeEchoAsync', 'ProbeChannel', 'NativeRedisState', 'wireCodes']) expect(pub[k]).toBeUndefined()
  // the probes exist only in the test build (cargo feature `test-probes`)
  expect(typeof native.testPanic).toBe(process.env.MOTIA_ADDON_PREBUILT === '1' ? 'undefined' : 'function')
  expect(fs.readFileSync(path.join(root, 'src', 'binding', 'mod.rs'), 'utf8')).toMatch(/#\[cfg\(feature = "test-probes"\)\]\npub mod probe;/)
})
