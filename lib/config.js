'use strict'
/**
 * Normalises every Redis connection shape users already write for the 0.17 adapters into the
 * one JSON object the Rust side understands, and validates it. A bad value fails here, at
 * construction, with a MOTIA_CONFIG error naming the field (never echoing a password or URL).
 *
 * Accepted shapes:
 *  1. a node-redis client instance (we read `client.options` and open our own connection;
 *     the user's client is never used or closed);
 *  2. node-redis options: `{url, socket: {host, port, tls, connectTimeout, reconnectStrategy,
 *     rejectUnauthorized, ca, cert, key}, username, password, database}`;
 *  3. the legacy flat form `{host, port, password, username, database, keyPrefix, ttl, socket}`;
 *  4. node-redis `createSentinel` options `{sentinelRootNodes: [{host, port}], name, nodeClientOptions?,
 *     sentinelClientOptions?}`: the master is asked of the sentinels on every connect (Rust follows failovers);
 *  5. node-redis `createCluster` options `{rootNodes: [{url} | {socket: {host, port}}], defaults?}` or a
 *     node-redis cluster instance (its options are read; it is never used or closed): Redis Cluster.
 *  6. ours: `{failover: {primary, secondary, probeInterval?, failAfter?, recoverAfter?}}`, two independent servers
 *     (each any single-server shape above): the primary while healthy, else the secondary (Rust probes both).
 * Every plain-object shape may add ours: `waitReplicas` (n) and `waitTimeout` (ms): a call resolves only
 * once n replicas have its writes (`WAIT`), else it rejects with MOTIA_BACKEND.
 */
const { configError, fromNative } = require('./errors.js')
const { resolveConfig: nativeResolveConfig } = require('./native.js')

/**
 * An adapter's options with defaults filled and values checked by Rust (the one owner of both; see
 * `src/core/options.rs`). Non-finite numbers and functions are sent as text so Rust refuses them instead of
 * JSON turning them into "not set"; a value JSON cannot hold at all (BigInt) is refused here.
 */
function resolveOptions(kind, options, what = 'config') {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw configError(what, 'must be an object')
  }
  let json
  try {
    json = JSON.stringify(options ?? null, (k, v) => {
      if (k === 'logger') return undefined // JS-side only
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
      if (typeof v === 'function' || typeof v === 'bigint' || typeof v === 'symbol') return `[${typeof v}]`
      return v
    })
  } catch (e) {
    throw configError(what, `cannot be read: ${e.message}`)
  }
  try {
    return JSON.parse(nativeResolveConfig(kind, json))
  } catch (e) {
    throw fromNative(e)
  }
}

function isRedisClient(x) {
  return x !== null && typeof x === 'object' && 'isOpen' in x && 'connect' in x
}

function isPlainObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}

function optString(obj, field, label) {
  const v = obj[field]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw configError(label, `must be a string, got ${typeof v}`)
  return v
}

function optInt(obj, field, label, min, max, nanIsUnset = false) {
  let v = obj[field]
  if (v === undefined || v === null || v === '') return undefined
  if (nanIsUnset && typeof v === 'number' && Number.isNaN(v)) return undefined
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) v = Number(v)
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw configError(label, `must be an integer between ${min} and ${max}`)
  }
  return v
}

function pem(v, label) {
  if (v === undefined || v === null) return undefined
  if (Array.isArray(v)) return v.map((x) => pem(x, label)).join('\n')
  if (typeof v === 'string') return v
  if (typeof Buffer !== 'undefined' && Buffer.isBuffer(v)) return v.toString('utf8')
  throw configError(label, 'must be a PEM string or Buffer')
}

/**
 * @returns {{ connection: object, legacy: {keyPrefix?: string, ttl?: number} }}
 */
/** Connection keys we read. */
const REDIS_KEYS = ['url', 'socket', 'host', 'port', 'username', 'password', 'database', 'db']
/** Options the classes read from a flat connection object (RFC configs). */
const FLAT_OPTION_KEYS = ['keyPrefix', 'ttl', 'streamName', 'commandTimeout', 'lockTTL', 'lockRetryDelay', 'lockRetryAttempts', 'instanceId', 'enableHealthCheck', 'releaseGuard', 'autoRenew', 'onLockLost', 'logger']
/**
 * node-redis `createClient` options that do not change which server or data is used: accepted and
 * ignored, so a config written for node-redis works unchanged.
 */
