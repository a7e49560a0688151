// Public API of motia-native-adapters, written by hand. The generated binding (`binding.js`, `binding.d.ts`,
// from `napi build`) is internal: the classes below wrap it.
import type {
  AdapterConfig,
  BaseStreamItem,
  CronAdapter,
  CronLock,
  CronLockInfo,
  Event,
  EventAdapter,
  QueueConfig,
  StateAdapter,
  StateItem,
  StateItemsInput,
  StateStreamEvent,
  StateStreamEventChannel,
  StreamAdapterManager,
  StreamQueryFilter,
  SubscriptionHandle,
} from '@motiadev/core'
import { StreamAdapter } from '@motiadev/core'

/** A logger the adapters write to (console, pino, Motia's logger all fit). */
export interface AdapterLogger {
  debug?(message: string, meta?: Record<string, unknown>): void
  info?(message: string, meta?: Record<string, unknown>): void
  warn(message: string, meta?: Record<string, unknown>): void
  error(message: string, meta?: Record<string, unknown>): void
}

/** TLS and socket options, as in node-redis `RedisClientOptions['socket']`. */
export interface RedisSocketOptions {
  host?: string
  port?: number
  /** `true` (or TLS options) to connect with TLS, like a `rediss://` URL. */
  tls?: boolean | { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string }
  /** Milliseconds to wait for a connection. Default `10000`. */
  connectTimeout?: number
  /** Accepted for compatibility. Reconnection is done on demand: each call made while the server is down makes one attempt bounded by `connectTimeout`. */
  reconnectStrategy?: false | number | ((retries: number, cause: Error) => false | Error | number)
  keepAlive?: boolean | number
  noDelay?: boolean
  rejectUnauthorized?: boolean
  ca?: string | Buffer | Array<string | Buffer>
  cert?: string | Buffer
  key?: string | Buffer
  [other: string]: unknown
}

/** The subset of node-redis `RedisClientOptions` this package reads. */
export interface RedisClientOptionsLike {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://` for TLS. */
  url?: string
  socket?: RedisSocketOptions
  username?: string
  password?: string
  database?: number
  [other: string]: unknown
}

/** The legacy flat form shown in the 0.17 README (`{host, port, password, keyPrefix, ttl}`). */
export interface RedisLegacyConfig {
  host?: string
  port?: number
  password?: string
  username?: string
  database?: number
  keyPrefix?: string
  /** Seconds. */
  ttl?: number
  socket?: RedisSocketOptions
}

/** Anything that looks like a node-redis client: we read its `options` and open our own connection (yours is never closed). */
export interface RedisClientLike {
  isOpen: boolean
  connect: (...args: any[]) => any
  options?: RedisClientOptionsLike
}

/**
 * The flat connection fields of the RFC's `motia.config.ts` example (`{host, port, password}`); written as there,
 * `port: parseInt(process.env.REDIS_PORT)` of an unset variable (NaN) and `password: undefined` or `''` mean
 * "not set" (port 6379, no AUTH).
 */
export interface RedisFlatConnection {
  /** Default `'localhost'`. */
  host?: string
  /** Default `6379`. */
  port?: number
  password?: string
  username?: string
  database?: number
  /** Alias of `database`. */
  db?: number
  socket?: RedisSocketOptions
}

/**
 * Redis Sentinel, as node-redis `createSentinel` options. The master is asked of the sentinels on every
 * (re)connect and checked with `ROLE`; a dropped connection or a `READONLY` reply (the master was demoted)
 * sends the command again to the master named then, within `nodeClientOptions.socket.connectTimeout`.
 * Pass the options object, not a `createSentinel()` instance (its options are private).
 */
export interface RedisSentinelOptionsLike {
  /** The sentinels to ask, in order (port default `26379`). */
  sentinelRootNodes: Array<{ host?: string; port?: number }>
  /** The master group the sentinels monitor (`sentinel monitor <name> …`). */
  name: string
  /** Credentials, database, TLS and timeouts of the data nodes (no `url`: the address comes from the sentinels). */
  nodeClientOptions?: Omit<RedisClientOptionsLike, 'url'>
  /**
   * Credentials of the sentinels themselves (`requirepass` of sentinel.conf) and TLS to them: `socket.tls` with `ca`
   * (PEM; else the public roots) or `rejectUnauthorized: false`. Client certificates for the sentinels are not supported.
   */
  sentinelClientOptions?: {
    username?: string
    password?: string
    socket?: { tls?: boolean | { ca?: string | Buffer; rejectUnauthorized?: boolean }; ca?: string | Buffer; rejectUnauthorized?: boolean }
  }
  [other: string]: unknown
}

