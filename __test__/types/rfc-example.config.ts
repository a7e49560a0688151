// The RFC's "motia.config.ts Configuration" example (rfc-adapter-pattern.md, section 2), verbatim except the
// import lines: the four adapters come from motia-native-adapters. tsc --noEmit must accept it against
// @motiadev/core@0.17.14-beta.196 (there `adapters.streams` is a StreamAdapterManager: our RedisStreamAdapter is one).
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
