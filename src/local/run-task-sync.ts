import type { RunTaskCommandInput, RunTaskCommandOutput, Task } from '@aws-sdk/client-ecs';
import { toCamelCase, toPascalCase } from '../launch/casing';

/** The ECS calls the `.sync` emulation needs; src/aws/ecs.ts provides them, tests may wrap them. */
export interface EcsTaskApi {
  runTask(request: RunTaskCommandInput): Promise<RunTaskCommandOutput>;
  describeTask(cluster: string | undefined, taskArn: string): Promise<Task | undefined>;
  /** What a stopped execution does to its task; without it an aborted execution leaves the task alone. */
  stopTask?(cluster: string | undefined, taskArn: string, reason: string): Promise<void>;
}

/** An error as Step Functions names it, so the definition's Retry/Catch match it as they would on AWS. */
export class StatesError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

/**
 * What `arn:aws:states:::ecs:runTask.sync` does on AWS, for running the real definition locally:
 * - StartedBy is overwritten with "AWS Step Functions";
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
  const request = { ...toCamelCase<RunTaskCommandInput>(pascalRequest), startedBy: 'AWS Step Functions' };
  let out: RunTaskCommandOutput;
  try {
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
      if (failed) throw new StatesError('States.TaskFailed', JSON.stringify(pascal));
      return pascal;
    }
    await new Promise((r) => setTimeout(r, options.pollIntervalMs ?? 200));
  }
}
