# shellcheck shell=sh
# Sourced by scripts/lint.sh (which provides run and skip).
#
# The OpenAPI document, docs/openapi.yaml, linted by Redocly CLI with the
# recommended rules as errors (redocly.yaml). The CLI is pinned by
# package.json and package-lock.json at the root, and `npm ci` installs it
# into node_modules/ (git-ignored) only when node_modules/ does not hold
# exactly what the lock file says, so a machine that installed it once lints
# with no network. Telemetry and update checks are off.

# Installs the locked tools if node_modules/ is not from this lock file.
openapi_tools() {
    lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ -x node_modules/.bin/redocly ] &&
        [ "$(cat node_modules/.sluice-lock.sha256 2>/dev/null)" = "$lock_sum" ]; then
        return 0
    fi
    echo "lint openapi: installing the tools of package-lock.json (npm ci)"
    npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error \
        >/dev/null || { echo "lint openapi: npm ci failed (no network and no node_modules/?)"; return 1; }
    echo "$lock_sum" >node_modules/.sluice-lock.sha256
}

openapi_lint() {
    openapi_tools || return 1
    REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
        node_modules/.bin/redocly lint --config redocly.yaml docs/openapi.yaml
}

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    run openapi openapi_lint
else
    skip openapi "node and npm are missing: \`make deps\` installs them; docs/openapi.yaml NOT linted"
fi
