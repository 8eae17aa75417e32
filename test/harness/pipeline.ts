import { DescribeTasksCommand, ECSClient, ListTasksCommand, type Task } from '@aws-sdk/client-ecs';
import { SFNClient } from '@aws-sdk/client-sfn';
import { runPoll } from '../../src/launch/entrypoints';
import { LocalExecutor } from '../../src/local/executor';
import { localLaunchMachine } from '../../src/local/launcher';
import type { EcsTaskApi } from '../../src/local/run-task-sync';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import type { Runtime } from '../../src/runtime';
import { arrangeDeployment, awsTestConfig } from './env';
import { createCluster, createLaunchStateMachine, testRuntime } from './launcher';

/**
 * The launch pipeline's steps for integration tests: a launcher deployment in miniature, one poll, and the
 * executions it started run to their end through the deployed definition (src/local), against moto.
 */

const ecsClient = new ECSClient(awsTestConfig());
const sfnClient = new SFNClient(awsTestConfig());

/** Every task of the cluster, described. */
export async function tasksOf(cluster: string): Promise<Task[]> {
  const arns = (await ecsClient.send(new ListTasksCommand({ cluster }))).taskArns ?? [];
  if (!arns.length) return [];
  const tasks: Task[] = [];
  for (let i = 0; i < arns.length; i += 100) {
    const out = await ecsClient.send(new DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + 100) }));
    tasks.push(...(out.tasks ?? []));
  }
  return tasks;
}

/** A launcher deployment in miniature: one pool, one cluster, the state machine in moto, the runtime. */
export async function launcher(
  options: { jobVariables?: Record<string, unknown>; settings?: Record<string, string> } = {},
) {
  const cluster = await createCluster();
  const { pool, deploymentId } = await arrangeDeployment({
    baseJobTemplate: defaultTemplate,
    jobVariables: { cluster, image: 'prefecthq/prefect:3-latest', ...options.jobVariables },
  });
  const stateMachineArn = await createLaunchStateMachine();
  const rt = await testRuntime({
    LAUNCHER_WORK_POOL: pool,
    LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
    ...options.settings,
  });
  return { cluster, pool, deploymentId, stateMachineArn, rt };
}

export function executor(rt: Runtime, stateMachineArn: string, ecs?: EcsTaskApi) {
  return new LocalExecutor(
    sfnClient,
    stateMachineArn,
    localLaunchMachine(rt, { retryIntervalMs: 1, pollIntervalMs: 50, ...(ecs ? { ecs } : {}) }),
  );
}

/** Runs every execution the polls started to its end; the results by execution (flow run) name. */
export function runExecutions(rt: Runtime, stateMachineArn: string, ecs?: EcsTaskApi) {
  return executor(rt, stateMachineArn, ecs).settle();
}

/** One poll, then every execution it started. */
export async function pollAndRun(rt: Runtime, stateMachineArn: string, ecs?: EcsTaskApi) {
  await runPoll(rt);
  return runExecutions(rt, stateMachineArn, ecs);
}
