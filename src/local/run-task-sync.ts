import type { RunTaskCommandInput, RunTaskCommandOutput, Task } from '@aws-sdk/client-ecs';
import { toCamelCase, toPascalCase } from '../launch/casing';

/** The ECS calls the `.sync` emulation needs; src/aws/ecs.ts provides them, tests may wrap them. */
export interface EcsTaskApi {
  runTask(request: RunTaskCommandInput): Promise<RunTaskCommandOutput>;
  describeTask(cluster: string | undefined, taskArn: string): Promise<Task | undefined>;
  /** What a stopped execution does to its task; without it an aborted execution leaves the task alone. */
  stopTask?(cluster: string | undefined, taskArn: string, reason: string): Promise<void>;
}

/**
 * An error as Step Functions names it, so the definition's Retry/Catch match it as they would on AWS.
 * A terminal one (States.Runtime, States.DataLimitExceeded) fails the execution whatever the state's Retry
 * and Catch say, as on AWS: "States.ALL … can't catch the States.DataLimitExceeded terminal error type and
 * runtime error types." https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * (aws-local-stepfunctions reads `isRetryable` / `isCatchable` for that.)
 */
export class StatesError extends Error {
  constructor(
    name: string,
    cause: string,
    readonly terminal = false,
  ) {
    super(cause);
    this.name = name;
  }
  get isRetryable(): boolean {
    return !this.terminal;
  }
  get isCatchable(): boolean {
    return !this.terminal;
  }
}

/**
 * Step Functions' payload limit: a state's input (after Parameters), a connector's result and a state's
 * output each at most 256 KiB, else `States.DataLimitExceeded`.
 * https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html#service-limits-task-executions
 */
export const MAX_PAYLOAD_BYTES = 262_144;

/** Fails like Step Functions when `payload` (what `what` names) is over the payload limit. */
export function checkPayloadSize(payload: unknown, what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(payload ?? null));
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new StatesError(
      'States.DataLimitExceeded',
      `${what} has a size of ${bytes} bytes, over the limit of ${MAX_PAYLOAD_BYTES} bytes.`,
      true,
    );
  }
}

/**
 * The RunTask fields the `ecs:runTask` integration takes: the documented list
 * (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html), plus EnableExecuteCommand and
 * CapacityProviderStrategy, which AWS's own EcsRunTask construct sends. Kept here apart from the launcher's
 * own list (src/launch/run-task-contract.ts), so that this emulation checks the launcher instead of
 * agreeing with it.
 */
const INTEGRATION_FIELDS: ReadonlySet<string> = new Set([
  'Cluster',
  'Group',
  'LaunchType',
  'NetworkConfiguration',
  'Overrides',
  'PlacementConstraints',
  'PlacementStrategy',
  'PlatformVersion',
  'PropagateTags',
  'TaskDefinition',
  'EnableExecuteCommand',
  'CapacityProviderStrategy',
]);

/** "A total of 8192 characters are allowed for overrides." (ECS refuses more with InvalidParameterException.) */
const MAX_OVERRIDES_CHARACTERS = 8192;

function checkParameters(pascalRequest: unknown): void {
  if (pascalRequest === null || typeof pascalRequest !== 'object' || Array.isArray(pascalRequest)) {
    throw new StatesError('States.Runtime', 'The RunTask parameters must be a JSON object.', true);
  }
  for (const field of Object.keys(pascalRequest)) {
    if (!INTEGRATION_FIELDS.has(field)) {
      throw new StatesError(
        'States.Runtime',
        `The field "${field}" is not supported by Step Functions`,
        true,
      );
    }
  }
  checkPayloadSize(pascalRequest, 'The state/task input, after Parameters processing,');
}

/**
 * What `arn:aws:states:::ecs:runTask.sync` does on AWS, for running the real definition locally:
 * - a field the integration does not take fails the execution (`States.Runtime`, uncatchable), and so does
 *   a request or result over 256 KiB (`States.DataLimitExceeded`);
 * - StartedBy is overwritten with "AWS Step Functions";
 * - overrides over ECS's 8,192 characters are refused (`ECS.InvalidParameterException`);
 * - ECS API errors surface as `ECS.<ExceptionName>`; a non-empty `failures` list as `AmazonECS.Unknown`;
 * - an aborted execution stops its task (best effort);
 * - it waits for STOPPED, then fails with `States.TaskFailed` (Cause = the PascalCase task as JSON) when any
 *   container exited non-zero or without an exit code, or the task failed to start; otherwise the task is
 *   the output.
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html and
 * ../shared/reference/aws-semantics.md §0.1–§0.2 for the observed behaviour.
 */
export async function runTaskSync(
  ecs: EcsTaskApi,
  pascalRequest: unknown,
  options: { pollIntervalMs?: number; signal?: AbortSignal } = {},
): Promise<unknown> {
  checkParameters(pascalRequest);
  const request = { ...toCamelCase<RunTaskCommandInput>(pascalRequest), startedBy: 'AWS Step Functions' };
  let out: RunTaskCommandOutput;
  try {
    const overrides = JSON.stringify(request.overrides ?? {}).length;
    if (overrides > MAX_OVERRIDES_CHARACTERS) {
      throw Object.assign(
        new Error(`Container Overrides length must be at most ${MAX_OVERRIDES_CHARACTERS}, got ${overrides}`),
        { name: 'InvalidParameterException' },
      );
    }
    out = await ecs.runTask(request);
  } catch (err) {
    const name = (err as { name?: string }).name ?? 'Exception';
    throw new StatesError(`ECS.${name}`, (err as Error).message);
  }
  if (out.failures?.length) {
    throw new StatesError('AmazonECS.Unknown', JSON.stringify(toPascalCase(out.failures)));
  }
  const taskArn = out.tasks?.[0]?.taskArn;
  if (!taskArn) throw new StatesError('AmazonECS.Unknown', 'RunTask returned no task');

  for (;;) {
    if (options.signal?.aborted) {
      // StopExecution makes Step Functions stop the task its `.sync` state started, best effort.
      // https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-sync
      await ecs.stopTask?.(request.cluster, taskArn, 'Execution was stopped').catch(() => undefined);
      options.signal.throwIfAborted();
    }
    const task = await ecs.describeTask(request.cluster, taskArn);
    if (task?.lastStatus === 'STOPPED') {
      const failed =
        task.stopCode === 'TaskFailedToStart' ||
        (task.containers ?? []).some(
          (c) => c.exitCode === undefined || c.exitCode === null || c.exitCode !== 0,
        );
      const pascal = toPascalCase(task);
      checkPayloadSize(pascal, 'The result of the ecs:runTask.sync integration');
      if (failed) throw new StatesError('States.TaskFailed', JSON.stringify(pascal));
      return pascal;
    }
    await new Promise((r) => setTimeout(r, options.pollIntervalMs ?? 200));
  }
}
