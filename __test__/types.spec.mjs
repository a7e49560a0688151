// A motia.config.ts using our classes type-checks against @motiadev/core@0.17.14-beta.196 (tsc --noEmit).
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

test('tsc --noEmit accepts our classes in Config / AdapterConfig', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  let out = ''
  try {
    out = execFileSync(process.execPath, [tsc, '-p', path.join(root, '__test__/types/tsconfig.json')], { encoding: 'utf8' })
  } catch (e) {
    out = `${e.stdout}${e.stderr}`
    throw new Error(`tsc failed:\n${out}`)
  }
  expect(out.trim()).toBe('')
}, 120000)

test('index.d.ts itself type-checks without skipLibCheck (errors inside @motiadev/core are not ours)', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const args = [tsc, '--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--types', 'node', path.join(root, 'index.d.ts')]
  let out = ''
  try {
    out = execFileSync(process.execPath, args, { encoding: 'utf8', cwd: root })
  } catch (e) {
    out = `${e.stdout}${e.stderr}`
  }
  const ours = out.split('\n').filter((l) => l.startsWith('index.d.ts('))
  expect(ours).toEqual([])
}, 120000)
