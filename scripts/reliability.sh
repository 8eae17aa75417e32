#!/usr/bin/env bash
# `npm run test:reliability -- [--runs N] [--seeds N] [--seed S]`: the reliability suite
# (test/integration/reliability.test.ts) over several seeds, one after another, each on its own Prefect server
# and moto; prints each seed's figures and a closing table. --seed S starts at S, then S+1, …; without it the
# seeds are random. Uses what `npm test` installed (node_modules and the Python environment).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1000
seeds=1
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "usage: npm run test:reliability -- [--runs N] [--seeds N] [--seed S]" >&2; exit 2 ;;
  esac
done

logs=$(mktemp -d)
summary=()
failed=0
for ((i = 0; i < seeds; i++)); do
  if [ -n "$seed" ]; then s=$((seed + i)); else s=$(( (RANDOM << 16 | RANDOM) & 0x7fffffff )); fi
  log="$logs/seed-$s.log"
  echo "== seed $s: $runs runs (log: $log)"
  status=0
  RELIABILITY_RUNS="$runs" RELIABILITY_SEED="$s" \
    npx jest --selectProjects integration --runTestsByPath test/integration/reliability.test.ts >"$log" 2>&1 ||
    status=$?
  # The suite's own figures, without the launcher's log lines.
  sed -n '/^reliability figures/,/^$/p' "$log"
  figure() {
    sed -n '/^reliability figures/,/^$/p' "$log" | grep -o "$1 [0-9][0-9]*" | head -1 | grep -o '[0-9]*$' ||
      echo '?'
  }
  result=$([ "$status" -eq 0 ] && echo passed || echo FAILED)
  [ "$status" -eq 0 ] || failed=$((failed + 1))
  [ "$status" -eq 0 ] || grep -E '✕|●' "$log" | head -5 || true
  summary+=("$(printf '%-11s %-7s %6s %14s %15s %18s' "$s" "$result" "$(figure 'runs')" \
    "$(figure 'runs with more than one task')" "$(figure 'runs not in a final state')" \
    "$(figure 'runs whose flow ended otherwise')")")
done

echo
printf '%-11s %-7s %6s %14s %15s %18s\n' seed result runs 'two+ tasks' 'not final' 'ended otherwise'
printf '%s\n' "${summary[@]}"
echo "seeds: $((seeds - failed)) passed, $failed failed (logs in $logs)"
[ "$failed" -eq 0 ]
