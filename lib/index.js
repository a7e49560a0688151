'use strict'
/**
 * motia-native-adapters (CommonJS entry). `lib/index.mjs` re-exports the same objects for ESM.
 */
const { RedisStateAdapter } = require('./state.js')
const { RedisCronAdapter, PostgresCronAdapter, MySqlCronAdapter } = require('./cron.js')
const { RedisStreamAdapter, RedisStreamAdapterManager } = require('./streams.js')
const { CronScheduler, validateCronExpression, nextCronRuns } = require('./scheduler.js')
const { ErrorCodes, MotiaAdapterError } = require('./errors.js')
const { adaptersFromEnv } = require('./env.js')
const { RabbitMQEventAdapter } = require('./rabbitmq.js')
const { KafkaEventAdapter } = require('./kafka.js')
const { RedisEventAdapter } = require('./redis-events.js')
const { health, prometheusMetrics, registerOpenTelemetry } = require('./metrics.js')

module.exports = {
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
}
