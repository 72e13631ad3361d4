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
# The caller's SLUICE_* variables pass through to every daemon. Ports are the
# defaults of docs/architecture.md; each can be moved with SLUICE_RUN_<NAME>_PORT
# (REDIS 6380, PG 5433, API 8000, API_ADMIN 9100, ...), which the test of this
# script uses to run beside anything else.
set -eu
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BIN=${SLUICE_RUN_BIN:-$ROOT/build/release/bin}
DATA=${SLUICE_RUN_DATA:-$ROOT/.run}
REDIS_PORT=${SLUICE_RUN_REDIS_PORT:-6380}
PG_PORT=${SLUICE_RUN_PG_PORT:-5433}
API_PORT=${SLUICE_RUN_API_PORT:-8000}
API_ADMIN_PORT=${SLUICE_RUN_API_ADMIN_PORT:-9100}
RELAY_PORT=${SLUICE_RUN_RELAY_PORT:-7700}
RELAY_ADMIN_PORT=${SLUICE_RUN_RELAY_ADMIN_PORT:-9102}
INGEST_SRT_PORT=${SLUICE_RUN_INGEST_SRT_PORT:-9999}
INGEST_ADMIN_PORT=${SLUICE_RUN_INGEST_ADMIN_PORT:-9101}
HLS_PORT=${SLUICE_RUN_HLS_PORT:-8080}
HLS_ADMIN_PORT=${SLUICE_RUN_HLS_ADMIN_PORT:-9103}
DISCOVERY_ADMIN_PORT=${SLUICE_RUN_DISCOVERY_ADMIN_PORT:-9105}
EDGE_PORT=${SLUICE_RUN_EDGE_PORT:-8081}
EDGE_ADMIN_PORT=${SLUICE_RUN_EDGE_ADMIN_PORT:-9106}
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
mkdir -p "$DATA/redis" "$DATA/secrets" "$DATA/logs" "$DATA/hls"
chmod 700 "$DATA/secrets"

if [ "$(id -u)" -eq 0 ]; then
    PG_DIR=/var/tmp/sluice-run-$(printf '%s' "$DATA" | cksum | cut -d' ' -f1)
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

# shellcheck disable=SC2317 # called from the traps
stop_all() {
    [ -n "$stopping" ] && return
    stopping=1
    trap '' INT TERM
    say "stopping"
    # last started first: consumers before what they consume
    reversed=""
    for pid in $PIDS; do reversed="$pid $reversed"; done
    for pid in $reversed; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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
    setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
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
    setsid "$BIN/sluice-$name" "$@" &
    PIDS="$PIDS $!"
    STARTED="$STARTED $name"
}

start_redis
start_postgres

export SLUICE_REDIS_URL="${SLUICE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
export SLUICE_DATABASE_URL="${SLUICE_DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/sluice}"
# Generated secrets, unless the caller gave one (a *_FILE variable would win
# over the caller's plain SLUICE_JWT_SECRET and the like).
[ -n "${SLUICE_JWT_SECRET:-}" ] ||
    export SLUICE_JWT_SECRET_FILE="${SLUICE_JWT_SECRET_FILE:-$(secret jwt_secret)}"
[ -n "${SLUICE_INTERNAL_TOKEN:-}" ] ||
    export SLUICE_INTERNAL_TOKEN_FILE="${SLUICE_INTERNAL_TOKEN_FILE:-$(secret internal_token)}"
export SLUICE_ADMIN_USER="${SLUICE_ADMIN_USER:-admin}"
[ -n "${SLUICE_ADMIN_PASSWORD:-}" ] ||
    export SLUICE_ADMIN_PASSWORD_FILE="${SLUICE_ADMIN_PASSWORD_FILE:-$(secret admin_password)}"

STARTED=""
# Each daemon, in the order data flows. Daemons that are not built yet are
# skipped, so this list can name every daemon of the design.
daemon api "--listen=127.0.0.1:$API_PORT" "--admin-listen=127.0.0.1:$API_ADMIN_PORT"
daemon relay "--listen=127.0.0.1:$RELAY_PORT" "--admin-listen=127.0.0.1:$RELAY_ADMIN_PORT"
# ingest asks the api (with the generated internal token) and picks the relay
# from Redis
daemon ingest "--srt-listen=0.0.0.0:$INGEST_SRT_PORT" "--admin-listen=127.0.0.1:$INGEST_ADMIN_PORT" \
    "--api-url=http://127.0.0.1:$API_PORT"
