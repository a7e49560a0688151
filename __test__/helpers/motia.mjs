// Running real Motia 0.17 apps (`motia start`) from the examples in the test suites.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from './env.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
export const EXAMPLES = path.join(here, '..', '..', 'examples')
/** The example apps share examples/motia-app's node_modules (installed by scripts/test.sh). */
export const APP_MODULES = path.join(EXAMPLES, 'motia-app', 'node_modules')

export function requireMotiaApp() {
  if (!fs.existsSync(path.join(APP_MODULES, 'motia'))) {
    throw new Error(
      'examples/motia-app has no node_modules: run `bash scripts/test.sh` (it installs them) or `cd examples/motia-app && REDISMS_DISABLE_POSTINSTALL=1 npm install`',
    )
  }
}

/** A private copy of an example app (instances cannot share a folder: they compile into .motia/compiled). */
export function copyApp(app) {
  const src = path.join(EXAMPLES, app)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${app}-`))
  for (const f of ['package.json', 'motia.config.ts']) fs.copyFileSync(path.join(src, f), path.join(dir, f))
  fs.cpSync(path.join(src, 'steps'), path.join(dir, 'steps'), { recursive: true })
  fs.symlinkSync(APP_MODULES, path.join(dir, 'node_modules'), 'dir')
  return dir
}

/** Starts `motia start` for a copy of `app` on `port`; `env` is added to the environment. */
export function startApp(app, name, port, env = {}) {
  const dir = copyApp(app)
  const p = spawn(path.join(dir, 'node_modules', '.bin', 'motia'), ['start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: dir,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      INSTANCE_NAME: name,
      MOTIA_ANALYTICS_DISABLED: 'true',
      MOTIA_DOCKER_DISABLE_WORKBENCH: 'true',
      REDISMS_DISABLE_POSTINSTALL: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  p.stderr.on('data', (d) => (out += d))
  return { name, port, p, dir, log: () => out, exited: new Promise((r) => p.on('exit', r)) }
}

/** Stops an instance and the step processes it started (SIGTERM, then SIGKILL after 5 s), and removes its folder. */
export async function stopApp(inst) {
  if (inst.p.exitCode === null && inst.p.signalCode === null) {
    try {
      process.kill(-inst.p.pid, 'SIGTERM')
    } catch {}
    const t = setTimeout(() => {
      try {
        process.kill(-inst.p.pid, 'SIGKILL')
      } catch {}
    }, 5000)
    await inst.exited
    clearTimeout(t)
  }
  fs.rmSync(inst.dir, { recursive: true, force: true })
}

/** Resolves when the instance listens; throws with its log when it did not start or its config failed. */
export async function appReady(inst) {
  await eventually(() => /Server ready and listening on port/.test(inst.log()), { timeout: 120000, interval: 250 }).catch((e) => {
    throw new Error(`${inst.name} did not start: ${e.message}\n${inst.log().slice(-3000)}`)
  })
  if (/Failed to load motia.config/.test(inst.log())) throw new Error(`${inst.name}: motia.config.ts failed to load\n${inst.log()}`)
}
