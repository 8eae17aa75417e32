import type { ECSClient } from '@aws-sdk/client-ecs';
import { assertSubnetsInVpc, discoverSubnets, type Ec2 } from '../aws/ec2';
import { describeTaskDefinition, findOrRegisterTaskDefinition } from '../aws/ecs';
import type { JobDefaults } from '../config';
import { FlowRunNotPendingError } from '../errors';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { LogLevel } from '../prefect/types';
import type { ContainerCredential } from '../render/job-configuration';
import { type RenderJobIo, readRenderSources, renderJob, taskGroupFor } from '../render/render-job';
import type { BaseJobTemplate, JsonObject, TemplateReferenceReader } from '../render/types';
import { type RunTaskShape, toStepFunctionsRunTask } from './run-task-contract';

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
  settings: PrepareSettings;
  log: Logger;
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
 * Renders the job for a claimed flow run and turns it into the RunTask request: the pool's base job template
 * and the deployment / flow-run job variables → task definition (reused when an equal ACTIVE revision
 * exists, else registered) → RunTask request; then labels the run and logs what will be started.
 */
export async function prepareLaunch(deps: PrepareDeps, flowRunId: string): Promise<PreparedLaunch> {
  const { prefect, settings, log } = deps;
  const run = await prefect.readFlowRun(flowRunId);
  const stateType = run.state?.type ?? run.state_type;
  if (stateType !== 'PENDING') {
    throw new FlowRunNotPendingError(`flow run ${flowRunId} is ${run.state_name ?? stateType}, not Pending`);
  }
  const sources = await readRenderSources(prefect, run, settings.workPool);
  const poolName = sources.workPool.name;
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
    awsRenderIo(prefect, deps.ecs, deps.ec2),
  );
  const request = rendered.runTaskRequest;
  const taskDefinition = { arn: rendered.taskDefinitionArn, registered: rendered.registered };
  const { shape, parameters: runTask, droppedTags } = toStepFunctionsRunTask(request);

  const cluster = runTask.Cluster as string;
  await prefect.updateFlowRunLabels(flowRunId, {
    'prefect.worker.name': settings.workerName,
    'prefect.worker.type': 'ecs',
    'prefect.work-pool.name': poolName,
    ...(sources.workPool.id ? { 'prefect.work-pool.id': sources.workPool.id } : {}),
  });
  const placement = request.capacityProviderStrategy?.length
    ? `capacity providers ${request.capacityProviderStrategy.map((c) => c.capacityProvider).join(', ')}`
    : `launch type ${request.launchType ?? "the cluster's default"}`;
  const message =
    `prefect-ecs-launcher will start an ECS task: task definition ${taskDefinition.arn} ` +
    `(${taskDefinition.registered ? 'registered for this run' : 'reused'}), cluster ${cluster}, ${placement}.` +
    untaggedNote(droppedTags);
  await prefect.createFlowRunLogs([{ flowRunId, level: LogLevel.INFO, message }]);
  log.info('prepared', { flowRunId, taskDefinitionArn: taskDefinition.arn, cluster, shape });
  return {
    shape,
    runTask,
    cluster,
    taskDefinitionArn: taskDefinition.arn,
    registered: taskDefinition.registered ?? false,
  };
}

/**
 * Step Functions cannot tag the task it starts; the job's own tags (not the `prefect.io/*` labels every run
 * has) are named so that nobody looks for them on the task. See docs/compatibility.md.
 */
function untaggedNote(tags: { key: string; value: string }[]): string {
  const own = tags.filter((t) => !t.key.startsWith('prefect.io/')).map((t) => t.key);
  if (!own.length) return '';
  return ` The job's tags (${own.join(', ')}) are not applied to the task: Step Functions' ECS integration does not take tags; put them on the task definition and set propagateTags to TASK_DEFINITION in the pool's task_run_request.`;
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
