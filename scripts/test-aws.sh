#!/usr/bin/env bash
# `npm run test:aws`: installs what it needs from nothing, then runs the acceptance check
# (test/acceptance/main.ts): on a real AWS account with --stage and --region, on the local stack with --local.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

exec node --import tsx test/acceptance/main.ts "$@"
