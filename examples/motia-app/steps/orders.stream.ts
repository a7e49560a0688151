import type { StreamConfig } from 'motia'
import { z } from 'zod'

export const config: StreamConfig = {
  name: 'orders',
  schema: z.object({ orderId: z.string(), amount: z.number(), publishedBy: z.string() }),
  baseConfig: { storageType: 'default' },
}
