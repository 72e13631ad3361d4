#!/bin/sh
# The body of `make bench`: runs every benchmark in tests/bench/ (executable
# files named bench_*), each of which prints its figures beside those of its
# peer measured in the same run. Figures are printed, never asserted: these
# machines are shared and noisy. BENCH_ONLY=<substring> picks some.
set -u
cd "$(dirname "$0")/.." || exit 1
SLUICE_BIN="$(pwd)/build/release/bin"
export SLUICE_BIN
failed=0
found=0
for b in $(find tests/bench -type f -perm -u+x -name 'bench_*' | sort); do
    case "$b" in *"${BENCH_ONLY:-}"*) ;; *) continue ;; esac
    found=$((found + 1))
    echo "==== $(basename "$b")"
    "$b" || { echo "bench $(basename "$b"): FAILED"; failed=1; }
done
[ "$found" -eq 0 ] && echo "bench: no benchmarks matched"
exit $failed
