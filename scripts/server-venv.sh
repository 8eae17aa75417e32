#!/usr/bin/env bash
# Creates .venv-servers/<line>, a virtualenv holding the Prefect server pinned in python/servers/<line>.txt,
# for `npm run test:servers`. Idempotent: it reinstalls only when the pins change. Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

line=${1:?usage: scripts/server-venv.sh <line>, one of: $(ls python/servers | sed 's/\.txt$//' | tr '\n' ' ')}
pins=python/servers/$line.txt
[ -f "$pins" ] || { echo "server-venv: no $pins; the lines are: $(ls python/servers | sed 's/\.txt$//' | tr '\n' ' ')" >&2; exit 2; }

venv=.venv-servers/$line
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$pins" | cut -d' ' -f1)
if [ ! -x "$venv/bin/prefect" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "server-venv: installing the Prefect server of $pins into $venv" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$pins"
  echo "$want" > "$stamp"
fi
echo "$venv"