/**
 * Redis Cluster, as node-redis `createCluster` options (or a `createCluster()` instance: its options are read, it is
 * never used or closed). Keys keep the 0.17 layout and are routed by slot; pipelines are split per slot and SCANs run
 * on every master. `setMany` is atomic per slot only: hash-tag the trace id (`'{order-1}'`) for one atomic write.
 * Every Redis class; `RedisEventAdapter` hash-tags each topic's keys with the topic (`{topic}`) on a cluster.
 */
export interface RedisClusterOptionsLike {
  /** Seed nodes (one reachable node is enough; the rest is discovered). Port default `6379`. */
  rootNodes: Array<{ url?: string; socket?: { host?: string; port?: number; tls?: boolean } }>
  /** Credentials, TLS and timeouts of every node (no `url`; `database` must be 0). */
  defaults?: Omit<RedisClientOptionsLike, 'url'>
  [other: string]: unknown
}

/**
 * Ours: a primary/secondary pair of independent Redis servers (the multi-Redis plan). Calls go to the primary while it
 * is healthy; both are PINGed every `probeInterval`; after `failAfter` failed probes of the active server in a row
 * (while the other answers) calls switch to the other, and back to the primary once it answered every probe for
 * `recoverAfter`. The servers do not replicate: a switch leaves behind what was written on the other server. Cron
 * refuses acquisitions on the new server for one lock TTL after a switch. Runs on the tokio path.
 */
export interface RedisFailoverOptions {
  failover: {
    /** One server: `{ url }`, node-redis options or the flat form (no sentinels or cluster). */
    primary: RedisClientOptionsLike | RedisFlatConnection
    secondary: RedisClientOptionsLike | RedisFlatConnection
    /** Milliseconds between probes. Default `1000`. */
    probeInterval?: number
    /** Failed probes in a row before a switch. Default `3`. */
    failAfter?: number
    /** Milliseconds the primary must answer every probe before calls return to it. Default `30000`. */
    recoverAfter?: number
  }
}

/** Ours, accepted next to the fields of every plain-object connection shape. */
export interface RedisDurabilityOptions {
  /**
   * After every call, `WAIT waitReplicas waitTimeout`: a call resolves only once that many replicas have its
   * writes, so an acknowledged write survives a failover to one of them (Sentinel, Cluster, or a master with
   * replicas). Fewer in time: the call rejects with `MOTIA_BACKEND` (the write was made on the master and is not
   * undone). Costs one round trip per call (a read's WAIT returns at once); such a connection uses the tokio
   * path. Default `0` (no WAIT).
   */
  waitReplicas?: number
  /** Milliseconds a call waits for `waitReplicas`. Default `1000`; must be shorter than `commandTimeout`. */
  waitTimeout?: number
}

/** Every connection shape the Redis adapters accept. */
export type RedisConnection =
  | RedisClientLike
  | ((RedisClientOptionsLike | RedisLegacyConfig | RedisSentinelOptionsLike | RedisClusterOptionsLike | RedisFailoverOptions) & RedisDurabilityOptions)

export interface RedisStateAdapterOptions {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** Prefix of every key. Default `'motia:state:'`. */
  keyPrefix?: string
  /** Expiry in seconds, refreshed on every set. Default: none. */
  ttl?: number
  /** Milliseconds before a single Redis command is abandoned with `MOTIA_TIMEOUT`. Default `30000`. */
  commandTimeout?: number
}

/**
 * Drop-in for `@motiadev/adapter-redis-state@0.17`: same keys and JSON values, so old and new pods
 * share data. Calls made in the same tick go to Redis as one pipeline.
 */
export declare class RedisStateAdapter implements StateAdapter {
  constructor(connection?: RedisConnection, options?: RedisStateAdapterOptions)
  /** RFC form: `new RedisStateAdapter({host, port, password, keyPrefix, ttl})`. */
  constructor(config: RedisStateAdapterConfig)
  readonly keyPrefix: string
  readonly ttl: number | undefined
  get<T>(traceId: string, key: string): Promise<T | null>
  set<T>(traceId: string, key: string, value: T): Promise<T>
  /** Atomic (GETDEL): returns the previous value or null. */
  delete<T>(traceId: string, key: string): Promise<T | null>
  getGroup<T>(traceId: string): Promise<T[]>
  clear(traceId: string): Promise<void>
  cleanup(): Promise<void>
  keys(traceId: string): Promise<string[]>
  traceIds(): Promise<string[]>
  items(input: StateItemsInput): Promise<StateItem[]>
  exists(traceId: string, key: string): Promise<boolean>
  getMany<T>(traceId: string, keys: string[]): Promise<(T | null)[]>
  setMany<T>(traceId: string, items: Record<string, T>): Promise<void>
  /** PING: true when Redis answers. */
  isHealthy(): Promise<boolean>
  /** Calls, errors by code and latency per method, counters and gauges of this adapter (README "Metrics"). */
  metrics(): AdapterMetricsSnapshot
}

