import type { CronConfig } from 'motia'
import { randomUUID } from 'node:crypto'

export const config: CronConfig = {
  name: 'Tick',
  type: 'cron',
  cron: '*/3 * * * * *', // every 3 seconds (node-cron seconds field)
  description: 'Records each run; every tick must run on one replica only',
  emits: [],
  flows: ['orders'],
}

export const handler = async ({ state }: any) => {
  const now = Date.now()
  await state.set('cron-runs', `${now}:${randomUUID()}`, { tick: Math.floor(now / 3000) * 3000, at: now, instance: process.env.INSTANCE_NAME ?? 'app' })
}
