'use strict'
/**
 * adaptersFromEnv(env = process.env): builds Motia's `adapters` config from environment variables
 * (RFC "Environment Variables" / "Docker Support"). Unset `*_ADAPTER` variables leave Motia's default.
 * A missing or invalid variable throws MOTIA_CONFIG naming it.
 */
const { RedisStateAdapter } = require('./state.js')
const { RedisStreamAdapterManager } = require('./streams.js')
const { RedisCronAdapter, PostgresCronAdapter, MySqlCronAdapter } = require('./cron.js')
const { RabbitMQEventAdapter } = require('./rabbitmq.js')
const { KafkaEventAdapter } = require('./kafka.js')
const { RedisEventAdapter } = require('./redis-events.js')
const { configError } = require('./errors.js')

const DEFAULTS = new Set(['', 'default', 'memory', 'file', 'bullmq'])

function choice(env, name, allowed, unavailable = []) {
  const raw = env[name]
  const v = raw === undefined ? '' : String(raw).trim().toLowerCase()
  if (DEFAULTS.has(v)) return null
  if (unavailable.includes(v)) throw configError(name, `"${v}" is not available in this version of motia-native-adapters`)
  if (!allowed.includes(v)) throw configError(name, `must be one of ${[...allowed, 'default'].join(', ')} (got "${raw}")`)
  return v
}

function int(env, name, { min = 0, max = 2 ** 31 - 1 } = {}) {
  const raw = env[name]
  if (raw === undefined || String(raw).trim() === '') return undefined
  const s = String(raw).trim()
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw configError(name, `must be an integer between ${min} and ${max} (got "${raw}")`)
  return Number(s)
}

function str(env, name) {
  const raw = env[name]
  return raw === undefined || raw === '' ? undefined : String(raw)
}

function bool(env, name) {
  const raw = env[name]
  if (raw === undefined || raw === '') return false
  const v = String(raw).trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(v)) return true
  if (['0', 'false', 'no', 'off'].includes(v)) return false
  throw configError(name, `must be true or false (got "${raw}")`)
}

function hostPorts(env, name, defaultPort) {
  const raw = str(env, name)
  const list = raw.split(',').map((b) => b.trim()).filter(Boolean)
  if (list.length === 0 || list.some((b) => !/^[^:\s]+(:\d+)?$/.test(b))) {
    throw configError(name, `must be a comma-separated list of host[:port] (got "${raw}")`)
  }
  return list.map((b) => {
    const [host, port] = b.split(':')
    return { host, port: port === undefined ? defaultPort : Number(port) }
  })
}

/** The data nodes' settings of REDIS_* without the address (REDIS_SENTINELS names the master instead). */
function nodeOptions(env, conn) {
  if (bool(env, 'REDIS_TLS')) conn.socket = { ...conn.socket, tls: true }
  const password = str(env, 'REDIS_PASSWORD')
  if (password !== undefined) conn.password = password
  const username = str(env, 'REDIS_USERNAME')
  if (username !== undefined) conn.username = username
  const db = int(env, 'REDIS_DATABASE') ?? int(env, 'REDIS_DB')
  if (db !== undefined) conn.database = db
  return conn
}

/**
 * The Redis connection of one adapter (`kind`: STATE, STREAM, CRON, EVENTS). With REDIS_PRIMARY_URL and
 * REDIS_SECONDARY_URL: a primary/secondary pair, `<kind>_REDIS=secondary` making the secondary that adapter's
 * preferred server (routing by data category; each still fails over to the other).
 */
