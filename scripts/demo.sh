#!/usr/bin/env bash
# `npm run demo`: two replicas of a real Motia app (examples/motia-app) sharing state, streams, events and cron
# through motia-native-adapters (events in Redis; MOTIA_EVENTS=rabbitmq for RabbitMQ). Starts the services it
# needs, builds the addon, installs the app.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${MOTIA_EVENTS:-redis}" = rabbitmq ]; then bash scripts/services.sh redis rabbitmq; else bash scripts/services.sh redis; fi
[ -d node_modules ] || npm install --no-audit --no-fund
npm run build --silent
if [ ! -d examples/motia-app/node_modules/motia ]; then
  # motia's redis-memory-server postinstall would download a Redis binary; the app uses the local server
  (cd examples/motia-app && REDISMS_DISABLE_POSTINSTALL=1 npm install --no-audit --no-fund)
fi
node examples/motia-app/demo.mjs
