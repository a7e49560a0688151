import type { ApiRouteConfig } from 'motia'

export const config: ApiRouteConfig = {
  name: 'GetOrder',
  type: 'api',
  path: '/orders/:orderId',
  method: 'GET',
  description: 'Reads an order from state and from the orders stream (whichever replica wrote them)',
  emits: [],
  flows: ['orders'],
}

export const handler = async (req: any, { state, streams }: any) => {
  const { orderId } = req.pathParams
  const order = await state.get('orders', orderId)
  const item = await streams.orders.get('all', orderId)
  return { status: order ? 200 : 404, body: { order, item, servedBy: process.env.INSTANCE_NAME ?? 'app' } }
}
