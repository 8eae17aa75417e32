"""moto's server with the one fix the launcher's tests need, pinned to the moto version in constraints.txt.

moto computes a task's resource needs from container-level memory only and crashes (HTTP 500) on a
Fargate task definition whose containers have none, which is the normal shape (task-level cpu/memory,
as Prefect's default ECS template produces). Real ECS accepts it:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#ContainerDefinition-memory
The fix counts a container without memory as 0 MiB, which only matters for EC2 placement.
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

if __name__ == "__main__":
    sys.argv = ["moto_server", "-H", "127.0.0.1", *sys.argv[1:]]
    moto_main()