# hls writes $DATA/hls (the origin directory); discovery watches it
daemon hls "--listen=127.0.0.1:$HLS_PORT" "--admin-listen=127.0.0.1:$HLS_ADMIN_PORT" \
    "--dir=$DATA/hls"
daemon discovery "--dir=$DATA/hls" "--admin-listen=127.0.0.1:$DISCOVERY_ADMIN_PORT"
daemon edge "--listen=127.0.0.1:$EDGE_PORT" "--admin-listen=127.0.0.1:$EDGE_ADMIN_PORT"

# The stream "demo", so that a newcomer watches video within a minute: made
# through the api the first time, its key (shown once) kept in
# $DATA/secrets/demo_key; a key that is lost, or no longer the stream's (it
# was rotated through the api), is replaced by rotating it. Sets DEMO_KEY.
DEMO_KEY=""
API_URL=http://127.0.0.1:$API_PORT
ADMIN_PW=${SLUICE_ADMIN_PASSWORD:-$(cat "${SLUICE_ADMIN_PASSWORD_FILE:-/dev/null}")}
TOKEN=""

# api <method> <path> [json]: sets REPLY (the body) and STATUS (000: no answer).
api() {
    set -- -sS -m 10 -X "$1" -w '\n%{http_code}' "$API_URL$2" ${3:+--json "$3"} \
        ${TOKEN:+-H "Authorization: Bearer $TOKEN"}
    REPLY=$(curl "$@" 2>/dev/null) || true
    STATUS=${REPLY##*$'\n'}
    REPLY=${REPLY%$'\n'*}
    [ -n "$STATUS" ] || STATUS=000
}

# The value of the string field <name> in the JSON on stdin.
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# Whether key <1> still publishes demo, asked as ingest asks; yes when that
# cannot be told.
demo_key_works() {
    itok=${SLUICE_INTERNAL_TOKEN:-$(cat "${SLUICE_INTERNAL_TOKEN_FILE:-/dev/null}")}
    answer=$(curl -sS -m 10 -H "Authorization: Bearer $itok" \
        --json "{\"protocol\":\"srt\",\"action\":\"publish\",\"stream\":\"demo\",\"key\":\"$1\"}" \
        "$API_URL/internal/v1/authorize" 2>/dev/null) || return 0
    case $answer in *'"reason":"bad_key"'*) return 1 ;; esac
}

keep_demo_key() {
    [ -n "$1" ] || { say "the api gave no key for demo"; return 1; }
    DEMO_KEY=$1
    (umask 077; printf '%s\n' "$DEMO_KEY" >"$DATA/secrets/demo_key.new") &&
        mv "$DATA/secrets/demo_key.new" "$DATA/secrets/demo_key"
}

api_login() {
    i=0
    while :; do     # the api answers 503 until it has reached PostgreSQL
        api POST /v1/auth/login \
            "{\"username\":\"$SLUICE_ADMIN_USER\",\"password\":\"$ADMIN_PW\"}"
        case $STATUS in
            200) break ;;
            000|503) ;;
            *) say "could not log in as $SLUICE_ADMIN_USER ($STATUS): $REPLY"; return 1 ;;
        esac
        i=$((i + 1)); [ $i -lt 120 ] || { say "the api did not answer"; return 1; }
        sleep 0.5
    done
    TOKEN=$(printf '%s' "$REPLY" | json_str token)
}

ensure_demo() {
    api_login || return 1
    kept=$(cat "$DATA/secrets/demo_key" 2>/dev/null || true)
    api GET /v1/streams/demo
    if [ "$STATUS" = 404 ]; then
        api POST /v1/streams '{"name":"demo","title":"Demo"}'
        [ "$STATUS" = 201 ] || { say "could not create the stream demo ($STATUS): $REPLY"; return 1; }
        keep_demo_key "$(printf '%s' "$REPLY" | json_str key)" || return 1
        say "created the stream demo; its key is kept in $DATA/secrets/demo_key"
    elif [ "$STATUS" != 200 ]; then
        say "could not look up the stream demo ($STATUS): $REPLY"; return 1
    elif [ -n "$kept" ] && demo_key_works "$kept"; then
        DEMO_KEY=$kept
    else
        api POST /v1/streams/demo/key
        [ "$STATUS" = 200 ] || { say "could not rotate the key of demo ($STATUS): $REPLY"; return 1; }
        keep_demo_key "$(printf '%s' "$REPLY" | json_str key)" || return 1
        say "the key of demo was lost or replaced: rotated it, kept in $DATA/secrets/demo_key"
    fi
    case $REPLY in *'"disabled":true'*) say "note: the stream demo is disabled (PATCH it)" ;; esac
}

