// Cost of crossing the napi boundary (internal probes): async fn per call vs completion channels.
import native from '../binding.js'
import { run } from './lib.mjs'

const pending = new Map()
const ch = new native.ProbeChannel(([id, s]) => {
  const r = pending.get(id)
  pending.delete(id)
  r(s)
})
let next = 0
const via = (method) => (_i, _w, s = 'x') =>
  new Promise((resolve) => {
    const id = next++ >>> 0
    pending.set(id, resolve)
    ch[method](id, s)
  })
const keep = setInterval(() => {}, 1000)
for (const c of [1, 64]) {
  const total = c === 1 ? 10000 : 100000
  const rows = {
    'async fn': await run(() => native.probeEchoAsync('x'), { total, concurrency: c }),
    'tokio spawn + tsfn': await run(via('submit'), { total, concurrency: c }),
    'tsfn from JS thread': await run(via('submitDirect'), { total, concurrency: c }),
  }
  for (const [k, r] of Object.entries(rows)) console.log(`c=${c} ${k.padEnd(20)} ${Math.round(r.opsPerSec).toString().padStart(8)} ops/s  p50 ${r.p50us.toFixed(1)} µs`)
}
clearInterval(keep)