/** The RFC's flat `RedisStateAdapter` config: connection fields plus `keyPrefix` and `ttl` (seconds). */
export interface RedisStateAdapterConfig extends RedisFlatConnection, RedisStateAdapterOptions {}

export interface RedisStreamAdapterOptions {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** Prefix of stream hashes `${keyPrefix}${streamName}:group:${groupId}`. Default `'motia:stream:'`. */
  keyPrefix?: string
  /** Accepted for compatibility (keep-alive is always on). */
  socketKeepAlive?: boolean
}
export type RedisStreamAdapterConfig = RedisStreamAdapterOptions

/**
 * Drop-in for `@motiadev/adapter-redis-streams@0.17`'s manager (`adapters.streams`): one connection and one
 * pub/sub connection shared by every stream; `createStream` is cheap (no I/O).
 */
export declare class RedisStreamAdapterManager implements StreamAdapterManager {
  constructor(connection?: RedisConnection, options?: RedisStreamAdapterOptions)
  readonly keyPrefix: string
  createStream<TData>(streamName: string): StreamAdapter<TData>
  /** Closes both connections; subscriptions end. */
  shutdown(): Promise<void>
  /** PING on the shared connection: true when Redis answers. */
  isHealthy(): Promise<boolean>
  /** Calls, errors by code and latency per method, counters and gauges of this adapter (README "Metrics"). */
  metrics(): AdapterMetricsSnapshot
}

/** The RFC's flat `RedisStreamAdapter` config: connection fields (or node-redis options) plus `keyPrefix`. */
export interface RedisStreamAdapterFlatConfig extends RedisFlatConnection, RedisStreamAdapterOptions {
  url?: string
  /** The stream this adapter itself reads and writes. Default `'default'`. */
  streamName?: string
}

/**
 * A Motia stream in Redis (same hash layout and pub/sub channels as 0.17). `set`/`delete` are atomic
 * (read, write and publish in one script) and `_createdAt` is kept on update; `query` runs in Rust.
 *
 * Also a StreamAdapterManager, so the RFC's `streams: new RedisStreamAdapter({host, port, password, keyPrefix})`
 * works as Motia 0.17's `adapters.streams`: `createStream(name)` returns a stream sharing this adapter's
 * connections and `keyPrefix`.
 */
export declare class RedisStreamAdapter<TData = any> extends StreamAdapter<TData> implements StreamAdapterManager {
  constructor(streamName: string, connection?: RedisConnection, options?: RedisStreamAdapterOptions)
  /** RFC form: connection fields plus `keyPrefix` (and `streamName`, default `'default'`). */
  constructor(config: RedisStreamAdapterFlatConfig)
  readonly keyPrefix: string
  get(groupId: string, id: string): Promise<BaseStreamItem<TData> | null>
  set(groupId: string, id: string, data: TData): Promise<BaseStreamItem<TData>>
  delete(groupId: string, id: string): Promise<BaseStreamItem<TData> | null>
  getGroup(groupId: string): Promise<BaseStreamItem<TData>[]>
  send<T>(channel: StateStreamEventChannel, event: StateStreamEvent<T>): Promise<void>
  subscribe<T>(channel: StateStreamEventChannel, handler: (event: StateStreamEvent<T>) => void | Promise<void>): Promise<void>
  unsubscribe(channel: StateStreamEventChannel): Promise<void>
  clear(groupId: string): Promise<void>
  query(groupId: string, filter: StreamQueryFilter<TData>): Promise<BaseStreamItem<TData>[]>
  /** Drops this stream's subscriptions (and closes the connections of a standalone adapter). */
  cleanup(): Promise<void>
  /** As a manager: a stream sharing this adapter's connections and `keyPrefix` (cheap: no I/O). */
  createStream<T>(streamName: string): StreamAdapter<T>
  /** As a manager: closes the connections this adapter opened; every stream's subscriptions end. */
  shutdown(): Promise<void>
  /** PING on the connection this stream shares: true when Redis answers. */
  isHealthy(): Promise<boolean>
  /** Metrics of the connection this stream shares with its manager's streams. */
  metrics(): AdapterMetricsSnapshot
}

