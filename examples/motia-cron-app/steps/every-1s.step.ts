import type { CronConfig } from 'motia'

export const config: CronConfig = {
  name: 'Every1s',
  type: 'cron',
  cron: '* * * * * *', // every second (node-cron seconds field)
  description: 'Runs every second; each tick must run on exactly one replica',
  emits: [],
  flows: ['cron-proof'],
}

export const handler = async () => {}
