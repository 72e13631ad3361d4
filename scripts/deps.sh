#!/bin/sh
# Installs the Debian packages Sluice needs to build, test and run, but only
# those that are missing, so that `make` works on a fresh Debian 12 machine.
# Uses sudo when not run as root. Prints nothing when all is present.
#
# An entry "package=command" counts as present when the command is on PATH:
# some machines carry Node.js from elsewhere, and Debian's npm would fight it.
set -eu

PACKAGES="
build-essential pkg-config clang libclang-rt-14-dev
libevent-dev libhiredis-dev libjansson-dev libjwt-dev libpq-dev libssl-dev
libsrt-openssl-dev libcmocka-dev
redis-server postgresql
ffmpeg srt-tools curl wrk nginx libnginx-mod-rtmp procps
python3 python3-pytest python3-pytest-xdist python3-redis python3-psycopg2 python3-requests
python3-yaml python3-jsonschema
prometheus shellcheck yamllint ansible ansible-lint
nodejs=node npm=npm
"

missing=""
for entry in $PACKAGES; do
    pkg=${entry%%=*}
    cmd=${entry#*=}
    if [ "$cmd" != "$entry" ] && command -v "$cmd" >/dev/null 2>&1; then
        continue
    fi
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing
