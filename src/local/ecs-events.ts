import { randomUUID } from 'node:crypto';
import type { Task } from '@aws-sdk/client-ecs';
import { flowRunIdOfTask } from '../launch/report';
import type { EcsTaskApi } from './run-task-sync';

/** An EventBridge event as AWS delivers "ECS Task State Change" to a Lambda target. */
export interface TaskStateChangeEvent {
  version: '0';
  id: string;
  'detail-type': 'ECS Task State Change';
  source: 'aws.ecs';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

/** ECS events carry the task with ISO timestamps, as JSON does. */
function toEventDetail(task: Task): Record<string, unknown> {
  return JSON.parse(JSON.stringify(task)) as Record<string, unknown>;
}

export function taskStateChangeEvent(task: Task, region = 'us-east-1'): TaskStateChangeEvent {
  const account = task.taskArn?.split(':')[4] ?? '123456789012';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'ECS Task State Change',
    source: 'aws.ecs',
    account,
    time: new Date().toISOString(),
    region,
    resources: task.taskArn ? [task.taskArn] : [],
    detail: toEventDetail(task),
  };
}

/**
 * moto emits no ECS events (../shared/reference/test-infra.md §1.5), so offline the ECS API used by the
 * `.sync` emulation reports what AWS would: a PENDING event once the task exists, RUNNING when moto says so,
 * and STOPPED when it stops — each delivered to `deliver` (the report handler's code). moto's tasks have no
 * `createdAt` nor `startedAt`, which ECS sets at RunTask and at RUNNING
 * (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html); the events get them as seen here.
 */
export function withTaskStateChangeEvents(
  ecs: EcsTaskApi,
  deliver: (event: TaskStateChangeEvent) => Promise<unknown>,
): EcsTaskApi {
  const lastSent = new Map<string, string>();
  const times = new Map<string, Pick<Task, 'createdAt' | 'startedAt'>>();
  const emit = async (task: Task, status: string) => {
    if (!task.taskArn || lastSent.get(task.taskArn) === status) return;
    lastSent.set(task.taskArn, status);
    const seen = times.get(task.taskArn) ?? { createdAt: new Date() };
    if (status === 'RUNNING') seen.startedAt ??= new Date();
    times.set(task.taskArn, seen);
    await deliver(taskStateChangeEvent({ ...seen, ...task, lastStatus: status }));
  };
  return {
    async runTask(request) {
      const out = await ecs.runTask(request);
      const task = out.tasks?.[0];
      if (task) await emit(task, 'PENDING');
      return out;
    },
    async describeTask(cluster, taskArn) {
      const task = await ecs.describeTask(cluster, taskArn);
      if (task?.lastStatus === 'RUNNING' || task?.lastStatus === 'STOPPED') await emit(task, task.lastStatus);
      return task;
    },
    ...(ecs.stopTask ? { stopTask: ecs.stopTask.bind(ecs) } : {}),
  };
}

export interface OtherTaskEvents {
  /** Stops looking and waits for the look under way. */
  stop(): Promise<void>;
}

/**
 * The events of the tasks others start in the cluster (prefect-aws's worker's, while both serve a pool), as
 * serverless.yml's second report rule delivers them, which moto cannot: PROVISIONING, ECS's first status
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html), once a
 * task is seen, and STOPPED once it has stopped. `running` lists the cluster's tasks whose desired status is
 * RUNNING, `describe` reads tasks, every `everyMs`.
 */
export function watchOtherTasks(options: {
  running: () => Promise<string[]>;
  describe: (taskArns: string[]) => Promise<Task[]>;
  deliver: (event: TaskStateChangeEvent) => Promise<unknown>;
  everyMs: number;
  onError: (error: unknown) => void;
}): OtherTaskEvents {
  const live = new Set<string>();
  const done = new Set<string>();
  const look = async () => {
    const running = new Set(await options.running());
    const fresh = [...running].filter((arn) => !live.has(arn) && !done.has(arn));
    const gone = [...live].filter((arn) => !running.has(arn));
    for (const task of await options.describe([...fresh, ...gone])) {
      const arn = task.taskArn as string;
      if (flowRunIdOfTask(task)) {
        done.add(arn);
        continue;
      }
      if (!live.has(arn)) {
        live.add(arn);
        await options.deliver(
          taskStateChangeEvent({ ...task, lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' }),
        );
      }
      if (task.lastStatus === 'STOPPED' || !running.has(arn)) {
        live.delete(arn);
        done.add(arn);
        await options.deliver(
          taskStateChangeEvent({ ...task, lastStatus: 'STOPPED', desiredStatus: 'STOPPED' }),
        );
      }
    }
  };
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      await look().catch(options.onError);
      await new Promise((resolve) => setTimeout(resolve, options.everyMs));
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}
