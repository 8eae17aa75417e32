import type { Failure, Task } from '@aws-sdk/client-ecs';
import { toCamelCase } from './casing';
import { diagnoseStoppedTask } from './diagnosis';

/** The error a Catch put at `$.error`: `Error` is the error name, `Cause` its message or a JSON document. */
export interface CaughtError {
  Error: string;
  Cause?: string;
}

export interface LaunchFailure {
  /** `cancel` when the deployment is gone (as the worker does), `crash` when the run must end Crashed. */
  action: 'crash' | 'cancel' | 'none';
  message: string;
  /** A longer explanation with a resolution, for the flow run's log. */
  explanation: string;
}

const SUBMIT = 'Failed to submit flow run to infrastructure';

/**
 * Turns what the launch state machine caught into the state Prefect should get, in prefect-aws's words
 * (`Failed to submit flow run to infrastructure: {Type}: {message}`, ../shared/reference/prefect-ecs-worker.md
 * §1.4 and the RunTask rewrites of §4.7). Pure.
 */
export function describeLaunchFailure(error: CaughtError, cluster?: string): LaunchFailure {
  const cause = error.Cause ?? '';
  switch (error.Error) {
    case 'DeploymentNotFoundError':
      return { action: 'cancel', message: lambdaMessage(cause), explanation: lambdaMessage(cause) };
    case 'States.TaskFailed':
      return taskFailed(cause);
    case 'AmazonECS.Unknown':
      return runTaskFailures(cause);
    case 'ECS.ClusterNotFoundException': {
      const message = `${SUBMIT}: ClusterNotFoundException: Failed to run ECS task, cluster ${pyQuote(cluster ?? 'default')} not found. Confirm that the cluster is configured in your region.`;
      return {
        action: 'crash',
        message,
        explanation: `${message} Resolution: set the pool's or deployment's \`cluster\` job variable (or LAUNCHER_CLUSTER) to an existing cluster in the launcher's region.`,
      };
    }
    default: {
      const type = error.Error.replace(/^(ECS|Lambda)\./, '');
      let text = lambdaMessage(cause);
      if (error.Error === 'ECS.InvalidParameterException' && /subnet|security group|network/i.test(text)) {
        text = `Failed to run ECS task due to a network configuration error: ${text}`;
      } else if (/task definition is inactive|TaskDefinition is inactive/i.test(text)) {
        text = `Failed to run ECS task, the task definition is inactive: ${text}. Re-register it or remove the \`task_definition_arn\` job variable.`;
      }
      const message = `${SUBMIT}: ${type}: ${text}`;
      return { action: 'crash', message, explanation: message };
    }
  }
}

/** A Lambda error's Cause is `{"errorType","errorMessage","trace"}` on AWS and the bare message locally. */
function lambdaMessage(cause: string): string {
  const parsed = parseJson(cause) as { errorMessage?: unknown } | undefined;
  return typeof parsed?.errorMessage === 'string' ? parsed.errorMessage : cause;
}

function taskFailed(cause: string): LaunchFailure {
  const parsed = parseJson(cause);
  if (!parsed || typeof parsed !== 'object') {
    const message = `${SUBMIT}: TaskFailed: ${cause}`;
    return { action: 'crash', message, explanation: message };
  }
  const diagnosis = diagnoseStoppedTask(toCamelCase<Task>(parsed));
  return {
    action: diagnosis.crashed ? 'crash' : 'none',
    message: diagnosis.message,
    explanation: diagnosis.explanation,
  };
}

function runTaskFailures(cause: string): LaunchFailure {
  const failures = toCamelCase<Failure[] | undefined>(parseJson(cause));
  const first = Array.isArray(failures) ? failures[0] : undefined;
  const reason = first?.reason ? `${first.reason}${first.detail ? ` (${first.detail})` : ''}` : cause;
  const capacity = /capacity/i.test(reason) || /^RESOURCE:/.test(reason);
  const message = capacity
    ? `${SUBMIT}: RuntimeError: Failed to run ECS task due to a capacity provider error: ${reason}`
    : `${SUBMIT}: RuntimeError: Failed to run ECS task: ${reason}`;
  const resolution = capacity
    ? 'Resolution: the launcher retried with backoff; check the cluster has capacity for the requested cpu/memory (or Fargate capacity in the region), or use another capacity provider.'
    : 'Resolution: see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html for this reason.';
  return { action: 'crash', message, explanation: `${message} ${resolution}` };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function pyQuote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
