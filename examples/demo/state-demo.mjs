// `npm run demo`: two Node processes ("replicas") share Motia state through Redis with RedisStateAdapter.
// Replica A creates orders; replica B, a separate process, sees them, updates them, and A sees B's updates.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { RedisStateAdapter } from 'motia-native-adapters'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const role = process.argv[2]

if (!role) {
  const traceId = `demo-${randomUUID().slice(0, 8)}`
  const keyPrefix = 'motia-native-demo:state:'
  console.log(`Two replicas share state through Redis at ${url} (keys ${keyPrefix}${traceId}:*)\n`)
  const start = (name) => fork(fileURLToPath(import.meta.url), [name, traceId, keyPrefix], { stdio: 'inherit' })
  const a = start('A')
  await new Promise((r) => a.once('message', r)) // A wrote its orders
  const b = start('B')
  const codeB = await new Promise((r) => b.once('exit', r))
  a.send('check')
  const codeA = await new Promise((r) => a.once('exit', r))
  const ok = codeA === 0 && codeB === 0
  console.log(ok ? '\nDemo OK: both processes saw the same state.' : '\nDemo FAILED')
  process.exit(ok ? 0 : 1)
}

const [traceId, keyPrefix] = process.argv.slice(3)
const state = new RedisStateAdapter({ url }, { keyPrefix, ttl: 300 })
const log = (msg) => console.log(`[replica ${role} pid ${process.pid}] ${msg}`)

if (role === 'A') {
  await state.setMany(traceId, {
    'order-1': { item: 'coffee', qty: 2, status: 'new' },
    'order-2': { item: 'bagel', qty: 1, status: 'new' },
  })
  await state.set(traceId, 'order-3', { item: 'tea', qty: 3, status: 'new' })
  log(`stored 3 orders under trace ${traceId}`)
  process.send('written')
  process.once('message', async () => {
    const paid = await state.items({ groupId: traceId, filter: [{ valueKey: 'status', operation: 'eq', value: 'paid' }] })
    log(`sees ${paid.length} orders marked paid by the other replica: ${paid.map((i) => i.key).sort().join(', ')}`)
    const gone = await state.get(traceId, 'order-2')
    log(`order-2 after B deleted it: ${JSON.stringify(gone)}`)
    await state.clear(traceId)
    log(`cleared the trace; keys left: ${(await state.keys(traceId)).length}`)
    await state.cleanup()
    process.exitCode = paid.length === 2 && gone === null ? 0 : 1
    process.disconnect()
  })
} else {
  const orders = await state.getGroup(traceId)
  log(`getGroup(${traceId}) -> ${orders.length} orders: ${orders.map((o) => o.item).sort().join(', ')}`)
  for (const key of ['order-1', 'order-3']) {
    const o = await state.get(traceId, key)
    await state.set(traceId, key, { ...o, status: 'paid' })
  }
  log('marked order-1 and order-3 paid')
  const removed = await state.delete(traceId, 'order-2')
  log(`deleted order-2 (atomic GETDEL returned ${JSON.stringify(removed)})`)
  await state.cleanup()
  process.exitCode = orders.length === 3 ? 0 : 1
}
