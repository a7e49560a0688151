'use strict'
/**
 * motia-native-adapters (CommonJS entry). `lib/index.mjs` re-exports the same objects for ESM.
 */
const { RedisStateAdapter } = require('./state.js')
const { ErrorCodes, MotiaAdapterError } = require('./errors.js')

module.exports = {
  RedisStateAdapter,
  ErrorCodes,
  MotiaAdapterError,
}
