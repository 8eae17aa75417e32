#!/usr/bin/env bash
# `npm start`: installs what it needs from nothing, then runs the launcher locally (src/local/start.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/python-env.sh

exec node --import tsx src/local/start.ts "$@"