case " $STARTED " in *" api "*) ensure_demo || true; TOKEN="" ;; esac

cat <<EOF

Sluice is running (Ctrl-C stops everything).
  Redis       redis://127.0.0.1:$REDIS_PORT        data in $DATA/redis
  PostgreSQL  postgresql://postgres@127.0.0.1:$PG_PORT/sluice   data in $PG_DATA
  daemons    ${STARTED:- (none built yet)}
  secrets     $DATA/secrets (admin user "$SLUICE_ADMIN_USER", password in admin_password)
EOF
for name in $STARTED; do
    case $name in
        api)   echo "  api         http://127.0.0.1:$API_PORT      admin http://127.0.0.1:$API_ADMIN_PORT/metrics" ;;
        relay) echo "  relay       slp://127.0.0.1:$RELAY_PORT       admin http://127.0.0.1:$RELAY_ADMIN_PORT/metrics" ;;
        ingest) echo "  ingest      srt://127.0.0.1:$INGEST_SRT_PORT     admin http://127.0.0.1:$INGEST_ADMIN_PORT/metrics" ;;
        hls)   echo "  hls         http://127.0.0.1:$HLS_PORT      admin http://127.0.0.1:$HLS_ADMIN_PORT/metrics"
               echo "              packaging into $DATA/hls (origin: /live/<stream>/index.m3u8)" ;;
        discovery)
               echo "  discovery   watching $DATA/hls        admin http://127.0.0.1:$DISCOVERY_ADMIN_PORT/metrics" ;;
        edge)  echo "  edge        http://127.0.0.1:$EDGE_PORT      admin http://127.0.0.1:$EDGE_ADMIN_PORT/metrics" ;;
    esac
done

# The first minute: what to paste, in order. The SRT URL goes in single
# quotes, where # and ! are themselves (in double quotes an interactive bash
# expands !:); a key is base64url, which needs no quoting.
SRT_URL="srt://127.0.0.1:$INGEST_SRT_PORT?streamid=#!::r=demo,s=$DEMO_KEY,m=publish"
EDGE_URL="http://127.0.0.1:$EDGE_PORT/live/demo/index.m3u8"
echo
if [ -n "$DEMO_KEY" ]; then
    echo "Watch something now. The stream \"demo\" is ready (its key: $DATA/secrets/demo_key)."
    echo "  1. Publish a test pattern with a tone to it over SRT (leave it running):"
    echo "     ffmpeg -hide_banner -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -g 60 -b:v 2500k -c:a aac -b:a 128k -f mpegts '$SRT_URL'"
    echo "  2. A few seconds later, watch it from the edge:"
    echo "     ffplay $EDGE_URL"
    echo "     or open that URL in VLC (Media > Open Network Stream), Safari, or a page"
    echo "     with hls.js in other browsers (the edge sends CORS headers)."
    echo "  3. Log in to the API as $SLUICE_ADMIN_USER; the reply's token goes in \"Authorization: Bearer <token>\":"
    echo "     curl --json '{\"username\":\"$SLUICE_ADMIN_USER\",\"password\":\"$ADMIN_PW\"}' $API_URL/v1/auth/login"
    echo "  RTMP ingest is not built yet: publish over SRT (README.md, docs/ingest.md)."
else
    echo "No demo stream: the api is not running or did not answer (see above)."
fi

# Wait for Ctrl-C (the trap stops everything) or for anything we started to
# exit on its own (then stop the rest: a half-running suite only misleads).
# Everything runs in its own session, so Ctrl-C reaches only this script,
# which stops the daemons first, then PostgreSQL and Redis.
wait -n
say "a process exited on its own; see the log lines above"
exit 1
