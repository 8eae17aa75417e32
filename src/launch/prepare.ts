import type { ECSClient } from '@aws-sdk/client-ecs';
import { assertSubnetsInVpc, discoverSubnets, type Ec2 } from '../aws/ec2';
import { describeTaskDefinition, findOrRegisterTaskDefinition } from '../aws/ecs';
import type { JobDefaults } from '../config';
import { FlowRunNotPendingError } from '../errors';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { LogLevel } from '../prefect/types';
import type { ContainerCredential } from '../render/job-configuration';
import {
  type RenderJobIo,
  type RenderSources,
  readRenderSources,
  renderJob,
  renderSourcesOf,
  taskGroupFor,
} from '../render/render-job';
import type { TaskDefinitionInfo } from '../render/run-task-request';
import type { BaseJobTemplate, FlowRunInfo, JsonObject, TemplateReferenceReader } from '../render/types';
import { type AwsCache, definitionKey, isFixedRevision } from './aws-cache';
import { type RunTaskShape, toStepFunctionsRunTask } from './run-task-contract';
import { usableSnapshot } from './snapshot';

export type PreparePrefect = Pick<
  PrefectClient,
  | 'readFlowRun'
  | 'readDeployment'
  | 'readFlow'
  | 'readWorkPool'
  | 'updateFlowRunLabels'
  | 'createFlowRunLogs'
  | 'readBlockDocumentData'
  | 'readBlockDocumentDataByName'
  | 'readVariableValue'
>;

export interface PrepareSettings {
  workPool: string;
  workerName: string;
  apiUrl: string;
  containerCredential: ContainerCredential;
  /** LAUNCHER_EXECUTION_ROLE_ARN and the default network, as pool defaults where the pool sets none. */
  jobDefaults: JobDefaults;
  /** LAUNCHER_CLUSTER: the cluster for jobs that name none. */
  defaultCluster: string | undefined;
  region: string;
}

export interface PrepareDeps {
  prefect: PreparePrefect;
  ecs: ECSClient;
  ec2: Ec2;
  /** What this warm function remembers of AWS (src/launch/aws-cache.ts). */
  cache: AwsCache;
  settings: PrepareSettings;
  log: Logger;
  now?: () => Date;
}

/** Prepare's event: the execution's state (statemachines/launch.asl.json). */
export interface PrepareInput {
  flowRunId: string;
  /** The poll's reads of the run (src/launch/snapshot.ts); read afresh when absent, stale or not this run's. */
  snapshot?: unknown;
  /** Set when RunTask found a reused revision inactive: resolve the task definition from ECS, not the cache. */
  refreshTaskDefinition: boolean;
}

/** Prepare's output, at `$.prepared` in the execution: the RunTask request the `.sync` state sends. */
export interface PreparedLaunch {
  /** Which RunTask state sends the request (src/launch/run-task-contract.ts). */
  shape: RunTaskShape;
  /** Exactly that state's fields, PascalCase, as Step Functions' ECS integration takes them. */
  runTask: Record<string, unknown>;
  cluster: string;
  taskDefinitionArn: string;
  registered: boolean;
  /**
   * The revision came from this function's cache rather than from ECS just now: if RunTask finds it inactive,
   * the state machine prepares again with `refreshTaskDefinition`.
   */
  taskDefinitionCached: boolean;
}

export { taskGroupFor };

/**
 * How the launcher reaches AWS while rendering: task definitions described, found or registered in ECS,
 * subnets from EC2. The CLI's dry run uses the same, minus the registration.
 */
export function awsRenderIo(references: TemplateReferenceReader, ecs: ECSClient, ec2: Ec2): RenderJobIo {
  return {
    references,
    describeTaskDefinition: (ref) => describeTaskDefinition(ecs, ref),
    resolveTaskDefinition: (definition, options) => findOrRegisterTaskDefinition(ecs, definition, options),
    discoverSubnets: (vpcId) => discoverSubnets(ec2, vpcId),
    assertSubnetsInVpc: (vpcId, subnets) => assertSubnetsInVpc(ec2, vpcId, subnets),
  };
}

