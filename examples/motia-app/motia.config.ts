// Apart from the optional /health and /metrics endpoints below, the only change from the upstream adapters: the imports.
// MOTIA_ADAPTERS=upstream runs the same app on the upstream @motiadev/adapter-* packages (the mixed-fleet test).
// MOTIA_EVENTS=redis (the default) keeps events in Redis too (RedisEventAdapter: one Redis runs everything);
// MOTIA_EVENTS=rabbitmq uses RabbitMQ (needed when mixing with upstream pods, which have no Redis event adapter).
import { config } from 'motia'
import {
  RedisStateAdapter,
  RedisStreamAdapterManager,
  RabbitMQEventAdapter,
  RedisEventAdapter,
  RedisCronAdapter,
  health,
  prometheusMetrics,
} from 'motia-native-adapters'
import { RedisStateAdapter as UpstreamState } from '@motiadev/adapter-redis-state'
import { RedisStreamAdapterManager as UpstreamStreams } from '@motiadev/adapter-redis-streams'
import { RedisCronAdapter as UpstreamCron } from '@motiadev/adapter-redis-cron'
import { RabbitMQEventAdapter as UpstreamEvents } from '@motiadev/adapter-rabbitmq-events'

const prefix = process.env.APP_PREFIX ?? 'motia-app:'
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const rabbit = {
  url: process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  exchangeName: `${prefix}events`,
  exchangeType: 'topic' as const,
}
const upstream = process.env.MOTIA_ADAPTERS === 'upstream'
const redisEvents = (process.env.MOTIA_EVENTS ?? 'redis') === 'redis'
const redis = new URL(redisUrl)

const adapters = upstream
  ? {
      state: new UpstreamState({ url: redisUrl }, { keyPrefix: `${prefix}state:` }),
      streams: new UpstreamStreams({ url: redisUrl }, { keyPrefix: `${prefix}stream:` }),
      events: new UpstreamEvents(rabbit),
      cron: new UpstreamCron({ url: redisUrl }, { keyPrefix: `${prefix}cron:` }),
    }
  : {
      state: new RedisStateAdapter({ url: redisUrl }, { keyPrefix: `${prefix}state:` }),
      streams: new RedisStreamAdapterManager({ url: redisUrl }, { keyPrefix: `${prefix}stream:` }),
      events: redisEvents
        ? new RedisEventAdapter({ url: redisUrl }, { keyPrefix: `${prefix}events:` })
        : new RabbitMQEventAdapter(rabbit),
      cron: new RedisCronAdapter({ url: redisUrl }, { keyPrefix: `${prefix}cron:` }),
    }

export default config({
  adapters,
  // Readiness and Prometheus endpoints (on the Express app of this process, where the adapters live:
  // API steps run in child processes and cannot reach them). Optional: drop `app` if you do not need them.
  app: (app) => {
    if (upstream) return
    app.get('/health', async (_req, res) => {
      const h = await health(adapters)
      res.status(h.ok ? 200 : 503).json(h)
    })
    app.get('/metrics', (_req, res) => {
      res.type('text/plain; version=0.0.4').send(prometheusMetrics(adapters))
    })
  },
  // Motia's own traces/logs need a Redis; use the local one (never download redis-memory-server)
  redis: { useMemoryServer: false, host: redis.hostname, port: Number(redis.port || 6379) },
})