/** Options shared by the cron lock adapters. */
export interface CronLockOptions {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** Default lock TTL in ms when `acquireLock` gets none. Default `300000`. */
  lockTTL?: number
  /** Extra attempts when the lock is taken. Default `0`. */
  lockRetryAttempts?: number
  /** Milliseconds between attempts. Default `1000`. */
  lockRetryDelay?: number
  /** This replica's id, stored in every lock. Default `'motia-<uuid>'`. */
  instanceId?: string
  /** `isHealthy()` pings the backend; `false` makes it always true. Default `true`. */
  enableHealthCheck?: boolean
  /**
   * Upper bound (ms) of the same-tick window. A lock is for one tick (`scheduledAt`, or the call time
   * floored to the second); after `releaseLock` the record refuses only that tick to other replicas, for
   * calls less than the window after it: 1 s, or the job's shortest period once known (learned from
   * Motia's successive calls), capped by this value. The next tick is never refused, so the default is
   * right for every schedule. `0`: release frees the job at once (upstream behaviour). Default `5000`.
   */
  releaseGuard?: number
  /** Keep renewing every held lock (every `ttl/3`, or `interval` ms) until it is released. Default off. */
  autoRenew?: boolean | { interval?: number }
  /** Called when the watchdog finds a held lock was lost (expired or taken). Default: a console warning. */
  onLockLost?: (lock: MotiaCronLock) => void
}

/** A CronLock as returned by our adapters: the 0.17 fields plus a fencing token and the tick it is for. */
export interface MotiaCronLock extends CronLock {
  /** Increases with every acquisition of the job; pass it to downstream writes to fence out stale holders. */
  fencingToken?: number
  /** The tick (ms) estimated from the call time, when no `scheduledAt` was given. */
  tick?: number
  /** The tick (ms) the caller passed as `scheduledAt`. */
  scheduledAt?: number
  /** Shortest period (ms) seen between the job's ticks, when known. */
  period?: number
}

/** What a caller that knows the tick passes to `acquireLock` (our `CronScheduler` does). */
export interface AcquireLockOptions {
  /** The tick this acquisition is for: exactly one winner per `scheduledAt`, from the first tick. */
  scheduledAt?: number | Date
}

export interface RedisCronAdapterOptions extends CronLockOptions {
  /** Prefix of lock keys. Default `'motia:cron:lock:'`. */
  keyPrefix?: string
}

/**
 * Drop-in for `@motiadev/adapter-redis-cron@0.17`: same key (`${keyPrefix}${jobName}`) and lock JSON, so
 * upstream and our replicas exclude each other. Acquire is atomic (one script, with a fencing token);
 * release, renew and shutdown check ownership (lockId and this adapter's instanceId) on the server.
 */
/**
 * The RFC's flat `RedisCronAdapter` config: `{host, port, password, keyPrefix, lockTTL, instanceId,
 * lockRetryDelay, lockRetryAttempts, enableHealthCheck}`.
 */
export interface RedisCronAdapterConfig extends RedisFlatConnection, RedisCronAdapterOptions {}

export declare class RedisCronAdapter implements CronAdapter {
  constructor(connection?: RedisConnection, options?: RedisCronAdapterOptions)
  /** RFC form: connection fields and cron options in one object. */
  constructor(config: RedisCronAdapterConfig)
  readonly keyPrefix: string
  readonly instanceId: string
  readonly lockTTL: number
  readonly releaseGuard: number
  /**
   * Takes `jobName` for one tick: resolves the lock, or null when another replica has this tick or the job
   * is still running (a skipped tick is logged once across replicas); rejects (fails closed) when Redis is
   * unreachable.
   */
  acquireLock(jobName: string, ttl?: number, options?: AcquireLockOptions): Promise<MotiaCronLock | null>
  releaseLock(lock: CronLock): Promise<void>
  renewLock(lock: CronLock, ttl: number): Promise<boolean>
  isHealthy(): Promise<boolean>
  /** Acquired, refused, ticks skipped, released, renewed, lost, the last fencing token, call latencies. */
  metrics(): AdapterMetricsSnapshot
  shutdown(): Promise<void>
  getActiveLocks(): Promise<CronLockInfo[]>
}

export interface PostgresCronAdapterConfig extends CronLockOptions {
  /**
   * `postgres://user:pass@host:port/db` or `key=value` form. TLS follows libpq's `sslmode`
   * (`disable` by default; `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert`
   * (a CA file), on rustls.
   */
  connectionString: string
  /** Lock table, created on first use; `table` or `schema.table`. Default `'motia_cron_locks'`. */
  tableName?: string
  /**
   * TLS as node-postgres takes it: `true` or `{ ca, rejectUnauthorized }`. Without an `sslmode`
   * in the connection string this means verify-full against `ca` (PEM) or the Mozilla roots;
   * `rejectUnauthorized: false` encrypts without checking the certificate.
   */
  ssl?: boolean | { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean }
}

