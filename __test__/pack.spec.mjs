// Distribution: `npm pack` gives a package that a fresh project installs and loads with the host's
// platform package (npm/<target>), with no Rust toolchain and no install/compile step.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { REDIS_URL, requireRedis } from './helpers/env.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
let work

beforeAll(() => requireRedis())
afterAll(() => work && fs.rmSync(work, { recursive: true, force: true }))

test('npm pack + install in a fresh project loads through the platform package', () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'motia-pack-'))
  const binary = fs.readdirSync(root).find((f) => /^motia-native-adapters\..+\.node$/.test(f))
  expect(binary).toBeDefined() // built by `npm run build`
  const target = binary.replace(/^motia-native-adapters\./, '').replace(/\.node$/, '')
  const platformDir = path.join(root, 'npm', target)
  expect(fs.existsSync(path.join(platformDir, 'package.json'))).toBe(true)

  // platform package: its package.json + the binary (what `napi artifacts` assembles in CI)
  const stage = path.join(work, 'platform')
  fs.mkdirSync(stage)
  fs.copyFileSync(path.join(platformDir, 'package.json'), path.join(stage, 'package.json'))
  fs.copyFileSync(path.join(root, binary), path.join(stage, binary))
  const platformTgz = path.join(stage, npm(['pack', '--silent'], stage).trim().split('\n').pop())
  const mainTgz = path.join(root, npm(['pack', '--silent', '--pack-destination', work], root).trim().split('\n').pop())
  const mainTarball = path.join(work, path.basename(mainTgz))

  const listing = execFileSync('tar', ['-tzf', mainTarball], { encoding: 'utf8' })
  expect(listing).toContain('package/binding.js')
  expect(listing).toContain('package/index.d.ts')
  expect(listing).toContain('package/lib/index.mjs')
  expect(listing).not.toMatch(/\.node\n/) // the binary ships in the platform package only
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  expect(pkg.scripts.install).toBeUndefined()
  expect(pkg.scripts.postinstall).toBeUndefined()

  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  npm(['install', '--no-audit', '--no-fund', '--ignore-scripts', platformTgz, mainTarball], app)
  expect(fs.existsSync(path.join(app, 'node_modules', `motia-native-adapters-${target}`, binary))).toBe(true)

  const script = `
const { RedisStateAdapter } = require('motia-native-adapters')
import('motia-native-adapters').then(async (esm) => {
  const s = new RedisStateAdapter({ url: ${JSON.stringify(REDIS_URL)} }, { keyPrefix: 'pack-test:' })
  await s.set('t', 'k', { ok: true })
  const v = await s.delete('t', 'k')
  await s.cleanup()
  console.log(JSON.stringify({ same: esm.RedisStateAdapter === RedisStateAdapter, v, from: require.resolve('motia-native-adapters-${target}') }))
})`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }).trim())
  expect(out.same).toBe(true)
  expect(out.v).toEqual({ ok: true })
  expect(out.from).toContain(path.join(app, 'node_modules'))
}, 120000)
