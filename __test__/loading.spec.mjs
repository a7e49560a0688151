// The package loads with require, with import, and through jiti (how Motia loads motia.config.ts).
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import fs from 'node:fs'
import os from 'node:os'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const EXPORTS = ['RedisStateAdapter', 'ErrorCodes', 'MotiaAdapterError']

function runNode(args, cwd = root) {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }).trim()
}

test('require() gives the CommonJS entry', () => {
  const out = runNode(['-e', `const m = require('motia-native-adapters'); console.log(JSON.stringify(${JSON.stringify(EXPORTS)}.map(k => typeof m[k])))`])
  expect(JSON.parse(out)).toEqual(['function', 'object', 'function'])
})

test('import gives the ESM entry with the same classes', () => {
  const out = runNode([
    '--input-type=module',
    '-e',
    `import * as m from 'motia-native-adapters'; import { createRequire } from 'node:module'; const c = createRequire(import.meta.url)('motia-native-adapters'); console.log(JSON.stringify([typeof m.RedisStateAdapter, m.RedisStateAdapter === c.RedisStateAdapter, typeof m.default]))`,
  ])
  expect(JSON.parse(out)).toEqual(['function', true, 'object'])
})

test('jiti loads a motia.config.ts that imports us (import and require forms)', () => {
  // a throwaway "user project" with the package linked into node_modules, as npm would install it
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-jiti-'))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'motia-native-adapters'), 'dir')
  try {
    fs.writeFileSync(
      path.join(dir, 'motia.config.ts'),
      `import { RedisStateAdapter } from 'motia-native-adapters'
const cjs = require('motia-native-adapters')
const state: InstanceType<typeof RedisStateAdapter> = new RedisStateAdapter({ url: 'redis://127.0.0.1:6379' }, { keyPrefix: 'jiti:' })
export default { adapters: { state }, same: cjs.RedisStateAdapter === RedisStateAdapter }
`,
    )
    const script = `
const { createJiti } = require(${JSON.stringify(require.resolve('jiti'))})
const jiti = createJiti(${JSON.stringify(path.join(dir, 'motia.config.ts'))})
jiti.import(${JSON.stringify(path.join(dir, 'motia.config.ts'))}, { default: true }).then(async (cfg) => {
  await cfg.adapters.state.set('t', 'k', 1)
  const v = await cfg.adapters.state.delete('t', 'k')
  await cfg.adapters.state.cleanup()
  console.log(JSON.stringify({ ctor: cfg.adapters.state.constructor.name, same: cfg.same, v }))
})`
    const out = runNode(['-e', script], dir)
    expect(JSON.parse(out)).toEqual({ ctor: 'RedisStateAdapter', same: true, v: 1 })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a Rust panic becomes a rejected promise, not a crash (test build); the published build carries no probe', async () => {
  const native = require('../binding.js')
  const { MotiaAdapterError } = require('motia-native-adapters')
  if (process.env.MOTIA_ADDON_PREBUILT === '1') {
    // release.yml tests the publishable artifact, built without the cargo feature `test-probes`
    expect(native.testPanic).toBeUndefined()
    expect(native.probeEchoAsync).toBeUndefined()
    return
  }
  await expect(native.testPanic('deliberate test panic')).rejects.toThrow(/\[MOTIA_INTERNAL\].*deliberate test panic/)
  await expect(native.testPanic('')).resolves.toBeUndefined()
  expect(typeof MotiaAdapterError).toBe('function')
})
