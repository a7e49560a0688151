// The RFC's "motia.config.ts Configuration" example (rfc-adapter-pattern.md, section 2), verbatim except the
// adapter import lines: use it as the app's `motia.config.ts` (`__test__/motia-app-rfc.spec.mjs` does) to run
// this app on the RFC's flat configs and prefixes (motia:state:, motia:stream:, motia:cron:, exchange
// motia.events). It reads REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, RABBITMQ_URL and INSTANCE_ID. Like the RFC it
// sets no `redis:` for Motia's own traces: set MOTIA_DISABLE_MEMORY_SERVER=true and MOTIA_REDIS_HOST/PORT.
// oxlint-disable-next-line no-unused-vars -- the RFC's import line, kept as written
import { config, type Config, type Motia } from '@motiadev/core'
import { RedisStateAdapter, RedisStreamAdapter, RabbitMQEventAdapter, RedisCronAdapter } from 'motia-native-adapters'

export default config({
  adapters: {
    state: new RedisStateAdapter({
      host: process.env.REDIS_HOST || 'localhost',
      port: parseInt(process.env.REDIS_PORT || '6379'),
      password: process.env.REDIS_PASSWORD,
      keyPrefix: 'motia:state:',
      ttl: 3600,
    }),
    
    streams: new RedisStreamAdapter({
      host: process.env.REDIS_HOST || 'localhost',
      port: parseInt(process.env.REDIS_PORT || '6379'),
      password: process.env.REDIS_PASSWORD,
      keyPrefix: 'motia:stream:',
    }),
    
    events: new RabbitMQEventAdapter({
      url: process.env.RABBITMQ_URL || 'amqp://localhost',
      exchangeName: 'motia.events',
      exchangeType: 'topic',
      durable: true,
    }),
    
    cron: new RedisCronAdapter({
      host: process.env.REDIS_HOST || 'localhost',
      port: parseInt(process.env.REDIS_PORT || '6379'),
      password: process.env.REDIS_PASSWORD,
      keyPrefix: 'motia:cron:',
      lockTTL: 300000,
      instanceId: process.env.INSTANCE_ID || undefined,
    }),
  },
  
  plugins: [
  ],
})
