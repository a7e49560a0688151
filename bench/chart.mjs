// Draws the benchmark ratios (ours ÷ upstream ops/s, one bar per row) of the last `npm run bench` as an SVG
// bar chart: reads bench/results/{state,streams,cron}.json, writes docs/bench-chart.svg. No browser needed.
// Usage: node bench/chart.mjs [out.svg]
import fs from 'node:fs'

const SUITES = [
  ['state', 'RedisStateAdapter vs @motiadev/adapter-redis-state'],
  ['streams', 'RedisStreamAdapter vs @motiadev/adapter-redis-streams'],
  ['cron', 'RedisCronAdapter vs @motiadev/adapter-redis-cron'],
]
const out = process.argv[2] || new URL('../docs/bench-chart.svg', import.meta.url).pathname

const groups = []
let date = ''
for (const [name, title] of SUITES) {
  const file = new URL(`./results/${name}.json`, import.meta.url)
  if (!fs.existsSync(file)) continue
  const r = JSON.parse(fs.readFileSync(file, 'utf8'))
  date = date || r.date
  groups.push({ title, scale: r.scale, rows: r.rows.map((x) => ({ name: x.name, ratio: x.ours.opsPerSec / x.upstream.opsPerSec })) })
}
if (groups.length === 0) {
  console.error('no bench results: run `npm run bench` first (it writes bench/results/*.json)')
  process.exit(1)
}

// log scale from 1/4x to 32x, 1x marked
const MIN = 0.25
const MAX = 32
const W = 940
const LABEL = 340
const PLOT = W - LABEL - 70
const BAR = 16
const GAP = 6
const x = (ratio) => LABEL + (Math.log(Math.min(MAX, Math.max(MIN, ratio)) / MIN) / Math.log(MAX / MIN)) * PLOT
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const parts = []
let y = 72
for (const g of groups) {
  parts.push(`<text x="10" y="${y}" class="h">${esc(g.title)}</text>`)
  y += 10
  for (const r of g.rows) {
    const win = r.ratio >= 1
    const x0 = x(1)
    const x1 = x(r.ratio)
    const left = Math.min(x0, x1)
    parts.push(`<text x="${LABEL - 8}" y="${y + BAR - 4}" class="l" text-anchor="end">${esc(r.name)}</text>`)
    parts.push(`<rect x="${left.toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${BAR}" class="${win ? 'w' : 'z'}"/>`)
    parts.push(`<text x="${(Math.max(x0, x1) + 6).toFixed(1)}" y="${y + BAR - 4}" class="v">${r.ratio.toFixed(2)}×</text>`)
    y += BAR + GAP
  }
  y += 18
}
const ticks = [0.25, 0.5, 1, 2, 4, 8, 16, 32]
const axis = ticks
  .map((t) => `<line x1="${x(t).toFixed(1)}" y1="52" x2="${x(t).toFixed(1)}" y2="${y - 10}" class="${t === 1 ? 'one' : 'g'}"/><text x="${x(t).toFixed(1)}" y="${y + 6}" class="t" text-anchor="middle">${t}×</text>`)
  .join('')
const H = y + 20
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">
<style>.h{font-size:14px;font-weight:bold;fill:#222}.l{font-size:12px;fill:#333}.v{font-size:11px;fill:#333}.t{font-size:11px;fill:#666}
.w{fill:#2e7d32}.z{fill:#c62828}.g{stroke:#ddd;stroke-width:1}.one{stroke:#555;stroke-width:1.5}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="24" font-size="16" font-weight="bold" fill="#111">motia-native-adapters ÷ upstream 0.17 (ops/s, same run; log scale; green = faster)</text>
<text x="10" y="40" font-size="11" fill="#666">${esc(date)}, scale ${groups[0].scale}, median of alternating rounds</text>
${axis}
${parts.join('\n')}
</svg>
`
fs.mkdirSync(new URL('../docs/', import.meta.url), { recursive: true })
fs.writeFileSync(out, svg)
console.log(`wrote ${out} (${groups.reduce((a, g) => a + g.rows.length, 0)} rows)`)
