"""Differential-testing oracle: what prefect-aws 0.7.12's ECSWorker sends to AWS for one flow run.

    .venv/bin/python python/render_oracle.py < case.json          # one case: JSON in, JSON out
    .venv/bin/python python/render_oracle.py --default-template   # prefect-aws's default base job template

Approach: run the worker's own code and fake only its I/O, so the answer is prefect-aws's and not our
reading of it. The path is the one `BaseWorker._submit_run_and_capture_errors` takes:
`ECSJobConfiguration.resolve_for_flow_run` (job-variable merge, `from_template_and_values`, block and
variable references, validation, `prepare_for_flow_run`), then `ECSWorker.run` (task definition
preparation, reuse or registration, validation, subnet discovery, the RunTask request). The fakes:

- Prefect API: a client that answers the reads `resolve_for_flow_run` makes from the case (`deployment`,
  `flow`, `blocks`, `blocks_by_name`, `variables`); a miss raises what the real client raises on a 404.
- AWS: `AwsCredentials.get_client` returns in-memory ECS and EC2 clients. ECS checks parameters against
  botocore's service model as boto3 does before sending; RegisterTaskDefinition answers
  `arn:aws:ecs:<region>:123456789012:task-definition/<family>:1`, RunTask records the request and returns
  one task, EC2 answers from `subnets` (an unknown VPC ID fails as it does in AWS). Retry delays are zeroed.
- Settings: before Prefect is imported, every PREFECT_* and AWS_* variable is removed, HOME is a temp dir
  with an empty active profile (Prefect's bundled default profile would add
  PREFECT_SERVER_EPHEMERAL_ENABLED) and the working directory is that dir (prefect.toml, pyproject.toml and
  .env there are settings sources too). The worker's settings are then only `api_url`, `api_key` and
  `auth_string`, which it copies into the flow's env.
- Logs go to stderr, never to the Prefect API. An HTTP request or AWS call that is not faked raises OracleBug.

Case (stdin): {"template", "deployment" (null: deleted, or none), "flow_run", "flow",
"work_pool": {"id", "name"}, "worker_name", "api_url", "api_key", "auth_string", "region",
"subnets": {"default_vpc", "vpcs": {id: [subnet]}}, "blocks": {id: data}, "blocks_by_name":
{"slug/name": data}, "variables": {name: value}}. Optional "task_definitions": {ARN or family: definition}
answers DescribeTaskDefinition; otherwise an ARN gets a Fargate definition with one `prefect` container and
a family gets ECS's ClientException.

Answer (stdout, exit 0): {"taskDefinition": the definition the worker registers or reuses (null when the
job names a task definition ARN), "runTaskRequest": the RunTask parameters}, or {"error": {"type",
"message"}}: the exception the worker reports as "Failed to submit flow run to infrastructure: {type}:
{message}". Exit 1: the oracle or the case is broken.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PINNED = {"prefect-aws": "0.7.12", "prefect": "3.9.1"}
RETRY_DELAYS = (
    "CREATE_TASK_RUN_MIN_DELAY",
    "CREATE_TASK_RUN_MIN_DELAY_JITTER",
    "CREATE_TASK_RUN_MAX_DELAY_JITTER",
    "REGISTER_TASK_DEFINITION_INITIAL_DELAY",
    "REGISTER_TASK_DEFINITION_MAX_DELAY",
)


def _isolate_from_environment() -> None:
    """Must run before Prefect is imported: its settings are read at import time."""
    for key in list(os.environ):
        if key.startswith(("PREFECT_", "AWS_")):
            del os.environ[key]
    # No waiting between the worker's RunTask and RegisterTaskDefinition retries (a rejected request is
    # retried before it is reported). These are prefect-aws's own settings, not Prefect's, so they never
    # reach the flow's environment.
    for delay in RETRY_DELAYS:
        os.environ[f"PREFECT_INTEGRATIONS_AWS_ECS_WORKER_{delay}_SECONDS"] = "0"
    home = tempfile.mkdtemp(prefix="render-oracle-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    (Path(home) / ".prefect").mkdir()
    (Path(home) / ".prefect" / "profiles.toml").write_text('active = "oracle"\n\n[profiles.oracle]\n')
    os.environ["HOME"] = home
    os.chdir(home)


_isolate_from_environment()

for _dist, _pinned in PINNED.items():
    if version(_dist) != _pinned:
        raise SystemExit(
            f"render_oracle.py drives {_dist} {_pinned} internals but found {version(_dist)}; "
            "re-read the worker's code path and update PINNED"
        )

import logging  # noqa: E402

import anyio  # noqa: E402
import httpx  # noqa: E402
from botocore.client import BaseClient  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from botocore.session import get_session  # noqa: E402
from botocore.validate import validate_parameters  # noqa: E402
from prefect.client.schemas.objects import Flow, FlowRun, WorkPool  # noqa: E402
from prefect.client.schemas.responses import DeploymentResponse  # noqa: E402
from prefect.exceptions import ObjectNotFound  # noqa: E402
from prefect.settings import (  # noqa: E402
    PREFECT_API_AUTH_STRING,
    PREFECT_API_KEY,
    PREFECT_API_URL,
    temporary_settings,
)
from prefect_aws.credentials import AwsCredentials  # noqa: E402
from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker  # noqa: E402

ACCOUNT = "123456789012"
REQUIRED = ("template", "deployment", "flow_run", "flow", "work_pool", "worker_name", "api_url", "region")
LOG = logging.getLogger("render_oracle")


class OracleBug(BaseException):
    """The worker did something the fakes do not model, or the case is inconsistent.

    A BaseException, so the worker's own `except Exception` handlers cannot pass it off as worker behaviour.
    """


def _refuse(what: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OracleBug(f"the worker tried to make {what}")

    return refuse


httpx.Client.send = _refuse("an HTTP request")
httpx.AsyncClient.send = _refuse("an HTTP request")
BaseClient._make_api_call = _refuse("a real AWS call")


class Unfaked:
    """A call the fakes do not model is a bug in the oracle, not worker behaviour."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise OracleBug(f"the worker called {type(self).__name__}.{name}, which the oracle does not fake")


