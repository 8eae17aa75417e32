#!/usr/bin/env bash
# `npm run test:migration`: installs what it needs from nothing, then runs the shared-pool scenario
# (src/bench/shared-pool.ts): prefect-aws's ECS worker and the launcher serving one pool, then the worker alone.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

exec node --import tsx src/bench/shared-pool.ts "$@"
