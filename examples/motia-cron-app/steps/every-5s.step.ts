import type { CronConfig } from 'motia'

export const config: CronConfig = {
  name: 'Every5s',
  type: 'cron',
  cron: '*/5 * * * * *', // every 5 seconds (node-cron seconds field)
  description: 'Runs every 5 seconds; each tick must run on exactly one replica',
  emits: [],
  flows: ['cron-proof'],
}

export const handler = async () => {}