class FakePrefectClient(Unfaked):
    """The PrefectClient reads of `resolve_for_flow_run`, answered from the case."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.case = case

    def _not_found(self, path: str) -> ObjectNotFound:
        request = httpx.Request("GET", self.case["api_url"].rstrip("/") + path)
        response = httpx.Response(404, request=request, json={"detail": "Not found"})
        error = httpx.HTTPStatusError("Client error '404 Not Found'", request=request, response=response)
        return ObjectNotFound(http_exc=error)

    async def read_deployment(self, deployment_id: Any) -> DeploymentResponse:
        deployment = self.case["deployment"]
        if deployment is None:
            raise self._not_found(f"/deployments/{deployment_id}")
        if str(deployment["id"]) != str(deployment_id):
            raise OracleBug(f"flow_run.deployment_id {deployment_id} is not deployment.id {deployment['id']}")
        return DeploymentResponse.model_validate(deployment)

    async def read_flow(self, flow_id: Any) -> Flow:
        if str(self.case["flow"]["id"]) != str(flow_id):
            raise OracleBug(f"flow_run.flow_id {flow_id} is not flow.id {self.case['flow']['id']}")
        return Flow.model_validate(self.case["flow"])

    async def read_block_document(self, block_document_id: Any, include_secrets: bool = True) -> Any:
        data = self.case.get("blocks", {}).get(str(block_document_id))
        if data is None:
            raise self._not_found(f"/block_documents/{block_document_id}")
        return SimpleNamespace(data=copy.deepcopy(data))

    async def read_block_document_by_name(
        self, name: str, block_type_slug: str, include_secrets: bool = True
    ) -> Any:
        data = self.case.get("blocks_by_name", {}).get(f"{block_type_slug}/{name}")
        if data is None:
            raise self._not_found(f"/block_types/slug/{block_type_slug}/block_documents/name/{name}")
        return SimpleNamespace(data=copy.deepcopy(data))

    async def read_variable_by_name(self, name: str) -> Any:
        variables = self.case.get("variables", {})
        return SimpleNamespace(value=copy.deepcopy(variables[name])) if name in variables else None


def _client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeEcs(Unfaked):
    """boto3 checks parameters against the service model before sending; so does this fake (e.g. an
    explicit `"cluster": null` never reaches AWS, boto3 raises ParamValidationError)."""

    model = get_session().get_service_model("ecs")

    def __init__(self, region: str, known: dict[str, Any]) -> None:
        self.meta = SimpleNamespace(region_name=region)
        self.known = known
        self.run_task_request: dict[str, Any] | None = None

    def _arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.meta.region_name}:{ACCOUNT}:{resource}"

    def describe_task_definition(self, taskDefinition: str) -> dict[str, Any]:
        if taskDefinition in self.known:
            return {"taskDefinition": copy.deepcopy(self.known[taskDefinition])}
        if not taskDefinition.startswith("arn:aws:ecs:"):
            message = "Unable to describe task definition."
            raise _client_error("DescribeTaskDefinition", "ClientException", message)
        family, _, revision = taskDefinition.rsplit("/", 1)[-1].partition(":")
        definition = {
            "taskDefinitionArn": taskDefinition,
            "family": family,
            "revision": int(revision or 1),
            "status": "ACTIVE",
            "containerDefinitions": [{"name": "prefect", "image": "prefecthq/prefect:3-latest"}],
            "cpu": "1024",
            "memory": "2048",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "compatibilities": ["EC2", "FARGATE"],
        }
        return {"taskDefinition": definition}

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, self.model.operation_model(operation).input_shape)

    def register_task_definition(self, **definition: Any) -> dict[str, Any]:
        self._validate("RegisterTaskDefinition", definition)
        arn = self._arn(f"task-definition/{definition['family']}:1")
        return {"taskDefinition": {**copy.deepcopy(definition), "taskDefinitionArn": arn, "revision": 1}}

    def run_task(self, **request: Any) -> dict[str, Any]:
        self._validate("RunTask", request)
        self.run_task_request = copy.deepcopy(request)
        cluster = request.get("cluster") or "default"
        cluster_arn = cluster if cluster.startswith("arn:") else self._arn(f"cluster/{cluster}")
        task_arn = self._arn(f"task/{cluster_arn.rsplit('/', 1)[-1]}/0123456789abcdef0123456789abcdef")
        return {"tasks": [{"taskArn": task_arn, "clusterArn": cluster_arn}], "failures": []}


class FakeEc2(Unfaked):
    def __init__(self, subnets: dict[str, Any]) -> None:
        self.default_vpc: str | None = subnets.get("default_vpc")
        self.vpcs: dict[str, list[str]] = subnets.get("vpcs", {})

    def describe_vpcs(self, **query: Any) -> dict[str, Any]:
        match query:
            case {"Filters": [{"Name": "isDefault", "Values": ["true"]}]}:
                return {"Vpcs": [{"VpcId": self.default_vpc, "IsDefault": True}] if self.default_vpc else []}
            case {"VpcIds": [str(vpc_id)]}:
                if vpc_id not in self.vpcs:
                    # AWS answers an unknown ID with an error, not an empty list:
                    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
                    message = f"The vpc ID '{vpc_id}' does not exist"
                    raise _client_error("DescribeVpcs", "InvalidVpcID.NotFound", message)
                return {"Vpcs": [{"VpcId": vpc_id}]}
        raise OracleBug(f"unexpected DescribeVpcs query {query!r}")

    def describe_subnets(self, **query: Any) -> dict[str, Any]:
        match query:
            case {"Filters": [{"Name": "vpc-id", "Values": [str(vpc_id)]}]}:
                return {"Subnets": [{"SubnetId": s, "VpcId": vpc_id} for s in self.vpcs.get(vpc_id, [])]}
        raise OracleBug(f"unexpected DescribeSubnets query {query!r}")


async def render(case: dict[str, Any], flow_run: FlowRun, work_pool: WorkPool) -> dict[str, Any]:
    ec2 = FakeEc2(case.get("subnets", {}))
    ecs_clients: list[FakeEcs] = []

    def get_client(credentials: AwsCredentials, client_type: str) -> Any:
        if client_type == "ec2":
            return ec2
        if client_type == "ecs":
            # boto3's region: the credentials block's, else the ambient one (`region` in the case).
            region = credentials.region_name or case["region"]
            ecs_clients.append(FakeEcs(region, case.get("task_definitions", {})))
            return ecs_clients[-1]
        raise OracleBug(f"unexpected AWS client {client_type!r}")

    AwsCredentials.get_client = get_client

    worker = ECSWorker(work_pool_name=work_pool.name, name=case["worker_name"])
    worker._work_pool = work_pool  # what the worker's sync with the server would have read
    worker._logger = LOG
    worker.get_flow_run_logger = lambda _flow_run: LOG
    prepared: list[dict[str, Any]] = []
    prepare_task_definition = worker._prepare_task_definition

    def record_prepared(*args: Any, **kwargs: Any) -> dict[str, Any]:
        definition = prepare_task_definition(*args, **kwargs)
        prepared.append(copy.deepcopy(definition))
        return definition

    worker._prepare_task_definition = record_prepared

    configuration = await ECSJobConfiguration.resolve_for_flow_run(
        flow_run,
        client=FakePrefectClient(case),
        work_pool=copy.deepcopy(work_pool),
        worker_name=worker.name,
        worker_id=None,  # an OSS worker; only Prefect Cloud's heartbeat returns one
    )
    await worker.run(flow_run=flow_run, configuration=configuration)
    requests = [c.run_task_request for c in ecs_clients if c.run_task_request is not None]
    if len(requests) != 1 or len(prepared) > 1:
        counts = f"{len(requests)} RunTask calls and {len(prepared)} task definitions"
        raise OracleBug(f"expected one RunTask call and at most one task definition, got {counts}")
    return {"taskDefinition": prepared[0] if prepared else None, "runTaskRequest": requests[0]}


async def run_case(case: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in REQUIRED if key not in case]
    if missing:
        raise OracleBug(f"the case lacks {missing}")
    # Parsed outside the worker's error handling: a malformed case is the caller's bug, not worker behaviour.
    flow_run = FlowRun.model_validate(case["flow_run"])
    pool = {**case["work_pool"], "type": "ecs", "base_job_template": case["template"]}
    work_pool = WorkPool.model_validate(pool)
    settings = {
        PREFECT_API_URL: case["api_url"],
        PREFECT_API_KEY: case.get("api_key"),
        PREFECT_API_AUTH_STRING: case.get("auth_string"),
    }
    with temporary_settings(updates={k: v for k, v in settings.items() if v is not None}):
        try:
            return await render(case, flow_run, work_pool)
        except Exception as exc:  # reported as in `_submit_run_and_capture_errors`
            return {"error": {"type": type(exc).__name__, "message": str(exc)}}


def main() -> None:
    out = sys.stdout
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the answer only
        if sys.argv[1:] == ["--default-template"]:
            answer: Any = ECSWorker.get_default_base_job_template()
        elif not sys.argv[1:]:
            answer = anyio.run(run_case, json.load(sys.stdin))
        else:
            raise SystemExit("usage: render_oracle.py [--default-template] < case.json")
    json.dump(answer, out, indent=2)
    out.write("\n")


if __name__ == "__main__":
    main()
