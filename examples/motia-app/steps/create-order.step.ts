import type { ApiRouteConfig } from 'motia'
import { z } from 'zod'

export const config: ApiRouteConfig = {
  name: 'CreateOrder',
  type: 'api',
  path: '/orders',
  method: 'POST',
  description: 'Accepts an order and emits order.created',
  emits: ['order.created'],
  flows: ['orders'],
  bodySchema: z.object({ orderId: z.string(), amount: z.number() }),
}

export const handler = async (req: any, { emit }: any) => {
  const { orderId, amount } = req.body
  await emit({ topic: 'order.created', data: { orderId, amount, acceptedBy: process.env.INSTANCE_NAME ?? 'app' } })
  return { status: 202, body: { orderId, acceptedBy: process.env.INSTANCE_NAME ?? 'app' } }
}
