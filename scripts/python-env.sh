#!/usr/bin/env bash
# Creates the project-local Python virtualenv (.venv) holding the real Prefect server, moto and prefect-aws
# that the tests and the local stack run against. Idempotent: it reinstalls only when the pinned files change.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp="$venv/.requirements.sha256"
want=$(cat python/requirements.txt python/constraints.txt | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 15) else 1)'; then
  echo "python-env: Prefect needs Python 3.10-3.14; '$python' is $("$python" --version 2>&1). Set PYTHON to another interpreter." >&2
  exit 1
fi

echo "python-env: installing pinned Python packages into $venv (first run takes about a minute)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r python/requirements.txt -c python/constraints.txt
echo "$want" > "$stamp"
