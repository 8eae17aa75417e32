#!/usr/bin/env bash
# What `npm start`, `npm test` and `npm run bench` need, from nothing: node modules (again when
# package-lock.json changed) and the pinned Python virtualenv (scripts/python-env.sh, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/python-env.sh
