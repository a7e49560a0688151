// One way to run a fixture in its own Node process (the event suites: competing replicas, kill -9).
import { spawn } from 'node:child_process'

/**
 * Spawns `node script ...args`, collects its stdout lines as they come and its stderr, and records the process in
 * `children` so the suite can kill what is left; `env` adds variables. `exited` resolves `{code, signal}`.
 */
export function spawnChild(script, args, children, env = undefined) {
  const p = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env })
  children.push(p)
  const lines = []
  let buf = ''
  p.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
  })
  let err = ''
  p.stderr.on('data', (d) => (err += d))
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })))
  return { p, lines, exited, stderr: () => err }
}
