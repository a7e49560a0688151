#!/usr/bin/env bash
# `npm run demo`: start Redis if needed, build the addon if needed, run the two-process state demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh redis
[ -d node_modules ] || npm install --no-audit --no-fund
npm run build --silent
node examples/demo/state-demo.mjs