/** Cron locks in a PostgreSQL table, with the same semantics as RedisCronAdapter. */
export declare class PostgresCronAdapter implements CronAdapter {
  constructor(config: PostgresCronAdapterConfig)
  readonly tableName: string
  readonly instanceId: string
  readonly lockTTL: number
  readonly releaseGuard: number
  /** As `RedisCronAdapter.acquireLock`. */
  acquireLock(jobName: string, ttl?: number, options?: AcquireLockOptions): Promise<MotiaCronLock | null>
  releaseLock(lock: CronLock): Promise<void>
  renewLock(lock: CronLock, ttl: number): Promise<boolean>
  isHealthy(): Promise<boolean>
  /** Acquired, refused, ticks skipped, released, renewed, lost, the last fencing token, call latencies. */
  metrics(): AdapterMetricsSnapshot
  shutdown(): Promise<void>
  getActiveLocks(): Promise<CronLockInfo[]>
}

export interface MySqlCronAdapterConfig extends CronLockOptions {
  /**
   * `mysql://user:pass@host:3306/database` (MySQL 5.7+ or MariaDB 10.3+, no TLS). Extra URL parameter:
   * `connect_timeout` in seconds (default 10); mysql_async's own (`pool_max`, `wait_timeout`, …) also work.
   * Credentials never appear in errors.
   */
  connectionString: string
  /** Lock table (InnoDB), created on first use; `table` or `database.table`. Default `'motia_cron_locks'`. */
  tableName?: string
}

/**
 * Cron locks in a MySQL or MariaDB table, with the same semantics as PostgresCronAdapter and
 * RedisCronAdapter: acquire is one transaction on the job's row (`SELECT … FOR UPDATE`), for a tick, with a
 * fencing token; release, renew and shutdown check ownership (lockId and this adapter's instanceId).
 */
export declare class MySqlCronAdapter implements CronAdapter {
  constructor(config: MySqlCronAdapterConfig)
  readonly tableName: string
  readonly instanceId: string
  readonly lockTTL: number
  readonly releaseGuard: number
  /** As `RedisCronAdapter.acquireLock`; rejects (fails closed) when MySQL is unreachable. */
  acquireLock(jobName: string, ttl?: number, options?: AcquireLockOptions): Promise<MotiaCronLock | null>
  releaseLock(lock: CronLock): Promise<void>
  renewLock(lock: CronLock, ttl: number): Promise<boolean>
  isHealthy(): Promise<boolean>
  /** Acquired, refused, ticks skipped, released, renewed, lost, the last fencing token, call latencies. */
  metrics(): AdapterMetricsSnapshot
  shutdown(): Promise<void>
  getActiveLocks(): Promise<CronLockInfo[]>
}

/** Options of `@motiadev/adapter-rabbitmq-events@0.17`, plus `publishTimeout`, `shutdownTimeout` and `tls`. */
export interface RabbitMQEventAdapterConfig {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** `amqp://user:pass@host:5672/vhost` or `amqps://…`. Credentials never appear in errors or logs. */
  url: string
  /** Default `'topic'`. */
  exchangeType?: 'direct' | 'topic' | 'fanout' | 'headers'
  /** Default `'motia.events'`. */
  exchangeName?: string
  /** Durable exchange and queues, persistent messages. Default `true`. */
  durable?: boolean
  /** Default `false`. */
  autoDelete?: boolean
  /** ms to open a connection; also how long `subscribe()` waits before resolving while the broker is down. Default 10000. */
  connectionTimeout?: number
  /** Longest wait between reconnect attempts (ms; attempts start at 200 ms and double). Default 5000. */
  reconnectDelay?: number
  /** Unacked deliveries per consumer. Default 1 (as upstream). A standard queue's `concurrency` overrides it. */
  prefetch?: number
  /** Default `${exchangeName}.dlq`. */
  deadLetterExchange?: string
  /** Dead-lettered messages are routed with `${queue}.${deadLetterRoutingKey}` to `${queue}.dlq`. Default `'dlq'`. */
  deadLetterRoutingKey?: string
  /** How long `emit` waits for a connection and the broker's confirm before it rejects (ms). Default 30000. */
  publishTimeout?: number
  /** How long `unsubscribe`/`shutdown` wait for running handlers (ms). Default 10000. */
  shutdownTimeout?: number
  /** For `amqps://` with a private CA: the CA certificate(s) in PEM. */
  tls?: { ca?: string | Buffer }
}

/**
 * The RFC's `SubscribeOptions`, for `subscribe(topic, handler, options)`. Motia `QueueConfig` fields may be added
 * (`type`, `maxRetries`, `delaySeconds`, `visibilityTimeout`, `concurrency`); unset ones default to Motia's
 * (standard, 3 retries, no delay): a handler failing every time runs 4 times, then its event is dead-lettered
 * (a `queue` group) or dropped with an error log (a fan-out subscriber, whose queue/group name is random).
 */
