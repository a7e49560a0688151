// Tiny benchmark helpers: run an async op N times at concurrency C, report ops/s and latency percentiles.
export async function run(op, { total, concurrency }) {
  const lat = new Float64Array(total)
  let next = 0
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
  const sorted = Array.from(lat).sort((a, b) => a - b)
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return { opsPerSec: total / secs, p50us: pct(50), p99us: pct(99) }
}

export function fmt(n, digits = 0) {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function printTable(rows) {
  const header = ['operation', 'ours ops/s', 'upstream ops/s', 'ratio', 'ours p50/p99 µs', 'upstream p50/p99 µs']
  const lines = rows.map((r) => [
    r.name,
    fmt(r.ours.opsPerSec),
    fmt(r.upstream.opsPerSec),
    `${fmt(r.ours.opsPerSec / r.upstream.opsPerSec, 2)}x`,
    `${fmt(r.ours.p50us)}/${fmt(r.ours.p99us)}`,
    `${fmt(r.upstream.p50us)}/${fmt(r.upstream.p99us)}`,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  console.log(line(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) console.log(line(l))
}
