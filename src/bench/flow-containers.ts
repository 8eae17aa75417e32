import type { ECSClient, Task } from '@aws-sdk/client-ecs';
import { describeTasks, listTaskArns, stopTask } from '../aws/ecs';
import { flowRunIdOfTask, flowRunIdOfWorkerTask } from '../launch/report';
import type { PrefectHttp } from '../prefect/http';

/**
 * The flow containers of every task in a moto cluster, whoever started it (the launcher's state machine or
 * prefect-aws's worker): moto runs nothing, and `holdMotoTasksRunning` keeps each task RUNNING until it is
 * stopped, so this plays what Prefect's engine in the container does. It looks at the cluster's RUNNING tasks
 * every `everyMs`; for each new one, after `provisionMs`, it proposes Running (not forced, as the engine does), and when the
 * server accepts (after waiting as long as a WAIT answer says, as the engine does for a task started
 * before its run's time), Completed after `runMs`; then the container exits and the task is stopped in moto. An
 * engine whose Running proposal is refused (the run is not Pending: e.g. a second task of a run already
 * running) exits at once, as Prefect's engine does; a task stopped from outside while its flow runs (StopTask
 * sends SIGTERM) ends its run Crashed, as the engine's crash handling does.
 */
export interface FlowContainers {
  /** Tasks seen; runs the engine completed; engines refused Running; engines stopped from outside. */
  readonly counts: { tasks: number; completed: number; refused: number; terminated: number; errors: number };
  /** Stops looking for new tasks and waits for the engines under way. */
  stop(): Promise<void>;
}

/** The flow run a task belongs to: the launcher's task group, or the worker's PREFECT__FLOW_RUN_ID override. */
export function flowRunIdOfAnyTask(task: Task): string | undefined {
  return flowRunIdOfTask(task) ?? flowRunIdOfWorkerTask(task) ?? undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function playFlowContainers(options: {
  ecs: ECSClient;
  prefect: PrefectHttp;
  cluster: string;
  /** From the task's start to the engine's Running proposal: image pull and network, on ECS. */
  provisionMs?: number;
  runMs: number;
  everyMs?: number;
  onError?: (error: unknown) => void;
}): FlowContainers {
  const { ecs, prefect, cluster, runMs } = options;
  const counts = { tasks: 0, completed: 0, refused: 0, terminated: 0, errors: 0 };
  const seen = new Set<string>();
  const engines = new Set<Promise<void>>();
  let stopping = false;

  const propose = async (id: string, type: 'RUNNING' | 'COMPLETED' | 'CRASHED', message?: string) => {
    const name = type[0] + type.slice(1).toLowerCase();
    for (;;) {
      const { data } = await prefect.request<{ status: string; details?: { delay_seconds?: number } }>(
        'POST',
        `/flow_runs/${id}/set_state`,
        { body: { state: { type, name, ...(message ? { message } : {}) }, force: false } },
      );
      // WAIT: the worker started the task before the run's time; the engine waits as told, then proposes again.
      if (data.status !== 'WAIT') return data.status;
      await sleep(Math.max(0.1, data.details?.delay_seconds ?? 1) * 1000);
    }
  };
  const engine = async (task: Task) => {
    const taskArn = task.taskArn as string;
    const id = flowRunIdOfAnyTask(task);
    const stopped = async () => {
      const now = (await describeTasks(ecs, cluster, [taskArn])).get(taskArn);
      return now !== 'MISSING' && now?.desiredStatus === 'STOPPED';
    };
    try {
      await sleep(options.provisionMs ?? 0);
      // Stopped while provisioning: the container never starts, and the run is left as it is.
      if (options.provisionMs && (await stopped())) {
        counts.terminated += 1;
        return;
      }
      if (id && (await propose(id, 'RUNNING')) === 'ACCEPT') {
        await sleep(runMs);
        // Stopped from outside meanwhile (StopTask's SIGTERM): Prefect's engine ends the run Crashed.
        if (await stopped()) {
          counts.terminated += 1;
          await propose(id, 'CRASHED', 'Execution was aborted by a termination signal.');
          return;
        }
        if ((await propose(id, 'COMPLETED')) === 'ACCEPT') counts.completed += 1;
      } else counts.refused += 1;
    } catch (error) {
      counts.errors += 1;
      options.onError?.(error);
    }
    await stopTask(ecs, cluster, taskArn, 'Essential container in task exited').catch((error: unknown) => {
      counts.errors += 1;
      options.onError?.(error);
    });
  };
  const look = async () => {
    const fresh = (await listTaskArns(ecs, cluster, 'RUNNING')).filter((arn) => !seen.has(arn));
    if (!fresh.length) return;
    for (const [arn, task] of await describeTasks(ecs, cluster, fresh)) {
      if (task === 'MISSING') continue;
      seen.add(arn);
      counts.tasks += 1;
      const played = engine(task);
      engines.add(played);
      void played.finally(() => engines.delete(played));
    }
  };
  const loop = (async () => {
    while (!stopping) {
      await look().catch((error: unknown) => options.onError?.(error));
      await sleep(options.everyMs ?? 500);
    }
  })();

  return {
    counts,
    stop: async () => {
      stopping = true;
      await loop;
      while (engines.size) await Promise.all([...engines]);
    },
  };
}
