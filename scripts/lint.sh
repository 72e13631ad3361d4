#!/bin/sh
# Static checks of everything that is not C: shell scripts (shellcheck), YAML
# (yamllint), and, as later parts of the tree arrive, the OpenAPI document,
# compose/stack files, Terraform and Ansible. A check whose tool is missing on
# this machine says SKIPPED loudly instead of passing.
set -u
cd "$(dirname "$0")/.." || exit 1
failed=0
run() {
    name=$1; shift
    if "$@"; then echo "lint $name: ok"; else echo "lint $name: FAILED"; failed=1; fi
}
# shellcheck disable=SC2317 # used by the lint.d scripts
skip() { echo "lint $1: SKIPPED ($2)"; }

run shellcheck shellcheck scripts/*.sh .ci/run
yaml=$(git ls-files '*.yml' '*.yaml' 2>/dev/null)
if [ -n "$yaml" ]; then
    # shellcheck disable=SC2086 # one argument per file
    run yamllint yamllint -s -c .yamllint $yaml
fi
for extra in scripts/lint.d/*.sh; do
    [ -f "$extra" ] || continue
    # shellcheck source=/dev/null # lint.d scripts add checks as parts arrive
    . "$extra"
done
exit $failed
