#!/bin/sh
# Runs every libFuzzer harness (build/fuzz/tests/fuzz/**/fuzz_*) for $1 seconds
# each (default 60), seeded from tests/fuzz/corpus/<harness>/ when it exists.
# New inputs go to a scratch corpus under build/, never into the repository.
# Exits non-zero if any harness finds a crash, a leak or a timeout.
set -u
cd "$(dirname "$0")/.." || exit 1
SECONDS_EACH=${1:-60}
export ASAN_OPTIONS="detect_leaks=1"
failed=0
count=0
for h in $(find build/fuzz/tests/fuzz -type f -name 'fuzz_*' ! -name '*.*' | sort); do
    name=$(basename "$h")
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    mkdir -p "$work"
    set -- "$work"
    [ -d "$seeds" ] && set -- "$work" "$seeds"
    dict=tests/fuzz/$name.dict
    extra=""
    [ -f "$dict" ] && extra="-dict=$dict"
    # shellcheck disable=SC2086 # extra is empty or one argument
    if "$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix=build/fuzz/ $extra "$@" \
            >"build/fuzz/$name.log" 2>&1; then
        runs=$(grep -aE '^stat::number_of_executed_units' "build/fuzz/$name.log" | awk '{print $2}')
        echo "fuzz $name: ok, ${runs:-?} runs in ${SECONDS_EACH}s"
    else
        failed=1
        echo "fuzz $name: FAILED"; tail -60 "build/fuzz/$name.log"
    fi
    count=$((count + 1))
done
echo "fuzz: $count harnesses"
exit $failed