export interface SubscribeOptions {
  /** Motia QueueConfig: `'fifo'` runs one `messageGroupId` at a time, in order. Default `'standard'`. */
  type?: QueueConfig['type']
  /** Default `3`. */
  maxRetries?: number
  /** Seconds a delivery may stay unacknowledged (RabbitMQ `x-consumer-timeout`). Default `900`. */
  visibilityTimeout?: number
  /** Seconds between retries. Default `0`. */
  delaySeconds?: number
  /** Handlers run at once (standard). Default: `prefetch`. */
  concurrency?: number
  /**
   * The competing-consumer group: subscribers with the same `queue` share the topic's events (each event goes to
   * one of them, on any replica). RabbitMQ queue `motia.${topic}.${queue}`; Kafka consumer group
   * `${groupId}.${queue}` — the names a Motia step called `queue` uses. Without it every subscriber gets every
   * event (fan-out): RabbitMQ queue `motia.${topic}.fanout.${uuid}` (exclusive, auto-delete), Kafka group
   * `${groupId}.fanout.${uuid}` starting at the end of the topic.
   */
  queue?: string
  /** RabbitMQ: only this connection may consume from the queue. Default `false` with `queue`, `true` without. Kafka: ignored. */
  exclusive?: boolean
  /** RabbitMQ: the queue survives a broker restart. Default: the adapter's `durable` with `queue`, `false` without. Kafka: ignored. */
  durable?: boolean
  /** Unacknowledged events at a time (RabbitMQ QoS; Kafka unsettled events), also the handlers run at once. Default: the adapter's `prefetch`. */
  prefetch?: number
}

/** Upstream's name for the RFC's SubscribeOptions. */
export type RabbitMQSubscribeOptions = SubscribeOptions

/** What `subscribe` resolves: core's SubscriptionHandle, plus the broker-side name of an RFC-form subscription. */
export interface NativeSubscriptionHandle extends SubscriptionHandle {
  /** RabbitMQ, RFC form: the queue consumed from. */
  queue?: string
  /** Kafka, RFC form: the consumer group. */
  group?: string
}

/** What both event adapters share (`lib/events.js`; not exported): emit, subscribe, drain on unsubscribe/shutdown. */
declare abstract class NativeEventAdapter implements EventAdapter {
  emit<TData>(event: Event<TData>): Promise<void>
  /**
   * Never rejects because of the broker (Motia core does not await it; a rejection would crash the app): a
   * permanent error is logged, kept for `subscriptionError(handle)`, and retried. Invalid arguments reject.
   */
  subscribe<TData>(
    topic: string,
    stepName: string,
    handler: (event: Event<TData>) => void | Promise<void>,
    options?: Partial<QueueConfig>,
  ): Promise<NativeSubscriptionHandle>
  /**
   * RFC form (told apart by the second argument being a function): subscribers with the same `options.queue`
   * share the events; without `queue` each subscriber gets every event (fan-out).
   */
  subscribe<TData>(
    topic: string,
    handler: (event: Event<TData>) => void | Promise<void>,
    options?: SubscribeOptions,
  ): Promise<NativeSubscriptionHandle>
  unsubscribe(handle: SubscriptionHandle): Promise<void>
  shutdown(): Promise<void>
  getSubscriptionCount(topic: string): Promise<number>
  listTopics(): Promise<string[]>
  /** The permanent error `subscribe()` met for this handle (wrong credentials, 406 …), or null. */
  subscriptionError(handle: SubscriptionHandle): MotiaAdapterError | null
  /** RabbitMQ: the connection is open; Kafka: the brokers answer a metadata request (within 2 s). */
  isHealthy(): Promise<boolean>
  /**
   * Emits, deliveries, redeliveries, handler runs and failures, retries, acks, dead letters, requeues, and
   * `lag`: the last `consumerLag()` sample (taken every 10 s while there are subscriptions).
   */
  metrics(): AdapterMetricsSnapshot
  /**
   * Each local subscription's backlog as the broker tells it. Redis: entries waiting and pending in the step's
   * stream; RabbitMQ: the queue's ready messages; Kafka: the group's lag (high watermark − committed offset).
   */
  consumerLag(): Promise<ConsumerLag[]>
}

/** One subscription's backlog (`consumerLag()`). */
export interface ConsumerLag {
  topic: string
  /** The step, the RFC queue, or the Kafka group. */
  step: string | null
  /** Events waiting for a consumer of the step (Kafka: the group's lag); null when the broker did not answer. */
  waiting: number | null
  /** Events delivered and not settled yet, where the broker tells it (Redis); else null. */
  unsettled: number | null
  /** The error code when the broker did not answer. */
  error?: string
}

/**
 * Drop-in for `@motiadev/adapter-rabbitmq-events@0.17`: queue `motia.${topic}.${stepName}` with the same
 * arguments and dead-letter topology, the same body and `x-retry-count` header. `emit` resolves on the
 * publisher confirm; handlers are retried after `delaySeconds`, `maxRetries` times, then dead-lettered;
 * every consumer comes back after a reconnect.
 */
