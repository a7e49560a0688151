#!/usr/bin/env bash
# `npm test`: start missing services, build the addon, run the Rust unit tests, then jest against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."

# the suites use Redis, PostgreSQL, MySQL (MariaDB), RabbitMQ and Kafka (tansu)
bash scripts/services.sh redis postgres mysql rabbitmq kafka

# __test__/metrics.spec.mjs parses our Prometheus text with the official client's parser (Python
# prometheus_client); where pip may not write to the system Python (PEP 668), into our own folder
PY_TOOLS="${XDG_DATA_HOME:-$HOME/.local/share}/motia-native-adapters/python"
export PYTHONPATH="$PY_TOOLS${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  pip=(python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore)
  "${pip[@]}" prometheus-client >/dev/null 2>&1 || "${pip[@]}" --upgrade --target "$PY_TOOLS" prometheus-client
fi

if [ ! -d node_modules ]; then
  npm install --no-audit --no-fund
fi

# The Motia example app used by the end-to-end test (motia's redis-memory-server postinstall would download Redis)
if [ ! -d examples/motia-app/node_modules/motia ]; then
  (cd examples/motia-app && REDISMS_DISABLE_POSTINSTALL=1 npm install --no-audit --no-fund)
fi

if [ "${MOTIA_ADDON_PREBUILT:-}" = "1" ]; then
  # release.yml's test job: the suites run against the addon the build job made for publishing (no
  # test-probes feature), downloaded next to binding.js; nothing is rebuilt (ci.yml runs cargo test)
  ls ./*.node >/dev/null 2>&1 || { echo "MOTIA_ADDON_PREBUILT=1 but no .node file next to binding.js (download the build job's artifact first)"; exit 1; }
else
  # Release build of the addon (a no-op in ~2 s when nothing changed).
  npm run build --silent

  # Pure-logic unit tests of the napi-free core, with the release build's target and profile so the
  # dependencies built above are reused (a plain `cargo test` would build all of them again in debug).
  cargo test --lib --quiet --release --target "$(rustc -vV | sed -n 's/^host: //p')"
fi

NODE_OPTIONS="${NODE_OPTIONS:-} --experimental-vm-modules --no-warnings" npx jest --runInBand "$@"
