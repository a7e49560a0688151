// Tiny benchmark helpers: run an async op N times at concurrency C, report ops/s and latency percentiles.
export async function run(op, { total, concurrency }) {
  const lat = new Float64Array(total)
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  async function worker(_, w) {
    for (;;) {
      const i = next++
      if (i >= total) return
      const s = process.hrtime.bigint()
      await op(i, w)
      lat[i] = Number(process.hrtime.bigint() - s) / 1e3
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0) // user+sys of the whole process (all threads), µs
  const sorted = Array.from(lat).sort((a, b) => a - b)
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return { opsPerSec: total / secs, p50us: pct(50), p99us: pct(99), cpuUsPerOp: (cpu.user + cpu.system) / total }
}

export function fmt(n, digits = 0) {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function printTable(rows) {
  const cpu = rows.some((r) => r.ours.cpuUsPerOp !== undefined && r.upstream.cpuUsPerOp !== undefined)
  const header = ['operation', 'ours ops/s', 'upstream ops/s', 'ratio', 'ours p50/p99 µs', 'upstream p50/p99 µs', 'p99 ratio']
  if (cpu) header.push('CPU µs/op ours/upstream', 'CPU ratio')
  const lines = rows.map((r) => [
    r.name,
    fmt(r.ours.opsPerSec),
    fmt(r.upstream.opsPerSec),
    `${fmt(r.ours.opsPerSec / r.upstream.opsPerSec, 2)}x`,
    `${fmt(r.ours.p50us)}/${fmt(r.ours.p99us)}`,
    `${fmt(r.upstream.p50us)}/${fmt(r.upstream.p99us)}`,
    `${fmt(r.ours.p99us / r.upstream.p99us, 2)}x`,
    ...(cpu
      ? [
          r.ours.cpuUsPerOp === undefined ? '' : `${fmt(r.ours.cpuUsPerOp, 1)}/${fmt(r.upstream.cpuUsPerOp, 1)}`,
          r.ours.cpuUsPerOp === undefined ? '' : `${fmt(r.ours.cpuUsPerOp / r.upstream.cpuUsPerOp, 2)}x`,
        ]
      : []),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  console.log(line(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) console.log(line(l))
}

/**
 * Runs every case for both implementations `rounds` times, alternating which goes first, and keeps
 * the median by ops/s (this machine is noisy: single runs vary by ±50%).
 */
export async function compareAll(cases, impls, { rounds = Number(process.env.BENCH_ROUNDS || 3), only = process.env.BENCH_ONLY } = {}) {
  const filter = only ? new RegExp(only) : null
  const rows = []
  for (const c of cases.filter((x) => !filter || filter.test(x.name))) {
    const samples = { ours: [], upstream: [] }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['upstream', 'ours'] : ['ours', 'upstream']
      for (const which of order) {
        if (c.setup) await c.setup(impls[which])
        samples[which].push(await c.go(impls[which]))
      }
    }
    const median = (xs) => xs.slice().sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(xs.length / 2)]
    rows.push({ name: c.name, ours: median(samples.ours), upstream: median(samples.upstream) })
    process.stderr.write('.')
  }
  process.stderr.write('\n')
  return rows
}

/** The value the Redis state benches write (about 300 bytes of JSON). */
export const orderValue = { id: 'order-123', status: 'paid', amount: 42.5, items: [{ sku: 'a', qty: 2 }, { sku: 'b', qty: 1 }], note: 'x'.repeat(200) }

/** Writes `count` keys `k0..` into `trace` of state adapter `s`, 500 at a time. */
export async function fillGroup(s, trace, count, value = orderValue) {
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => s.set(trace, `k${i + j}`, { ...value, i: i + j })))
  }
}
