// Cost of crossing the napi boundary: async fn per call vs a completion channel (internal probe).
import native from '../index.js'
import { run } from './lib.mjs'

const pending = new Map()
const ch = new native.ProbeChannel(([id, s]) => { const r = pending.get(id); pending.delete(id); r(s) })
let next = 0
const viaChannel = (s) => new Promise((resolve) => { const id = next++ >>> 0; pending.set(id, resolve); ch.submit(id, s) })
const keep = setInterval(() => {}, 1000)
for (const c of [1, 64]) {
  const total = c === 1 ? 20000 : 200000
  const a = await run(() => native.probeEchoAsync('x'), { total, concurrency: c })
  const b = await run(() => viaChannel('x'), { total, concurrency: c })
  console.log(`c=${c}: async fn ${Math.round(a.opsPerSec)} ops/s p50 ${a.p50us.toFixed(1)}µs | channel ${Math.round(b.opsPerSec)} ops/s p50 ${b.p50us.toFixed(1)}µs`)
}
clearInterval(keep)
