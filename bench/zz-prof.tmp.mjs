import { RedisStateAdapter } from 'motia-native-adapters'
import { run } from './lib.mjs'
const s = new RedisStateAdapter({ url: 'redis://127.0.0.1:6379' }, { keyPrefix: 'zzprof:' })
const value = { id: 'order-123', status: 'paid', amount: 42.5, items: [{ sku: 'a', qty: 2 }, { sku: 'b', qty: 1 }], note: 'x'.repeat(200) }
const op = process.argv[2] || 'set'
for (let r = 0; r < 4; r++) {
  const res = await run((i) => (op === 'set' ? s.set('hot', `k${i % 1000}`, value) : s.get('hot', `k${i % 1000}`)), { total: 100000, concurrency: 64 })
  console.log(op, Math.round(res.opsPerSec), res.cpuUsPerOp.toFixed(2))
}
await s.cleanup()
