#!/usr/bin/env bash
# `npm run test:servers [line …]`: the integration tests that touch Prefect (claim, prepare, report, cancel,
# sweep, local end to end), against each older Prefect server line of python/servers/ (all by default).
# `npm test` covers the newest, pinned in python/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
lines=("$@")
if [ ${#lines[@]} -eq 0 ]; then
  mapfile -t lines < <(ls python/servers | sed 's/\.txt$//')
fi
status=0
for line in "${lines[@]}"; do
  venv=$(bash scripts/server-venv.sh "$line")
  echo "test:servers: Prefect server $line from $venv" >&2
  TEST_PREFECT_SERVER_VENV=$venv npx jest --selectProjects integration --testPathPatterns \
    'integration/(poll|launch-pipeline|report|reconcile|late-proposal|e2e|local-run|prefect-client|run-now)\.test' || status=1
done
exit "$status"
