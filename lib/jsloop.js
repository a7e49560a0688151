'use strict'
/**
 * Whether the Redis hot paths may run on Node's own event loop (a Rust-owned socket polled by
 * libuv, see README "Design"). Bun and Deno have no libuv `uv_poll`: they keep the tokio path, as
 * does `MOTIA_NATIVE_JSLOOP=0` (the addon also checks the host for libuv and returns null).
 */
function jsLoopAllowed() {
  if (process.env.MOTIA_NATIVE_JSLOOP === '0') return false
  if (process.versions && process.versions.bun) return false
  if (typeof globalThis.Deno !== 'undefined') return false
  return true
}

module.exports = { jsLoopAllowed }