function redisConnection(env, kind) {
  const primary = str(env, 'REDIS_PRIMARY_URL')
  const secondary = str(env, 'REDIS_SECONDARY_URL')
  if ((primary === undefined) !== (secondary === undefined)) {
    throw configError(primary === undefined ? 'REDIS_PRIMARY_URL' : 'REDIS_SECONDARY_URL', 'REDIS_PRIMARY_URL and REDIS_SECONDARY_URL go together')
  }
  let conn
  if (primary !== undefined) {
    for (const [name, url] of [['REDIS_PRIMARY_URL', primary], ['REDIS_SECONDARY_URL', secondary]]) {
      if (!/^rediss?:\/\//i.test(url)) throw configError(name, 'must start with redis:// or rediss://')
    }
    const role = choice(env, `${kind}_REDIS`, ['primary', 'secondary']) ?? 'primary'
    const [a, b] = role === 'secondary' ? [secondary, primary] : [primary, secondary]
    const failover = { primary: { url: a }, secondary: { url: b } }
    const probeInterval = int(env, 'REDIS_PROBE_INTERVAL', { min: 10 })
    if (probeInterval !== undefined) failover.probeInterval = probeInterval
    const failAfter = int(env, 'REDIS_FAIL_AFTER', { min: 1 })
    if (failAfter !== undefined) failover.failAfter = failAfter
    const recoverAfter = int(env, 'REDIS_RECOVER_AFTER')
    if (recoverAfter !== undefined) failover.recoverAfter = recoverAfter
    conn = { failover }
  } else {
    conn = redisShape(env)
  }
  const waitReplicas = int(env, 'REDIS_WAIT_REPLICAS', { min: 0 })
  if (waitReplicas !== undefined) conn.waitReplicas = waitReplicas
  const waitTimeout = int(env, 'REDIS_WAIT_TIMEOUT', { min: 1 })
  if (waitTimeout !== undefined) conn.waitTimeout = waitTimeout
  return conn
}

function redisShape(env) {
  if (str(env, 'REDIS_CLUSTER_NODES') !== undefined) {
    if (str(env, 'REDIS_SENTINELS') !== undefined) throw configError('REDIS_CLUSTER_NODES', 'give either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both')
    const rootNodes = hostPorts(env, 'REDIS_CLUSTER_NODES', 6379).map((socket) => ({ socket }))
    return { rootNodes, defaults: nodeOptions(env, {}) }
  }
  if (str(env, 'REDIS_SENTINELS') !== undefined) {
    const name = str(env, 'REDIS_SENTINEL_NAME')
    if (name === undefined) throw configError('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS (the monitored master group, e.g. mymaster)')
    const sentinelClientOptions = {}
    const sp = str(env, 'REDIS_SENTINEL_PASSWORD')
    if (sp !== undefined) sentinelClientOptions.password = sp
    return { sentinelRootNodes: hostPorts(env, 'REDIS_SENTINELS', 26379), name, nodeClientOptions: nodeOptions(env, {}), sentinelClientOptions }
  }
  const url = str(env, 'REDIS_URL')
  if (url !== undefined) {
    if (!/^rediss?:\/\//i.test(url)) throw configError('REDIS_URL', 'must start with redis:// or rediss://')
    return { url }
  }
  return nodeOptions(env, { socket: { host: str(env, 'REDIS_HOST') ?? 'localhost', port: int(env, 'REDIS_PORT', { min: 1, max: 65535 }) ?? 6379 } })
}

function prefix(env, name, suffix) {
  const explicit = str(env, name)
  if (explicit !== undefined) return explicit
  const base = str(env, 'REDIS_KEY_PREFIX')
  return base === undefined ? undefined : `${base}${suffix}`
}

/**
 * Variables: STATE_ADAPTER (redis), STREAM_ADAPTER (redis), CRON_ADAPTER (redis | postgres | mysql),
 * EVENT_ADAPTER (redis | rabbitmq | kafka) with EVENTS_KEY_PREFIX (redis), RABBITMQ_URL, RABBITMQ_EXCHANGE, RABBITMQ_EXCHANGE_TYPE, RABBITMQ_PREFETCH
 * or KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_GROUP_ID; REDIS_URL or REDIS_HOST / REDIS_PORT / REDIS_PASSWORD /
 * REDIS_USERNAME / REDIS_DATABASE / REDIS_TLS, or REDIS_SENTINELS (host:port,…) + REDIS_SENTINEL_NAME
 * (+ REDIS_SENTINEL_PASSWORD) with the same credentials for the data nodes, or REDIS_CLUSTER_NODES (host:port,…:
 * Redis Cluster seed nodes, same credentials), or REDIS_PRIMARY_URL + REDIS_SECONDARY_URL (a primary/secondary pair;
 * STATE_REDIS / STREAM_REDIS / CRON_REDIS / EVENTS_REDIS = primary | secondary: the adapter's preferred one;
 * REDIS_PROBE_INTERVAL, REDIS_FAIL_AFTER, REDIS_RECOVER_AFTER); REDIS_WAIT_REPLICAS / REDIS_WAIT_TIMEOUT (ms) (`waitReplicas`); REDIS_KEY_PREFIX (base for the three prefixes) or
 * STATE_KEY_PREFIX / STREAM_KEY_PREFIX / CRON_KEY_PREFIX; STATE_TTL (s); CRON_LOCK_TTL, CRON_RELEASE_GUARD (ms);
 * INSTANCE_ID; CRON_POSTGRES_URL or DATABASE_URL (postgres); CRON_MYSQL_URL or MYSQL_URL (mysql); CRON_TABLE.
 */
function adaptersFromEnv(env = process.env) {
  if (!env || typeof env !== 'object') throw configError('env', 'must be an object such as process.env')
  const adapters = {}
  const stateKind = choice(env, 'STATE_ADAPTER', ['redis'])
  const streamKind = choice(env, 'STREAM_ADAPTER', ['redis'])
  const cronKind = choice(env, 'CRON_ADAPTER', ['redis', 'postgres', 'mysql'])
  const eventKind = choice(env, 'EVENT_ADAPTER', ['redis', 'rabbitmq', 'kafka'])
  const needsRedis = stateKind === 'redis' || streamKind === 'redis' || cronKind === 'redis' || eventKind === 'redis'
  const redis = (kind) => (needsRedis ? redisConnection(env, kind) : null)
  const instanceId = str(env, 'INSTANCE_ID')
  const cronOptions = {
    lockTTL: int(env, 'CRON_LOCK_TTL', { min: 1 }),
    releaseGuard: int(env, 'CRON_RELEASE_GUARD'),
    instanceId,
  }

  if (stateKind === 'redis') {
    adapters.state = new RedisStateAdapter(redis('STATE'), { keyPrefix: prefix(env, 'STATE_KEY_PREFIX', 'state:'), ttl: int(env, 'STATE_TTL', { min: 1 }) })
  }
  if (streamKind === 'redis') {
    adapters.streams = new RedisStreamAdapterManager(redis('STREAM'), { keyPrefix: prefix(env, 'STREAM_KEY_PREFIX', 'stream:') })
  }
  if (cronKind === 'redis') {
    adapters.cron = new RedisCronAdapter(redis('CRON'), { ...cronOptions, keyPrefix: prefix(env, 'CRON_KEY_PREFIX', 'cron:lock:') })
  } else if (cronKind === 'postgres') {
    const connectionString = str(env, 'CRON_POSTGRES_URL') ?? str(env, 'DATABASE_URL')
    if (connectionString === undefined) throw configError('DATABASE_URL', 'is required when CRON_ADAPTER=postgres (or set CRON_POSTGRES_URL)')
    adapters.cron = new PostgresCronAdapter({ connectionString, tableName: str(env, 'CRON_TABLE'), ...cronOptions })
  } else if (cronKind === 'mysql') {
    const connectionString = str(env, 'CRON_MYSQL_URL') ?? str(env, 'MYSQL_URL')
    if (connectionString === undefined) throw configError('MYSQL_URL', 'is required when CRON_ADAPTER=mysql (or set CRON_MYSQL_URL)')
    adapters.cron = new MySqlCronAdapter({ connectionString, tableName: str(env, 'CRON_TABLE'), ...cronOptions })
  }
  if (eventKind === 'redis') {
    adapters.events = new RedisEventAdapter(redis('EVENTS'), { keyPrefix: prefix(env, 'EVENTS_KEY_PREFIX', 'events:') })
  }
  if (eventKind === 'rabbitmq') {
    const url = str(env, 'RABBITMQ_URL')
    if (url === undefined) throw configError('RABBITMQ_URL', 'is required when EVENT_ADAPTER=rabbitmq')
    if (!/^amqps?:\/\//i.test(url)) throw configError('RABBITMQ_URL', 'must start with amqp:// or amqps://')
    const type = str(env, 'RABBITMQ_EXCHANGE_TYPE')
    if (type !== undefined && !['direct', 'topic', 'fanout', 'headers'].includes(type)) {
      throw configError('RABBITMQ_EXCHANGE_TYPE', `must be direct, topic, fanout or headers (got "${type}")`)
    }
    adapters.events = new RabbitMQEventAdapter({
      url,
      exchangeName: str(env, 'RABBITMQ_EXCHANGE'),
      exchangeType: type ?? 'topic',
      prefetch: int(env, 'RABBITMQ_PREFETCH', { min: 1, max: 65535 }),
    })
  }
  if (eventKind === 'kafka') {
    const brokers = str(env, 'KAFKA_BROKERS')
    if (brokers === undefined) throw configError('KAFKA_BROKERS', 'is required when EVENT_ADAPTER=kafka (host:port,host:port)')
    if (hostPorts(env, 'KAFKA_BROKERS', null).some((b) => b.port === null)) {
      throw configError('KAFKA_BROKERS', `must be a comma-separated list of host:port (got "${brokers}")`)
    }
    adapters.events = new KafkaEventAdapter({
      brokers: brokers.split(',').map((b) => b.trim()).filter(Boolean),
      clientId: str(env, 'KAFKA_CLIENT_ID') ?? instanceId ?? 'motia',
      groupId: str(env, 'KAFKA_GROUP_ID'),
    })
  }
  return adapters
}

module.exports = { adaptersFromEnv }
