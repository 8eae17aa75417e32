import {
  CreateClusterCommand,
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  type DesiredStatus,
  ECSClient,
  type ECSClientConfig,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  RunTaskCommand,
  type RunTaskCommandInput,
  type RunTaskCommandOutput,
  StopTaskCommand,
  type Task,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { AwsThrottledError, JobConfigurationError, TaskDefinitionRegistrationError } from '../errors';
import { pyRepr } from '../render/pyrepr';
import {
  AUTO_DEREGISTER_TAG_KEY,
  type TaskDefinitionInfo,
  taskDefinitionInfo,
} from '../render/run-task-request';
import { taskDefinitionsEqual } from '../render/task-definition';
import { isThrottlingError } from './throttling';

/** The only importer of @aws-sdk/client-ecs. Create the client once per cold start; tests pass one for moto. */
export function createEcsClient(config: ECSClientConfig = {}): ECSClient {
  return new ECSClient(config);
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** ECS answers an unknown family, revision or ARN with this ClientException. */
function isNotFound(err: unknown): boolean {
  return (
    err instanceof Error &&
    err.name === 'ClientException' &&
    /unable to describe task definition/i.test(err.message)
  );
}

/**
 * ECS lets one registration per family run at a time and refuses the others with this ClientException;
 * concurrent launches of one deployment hit it. https://github.com/PrefectHQ/prefect/issues/15865
 */
function isConcurrentRevisionConflict(err: unknown): boolean {
  return (
    err instanceof Error &&
    err.name === 'ClientException' &&
    /too many concurrent attempts/i.test(err.message)
  );
}

/**
 * The task definition `task_definition_arn` names (an ARN, `family:revision` or a family, whose latest
 * ACTIVE revision ECS returns). A missing or inactive one is a configuration error: RunTask would fail with
 * "TaskDefinition is inactive", which the worker rewrites into the message used here.
 */
export async function describeTaskDefinition(ecs: ECSClient, ref: string): Promise<TaskDefinitionInfo> {
  let td: TaskDefinition | undefined;
  try {
    td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref }))).taskDefinition;
  } catch (err) {
    if (isThrottlingError(err)) {
      throw new AwsThrottledError(`ECS kept throttling DescribeTaskDefinition: ${describeError(err)}`, {
        cause: err,
      });
    }
    if (!isNotFound(err)) throw err;
  }
  if (!td?.taskDefinitionArn) {
    throw new JobConfigurationError(
      `Task definition ${pyRepr(ref)} not found. Check \`task_definition_arn\` and that it is in this region.`,
    );
  }
  if (td.status !== 'ACTIVE') {
    const state = td.status === 'INACTIVE' ? 'inactive' : `not active (${td.status})`;
    throw new JobConfigurationError(
      `Failed to run ECS task, the task definition ${td.taskDefinitionArn} is ${state}. Re-register the task ` +
        'definition or remove the `task_definition_arn` from your work pool configuration to allow Prefect ' +
        'to register a new task definition automatically.',
    );
  }
  return taskDefinitionInfo(td.taskDefinitionArn, td, false);
}

/** A described revision and whether its tags (which ECS returns only when asked) mark it for auto-deregistration. */
interface Revision {
  td: TaskDefinition;
  autoDeregister: boolean;
}

