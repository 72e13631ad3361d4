#!/bin/sh
# Runs every libFuzzer harness (build/fuzz/tests/fuzz/**/fuzz_*) for $1 seconds
# each (default 60), FUZZ_JOBS (default 2) at a time, seeded from
# tests/fuzz/corpus/<harness>/ when it exists. New inputs go to a scratch
# corpus under build/, never into the repository. Exits non-zero if any
# harness finds a crash, a leak or a timeout.
#
#   scripts/fuzz.sh 300          every harness, 5 minutes each
#   scripts/fuzz.sh --one H 10   one harness (used by the parallel run)
set -u
cd "$(dirname "$0")/.." || exit 1

run_one() {
    h=$1 secs=$2
    name=$(basename "$h")
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    log=build/fuzz/$name.log
    mkdir -p "$work"
    set -- "$work"
    [ -d "$seeds" ] && set -- "$work" "$seeds"
    dict=tests/fuzz/$name.dict
    [ -f "$dict" ] && set -- "-dict=$dict" "$@"
    if ASAN_OPTIONS="detect_leaks=1" "$h" -max_total_time="$secs" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/ \
            "$@" >"$log" 2>&1; then
        runs=$(grep -aE '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        echo "fuzz $name: ok, ${runs:-?} runs in ${secs}s"
    else
        echo "fuzz $name: FAILED"
        tail -60 "$log"
        # one line for the summary, which is what a CI log's tail shows
        why=$(grep -aE 'ERROR: |^SUMMARY: ' "$log" | head -1)
        input=$(grep -aoE 'Test unit written to [^ ]+' "$log" | head -1)
        echo "$name: ${why:-see $log} ${input:+(${input#Test unit written to })}" >>build/fuzz/failed.txt
        return 1
    fi
}

if [ "${1:-}" = "--one" ]; then
    run_one "$2" "$3"
    exit $?
fi

SECONDS_EACH=${1:-60}
harnesses=$(find build/fuzz/tests/fuzz -type f -name 'fuzz_*' ! -name '*.*' | sort)
count=$(printf '%s\n' "$harnesses" | grep -c .)
mkdir -p build/fuzz
rm -f build/fuzz/failed.txt
if printf '%s\n' "$harnesses" | grep . |
        xargs -P "${FUZZ_JOBS:-2}" -I{} "$0" --one {} "$SECONDS_EACH"; then
    echo "fuzz: $count harnesses, all clean"
else
    echo "fuzz: $count harnesses, some FAILED:"
    sed 's/^/  /' build/fuzz/failed.txt 2>/dev/null
    exit 1
fi