/**
 * `io` answering from `cache` where AWS's answer cannot have changed in a way that matters (see
 * src/launch/aws-cache.ts): subnets and checked subnet lists always; a task definition when it is a fixed
 * revision or an equal definition not registered for one run, unless `refresh`. `taskDefinitionCached` tells
 * whether the revision to run came from the cache.
 */
export function cachedRenderIo(
  io: RenderJobIo,
  cache: AwsCache,
  refresh: boolean,
): { io: RenderJobIo; taskDefinitionCached: () => boolean } {
  let cached = false;
  /**
   * One AWS call per key at a time: a lookup already under way is joined (unless `join` is false), and its
   * answer handed to `keep` once it arrives.
   */
  const once = async <T>(
    key: string,
    load: () => Promise<T>,
    keep: (value: T) => void,
    join = true,
  ): Promise<T> => {
    const pending = join ? cache.inFlight.get(key) : undefined;
    if (pending) return pending as Promise<T>;
    const loading = load();
    cache.inFlight.set(key, loading);
    try {
      const value = await loading;
      keep(value);
      return value;
    } finally {
      cache.inFlight.delete(key);
    }
  };
  const remember = async (
    key: string,
    load: () => Promise<TaskDefinitionInfo>,
  ): Promise<TaskDefinitionInfo> => {
    const hit = refresh ? undefined : cache.taskDefinitions.get(key);
    if (hit) {
      cached = true;
      return hit;
    }
    // A lookup under way for an equal definition is as fresh as our own; only its caller registered anything.
    let ours = false;
    const info = await once(
      key,
      () => {
        ours = true;
        return load();
      },
      (value) => cache.taskDefinitions.set(key, { ...value, registered: false }),
      !refresh,
    );
    return ours ? info : { ...info, registered: false };
  };
  return {
    taskDefinitionCached: () => cached,
    io: {
      references: io.references,
      describeTaskDefinition: (ref) =>
        isFixedRevision(ref)
          ? remember(`describe ${ref}`, () => io.describeTaskDefinition(ref))
          : io.describeTaskDefinition(ref),
      resolveTaskDefinition: (definition, options) =>
        options.autoDeregister
          ? io.resolveTaskDefinition(definition, options)
          : remember(`resolve ${definitionKey(definition)}`, () =>
              io.resolveTaskDefinition(definition, options),
            ),
      discoverSubnets: async (vpcId) => {
        const key = `subnets of ${vpcId ?? 'the default VPC'}`;
        const hit = cache.subnets.get(key);
        if (hit) return hit;
        return once(
          key,
          () => io.discoverSubnets(vpcId),
          (subnets) => cache.subnets.set(key, subnets),
        );
      },
      assertSubnetsInVpc: async (vpcId, subnets) => {
        const key = `${vpcId} has ${[...subnets].sort().join(',')}`;
        if (cache.subnets.get(key)) return;
        await once(
          key,
          () => io.assertSubnetsInVpc(vpcId, subnets),
          () => cache.subnets.set(key, [...subnets]),
        );
      },
    },
  };
}

/**
 * Renders the job for a claimed flow run and turns it into the RunTask request: the pool's base job template
 * and the deployment / flow-run job variables → task definition (reused when an equal ACTIVE revision
 * exists, else registered) → RunTask request; then labels the run as the worker does.
 *
 * The run, deployment, flow and pool come from the poll's snapshot when it is usable, else from Prefect (and
 * then the run must still be Pending). The claim message was written by the poll; only a note about tags the
 * task cannot carry is logged to the run from here.
 */
