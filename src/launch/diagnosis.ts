import type { Task } from '@aws-sdk/client-ecs';

/**
 * Why a stopped ECS task means a crashed flow run, in words a user can act on. Pure: the launch state
 * machine's failure path and the ECS event reporter both use it.
 *
 * Matches prefect-aws's ECS observer (mark_runs_as_crashed + diagnostics) with one fix: the observer
 * hard-codes the container name `prefect`; we check the flow's own container, whatever it is called.
 * https://github.com/PrefectHQ/prefect/blob/main/src/integrations/prefect-aws/prefect_aws/observers/ecs.py
 * Stop codes: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html#ECS-Type-Task-stopCode
 */
export interface StoppedTaskDiagnosis {
  /** True when the flow run should be Crashed (unless it already reached a final state). */
  crashed: boolean;
  /** True when the task never started running the flow (pull failure, no capacity, …). */
  failedToStart: boolean;
  /** The state message. */
  message: string;
  /** `"{summary}: {detail} Resolution: {resolution}"`, for the flow run's log. */
  explanation: string;
}

export function flowContainerName(task: Task, fallback = 'prefect'): string {
  // The launcher always overrides the flow container's command, so the override that has one names it.
  const withCommand = task.overrides?.containerOverrides?.find((o) => o.command?.length);
  return withCommand?.name ?? fallback;
}

function pythonListRepr(names: string[]): string {
  return `[${names.map((n) => `'${n}'`).join(', ')}]`;
}

export function diagnoseStoppedTask(
  task: Task,
  containerName = flowContainerName(task),
): StoppedTaskDiagnosis {
  const containers = task.containers ?? [];
  const reason = task.stoppedReason ?? 'no reason given';
  const own = containers.filter((c) => c.name === containerName);
  const watched = own.length ? own : containers;
  const failedContainers = watched.filter(
    (c) => c.exitCode === undefined || c.exitCode === null || c.exitCode !== 0,
  );
  const failedToStart =
    task.stopCode === 'TaskFailedToStart' ||
    /CannotPullContainerError|ResourceInitializationError|CannotStartContainerError/.test(reason);

  if (failedToStart) {
    const explanation = startFailureExplanation(task, reason);
    return {
      crashed: true,
      failedToStart: true,
      message: `Failed to submit flow run to infrastructure: TaskFailedToStart: ${reason}`,
      explanation,
    };
  }

  if (failedContainers.length === 0) {
    return {
      crashed: false,
      failedToStart: false,
      message: `ECS task stopped: ${reason}`,
      explanation: `ECS task stopped normally: ${reason}`,
    };
  }

  const names = failedContainers.map((c) => c.name ?? '?');
  const codes = failedContainers.map((c) => c.exitCode);
  const message = `The following containers stopped with a non-zero exit code: ${pythonListRepr(names)}`;
  let explanation: string;
  if (task.stopCode === 'SpotInterruption') {
    explanation =
      `Fargate Spot interruption: AWS reclaimed the Spot capacity (${reason}). ` +
      'Resolution: retry the flow run, or use launch_type FARGATE (or a capacity provider strategy with an on-demand base) for runs that must not be interrupted.';
  } else if (codes.every((c) => c === undefined || c === null)) {
    explanation =
      `Task terminated by infrastructure: ${reason} (no exit code). ` +
      'Resolution: check the ECS task in the AWS console; it was stopped before its containers exited (for example by StopTask, a scale-in or a host failure).';
  } else if (codes.includes(137)) {
    explanation =
      `Container exited with non-zero exit code: Container '${names[codes.indexOf(137)]}' exited with code 137 (killed by SIGKILL, usually out of memory). ` +
      'Resolution: raise the `memory` job variable, or look for a StopTask that did not finish within the stop timeout.';
  } else if (task.stopCode === 'EssentialContainerExited') {
    explanation =
      `Essential container exited: ${failedContainers.map((c) => `Container '${c.name}' exited with code ${c.exitCode}.`).join(' ')} ` +
      "Resolution: read the container's logs (configure_cloudwatch_logs) for the error; a flow that raised is reported by the engine, this means the process itself failed.";
  } else {
    explanation =
      `Container exited with non-zero exit code: ${failedContainers.map((c) => `Container '${c.name}' exited with code ${c.exitCode}.`).join(' ')} ` +
      "Resolution: read the container's logs for the cause.";
  }
  return { crashed: true, failedToStart: false, message, explanation };
}

function startFailureExplanation(task: Task, reason: string): string {
  if (reason.includes('CannotPullContainerError')) {
    return (
      `Container image pull failed: ${reason} ` +
      'Resolution: check the `image` job variable, that the image exists in the registry, that the execution role may pull it (ECR) and that the task has a route to the registry (public IP or NAT / VPC endpoints).'
    );
  }
  if (/capacity|RESOURCE:|no container instance/i.test(reason)) {
    return (
      `ECS task failed to start: ${reason}. The capacity provider could not place the task. ` +
      'Resolution: check the cluster has capacity for the requested cpu/memory, or use another capacity provider.'
    );
  }
  if (reason.includes('ResourceInitializationError')) {
    return (
      `ECS task failed to start: ${reason} ` +
      'Resolution: the task could not fetch secrets or write logs; check the execution role permissions (secretsmanager:GetSecretValue, logs:*) and network access to those services.'
    );
  }
  return `ECS task failed to start: ${reason} (stop code ${task.stopCode ?? 'unknown'}). Resolution: see the stopped task in the ECS console for details.`;
}
