#!/usr/bin/env bash
# `npm run package`: builds the CloudFormation template and the four Lambda bundles offline, prints each
# bundle's size, then validates the template with cfn-lint (errors and warnings both fail).
#
#   npm run package                                   # placeholder parameters: validates the template
#   npm run package -- --param="prefectApiUrl=…" --param="workPool=…" [--package DIR] [--stage …]
#
# It never calls AWS: dummy credentials, a throwaway HOME (no ~/.aws, no CLI state), no profile, telemetry
# off. Every parameter only sets the default of a CloudFormation parameter, so the template is the same
# for every value and the placeholders are enough to validate it. Output: .serverless/ unless --package.
set -euo pipefail
cd "$(dirname "$0")/.."

out=.serverless
args=()
has_param=false
while [ $# -gt 0 ]; do
  case "$1" in
    --package) out=$2; shift 2 ;;
    --package=*) out=${1#--package=}; shift ;;
    --param | --param=*) has_param=true; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ "$has_param" = false ]; then
  echo "package: no --param given; using placeholders for the required prefectApiUrl and workPool" >&2
  args+=(
    "--param=prefectApiUrl=https://api.prefect.cloud/api/accounts/00000000-0000-0000-0000-000000000000/workspaces/00000000-0000-0000-0000-000000000000"
    "--param=workPool=my-ecs-pool"
  )
fi

bash scripts/python-env.sh

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL \
  HOME="$home" AWS_ACCESS_KEY_ID=offline-dummy AWS_SECRET_ACCESS_KEY=offline-dummy \
  SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off NPM_CONFIG_UPDATE_NOTIFIER=false \
  npx --no-install serverless package --package "$out" "${args[@]}"

.venv/bin/python - "$out" <<'PY'
import json, pathlib, sys, zipfile

out = pathlib.Path(sys.argv[1])
template = json.loads((out / "cloudformation-template-update-stack.json").read_text())
# The bundles this template deploys (a reused output folder may hold older ones).
keys = sorted(
    r["Properties"]["Code"]["S3Key"].rsplit("/", 1)[-1]
    for r in template["Resources"].values()
    if r["Type"] == "AWS::Lambda::Function"
)
rows = []
for archive in (out / key for key in keys):
    with zipfile.ZipFile(archive) as z:
        js = sum(i.file_size for i in z.infolist() if i.filename.endswith(".js"))
        maps = sum(i.file_size for i in z.infolist() if i.filename.endswith(".map"))
    rows.append((archive.stem, archive.stat().st_size, js, maps))
if not rows:
    sys.exit(f"package: no bundles in {out}")
kib = lambda n: f"{n / 1024:,.0f} KiB"
print(f"\n{'function':<10} {'zip':>11} {'js':>11} {'source map':>11}")
for name, size, js, maps in rows:
    print(f"{name:<10} {kib(size):>11} {kib(js):>11} {kib(maps):>11}")
PY

templates=("$out/cloudformation-template-update-stack.json" "$out/cloudformation-template-create-stack.json")
.venv/bin/cfn-lint "${templates[@]}"
echo "cfn-lint $(.venv/bin/cfn-lint --version | cut -d' ' -f2): no errors or warnings in $out"
