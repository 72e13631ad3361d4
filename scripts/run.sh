#!/usr/bin/env bash
# The body of `make run`: starts, in the foreground, a private Redis and
# PostgreSQL and every Sluice daemon that is built, with defaults that need no
# configuration; prints what runs where; stops everything on Ctrl-C.
#
# State survives between runs in .run/ (git-ignored): Redis data, generated
# secrets, logs. PostgreSQL refuses to run as root, so as root its data lives
# in a postgres-owned directory outside the checkout (a checkout under a 0700
# home is unreachable for that user): /var/tmp/sluice-run-<id>/pg.
#
# The caller's SLUICE_* variables pass through to every daemon. Ports:
#   SLUICE_RUN_REDIS_PORT (6380), SLUICE_RUN_PG_PORT (5433); daemons use the
#   defaults of docs/architecture.md.
set -eu
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BIN=${SLUICE_RUN_BIN:-$ROOT/build/release/bin}
DATA=$ROOT/.run
REDIS_PORT=${SLUICE_RUN_REDIS_PORT:-6380}
PG_PORT=${SLUICE_RUN_PG_PORT:-5433}
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
mkdir -p "$DATA/redis" "$DATA/secrets" "$DATA/logs" "$DATA/hls"
chmod 700 "$DATA/secrets"

if [ "$(id -u)" -eq 0 ]; then
    PG_DIR=/var/tmp/sluice-run-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
    mkdir -p "$PG_DIR"
    chown postgres:postgres "$PG_DIR"
    as_pg() { runuser -u postgres -- "$@"; }
else
    PG_DIR=$DATA
    as_pg() { "$@"; }
fi
PG_DATA=$PG_DIR/pg

PIDS=""
REDIS_PID=""
PG_STARTED=""
stopping=""

say() { printf 'sluice run: %s\n' "$*"; }

stop_all() {
    [ -n "$stopping" ] && return
    stopping=1
    trap '' INT TERM
    say "stopping"
    for pid in $PIDS; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    say "stopped"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A secret kept in .run/secrets/<name>, generated on first use.
secret() {
    f=$DATA/secrets/$1
    [ -s "$f" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
    printf '%s' "$f"
}

start_redis() {
    if port_busy "$REDIS_PORT"; then
        say "port $REDIS_PORT is busy: set SLUICE_RUN_REDIS_PORT"; exit 1
    fi
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
        --save 60 1 --appendonly no --logfile "$DATA/logs/redis.log" &
    REDIS_PID=$!
    i=0
    until port_busy "$REDIS_PORT"; do
        i=$((i + 1)); [ $i -lt 100 ] || { say "redis did not start"; exit 1; }
        sleep 0.1
    done
}

start_postgres() {
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        say "creating the PostgreSQL cluster in $PG_DATA"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 >/dev/null
    fi
    if port_busy "$PG_PORT"; then
        say "port $PG_PORT is busy: set SLUICE_RUN_PG_PORT"; exit 1
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
    PG_STARTED=1
    if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = 'sluice'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE sluice"
    fi
}

# daemon <name> [flags...]: starts build/.../sluice-<name> if it is built.
daemon() {
    name=$1; shift
    [ -x "$BIN/sluice-$name" ] || return 0
    "$BIN/sluice-$name" "$@" &
    PIDS="$PIDS $!"
    STARTED="$STARTED $name"
}

start_redis
start_postgres

export SLUICE_REDIS_URL="${SLUICE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
export SLUICE_DATABASE_URL="${SLUICE_DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/sluice}"
export SLUICE_JWT_SECRET_FILE="${SLUICE_JWT_SECRET_FILE:-$(secret jwt_secret)}"
export SLUICE_INTERNAL_TOKEN_FILE="${SLUICE_INTERNAL_TOKEN_FILE:-$(secret internal_token)}"
export SLUICE_ADMIN_USER="${SLUICE_ADMIN_USER:-admin}"
export SLUICE_ADMIN_PASSWORD_FILE="${SLUICE_ADMIN_PASSWORD_FILE:-$(secret admin_password)}"

STARTED=""
# Each daemon, in the order data flows. Daemons that are not built yet are
# skipped, so this list can name every daemon of the design.
daemon api --listen=127.0.0.1:8000 --admin-listen=127.0.0.1:9100
daemon relay --listen=127.0.0.1:7700 --admin-listen=127.0.0.1:9102
# hls writes $DATA/hls (the origin directory); discovery watches it
daemon discovery --dir="$DATA/hls" --admin-listen=127.0.0.1:9105
daemon edge --listen=127.0.0.1:8081 --admin-listen=127.0.0.1:9106

cat <<EOF

Sluice is running (Ctrl-C stops everything).
  Redis       redis://127.0.0.1:$REDIS_PORT        data in $DATA/redis
  PostgreSQL  postgresql://postgres@127.0.0.1:$PG_PORT/sluice   data in $PG_DATA
  daemons    ${STARTED:- (none built yet)}
  secrets     $DATA/secrets (admin user "$SLUICE_ADMIN_USER", password in admin_password)
EOF
for name in $STARTED; do
    case $name in
        api)   echo "  api         http://127.0.0.1:8000      admin http://127.0.0.1:9100/metrics" ;;
        relay) echo "  relay       slp://127.0.0.1:7700       admin http://127.0.0.1:9102/metrics" ;;
        discovery)
               echo "  discovery   watching $DATA/hls        admin http://127.0.0.1:9105/metrics" ;;
        edge)  echo "  edge        http://127.0.0.1:8081      admin http://127.0.0.1:9106/metrics"
               echo "              watch: http://127.0.0.1:8081/live/<stream>/index.m3u8" ;;
    esac
done
echo

if [ -z "$PIDS" ]; then
    # nothing to supervise yet: keep Redis and PostgreSQL up until Ctrl-C
    wait "$REDIS_PID"
else
    # stop everything as soon as any daemon exits on its own
    while :; do
        for pid in $PIDS; do
            kill -0 "$pid" 2>/dev/null || { say "a daemon exited (pid $pid)"; exit 1; }
        done
        sleep 1
    done
fi
