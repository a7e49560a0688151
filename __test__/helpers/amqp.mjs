// RabbitMQ helpers: the test broker, an independent client (amqplib) to inspect queues, cleanup, rabbitmqctl.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import amqplib from 'amqplib'
import { requireService, uniquePrefix } from './env.mjs'

export const RABBIT_HOST = process.env.TEST_RABBITMQ_HOST || '127.0.0.1'
export const RABBIT_PORT = Number(process.env.TEST_RABBITMQ_PORT || 5672)
export const RABBIT_URL = process.env.TEST_RABBITMQ_URL || `amqp://guest:guest@${RABBIT_HOST}:${RABBIT_PORT}`
export const requireRabbit = () => requireService('RabbitMQ', RABBIT_HOST, RABBIT_PORT)

/** An exchange name no other test uses. */
export const uniqueExchange = (tag = 'motia-test') => uniquePrefix(tag).replace(/:/g, '.').replace(/\.$/, '')

/** Opens an amqplib connection for assertions. */
export async function admin() {
  const conn = await amqplib.connect(RABBIT_URL)
  conn.on('error', () => {})
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  return { conn, ch }
}

/** Messages waiting in a queue (passive check; null if the queue does not exist). */
export async function queueDepth(queue) {
  const { conn, ch } = await admin()
  try {
    const q = await ch.checkQueue(queue)
    return q.messageCount
  } catch {
    return null
  } finally {
    await conn.close().catch(() => {})
  }
}

/** Deletes the exchange, its DLX and the queues of the given (topic, step) pairs. */
export async function cleanupTopology(exchange, pairs) {
  const { conn } = await admin()
  try {
    for (const [topic, step] of pairs) {
      for (const q of [`motia.${topic}.${step}`, `motia.${topic}.${step}.dlq`]) {
        const ch = await conn.createChannel()
        ch.on('error', () => {})
        await ch.deleteQueue(q).catch(() => {})
        await ch.close().catch(() => {})
      }
    }
    for (const x of [exchange, `${exchange}.dlq`]) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteExchange(x).catch(() => {})
      await ch.close().catch(() => {})
    }
  } finally {
    await conn.close().catch(() => {})
  }
}

const run = promisify(execFile)

/** Runs rabbitmqctl (the broker is local; the test user is root as in CI). */
export async function rabbitmqctl(...args) {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60000 })
  return stdout
}

/** Consumers on a queue (0 if it does not exist yet); a fresh connection per call (a 404 closes the channel). */
export async function consumerCount(queue) {
  const { conn, ch } = await admin()
  try {
    return (await ch.checkQueue(queue)).consumerCount
  } catch {
    return 0
  } finally {
    await conn.close().catch(() => {})
  }
}