const NODE_REDIS_IGNORED = ['name', 'pingInterval', 'disableOfflineQueue', 'readonly', 'legacyMode', 'isolationPoolOptions', 'scripts', 'modules', 'functions', 'RESP', 'commandsQueueMaxLength', 'clientInfoTag', 'disableClientInfo', 'commandOptions', 'clientSideCache', 'emitInvalidate', 'maxCommandsInFlight', 'unstableResp3', 'typeMapping']
/** Ours, in every connection shape: `WAIT waitReplicas waitTimeout` after each call (checked in Rust). */
const DURABILITY_KEYS = ['waitReplicas', 'waitTimeout']
const KNOWN_REDIS_KEYS = new Set([...REDIS_KEYS, ...FLAT_OPTION_KEYS, ...NODE_REDIS_IGNORED, ...DURABILITY_KEYS])

/** node-redis `createSentinel` options we read. */
const SENTINEL_KEYS = ['sentinelRootNodes', 'name', 'nodeClientOptions', 'sentinelClientOptions']
/** `createSentinel` options about node-redis' own pools and scans: accepted and ignored. */
const SENTINEL_IGNORED = ['maxCommandRediscovers', 'masterPoolSize', 'replicaPoolSize', 'scanInterval', 'passthroughClientErrorEvents', 'reserveClient', 'commandOptions', 'clientSideCache', 'RESP', 'typeMapping', 'modules', 'functions', 'scripts']
const KNOWN_SENTINEL_KEYS = new Set([...SENTINEL_KEYS, ...SENTINEL_IGNORED, ...FLAT_OPTION_KEYS, ...DURABILITY_KEYS])

/** The options a topology shape may carry for the classes (RFC flat configs): `keyPrefix`, `ttl`, `logger`. */
function legacyOf(input) {
  const legacy = {}
  for (const k of ['keyPrefix', 'ttl', 'logger']) if (input[k] !== undefined) legacy[k] = input[k]
  return legacy
}

function isSentinelInstance(x) {
  return x !== null && typeof x === 'object' && typeof x.getMasterNode === 'function' && typeof x.getSentinelNode === 'function'
}

function sentinelNodes(v) {
  if (!Array.isArray(v) || v.length === 0) throw configError('sentinelRootNodes', 'must be a non-empty array of { host, port }')
  return v.map((n, i) => {
    const label = `sentinelRootNodes[${i}]`
    if (!isPlainObject(n)) throw configError(label, 'must be { host, port }')
    const host = optString(n, 'host', `${label}.host`) ?? 'localhost'
    if (host.trim() === '') throw configError(`${label}.host`, 'must not be empty')
    const port = optInt(n, 'port', `${label}.port`, 1, 65535) ?? 26379
    return { host, port }
  })
}

/** `createSentinel` options → the connection of the data nodes plus `sentinel: {nodes, name, username?, password?}`. */
function normalizeSentinel(input) {
  for (const k of Object.keys(input)) {
    if (!KNOWN_SENTINEL_KEYS.has(k)) {
      throw configError(k, k === 'nodeAddressMap'
        ? 'is not supported: the addresses the sentinels announce must be reachable from here'
        : `is not a Redis Sentinel option we know (${SENTINEL_KEYS.join(', ')})`)
    }
  }
  const nodes = sentinelNodes(input.sentinelRootNodes)
  const name = optString(input, 'name', 'name')
  if (name === undefined || name === '') throw configError('name', 'must name the master group the sentinels monitor (e.g. "mymaster")')
  const nodeOpts = input.nodeClientOptions ?? {}
  if (!isPlainObject(nodeOpts)) throw configError('nodeClientOptions', 'must be an object')
  if (nodeOpts.url !== undefined) throw configError('nodeClientOptions.url', 'is not used with sentinels: the master address comes from them')
  const { connection } = normalizeRedis(nodeOpts)
  delete connection.host
  delete connection.port
  const sentinel = { nodes, name }
  const sOpts = input.sentinelClientOptions ?? {}
  if (!isPlainObject(sOpts)) throw configError('sentinelClientOptions', 'must be an object')
  const sSocket = sOpts.socket ?? {}
  if (!isPlainObject(sSocket)) throw configError('sentinelClientOptions.socket', 'must be an object')
  const sTls = sSocket.tls
  if (sTls !== undefined && sTls !== null && sTls !== false) {
    if (sTls !== true && !isPlainObject(sTls)) throw configError('sentinelClientOptions.socket.tls', 'must be a boolean or TLS options object')
    // TLS to the sentinels (their certificates checked against `ca`, else the public roots); a client certificate is not sent
    const t = isPlainObject(sTls) ? { ...sSocket, ...sTls } : sSocket
    if (t.cert !== undefined || t.key !== undefined) throw configError('sentinelClientOptions.socket.cert', 'client certificates for the sentinels are not supported')
    sentinel.tls = true
    if (t.rejectUnauthorized === false) sentinel.tlsInsecure = true
    const ca = pem(t.ca, 'sentinelClientOptions.socket.ca')
    if (ca !== undefined) sentinel.ca = ca
  }
  const su = optString(sOpts, 'username', 'sentinelClientOptions.username')
  if (su !== undefined) sentinel.username = su
  const sp = optString(sOpts, 'password', 'sentinelClientOptions.password')
  if (sp !== undefined && sp !== '') sentinel.password = sp
  connection.sentinel = sentinel
  return { connection, legacy: legacyOf(input) }
}

/** node-redis `createCluster` options we read. */
const CLUSTER_KEYS = ['rootNodes', 'defaults']
/** `createCluster` options about node-redis' own routing and pools: accepted and ignored. */
const CLUSTER_IGNORED = ['useReplicas', 'minimizeConnections', 'maxCommandRedirections', 'modules', 'functions', 'scripts', 'RESP', 'commandOptions', 'clientSideCache', 'typeMapping', 'clientInfoTag']
const KNOWN_CLUSTER_KEYS = new Set([...CLUSTER_KEYS, ...CLUSTER_IGNORED, ...FLAT_OPTION_KEYS, ...DURABILITY_KEYS])

function isClusterInstance(x) {
  return x !== null && typeof x === 'object' && typeof x.nodeClient === 'function' && 'masters' in x
}

/** One `rootNodes` entry → `{host, port}` plus what its URL carries (credentials, TLS). */
function clusterNode(n, i) {
  const label = `rootNodes[${i}]`
  if (!isPlainObject(n)) throw configError(label, 'must be { url } or { socket: { host, port } }')
  const url = optString(n, 'url', `${label}.url`)
  if (url !== undefined) {
    if (!/^rediss?:\/\//i.test(url)) throw configError(`${label}.url`, 'must start with redis:// or rediss://')
    let u
    try {
      u = new URL(url)
    } catch {
      throw configError(`${label}.url`, 'is not a valid URL')
    }
    if (u.hostname === '') throw configError(`${label}.url`, 'must name a host')
    const out = { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 6379 : Number(u.port) }
    const extra = { tls: /^rediss:/i.test(url) }
    if (u.username !== '') extra.username = decodeURIComponent(u.username)
    if (u.password !== '') extra.password = decodeURIComponent(u.password)
    return { node: out, extra }
  }
  const socket = n.socket ?? n
  if (!isPlainObject(socket)) throw configError(`${label}.socket`, 'must be an object')
  const host = optString(socket, 'host', `${label}.socket.host`) ?? 'localhost'
  if (host.trim() === '') throw configError(`${label}.socket.host`, 'must not be empty')
  const port = optInt(socket, 'port', `${label}.socket.port`, 1, 65535) ?? 6379
  return { node: { host, port }, extra: { tls: socket.tls !== undefined && socket.tls !== false } }
}

/** `createCluster` options → the connection of every node (from `defaults`) plus `cluster: {nodes}`. */
function normalizeCluster(input) {
  for (const k of Object.keys(input)) {
    if (!KNOWN_CLUSTER_KEYS.has(k)) {
      throw configError(k, k === 'nodeAddressMap'
        ? 'is not supported: the addresses the cluster announces must be reachable from here'
        : `is not a Redis Cluster option we know (${CLUSTER_KEYS.join(', ')})`)
    }
  }
  if (!Array.isArray(input.rootNodes) || input.rootNodes.length === 0) {
    throw configError('rootNodes', 'must be a non-empty array of { url } or { socket: { host, port } }')
  }
  const nodes = input.rootNodes.map(clusterNode)
  const defaults = input.defaults ?? {}
  if (!isPlainObject(defaults)) throw configError('defaults', 'must be an object')
  if (defaults.url !== undefined) throw configError('defaults.url', 'is not used with a cluster: rootNodes name the servers')
  const { connection } = normalizeRedis(defaults)
  delete connection.host
  delete connection.port
  const first = nodes[0].extra
  if (connection.username === undefined && first.username !== undefined) connection.username = first.username
  if (connection.password === undefined && first.password !== undefined) connection.password = first.password
  if (nodes.some((n) => n.extra.tls)) connection.tls = true
  if (connection.database !== undefined && Number(connection.database) !== 0) {
    throw configError('defaults.database', 'Redis Cluster has database 0 only')
  }
  delete connection.database
  connection.cluster = { nodes: nodes.map((n) => n.node) }
  return { connection, legacy: legacyOf(input) }
}

/** The primary/secondary pair's own options (both servers are whole single-server shapes). */
const FAILOVER_KEYS = ['primary', 'secondary', 'probeInterval', 'failAfter', 'recoverAfter']
const KNOWN_PAIR_KEYS = new Set(['failover', ...FLAT_OPTION_KEYS, ...DURABILITY_KEYS])

/** `{ failover: { primary, secondary, probeInterval?, failAfter?, recoverAfter? } }` → `connection.failover`. */
function normalizeFailover(input) {
  for (const k of Object.keys(input)) {
    if (!KNOWN_PAIR_KEYS.has(k)) throw configError(k, 'is not an option of a primary/secondary pair (give it inside failover.primary / failover.secondary)')
  }
  const f = input.failover
  if (!isPlainObject(f)) throw configError('failover', 'must be { primary, secondary, probeInterval?, failAfter?, recoverAfter? }')
  for (const k of Object.keys(f)) {
    if (!FAILOVER_KEYS.includes(k)) throw configError(`failover.${k}`, `is not an option we know (${FAILOVER_KEYS.join(', ')})`)
  }
  const server = (name) => {
    const v = f[name]
    if (v === undefined || v === null) throw configError(`failover.${name}`, 'is required')
    if (isPlainObject(v) && (v.rootNodes !== undefined || v.sentinelRootNodes !== undefined || v.failover !== undefined)) {
      throw configError(`failover.${name}`, 'must be one server (url, socket or host/port), not sentinels, a cluster or another pair')
    }
    return normalizeShape(v).connection
  }
  const failover = { primary: server('primary'), secondary: server('secondary') }
  for (const k of ['probeInterval', 'failAfter', 'recoverAfter']) {
    const v = f[k]
    if (v !== undefined && v !== null) failover[k] = typeof v === 'number' && !Number.isFinite(v) ? String(v) : v
  }
  // the calls' timeouts: the primary's (a connection's timeouts are one per adapter)
  const connection = { failover }
  if (failover.primary.connectTimeout !== undefined) connection.connectTimeout = failover.primary.connectTimeout
  return { connection, legacy: legacyOf(input) }
}

/** Any accepted connection shape → `{ connection, legacy }` (see the top of this file). */
function normalizeRedis(input) {
  const result = normalizeShape(input)
  if (isPlainObject(input)) {
    for (const k of DURABILITY_KEYS) {
      const v = input[k]
      if (v !== undefined && v !== null) result.connection[k] = typeof v === 'number' && !Number.isFinite(v) ? String(v) : v
    }
  }
  return result
}

function normalizeShape(input) {
  if (input === undefined || input === null) input = {}
  if (isPlainObject(input) && input.failover !== undefined) return normalizeFailover(input)
  if (isClusterInstance(input)) {
    const opts = input._options ?? input.options
    if (!isPlainObject(opts) || !Array.isArray(opts.rootNodes)) {
      throw configError('connection', 'cannot read the options of this node-redis cluster instance: pass the createCluster options object ({ rootNodes, defaults }) instead')
    }
    return normalizeCluster(opts)
  }
  if (isPlainObject(input) && input.rootNodes !== undefined) return normalizeCluster(input)
  if (isSentinelInstance(input)) {
    throw configError('connection', 'a node-redis sentinel instance does not expose its options: pass the createSentinel options object ({ sentinelRootNodes, name, ... }) instead')
  }
  if (isPlainObject(input) && input.sentinelRootNodes !== undefined) return normalizeSentinel(input)
  if (isRedisClient(input)) {
    const opts = input.options
    input = isPlainObject(opts) ? opts : {}
  } else if (isPlainObject(input)) {
    for (const k of Object.keys(input)) {
      if (!KNOWN_REDIS_KEYS.has(k)) {
        throw configError(k, `is not a Redis connection option we know (${REDIS_KEYS.join(', ')}); a typo would otherwise connect with defaults`)
      }
    }
  }
  if (!isPlainObject(input)) {
    throw configError('connection', 'expected a node-redis client, node-redis options or {host, port, ...}')
  }
  const out = {}
  const socket = input.socket === undefined || input.socket === null ? {} : input.socket
  if (!isPlainObject(socket)) throw configError('socket', 'must be an object')

  const url = optString(input, 'url', 'url')
  if (url !== undefined) {
    if (!/^rediss?:\/\//i.test(url)) throw configError('url', 'must start with redis:// or rediss://')
    out.url = url
  }
  const host = optString(socket, 'host', 'socket.host') ?? optString(input, 'host', 'host')
  if (host !== undefined) {
    if (host.trim() === '') throw configError(socket.host !== undefined ? 'socket.host' : 'host', 'must not be empty')
    out.host = host
  }
  // numbers go to Rust as written (it checks them, naming the option as written here: `labels`; a port of
  // NaN, `parseInt` of an unset variable, means "not set" there). Non-finite numbers travel as text.
  const labels = {}
  const num = (field, from, key, label) => {
    const v = from[key]
    if (v === undefined || v === null || v === '' || out[field] !== undefined) return
    out[field] = typeof v === 'number' && !Number.isFinite(v) ? String(v) : v
    labels[field] = label
  }
  num('port', socket, 'port', 'socket.port')
  num('port', input, 'port', 'port')
  if (socket.path !== undefined) throw configError('socket.path', 'unix sockets are not supported; use host/port or url')

  const tls = socket.tls
  if (tls !== undefined && tls !== null && tls !== false) {
    if (tls !== true && !isPlainObject(tls)) throw configError('socket.tls', 'must be a boolean or TLS options object')
    out.tls = true
  }
  const tlsOpts = isPlainObject(tls) ? { ...socket, ...tls } : socket
  if (tlsOpts.rejectUnauthorized === false) out.tlsInsecure = true
  const ca = pem(tlsOpts.ca, 'socket.ca')
  if (ca !== undefined) out.ca = ca
  const cert = pem(tlsOpts.cert, 'socket.cert')
  const key = pem(tlsOpts.key, 'socket.key')
  if ((cert === undefined) !== (key === undefined)) throw configError('socket.cert', '`cert` and `key` must be given together')
  if (cert !== undefined) {
    out.cert = cert
    out.key = key
  }

  const username = optString(input, 'username', 'username')
  if (username !== undefined) out.username = username
  // `password: process.env.REDIS_PASSWORD` (RFC example): unset or empty means no AUTH
  const password = optString(input, 'password', 'password')
  if (password !== undefined && password !== '') out.password = password
  num('database', input, 'database', 'database')
  num('database', input, 'db', 'db')
  num('connectTimeout', socket, 'connectTimeout', 'socket.connectTimeout')
  if (Object.keys(labels).length) out.labels = labels
  const rs = socket.reconnectStrategy
  if (rs !== undefined && rs !== null && rs !== false && typeof rs !== 'function' && typeof rs !== 'number') {
    throw configError('socket.reconnectStrategy', 'must be a function, a number of milliseconds or false')
  }

  return { connection: out, legacy: legacyOf(input) }
}

/**
 * The `ssl` option of PostgresCronAdapter (node-postgres' shape): true, or `{ ca, rejectUnauthorized }`
 * with `ca` a PEM string, Buffer or an array of them. Returns what the native side takes, or undefined.
 */
function pgSsl(v) {
  if (v === undefined || v === null || v === false) return undefined
  if (v === true) return {}
  if (!isPlainObject(v)) throw configError('ssl', 'must be true or { ca?, rejectUnauthorized? }')
  const out = {}
  const ca = pem(v.ca, 'ssl.ca')
  if (ca !== undefined) out.ca = ca
  if (v.rejectUnauthorized !== undefined) {
    if (typeof v.rejectUnauthorized !== 'boolean') throw configError('ssl.rejectUnauthorized', 'must be a boolean')
    out.rejectUnauthorized = v.rejectUnauthorized
  }
  return out
}

module.exports = { resolveOptions, normalizeRedis, isRedisClient, pgSsl }
