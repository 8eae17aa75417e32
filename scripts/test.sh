#!/usr/bin/env bash
# `npm test`: installs what it needs from nothing, then typecheck, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

npx tsc -p tsconfig.json --noEmit
npx biome check .
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?
# One plain closing line that any CI log reader understands.
node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results" || true
exit "$status"