export declare class RabbitMQEventAdapter extends NativeEventAdapter {
  constructor(config: RabbitMQEventAdapterConfig)
  /** True while the connection to RabbitMQ is open. */
  isConnected(): boolean
}

export interface KafkaEventAdapterConfig {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** `host:port` list (or one comma-separated string). */
  brokers: string[] | string
  /** Default `'motia'`. */
  clientId?: string
  /** Consumer groups are `${groupId}.${stepName}`. Default `'motia-default'`. */
  groupId?: string
  /** Partitions of topics this adapter creates. Default 3. */
  numPartitions?: number
  /** Replication factor of topics this adapter creates. Default 1. */
  replicationFactor?: number
  /** ms: how long `subscribe()` waits for a partition assignment before resolving anyway. Default 10000. */
  connectionTimeout?: number
  /** ms: how long an emit may wait for its delivery report (librdkafka `message.timeout.ms`). Default 30000. */
  publishTimeout?: number
  /** ms: how long `unsubscribe`/`shutdown` wait for running handlers. Default 10000. */
  shutdownTimeout?: number
  /** Unsettled events per subscription (a standard queue's `concurrency` overrides it). Default 10. */
  prefetch?: number
  /** Any librdkafka property, for every client (e.g. `security.protocol`, `sasl.mechanisms`, `sasl.username`). */
  rdkafka?: Record<string, string | number | boolean>
}

/**
 * Motia events on Kafka (librdkafka). Each step is a consumer group `${groupId}.${stepName}`; `emit` resolves
 * on the delivery report (idempotent producer, acks=all), keyed by `messageGroupId` else `traceId`; offsets are
 * committed only after the handler settled; failures retry after `delaySeconds` and end in `${topic}.${stepName}.dlq`.
 */
export declare class KafkaEventAdapter extends NativeEventAdapter {
  constructor(config: KafkaEventAdapterConfig)
}

export interface RedisEventAdapterOptions {
  /** Where this adapter's log lines go (see `KafkaEventAdapterConfig.logger`). Default: the console. */
  logger?: AdapterLogger
  /** Prefix of every key (streams, registries, dead letters, fifo leases). Default `'motia:events:'`. */
  keyPrefix?: string
  /** Unsettled events per subscription (a standard queue's `concurrency` overrides it). Default 10. */
  prefetch?: number
  /** ms: how long `subscribe()` waits for Redis before resolving anyway (the consumer keeps trying). Default 10000. */
  connectionTimeout?: number
  /** ms: how long `unsubscribe`/`shutdown` wait for running handlers. Default 10000. */
  shutdownTimeout?: number
}

/**
 * Motia events on Redis Streams: one stream per (topic, step) `${keyPrefix}${topic}:q:${step}` with a consumer
 * group, and a registry of the steps of each topic across the fleet, so an `emit` from any process reaches every
 * step. `emit` resolves when Redis holds the event for every step (one atomic script). Each event is handled once
 * per step across replicas; what a dead consumer held is claimed after `visibilityTimeout`; failures retry after
 * `delaySeconds` and end, with reason and attempts, in `${keyPrefix}${topic}:dlq:${step}`. fifo steps have one
 * consumer at a time across the fleet. Nothing is trimmed: a stream holds only unhandled events.
 */
export declare class RedisEventAdapter extends NativeEventAdapter {
  constructor(connection?: RedisConnection, options?: RedisEventAdapterOptions)
  readonly keyPrefix: string
}

export interface CronJobContext {
  name: string
  /** The tick's scheduled time (ms since epoch); identical on every replica. */
  scheduledAt: number
  lock: MotiaCronLock
}

export interface CronScheduleOptions {
  /** IANA time zone, e.g. `'Europe/Paris'`. Default UTC. */
  timezone?: string
  /** Lock TTL per tick in ms; renewed while the handler runs. Default `60000`. */
  lockTTL?: number
}

export interface CronSchedulerOptions {
  /**
   * Where this adapter's log lines go: anything with `debug/info/warn/error(message, meta)` (console,
   * pino, Motia's logger). `meta` carries `adapter`, `op` and, for failures, `code` and `error`.
   * Repeated failures are summarised (at most one line per 30 s). Default: the console.
   */
  logger?: AdapterLogger

  /** Called when a handler throws/rejects or the lock backend is down. Default: an error line to `logger`. */
  onError?: (error: unknown, jobName: string) => void
  /** Called when another replica already runs this tick. */
  onSkip?: (jobName: string, scheduledAt: number) => void
}

/**
 * Runs handlers on node-cron style schedules (5 fields, or 6 with seconds) once per tick across replicas:
 * each tick's lock is named `${name}@${scheduledAt}` and is never released early.
 */