export async function prepareLaunch(deps: PrepareDeps, input: PrepareInput): Promise<PreparedLaunch> {
  const { prefect, settings, log } = deps;
  const { flowRunId } = input;
  const now = deps.now ?? (() => new Date());
  const snapshot = usableSnapshot(input.snapshot, flowRunId, now());
  let run: FlowRunInfo;
  let sources: RenderSources;
  if (snapshot) {
    run = snapshot.flowRun;
    sources = renderSourcesOf(
      run,
      { deployment: snapshot.deployment, flow: snapshot.flow, pool: snapshot.workPool },
      settings.workPool,
    );
  } else {
    const read = await prefect.readFlowRun(flowRunId);
    const stateType = read.state?.type ?? read.state_type;
    if (stateType !== 'PENDING') {
      throw new FlowRunNotPendingError(
        `flow run ${flowRunId} is ${read.state_name ?? stateType}, not Pending`,
      );
    }
    run = read;
    sources = await readRenderSources(prefect, run, settings.workPool);
  }
  const poolName = sources.workPool.name;
  const aws = cachedRenderIo(
    awsRenderIo(prefect, deps.ecs, deps.ec2),
    deps.cache,
    input.refreshTaskDefinition,
  );
  const rendered = await renderJob(
    {
      ...sources,
      template: withLauncherDefaults(sources.template, settings.jobDefaults),
      flowRun: run,
      workerName: settings.workerName,
      apiUrl: settings.apiUrl,
      containerCredential: settings.containerCredential,
      region: settings.region,
      defaultCluster: settings.defaultCluster,
    },
    aws.io,
  );
  const request = rendered.runTaskRequest;
  const { shape, parameters: runTask, droppedTags } = toStepFunctionsRunTask(request);

  const cluster = runTask.Cluster as string;
  const labelled = await prefect.updateFlowRunLabels(flowRunId, {
    'prefect.worker.name': settings.workerName,
    'prefect.worker.type': 'ecs',
    'prefect.work-pool.name': poolName,
    ...(sources.workPool.id ? { 'prefect.work-pool.id': sources.workPool.id } : {}),
  });
  if (!labelled) {
    // Prefect before 3.1: the sweep then tells its runs by their executions (src/launch/reconcile.ts).
    log.warn('this Prefect server has no flow-run labels (it is older than 3.1); the run is not labelled', {
      flowRunId,
    });
  }
  const note = untaggedNote(droppedTags);
  if (note) await prefect.createFlowRunLogs([{ flowRunId, level: LogLevel.WARNING, message: note }]);
  const taskDefinitionCached = aws.taskDefinitionCached();
  log.info('prepared', {
    flowRunId,
    taskDefinitionArn: rendered.taskDefinitionArn,
    registered: rendered.registered,
    taskDefinitionCached,
    fromSnapshot: Boolean(snapshot),
    cluster,
    shape,
  });
  return {
    shape,
    runTask,
    cluster,
    taskDefinitionArn: rendered.taskDefinitionArn,
    registered: rendered.registered ?? false,
    taskDefinitionCached,
  };
}

/**
 * Step Functions cannot tag the task it starts; the job's own tags (not the `prefect.io/*` labels every run
 * has) are named so that nobody looks for them on the task. See docs/compatibility.md.
 */
function untaggedNote(tags: { key: string; value: string }[]): string {
  const own = tags.filter((t) => !t.key.startsWith('prefect.io/')).map((t) => t.key);
  if (!own.length) return '';
  return `prefect-ecs-launcher: the job's tags (${own.join(', ')}) are not applied to the task: Step Functions' ECS integration does not take tags; put them on the task definition and set propagateTags to TASK_DEFINITION in the pool's task_run_request.`;
}

/**
 * The template with the launcher's job defaults as the defaults of its variables, where the pool sets none:
 * they then rank as pool defaults (below deployment and flow-run job variables).
 */
export function withLauncherDefaults(template: BaseJobTemplate, defaults: JobDefaults): BaseJobTemplate {
  const values: JsonObject = {};
  if (defaults.executionRoleArn) values.execution_role_arn = defaults.executionRoleArn;
  if (defaults.network) {
    const { vpcId, subnets, securityGroups, assignPublicIp } = defaults.network;
    values.vpc_id = vpcId;
    values.network_configuration = { subnets, securityGroups, assignPublicIp };
  }
  // A malformed template (no `variables`) is left for the renderer to report.
  const properties = template.variables?.properties;
  const unset = Object.keys(values).filter((name) => {
    const property = properties?.[name];
    return property && (property.default === undefined || property.default === null);
  });
  if (!unset.length) return template;
  const copy = structuredClone(template);
  const copied = copy.variables.properties as Record<string, JsonObject>;
  for (const name of unset) copied[name] = { ...copied[name], default: values[name] as JsonObject[string] };
  return copy;
}
