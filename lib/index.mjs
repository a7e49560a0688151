// ESM entry: the same objects as the CommonJS entry (one copy of the native addon).
import cjs from './index.js'

export const {
  RedisStateAdapter,
  RedisStreamAdapterManager,
  RedisStreamAdapter,
  RedisCronAdapter,
  PostgresCronAdapter,
  MySqlCronAdapter,
  RabbitMQEventAdapter,
  KafkaEventAdapter,
  RedisEventAdapter,
  CronScheduler,
  validateCronExpression,
  nextCronRuns,
  adaptersFromEnv,
  health,
  prometheusMetrics,
  registerOpenTelemetry,
  ErrorCodes,
  MotiaAdapterError,
} = cjs
export default cjs
