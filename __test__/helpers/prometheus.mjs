// Parses Prometheus text with the official client's parser (Python prometheus_client, installed by `npm test`).
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const PROMPARSE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'promparse.py')

/** `[{name, type, samples: [{name, labels, value}]}]`; counter families are named without `_total`. */
export function parsePrometheus(text) {
  return JSON.parse(execFileSync('python3', [PROMPARSE], { input: text, encoding: 'utf8' }))
}

/** Sum of the samples `sample` of family `family` whose labels include `labels` (0 when none). */
export function promValue(families, family, sample, labels = {}) {
  const f = families.find((x) => x.name === family)
  if (!f) return 0
  return f.samples
    .filter((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0)
}
