#!/usr/bin/env bash
# `npm run bench`: installs what it needs from nothing, then runs the benchmark (src/bench/main.ts): the
# launcher against prefect-aws's resident ECS worker on a local Prefect server and moto.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/python-env.sh

exec node --import tsx src/bench/main.ts "$@"