export declare class CronScheduler {
  constructor(cronAdapter: Pick<CronAdapter, 'acquireLock' | 'renewLock'>, options?: CronSchedulerOptions)
  /** Rejects with MOTIA_CONFIG quoting the expression when it is invalid. */
  schedule(name: string, expression: string, handler: (ctx: CronJobContext) => unknown, options?: CronScheduleOptions): Promise<void>
  unschedule(name: string): void
  /** Stops future ticks and waits for running handlers. */
  stop(): Promise<void>
}

/** True when `expression` is a valid node-cron style expression. */
export declare function validateCronExpression(expression: unknown): boolean
/** The next fire times (ms since epoch); throws MOTIA_CONFIG quoting an invalid expression. */
export declare function nextCronRuns(expression: string, options?: { timezone?: string; after?: number; count?: number }): number[]

/** Latency of one method, in seconds (hdrhistogram in Rust; `buckets` are cumulative `[le, count]`). */
export interface LatencySnapshot {
  count: number
  sum: number
  p50: number
  p90: number
  p99: number
  max: number
  buckets: [number, number][]
}

/** What `adapter.metrics()` returns. Counter and gauge names are listed in the README ("Metrics"). */
export interface AdapterMetricsSnapshot {
  /** The class name, e.g. `RedisStateAdapter` (`Class#2` for a second one in `prometheusMetrics`). */
  adapter: string
  /** The cron adapter's `instanceId`, else `hostname:pid`. */
  instance: string
  methods: Record<string, { calls: number; errors: number; seconds: LatencySnapshot }>
  errors: { method: string; code: string; count: number }[]
  counters: Record<string, number>
  gauges: Record<string, number>
  /** Event adapters: the last consumer lag sample. */
  lag?: ConsumerLag[]
}

/** Anything with `isHealthy()` / `metrics()`: every adapter of this package. */
export interface ObservableAdapter {
  isHealthy?(): Promise<boolean>
  metrics?(): AdapterMetricsSnapshot
}

export interface HealthReport {
  ok: boolean
  adapters: { name: string; ok: boolean; latencyMs: number; error?: string }[]
}

/** Readiness of several adapters (each `isHealthy()` bounded by `timeoutMs`, default 2000). */
export declare function health(adapters: ObservableAdapter[] | Record<string, ObservableAdapter>, options?: { timeoutMs?: number }): Promise<HealthReport>

/** The adapters' metrics in the Prometheus text exposition format (`motia_adapter_…`, labels `adapter`, `instance`). */
export declare function prometheusMetrics(adapters: ObservableAdapter[] | Record<string, ObservableAdapter>): string

/**
 * The same metrics as observable OpenTelemetry instruments on `options.meter` (default: the global
 * meter provider of `@opentelemetry/api`, which must then be installed). Returns an unregister function.
 */
export declare function registerOpenTelemetry(adapters: ObservableAdapter[] | Record<string, ObservableAdapter>, options?: { meter?: unknown }): () => void

/**
 * Builds Motia's `adapters` from environment variables (unset `*_ADAPTER` = Motia's default):
 * `STATE_ADAPTER=redis`, `STREAM_ADAPTER=redis`, `CRON_ADAPTER=redis|postgres|mysql`; `REDIS_URL` or `REDIS_HOST`,
 * `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_USERNAME`, `REDIS_DATABASE`, `REDIS_TLS`; `REDIS_KEY_PREFIX` or
 * `STATE_KEY_PREFIX`/`STREAM_KEY_PREFIX`/`CRON_KEY_PREFIX`; `STATE_TTL`; `CRON_LOCK_TTL`, `CRON_RELEASE_GUARD`,
 * `INSTANCE_ID`; `CRON_POSTGRES_URL` or `DATABASE_URL` (postgres); `CRON_MYSQL_URL` or `MYSQL_URL` (mysql); `CRON_TABLE`. Throws MOTIA_CONFIG naming a bad variable.
 */
export declare function adaptersFromEnv(env?: Record<string, string | undefined>): AdapterConfig

/** Stable error codes carried in `error.code` (and as a `[CODE]` message prefix). */
export declare const ErrorCodes: {
  readonly CONFIG: 'MOTIA_CONFIG'
  readonly CONNECT: 'MOTIA_CONNECT'
  readonly AUTH: 'MOTIA_AUTH'
  readonly TIMEOUT: 'MOTIA_TIMEOUT'
  readonly BACKEND: 'MOTIA_BACKEND'
  readonly DECODE: 'MOTIA_DECODE'
  readonly SERIALIZE: 'MOTIA_SERIALIZE'
  readonly CLOSED: 'MOTIA_CLOSED'
  readonly INTERNAL: 'MOTIA_INTERNAL'
}
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Every error this package throws or rejects with. */
export declare class MotiaAdapterError extends Error {
  readonly code: ErrorCode
}

