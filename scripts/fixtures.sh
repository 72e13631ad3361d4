#!/bin/sh
# Generates the media fixtures the tests read, into build/fixtures/ (or
# $SLUICE_FIXTURES): short MPEG-TS files encoded by ffmpeg from its lavfi test
# sources (testsrc2 picture, sine tone), so that nothing binary lives in git.
#
# Every file has a FIXED GOP (-g = -keyint_min, no scene-cut keyframes), so a
# test can count keyframes exactly: duration x fps / GOP. B-frames stay on, so
# PTS and DTS differ as in real streams.
#
#   h264_aac_10s.ts   H.264 High + AAC, 1280x720 25 fps, 1 s GOP, ~2.5 Mbps
#   h264_aac_20s.ts   the same, 20 s
#   hevc_aac_6s.ts    HEVC + AAC, 640x360 25 fps, 1 s GOP (IDR first, then
#                     CRA: x265's default open GOP exercises every IRAP type)
#   aac_10s.ts        AAC alone (an audio-only program, as from a radio encoder)
#
# Idempotent: a file is made only when missing, written under a temporary name
# and renamed, so an interrupted run never leaves a truncated fixture. A stamp
# holding this script's checksum regenerates everything when the recipes change.
set -eu
cd "$(dirname "$0")/.." || exit 1
OUT=${SLUICE_FIXTURES:-build/fixtures}
mkdir -p "$OUT"

stamp=$(cksum < "$0")
if [ "$(cat "$OUT/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
    rm -f "$OUT"/*.ts
    printf '%s\n' "$stamp" > "$OUT/.stamp"
fi

# make NAME SECONDS SIZE VIDEO-ENCODER-ARGS...
make_ts() {
    name=$1 secs=$2 size=$3
    shift 3
    [ -s "$OUT/$name" ] && return 0
    echo "fixtures: making $OUT/$name"
    tmp="$OUT/.$name.$$"
    if ! ffmpeg -nostdin -hide_banner -loglevel error -y \
            -f lavfi -i "testsrc2=size=$size:rate=25" \
            -f lavfi -i "sine=frequency=440:sample_rate=48000" \
            -t "$secs" "$@" -pix_fmt yuv420p \
            -c:a aac -b:a 128k -ac 2 \
            -f mpegts "$tmp"; then
        rm -f "$tmp"
        echo "fixtures: ffmpeg failed for $name" >&2
        return 1
    fi
    mv "$tmp" "$OUT/$name"
}

H264="-c:v libx264 -preset veryfast -profile:v high -b:v 2500k -maxrate 2500k
      -bufsize 2500k -g 25 -keyint_min 25 -sc_threshold 0"
HEVC="-c:v libx265 -preset ultrafast -b:v 800k -g 25 -keyint_min 25
      -x265-params keyint=25:min-keyint=25:scenecut=0:log-level=error"

# shellcheck disable=SC2086 # the encoder arguments are lists
make_ts h264_aac_10s.ts 10 1280x720 $H264
# shellcheck disable=SC2086
make_ts h264_aac_20s.ts 20 1280x720 $H264
# shellcheck disable=SC2086
make_ts hevc_aac_6s.ts 6 640x360 $HEVC

if [ ! -s "$OUT/aac_10s.ts" ]; then
    echo "fixtures: making $OUT/aac_10s.ts"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 \
        -c:a aac -b:a 128k -ac 2 -f mpegts "$OUT/.aac_10s.ts.$$"
    mv "$OUT/.aac_10s.ts.$$" "$OUT/aac_10s.ts"
fi
