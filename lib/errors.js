'use strict'
/**
 * Errors thrown or rejected by motia-native-adapters carry a stable `code` (see README "Error codes").
 * Rust errors arrive as `[CODE] message`; `fromNative` turns them into a MotiaAdapterError.
 */

const { redactSecrets } = require('./native.js')

/** The codes as JS names them; `__test__/errors.spec.mjs` checks them against Rust's list, the typings and the README. */
const ErrorCodes = Object.freeze({
  /** Invalid configuration or argument; the message names the field. */
  CONFIG: 'MOTIA_CONFIG',
  /** The server could not be reached (refused, DNS, TLS). */
  CONNECT: 'MOTIA_CONNECT',
  /** The server rejected the credentials. */
  AUTH: 'MOTIA_AUTH',
  /** Connecting or a command took longer than its timeout. */
  TIMEOUT: 'MOTIA_TIMEOUT',
  /** The server answered with an error or the connection broke mid-command. */
  BACKEND: 'MOTIA_BACKEND',
  /** Stored bytes are not valid JSON (written by something else). */
  DECODE: 'MOTIA_DECODE',
  /** A value cannot be represented as JSON (BigInt, circular, undefined). Nothing was written. */
  SERIALIZE: 'MOTIA_SERIALIZE',
  /** The adapter was closed by cleanup()/shutdown(). */
  CLOSED: 'MOTIA_CLOSED',
  /** A bug inside the addon (a Rust panic). Please report it. */
  INTERNAL: 'MOTIA_INTERNAL',
})

class MotiaAdapterError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'MotiaAdapterError'
    this.code = code
  }
}

const PREFIX = /^\[(MOTIA_[A-Z_]+)\] /

/** Removes `user:password@` from URL-like text (Rust's `redact`, the one implementation). */
function redact(text) {
  return redactSecrets(String(text))
}

function fromNative(err) {
  if (err instanceof MotiaAdapterError) return err
  const message = redact(err && err.message !== undefined ? err.message : String(err))
  const m = PREFIX.exec(message)
  if (m) return new MotiaAdapterError(m[1], message)
  return new MotiaAdapterError(ErrorCodes.INTERNAL, `[${ErrorCodes.INTERNAL}] ${message}`)
}

function configError(field, problem) {
  return new MotiaAdapterError(ErrorCodes.CONFIG, `[${ErrorCodes.CONFIG}] invalid option \`${field}\`: ${problem}`)
}

function serializeError(what, cause) {
  const reason = cause ? `: ${cause.message || cause}` : ''
  return new MotiaAdapterError(
    ErrorCodes.SERIALIZE,
    `[${ErrorCodes.SERIALIZE}] ${what} cannot be stored as JSON${reason}; nothing was written`,
  )
}

/** Maps a native promise's rejection to a MotiaAdapterError. */
function callNative(promise) {
  return promise.catch((e) => {
    throw fromNative(e)
  })
}

/**
 * Makes the promise-returning methods `names` of `cls` never throw synchronously: an argument JS cannot
 * turn into a string (a Symbol trace id, group id or key) or any other synchronous failure becomes a
 * rejected promise (`MOTIA_CONFIG` for a TypeError).
 */
function rejectSyncThrows(cls, names) {
  for (const name of names) {
    const method = cls.prototype[name]
    cls.prototype[name] = {
      [name](...args) {
        try {
          return method.apply(this, args)
        } catch (e) {
          return Promise.reject(e instanceof TypeError ? configError('arguments', `${name}(): ${e.message}`) : fromNative(e))
        }
      },
    }[name]
  }
}

module.exports = { ErrorCodes, MotiaAdapterError, fromNative, callNative, configError, serializeError, redact, rejectSyncThrows }
