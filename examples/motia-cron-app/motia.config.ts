// RedisCronAdapter with its default options (only the key prefix is set, so test runs do not share
// locks). The ledger wrapper below is the test's instrument, not part of the adapter: it records
// every acquireLock call Motia core makes (time, instance, won or not) in a Redis list, written with
// node-redis, so the test can count the runs of every tick from outside the adapter.
import { config } from 'motia'
import { createClient } from 'redis'
import { RedisCronAdapter } from 'motia-native-adapters'

const prefix = process.env.APP_PREFIX ?? 'motia-cron-app:'
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const instance = process.env.INSTANCE_NAME ?? 'app'
const redis = new URL(redisUrl)

const ledger = createClient({ url: redisUrl })
const connected = ledger.connect()

// CRON_RELEASE_GUARD=0 (upstream behaviour: release frees the job at once) is only for a control run that shows
// the test catching duplicate runs; the proof runs with the defaults
const guard = process.env.CRON_RELEASE_GUARD
const cron = new RedisCronAdapter({ url: redisUrl }, { keyPrefix: `${prefix}cron:`, ...(guard ? { releaseGuard: Number(guard) } : {}) })
const ledgerCron = {
  async acquireLock(jobName: string, ttl: number) {
    const at = Date.now()
    const lock = await cron.acquireLock(jobName, ttl)
    await connected
    await ledger.rPush(`${prefix}ledger:${jobName}`, JSON.stringify({ at, instance, won: lock !== null }))
    return lock
  },
  releaseLock: (lock: any) => cron.releaseLock(lock),
  renewLock: (lock: any, ttl: number) => cron.renewLock(lock, ttl),
  isHealthy: () => cron.isHealthy(),
  getActiveLocks: () => cron.getActiveLocks(),
  shutdown: () => cron.shutdown(),
}

export default config({
  adapters: { cron: ledgerCron as any },
  redis: { useMemoryServer: false, host: redis.hostname, port: Number(redis.port || 6379) },
})
