import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient, RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { assertSubnetsInVpc, discoverSubnets } from '../aws/ec2';
import { describeTaskDefinition, findOrRegisterTaskDefinition } from '../aws/ecs';
import { DeploymentNotFoundError, FlowRunNotPendingError, PayloadTooLargeError } from '../errors';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { LogLevel } from '../prefect/types';
import defaultBaseJobTemplate from '../render/default-base-job-template.json';
import { type ContainerCredential, prepareJobConfiguration } from '../render/job-configuration';
import {
  buildRunTaskRequest,
  type NetworkInput,
  planNetwork,
  requestedTaskDefinition,
  type TaskDefinitionInfo,
  taskDefinitionInfo,
  validateTaskDefinition,
} from '../render/run-task-request';
import { buildTaskDefinition } from '../render/task-definition';
import type { BaseJobTemplate, EcsJobConfiguration } from '../render/types';
import { toPascalCase } from './casing';

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
  /** LAUNCHER_CLUSTER: the cluster for jobs that name none. */
  defaultCluster: string | undefined;
  region: string;
}

export interface PrepareDeps {
  prefect: PreparePrefect;
  ecs: ECSClient;
  ec2: EC2Client;
  settings: PrepareSettings;
  log: Logger;
}

/** Prepare's output, at `$.prepared` in the execution: the RunTask request the `.sync` state sends. */
export interface PreparedLaunch {
  /** PascalCase, as Step Functions' ECS integration takes it. */
  runTask: unknown;
  cluster: string;
  taskDefinitionArn: string;
  registered: boolean;
}

/**
 * Step Functions caps a state's input and output at 256 KiB (262,144 bytes); the execution input and the
 * other fields need some room. https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html
 */
export const MAX_REQUEST_BYTES = 200 * 1024;

/** The ECS task group the launcher gives each task: the report path maps events back to the flow run by it. */
export function taskGroupFor(flowRunId: string): string {
  return `prefect-flow-run:${flowRunId}`;
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
  const deployment = run.deployment_id ? await prefect.readDeployment(run.deployment_id) : null;
  if (run.deployment_id && !deployment) {
    throw new DeploymentNotFoundError(`Deployment ${run.deployment_id} no longer exists, cancelled run.`);
  }
  const [flow, pool] = await Promise.all([
    prefect.readFlow(run.flow_id),
    prefect.readWorkPool(run.work_pool_name ?? settings.workPool),
  ]);
  const poolName = pool?.name ?? settings.workPool;
  const template = hasJobConfiguration(pool?.base_job_template)
    ? pool.base_job_template
    : (defaultBaseJobTemplate as unknown as BaseJobTemplate);

  const config = await prepareJobConfiguration({
    template,
    deployment,
    flowRun: run,
    flow,
    workPool: { id: pool?.id ?? '', name: poolName },
    workerName: settings.workerName,
    apiUrl: settings.apiUrl,
    containerCredential: settings.containerCredential,
    references: prefect,
  });
  if (!config.cluster && settings.defaultCluster) config.cluster = settings.defaultCluster;

  const taskDefinition = await resolveTaskDefinition(deps, config, {
    workPoolName: poolName,
    deploymentId: run.deployment_id ?? null,
    flowId: run.flow_id,
    region: settings.region,
  });
  const request: RunTaskCommandInput = {
    ...buildRunTaskRequest(config, taskDefinition, await resolveNetwork(deps, config, taskDefinition)),
    group: taskGroupFor(flowRunId),
  };
  const runTask = toPascalCase(request);
  const size = Buffer.byteLength(JSON.stringify(runTask));
  if (size > MAX_REQUEST_BYTES) {
    throw new PayloadTooLargeError(
      `the RunTask request for flow run ${flowRunId} is ${size} bytes, over the ${MAX_REQUEST_BYTES} bytes a Step Functions state can carry; shrink the job's env (put large values in the image, a file or a secret) or its overrides`,
    );
  }

  const cluster = request.cluster ?? 'default';
  await prefect.updateFlowRunLabels(flowRunId, {
    'prefect.worker.name': settings.workerName,
    'prefect.worker.type': 'ecs',
    'prefect.work-pool.name': poolName,
    ...(pool?.id ? { 'prefect.work-pool.id': pool.id } : {}),
  });
  const placement = request.capacityProviderStrategy?.length
    ? `capacity providers ${request.capacityProviderStrategy.map((c) => c.capacityProvider).join(', ')}`
    : `launch type ${request.launchType ?? "the cluster's default"}`;
  const message =
    `prefect-ecs-launcher will start an ECS task: task definition ${taskDefinition.arn} ` +
    `(${taskDefinition.registered ? 'registered for this run' : 'reused'}), cluster ${cluster}, ${placement}.`;
  await prefect.createFlowRunLogs([{ flowRunId, level: LogLevel.INFO, message }]);
  log.info('prepared', { flowRunId, taskDefinitionArn: taskDefinition.arn, cluster, bytes: size });
  return {
    runTask,
    cluster,
    taskDefinitionArn: taskDefinition.arn,
    registered: taskDefinition.registered ?? false,
  };
}

function hasJobConfiguration(template: unknown): template is BaseJobTemplate {
  return (
    typeof template === 'object' &&
    template !== null &&
    typeof (template as { job_configuration?: unknown }).job_configuration === 'object'
  );
}

async function resolveTaskDefinition(
  deps: PrepareDeps,
  config: EcsJobConfiguration,
  ctx: Parameters<typeof buildTaskDefinition>[1],
): Promise<TaskDefinitionInfo> {
  const named = requestedTaskDefinition(config);
  if (named) return describeTaskDefinition(deps.ecs, named);
  const definition = buildTaskDefinition(config, ctx);
  // Checked before registering, so a bad configuration never leaves a revision behind.
  validateTaskDefinition(taskDefinitionInfo('', definition), config);
  return findOrRegisterTaskDefinition(deps.ecs, definition, {
    autoDeregister: config.auto_deregister_task_definition,
  });
}

async function resolveNetwork(
  deps: PrepareDeps,
  config: EcsJobConfiguration,
  taskDefinition: TaskDefinitionInfo,
): Promise<NetworkInput> {
  const plan = planNetwork(config, taskDefinition);
  switch (plan.kind) {
    case 'none':
      return {};
    case 'check':
      await assertSubnetsInVpc(deps.ec2, plan.vpcId, plan.subnets);
      return {};
    case 'discover':
      return { discoveredSubnets: await discoverSubnets(deps.ec2, plan.vpcId) };
  }
}