/** A revision, or null when ECS does not know it. */
async function describeOrNull(ecs: ECSClient, ref: string): Promise<Revision | null> {
  try {
    const out = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref, include: ['TAGS'] }));
    return out.taskDefinition
      ? { td: out.taskDefinition, autoDeregister: hasAutoDeregisterTag(out.tags) }
      : null;
  } catch (err) {
    if (isNotFound(err)) return null;
    if (isThrottlingError(err)) {
      throw new AwsThrottledError(`ECS kept throttling DescribeTaskDefinition: ${describeError(err)}`, {
        cause: err,
      });
    }
    throw new TaskDefinitionRegistrationError(
      `Cannot look up task definition ${ref}: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * An ACTIVE revision of the definition's family equal to it, looking at the latest ACTIVE revision and then
 * at up to `lookBack` revisions below it (newest first), or only at revisions above `newerThan` when given.
 */
async function findEqualRevision(
  ecs: ECSClient,
  definition: RegisterTaskDefinitionCommandInput,
  lookBack: number,
  newerThan?: number,
): Promise<{ match: TaskDefinition | null; latestRevision: number }> {
  const family = definition.family as string;
  // A revision tagged for auto-deregistration belongs to the one run that registered it: its task's STOPPED
  // event deregisters it, so a second run reusing it could find it INACTIVE (or lose it mid-launch).
  const isReusable = (r: Revision | null): r is Revision =>
    r?.td.status === 'ACTIVE' &&
    !r.autoDeregister &&
    Boolean(r.td.taskDefinitionArn) &&
    taskDefinitionsEqual(definition, r.td);

  const latest = await describeOrNull(ecs, family);
  const latestRevision = latest?.td.revision ?? 0;
  if (!latest) return { match: null, latestRevision };
  if ((newerThan === undefined || latestRevision > newerThan) && isReusable(latest)) {
    return { match: latest.td, latestRevision };
  }
  const lowest = Math.max(1, newerThan === undefined ? latestRevision - lookBack : newerThan + 1);
  const revisions: number[] = [];
  for (let r = latestRevision - 1; r >= lowest && revisions.length < lookBack; r--) revisions.push(r);
  const older = await Promise.all(revisions.map((r) => describeOrNull(ecs, `${family}:${r}`)));
  return { match: older.find(isReusable)?.td ?? null, latestRevision };
}

export interface FindOrRegisterOptions {
  /**
   * `auto_deregister_task_definition`: a revision this call registers is tagged
   * `prefect.io/degregister-task-definition=true`, so the reporter (or a janitor) can tell it from revisions
   * someone else registered. The task gets the same tag from `buildRunTaskRequest` (what prefect-aws's
   * observer reads). The key keeps the worker's misspelling for compatibility.
   */
  autoDeregister: boolean;
  /** Revisions below the family's latest ACTIVE one that may be reused (default 5). */
  lookBack?: number;
  /** Upper bound of the random pause before registering, so concurrent launches reuse one revision (default 1000 ms). */
  settleMs?: number;
  /** Registration attempts while ECS reports concurrent registrations of the family (default 6). */
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The revision to run for `definition` (built by `buildTaskDefinition`): an existing ACTIVE revision of its
 * family that is equal under prefect-aws's comparison rules, else a newly registered one.
 *
 * The rule: always look at the family's latest ACTIVE revision, then at the few below it, and reuse the
 * newest equal one; register only when none is equal. The worker instead keeps a per-deployment cache of
 * the ARN it last used (in process memory, so it re-registers after every restart) and looks at the
 * family's latest revision only with `match_latest_revision_in_family`. Without a process, looking always
 * is its steady state; the look-back stands in for the cache when deployments with different definitions
 * share a family (a fixed `family` in the pool), which would otherwise register a revision on every run.
 * So `match_latest_revision_in_family` needs no handling: reuse is always on, and reusing an equal
 * definition someone else registered changes nothing for the task.
 *
 * Concurrent launches of a changed definition (e.g. a burst of runs of one deployment) would each register
 * a revision: a random pause of up to `settleMs` and a second look let the first registration win, and
 * ECS's "Too many concurrent attempts" is retried with jittered backoff, looking again before each retry.
 */
export async function findOrRegisterTaskDefinition(
  ecs: ECSClient,
  definition: RegisterTaskDefinitionCommandInput,
  options: FindOrRegisterOptions,
): Promise<TaskDefinitionInfo & { registered: boolean }> {
  const lookBack = options.lookBack ?? 5;
  const settleMs = options.settleMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 6;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const reuse = (td: TaskDefinition) => ({
    ...taskDefinitionInfo(td.taskDefinitionArn as string, definition, false),
    registered: false,
  });

  let { match, latestRevision } = await findEqualRevision(ecs, definition, lookBack);
  if (match) return reuse(match);
  if (settleMs > 0) await sleep(random() * settleMs);

  const input: RegisterTaskDefinitionCommandInput = options.autoDeregister
    ? { ...definition, tags: [...(definition.tags ?? []), { key: AUTO_DEREGISTER_TAG_KEY, value: 'true' }] }
    : definition;
  for (let attempt = 1; ; attempt++) {
    ({ match, latestRevision } = await findEqualRevision(ecs, definition, lookBack, latestRevision));
    if (match) return reuse(match);
    try {
      const out = await ecs.send(new RegisterTaskDefinitionCommand(input));
      const arn = out.taskDefinition?.taskDefinitionArn;
      if (!arn)
        throw new TaskDefinitionRegistrationError('RegisterTaskDefinition returned no task definition ARN');
      return { ...taskDefinitionInfo(arn, definition, true), registered: true };
    } catch (err) {
      if (err instanceof TaskDefinitionRegistrationError) throw err;
      if (isThrottlingError(err)) {
        throw new AwsThrottledError(`ECS kept throttling RegisterTaskDefinition: ${describeError(err)}`, {
          cause: err,
        });
      }
      if (!isConcurrentRevisionConflict(err)) {
        throw new TaskDefinitionRegistrationError(
          `ECS refused to register task definition family ${definition.family}: ${describeError(err)}`,
          { cause: err },
        );
      }
      if (attempt >= maxAttempts) {
        throw new TaskDefinitionRegistrationError(
          `ECS still reported concurrent registrations of family ${definition.family} after ${attempt} attempts: ${describeError(err)}`,
          { cause: err },
        );
      }
      // Full jitter: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
      await sleep(random() * Math.min(8000, 500 * 2 ** attempt));
    }
  }
}

function hasAutoDeregisterTag(tags: { key?: string; value?: string }[] | undefined): boolean {
  return (tags ?? []).some((t) => t.key === AUTO_DEREGISTER_TAG_KEY && t.value?.toLowerCase() === 'true');
}

/**
 * Deregisters `arn` when the revision itself carries the auto-deregistration tag, i.e. the launcher registered
 * it for one run that asked for `auto_deregister_task_definition` (never a revision someone else registered,
 * even when the task carries the tag). Returns whether it did; an unknown or already INACTIVE revision is a no-op.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html
 */
export async function deregisterIfTagged(ecs: ECSClient, arn: string): Promise<boolean> {
  const revision = await describeOrNull(ecs, arn);
  if (revision?.td.status !== 'ACTIVE' || !revision.autoDeregister) return false;
  await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn }));
  return true;
}

/** RunTask as given; used by the offline `.sync` emulation (on AWS, Step Functions makes this call). */
export function runTask(ecs: ECSClient, request: RunTaskCommandInput): Promise<RunTaskCommandOutput> {
  return ecs.send(new RunTaskCommand(request));
}

/** One task, or undefined when ECS no longer knows it (stopped tasks stay visible for about an hour). */
export async function describeTask(
  ecs: ECSClient,
  cluster: string | undefined,
  taskArn: string,
): Promise<Task | undefined> {
  const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }));
  return out.tasks?.[0];
}

/** What DescribeTasks knows of each task: the task, or 'MISSING' when ECS no longer has it. */
export type TaskLookup = Map<string, Task | 'MISSING'>;

/**
 * Many tasks of one cluster, in batches of 100 (DescribeTasks' limit); stopped tasks stay visible for at
 * least an hour.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html
 */
export async function describeTasks(
  ecs: ECSClient,
  cluster: string,
  taskArns: string[],
): Promise<TaskLookup> {
  const found: TaskLookup = new Map();
  for (let i = 0; i < taskArns.length; i += 100) {
    const batch = taskArns.slice(i, i + 100);
    const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: batch }));
    for (const task of out.tasks ?? []) if (task.taskArn) found.set(task.taskArn, task);
    // ECS lists an unknown ARN under `failures` with reason MISSING; moto leaves it out. Either way, a
    // task a successful call did not return does not exist in that cluster.
    for (const arn of batch) if (!found.has(arn)) found.set(arn, 'MISSING');
  }
  return found;
}

/**
 * The ARNs of a cluster's tasks with that desired status, every page of ListTasks (100 a page). ECS lists a
 * stopped task for at least an hour after it stopped.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html
 */
export async function listTaskArns(
  ecs: ECSClient,
  cluster: string,
  desiredStatus: DesiredStatus,
): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const out = await ecs.send(new ListTasksCommand({ cluster, desiredStatus, nextToken }));
    arns.push(...(out.taskArns ?? []));
    nextToken = out.nextToken;
  } while (nextToken);
  return arns;
}

/** A task definition as ECS describes it (the local task runner reads its containers). */
export async function readTaskDefinition(ecs: ECSClient, arn: string): Promise<TaskDefinition | undefined> {
  return (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: arn }))).taskDefinition;
}

/** CreateCluster; an existing ACTIVE cluster of that name is returned unchanged, as on AWS. */
export async function createCluster(ecs: ECSClient, name: string): Promise<void> {
  await ecs.send(new CreateClusterCommand({ clusterName: name }));
}

export async function stopTask(
  ecs: ECSClient,
  cluster: string | undefined,
  taskArn: string,
  reason: string,
): Promise<void> {
  await ecs.send(new StopTaskCommand({ cluster, task: taskArn, reason }));
}
