#!/usr/bin/env bash
# `npm run bench`: installs what it needs from nothing, then runs the benchmark (src/bench/main.ts): the
# launcher against prefect-aws's resident ECS worker on a local Prefect server and moto.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

exec node --import tsx src/bench/main.ts "$@"
