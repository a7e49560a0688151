import type { CronConfig } from 'motia'

export const config: CronConfig = {
  name: 'Every2s',
  type: 'cron',
  cron: '*/2 * * * * *', // every 2 seconds (node-cron seconds field)
  description: 'Runs every 2 seconds; each tick must run on exactly one replica',
  emits: [],
  flows: ['cron-proof'],
}

export const handler = async () => {}
