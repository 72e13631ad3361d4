#!/bin/sh
# The body of `make test`, run after the plain, ASan+UBSan and fuzz builds:
# unit tests and integration tests on the sanitizer build, a short fuzz pass,
# and the static checks. Runs every stage even when one fails, then prints a
# summary and exits non-zero if anything failed.
#
#   SLUICE_TEST_ONLY="unit integration fuzz lint"   stages to run (default: all)
#   PYTEST_ARGS="-k relay"                            extra pytest arguments
#   SLUICE_TEST_JOBS=3                                pytest workers (xdist)
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
STAGES=${SLUICE_TEST_ONLY:-"unit integration fuzz lint"}
ASAN=build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp"
export SLUICE_BIN="$ROOT/$ASAN/bin"

summary=""
failed=0
note() { summary="$summary$1\n"; }

stage_unit() {
    pass=0; fail=0; names=""
    # Media fixtures (made once, into build/fixtures/) for the TS and SLP tests.
    scripts/fixtures.sh || echo "---- FAILED: scripts/fixtures.sh (tests that need media will fail)"
    for t in $(find "$ASAN/tests/unit" -type f -perm -u+x -name 'test_*' ! -name '*.*' | sort); do
        if "$t" >"$t.log" 2>&1; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "---- FAILED: $t"; tail -40 "$t.log"
            names="$names $(basename "$t")"
        fi
        grep -E '^\[  (PASSED|FAILED|SKIPPED) \]' "$t.log" | sed "s|^|$(basename "$t"): |"
    done
    # cmocka's own counts, summed: a skipped test is visible in the summary
    counts=$(cat "$ASAN"/tests/unit/*/test_*.log "$ASAN"/tests/unit/*/*/test_*.log 2>/dev/null |
        awk '/^\[  PASSED  \]/ { p += $4 } /^\[  SKIPPED \]/ { s += $4 }
             END { printf "%d tests passed, %d skipped", p, s }')
    note "unit:        $pass binaries passed, $fail failed ($counts)"
    [ -z "$names" ] || note "  failed:$names"
    [ "$fail" -eq 0 ]
}

stage_integration() {
    # Tests use free ports and their own servers, so they run side by side:
    # most of their time is waiting on real-time media and timeouts, not CPU.
    jobs=""
    if /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
        jobs="-n ${SLUICE_TEST_JOBS:-3}"
    fi
    # tee'd so the names of failed tests can go into the summary, which is
    # what the tail of a CI log shows
    log=$ASAN/pytest.log
    rm -f "$log.rc"
    # shellcheck disable=SC2086 # jobs and PYTEST_ARGS are lists of arguments
    { /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=10 $jobs \
        tests/integration ${PYTEST_ARGS:-}; echo $? >"$log.rc"; } 2>&1 | tee "$log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    note "integration: pytest exited $rc ($(grep -aE ' in [0-9.]+s' "$log" | tail -1 | tr -d '=' | sed 's/^ *//;s/ *$//'))"
    failures=$(grep -aoE '^(FAILED|ERROR) [^ ]+' "$log" | sed 's/^[A-Z]* /  failed: /')
    [ -z "$failures" ] || note "$failures"
    [ "$rc" -eq 0 ]
}

stage_fuzz() {
    log=$ASAN/fuzz.log
    rm -f "$log.rc"
    { scripts/fuzz.sh "${FUZZ_SECONDS:-10}"; echo $? >"$log.rc"; } | tee "$log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    note "fuzz:        exited $rc (${FUZZ_SECONDS:-10} s per harness; $(grep -a '^fuzz: ' "$log" | tail -1 | cut -d' ' -f2-))"
    [ "$rc" -eq 0 ] || note "$(sed 's/^/  failed: /' build/fuzz/failed.txt 2>/dev/null)"
    [ "$rc" -eq 0 ]
}

stage_lint() {
    scripts/lint.sh
    rc=$?
    note "lint:        exited $rc"
    [ "$rc" -eq 0 ]
}

for s in $STAGES; do
    echo "==== $s"
    "stage_$s" || failed=1
done

echo "==== summary"
printf "%b" "$summary"
if [ "$failed" -ne 0 ]; then
    echo "make test: FAILED"
    exit 1
fi
echo "make test: passed"
