#!/usr/bin/env bash
# `npm start`: installs what it needs from nothing, then runs the launcher locally (src/local/start.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

exec node --import tsx src/local/start.ts "$@"
