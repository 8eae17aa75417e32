"""moto's server with the fixes the launcher's tests need, pinned to the moto version in constraints.txt.

1. moto computes a task's resource needs from container-level memory only and crashes (HTTP 500) on a
Fargate task definition whose containers have none, which is the normal shape (task-level cpu/memory,
as Prefect's default ECS template produces). Real ECS accepts it:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#ContainerDefinition-memory
The fix counts a container without memory as 0 MiB, which only matters for EC2 placement.

2. moto runs a task from a deregistered (INACTIVE) revision. ECS does not: "you can't use an INACTIVE task
definition to run new tasks"
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html), and RunTask
answers InvalidParameterException "TaskDefinition is inactive". The launcher's task-definition cache relies
on that answer (src/launch/aws-cache.ts), so moto gives it too.
"""

from __future__ import annotations

import sys

import moto
from moto.ecs import models as ecs_models
from moto.server import main as moto_main

PINNED = "5.2.5"
if moto.__version__ != PINNED:
    raise SystemExit(
        f"moto_server.py patches moto {PINNED} internals but found moto {moto.__version__}; "
        "re-check the patch below and update PINNED"
    )

_original = ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements


def _calculate_task_resource_requirements(task_definition):  # type: ignore[no-untyped-def]
    missing = [
        c
        for c in task_definition.container_definitions
        if not any(k in c for k in ("memory", "memoryReservation", "Memory", "MemoryReservation"))
    ]
    for c in missing:
        c["memoryReservation"] = 0
    try:
        return _original(task_definition)
    finally:
        for c in missing:
            del c["memoryReservation"]


ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(
    _calculate_task_resource_requirements
)

_original_run_task = ecs_models.EC2ContainerServiceBackend.run_task


def _run_task(self, cluster_str, task_definition_str, *args, **kwargs):  # type: ignore[no-untyped-def]
    task_definition = self.describe_task_definition(task_definition_str)
    if task_definition.status == "INACTIVE":
        raise ecs_models.InvalidParameterException("TaskDefinition is inactive")
    return _original_run_task(self, cluster_str, task_definition_str, *args, **kwargs)


ecs_models.EC2ContainerServiceBackend.run_task = _run_task

if __name__ == "__main__":
    sys.argv = ["moto_server", "-H", "127.0.0.1", *sys.argv[1:]]
    moto_main()
