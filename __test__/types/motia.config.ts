// Compile-only: our classes must type-check where Motia 0.17 expects its interfaces.
import type { AdapterConfig, Config, StateAdapter } from '@motiadev/core'
import { createClient } from 'redis'
import { RedisStateAdapter, ErrorCodes, MotiaAdapterError, type RedisStateAdapterOptions } from 'motia-native-adapters'

const options: RedisStateAdapterOptions = { keyPrefix: 'motia:state:', ttl: 3600 }
const client = createClient({ url: 'redis://localhost:6379' })

const adapters: AdapterConfig = {
  state: new RedisStateAdapter({ url: 'redis://localhost:6379' }, options),
}
const state: StateAdapter = new RedisStateAdapter(client)
const legacy: StateAdapter = new RedisStateAdapter({ host: 'localhost', port: 6379, password: 'x', keyPrefix: 'p:', ttl: 10 })
const socket: StateAdapter = new RedisStateAdapter({ socket: { host: 'h', port: 6380, tls: true, connectTimeout: 5000 }, username: 'u', password: 'p', database: 1 })

export const config: Config = { adapters }

async function typed() {
  const a = new RedisStateAdapter()
  const n: number | null = await a.get<number>('t', 'k')
  const many: (string | null)[] = await a.getMany<string>('t', ['a'])
  const exists: boolean = await a.exists('t', 'k')
  const code: string = ErrorCodes.CONFIG
  const e = new Error() as MotiaAdapterError
  return [n, many, exists, code, e.code, state, legacy, socket]
}
void typed
