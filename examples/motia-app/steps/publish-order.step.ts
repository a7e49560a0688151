import type { EventConfig } from 'motia'
import { z } from 'zod'
import { randomUUID } from 'node:crypto'

export const config: EventConfig = {
  name: 'PublishOrder',
  type: 'event',
  description: 'Writes the order to the orders stream',
  subscribes: ['order.created'],
  emits: [],
  flows: ['orders'],
  input: z.object({ orderId: z.string(), amount: z.number(), acceptedBy: z.string() }),
}

export const handler = async (input: any, { streams, state }: any) => {
  const instance = process.env.INSTANCE_NAME ?? 'app'
  await streams.orders.set('all', input.orderId, { orderId: input.orderId, amount: input.amount, publishedBy: instance })
  await state.set('handled-PublishOrder', `${input.orderId}:${randomUUID()}`, { orderId: input.orderId, instance })
}
