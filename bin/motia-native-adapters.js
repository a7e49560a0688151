#!/usr/bin/env node
'use strict'
/**
 * motia-native-adapters CLI.
 *
 *   npx motia-native-adapters migrate-state --from <.motia dir | motia.state.json> --to <redis url>
 *       [--prefix motia:state:] [--ttl <seconds>] [--dry-run] [--batch 500]
 *
 * Copies the state of Motia's default FileStateAdapter (`.motia/motia.state.json`: `{"<traceId>:<key>":
 * "<JSON>"}`) into Redis in the RedisStateAdapter layout (`${prefix}${traceId}:${key}` = JSON). Idempotent:
 * a key that already holds the same value is counted as unchanged; running it again changes nothing.
 */
const fs = require('node:fs')
const path = require('node:path')

const USAGE = `usage: motia-native-adapters migrate-state --from <.motia dir | motia.state.json> --to <redis url>
       [--prefix motia:state:] [--ttl <seconds>] [--batch 500] [--dry-run]`

function parseArgs(argv) {
  const [command, ...rest] = argv
  const opts = { command, prefix: 'motia:state:', batch: 500, dryRun: false }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]
    const value = () => {
      const v = rest[++i]
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`)
      return v
    }
    if (a === '--from') opts.from = value()
    else if (a === '--to') opts.to = value()
    else if (a === '--prefix') opts.prefix = value()
    else if (a === '--ttl') opts.ttl = Number(value())
    else if (a === '--batch') opts.batch = Number(value())
    else if (a === '--dry-run') opts.dryRun = true
    else if (a === '--help' || a === '-h') opts.help = true
    else throw new Error(`unknown argument ${a}\n${USAGE}`)
  }
  return opts
}

function stateFile(from) {
  const p = path.resolve(from)
  const stat = fs.statSync(p, { throwIfNoEntry: false })
  if (!stat) throw new Error(`--from: ${from} does not exist`)
  const file = stat.isDirectory() ? path.join(p, 'motia.state.json') : p
  if (!fs.existsSync(file)) throw new Error(`--from: no motia.state.json in ${from}`)
  return file
}

function progress(done, total, started) {
  if (total === 0) return
  const width = 30
  const filled = Math.round((done / total) * width)
  const rate = done / Math.max(0.001, (Date.now() - started) / 1000)
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} keys (${Math.round(rate)}/s)`
  process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`)
}

/** Splits `traceId:key` the way FileStateAdapter does: the trace id ends at the first ':'. */
function splitKey(fullKey) {
  const i = fullKey.indexOf(':')
  if (i < 0) return null
  return [fullKey.slice(0, i), fullKey.slice(i + 1)]
}

async function migrateState(opts, { log = console.log } = {}) {
  if (!opts.from || !opts.to) throw new Error(`--from and --to are required\n${USAGE}`)
  if (!/^rediss?:\/\//i.test(opts.to)) throw new Error('--to must be a redis:// or rediss:// URL')
  if (opts.ttl !== undefined && !(Number.isInteger(opts.ttl) && opts.ttl > 0)) throw new Error('--ttl must be a positive integer (seconds)')
  if (!(Number.isInteger(opts.batch) && opts.batch > 0)) throw new Error('--batch must be a positive integer')
  const file = stateFile(opts.from)
  let data
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${e.message}`)
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error(`${file} is not a FileStateAdapter state file`)

  // group by trace so each batch is one native getMany/setMany
  const entries = Object.entries(data)
  const report = { file, total: entries.length, written: 0, unchanged: 0, invalid: 0, traces: 0, dryRun: opts.dryRun }
  const byTrace = new Map()
  for (const [fullKey, text] of entries) {
    const parts = splitKey(fullKey)
    let value
    try {
      if (!parts || typeof text !== 'string') throw new Error('bad entry')
      value = JSON.parse(text)
    } catch {
      report.invalid++
      log(`skipping ${JSON.stringify(fullKey)}: not a "<traceId>:<key>" entry with a JSON value`)
      continue
    }
    const [traceId, key] = parts
    if (!byTrace.has(traceId)) byTrace.set(traceId, [])
    byTrace.get(traceId).push([key, value])
  }
  report.traces = byTrace.size

  const { RedisStateAdapter } = require('../lib/state.js')
  const state = new RedisStateAdapter({ url: opts.to }, { keyPrefix: opts.prefix, ttl: opts.ttl })
  const started = Date.now()
  let done = 0
  try {
    for (const [traceId, items] of byTrace) {
      for (let i = 0; i < items.length; i += opts.batch) {
        const chunk = items.slice(i, i + opts.batch)
        const existing = await state.getMany(traceId, chunk.map(([k]) => k))
        const toWrite = {}
        for (let j = 0; j < chunk.length; j++) {
          const [k, v] = chunk[j]
          // getMany returns null both for a missing key and for a stored JSON null
          const same = existing[j] === null ? v === null && (await state.exists(traceId, k)) : JSON.stringify(existing[j]) === JSON.stringify(v)
          if (same) report.unchanged++
          else {
            toWrite[k] = v
            report.written++
          }
        }
        if (!opts.dryRun && Object.keys(toWrite).length > 0) await state.setMany(traceId, toWrite)
        done += chunk.length
        if (done === report.total - report.invalid || done % 5000 < chunk.length) progress(done, report.total - report.invalid, started)
      }
    }
  } finally {
    await state.cleanup()
  }
  if (process.stderr.isTTY && report.total > 0) process.stderr.write('\n')
  log(
    `${opts.dryRun ? '[dry run] would write' : 'wrote'} ${report.written} keys, ${report.unchanged} unchanged, ${report.invalid} skipped (invalid), ${report.traces} trace(s), from ${file} to ${opts.prefix}* in Redis`,
  )
  return report
}

async function main(argv) {
  const opts = parseArgs(argv)
  if (opts.help || !opts.command) {
    console.log(USAGE)
    return 0
  }
  if (opts.command !== 'migrate-state') throw new Error(`unknown command ${opts.command}\n${USAGE}`)
  const report = await migrateState(opts)
  console.log(JSON.stringify(report))
  return 0
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      const { redact } = require('../lib/errors.js')
      console.error(`motia-native-adapters: ${redact(e && e.message ? e.message : e)}`)
      process.exit(1)
    },
  )
}

module.exports = { migrateState, parseArgs }
