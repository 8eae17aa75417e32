#!/usr/bin/env bash
# `npm test`: installs what it needs from nothing, then typecheck, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/python-env.sh

npx tsc -p tsconfig.json --noEmit
npx biome check .
npx jest --ci "$@"
