// Kafka helpers: the local tansu broker (scripts/services.sh kafka), unique names.
import { requireService, uniquePrefix } from './env.mjs'

export const KAFKA_HOST = process.env.TEST_KAFKA_HOST || '127.0.0.1'
export const KAFKA_PORT = Number(process.env.TEST_KAFKA_PORT || 9092)
export const KAFKA_BROKERS = [`${KAFKA_HOST}:${KAFKA_PORT}`]
export const requireKafka = () => requireService('Kafka', KAFKA_HOST, KAFKA_PORT)

/** A topic/group name no other test uses (Kafka names: [a-zA-Z0-9._-]). */
export const uniqueName = (tag = 'motia-test') => uniquePrefix(tag).replace(/:/g, '.').replace(/\.$/, '')

/** Test settings for tansu: faster group joins and heartbeats. */
export const TEST_RDKAFKA = { 'session.timeout.ms': '6000', 'heartbeat.interval.ms': '500' }
