import type { EventConfig } from 'motia'
import { z } from 'zod'
import { randomUUID } from 'node:crypto'

export const config: EventConfig = {
  name: 'RecordOrder',
  type: 'event',
  description: 'Writes the order to state; one record per handling (so a duplicate would show)',
  subscribes: ['order.created'],
  emits: [],
  flows: ['orders'],
  input: z.object({ orderId: z.string(), amount: z.number(), acceptedBy: z.string() }),
}

export const handler = async (input: any, { state }: any) => {
  const instance = process.env.INSTANCE_NAME ?? 'app'
  await state.set('orders', input.orderId, { ...input, recordedBy: instance })
  await state.set('handled-RecordOrder', `${input.orderId}:${randomUUID()}`, { orderId: input.orderId, instance })
}
