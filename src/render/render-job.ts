/**
 * One flow run's ECS job, end to end: the pool's base job template and the job variables → the prepared
 * job configuration → the task definition (built, or the one `task_definition_arn` names) → the RunTask
 * request, exactly as the launcher sends it. The steps are the pure builders of this folder; every read
 * (Prefect references, task definition lookup or registration, subnets) goes through the injected
 * `RenderJobIo`, so the launcher (src/launch/prepare.ts), the CLI's dry run and the differential tests run
 * the same code with different I/O.
 */
import type { RegisterTaskDefinitionCommandInput, RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { DeploymentNotFoundError } from '../errors';
import defaultBaseJobTemplate from './default-base-job-template.json';
import { type FlowRunContext, prepareJobConfiguration } from './job-configuration';
import {
  buildRunTaskRequest,
  type NetworkInput,
  planNetwork,
  requestedTaskDefinition,
  type TaskDefinitionInfo,
  taskDefinitionInfo,
  validateTaskDefinition,
} from './run-task-request';
import { buildTaskDefinition } from './task-definition';
import type {
  BaseJobTemplate,
  DeploymentInfo,
  EcsJobConfiguration,
  FlowInfo,
  FlowRunInfo,
  RenderedJob,
  TemplateReferenceReader,
  WorkPoolInfo,
} from './types';

/** The ECS task group the launcher gives each task: the report path maps events back to the flow run by it. */
export function taskGroupFor(flowRunId: string): string {
  return `prefect-flow-run:${flowRunId}`;
}

/**
 * A task definition that is rendered but not registered has no ARN yet. A dry run shows it as revision 1
 * in AWS's documentation account, which is also what python/render_oracle.py's fake ECS answers, so the
 * two renders compare as they are.
 * https://docs.aws.amazon.com/general/latest/gr/acct-identifiers.html (123456789012 in examples)
 */
export const PLACEHOLDER_ACCOUNT = '123456789012';
export const PLACEHOLDER_REVISION = 1;

export function placeholderTaskDefinitionArn(region: string, family: string): string {
  return `arn:aws:ecs:${region}:${PLACEHOLDER_ACCOUNT}:task-definition/${family}:${PLACEHOLDER_REVISION}`;
}

/** What the render knows about the flow run and the launcher, besides the I/O. */
export interface RenderJobInput extends FlowRunContext {
  template: BaseJobTemplate;
  /** The region the task runs in (task definition ARN, awslogs options). */
  region: string;
  /** LAUNCHER_CLUSTER: the cluster for jobs that name none. */
  defaultCluster?: string | undefined;
}

/** The reads and writes a render needs, injected. */
export interface RenderJobIo {
  references: TemplateReferenceReader;
  /** The task definition `task_definition_arn` names (DescribeTaskDefinition). */
  describeTaskDefinition(ref: string): Promise<TaskDefinitionInfo>;
  /**
   * The revision to run for a definition the launcher built: the launcher finds an equal one or registers
   * it; a dry run answers `placeholderTaskDefinition`.
   */
  resolveTaskDefinition(
    definition: RegisterTaskDefinitionCommandInput,
    options: { autoDeregister: boolean },
  ): Promise<TaskDefinitionInfo>;
  /** Every subnet of the VPC, or of the default VPC when null (the worker's default network). */
  discoverSubnets(vpcId: string | null): Promise<string[]>;
  /** Checks that a custom `network_configuration`'s subnets belong to `vpc_id`. */
  assertSubnetsInVpc(vpcId: string, subnets: readonly string[]): Promise<void>;
}

export interface RenderedJobDetail extends RenderedJob {
  /** The prepared job configuration the request was built from. */
  config: EcsJobConfiguration;
  /** The revision the request runs, and whether this render registered it. */
  taskDefinitionArn: string;
  registered: boolean;
}

/** `resolveTaskDefinition` for a render that registers nothing: the placeholder ARN, as if newly registered. */
export function placeholderTaskDefinition(region: string): RenderJobIo['resolveTaskDefinition'] {
  return async (definition) =>
    taskDefinitionInfo(placeholderTaskDefinitionArn(region, definition.family ?? ''), definition, true);
}

/**
 * The task definition and RunTask request for one flow run (see the file comment). The request carries the
 * launcher's task group; Step Functions adds `startedBy` when it sends it. Throws JobConfigurationError
 * (naming the variable to fix) for anything the job's configuration gets wrong.
 */
export async function renderJob(input: RenderJobInput, io: RenderJobIo): Promise<RenderedJobDetail> {
  const config = await prepareJobConfiguration({
    template: input.template,
    deployment: input.deployment,
    flowRun: input.flowRun,
    flow: input.flow,
    workPool: input.workPool,
    workerName: input.workerName,
    apiUrl: input.apiUrl,
    containerCredential: input.containerCredential,
    references: io.references,
  });
  if (!config.cluster && input.defaultCluster) config.cluster = input.defaultCluster;

  let taskDefinition: RegisterTaskDefinitionCommandInput | null = null;
  let info: TaskDefinitionInfo;
  const named = requestedTaskDefinition(config);
  if (named) {
    info = await io.describeTaskDefinition(named);
  } else {
    taskDefinition = buildTaskDefinition(config, {
      workPoolName: input.workPool.name,
      deploymentId: input.flowRun.deployment_id ?? null,
      flowId: input.flowRun.flow_id,
      region: input.region,
    });
    // Checked before registering, so a bad configuration never leaves a revision behind.
    validateTaskDefinition(taskDefinitionInfo('', taskDefinition), config);
    info = await io.resolveTaskDefinition(taskDefinition, {
      autoDeregister: config.auto_deregister_task_definition,
    });
  }
  const runTaskRequest: RunTaskCommandInput = {
    ...buildRunTaskRequest(config, info, await resolveNetwork(io, config, info)),
    group: taskGroupFor(input.flowRun.id),
  };
  return {
    taskDefinition,
    runTaskRequest,
    config,
    taskDefinitionArn: info.arn,
    registered: info.registered ?? false,
  };
}

async function resolveNetwork(
  io: RenderJobIo,
  config: EcsJobConfiguration,
  taskDefinition: TaskDefinitionInfo,
): Promise<NetworkInput> {
  const plan = planNetwork(config, taskDefinition);
  switch (plan.kind) {
    case 'none':
      return {};
    case 'check':
      await io.assertSubnetsInVpc(plan.vpcId, plan.subnets);
      return {};
    case 'discover':
      return { discoveredSubnets: await io.discoverSubnets(plan.vpcId) };
  }
}

/** The Prefect reads that find what a flow run's render needs (implemented by the Prefect client). */
export interface RenderSourceReader {
  /** null when the deployment was deleted. */
  readDeployment(id: string): Promise<DeploymentInfo | null>;
  readFlow(id: string): Promise<FlowInfo>;
  /** null when the pool does not exist. */
  readWorkPool(name: string): Promise<WorkPoolInfo | null>;
}

export interface RenderSources {
  template: BaseJobTemplate;
  deployment: DeploymentInfo | null;
  flow: FlowInfo;
  workPool: { id: string; name: string };
}

/**
 * The deployment, flow and work pool of a flow run, and the base job template to render: the pool's, or
 * prefect-aws's default when the pool has none (the worker repairs such a pool with the default). The pool
 * is the run's, else `fallbackPool` (LAUNCHER_WORK_POOL). A deleted deployment is DeploymentNotFoundError,
 * with the message the worker cancels the run with.
 */
export async function readRenderSources(
  prefect: RenderSourceReader,
  run: Pick<FlowRunInfo, 'flow_id' | 'deployment_id' | 'work_pool_name'>,
  fallbackPool: string,
): Promise<RenderSources> {
  const deployment = run.deployment_id ? await prefect.readDeployment(run.deployment_id) : null;
  const [flow, pool] = await Promise.all([
    prefect.readFlow(run.flow_id),
    prefect.readWorkPool(run.work_pool_name ?? fallbackPool),
  ]);
  return renderSourcesOf(run, { deployment, flow, pool }, fallbackPool);
}

/** `readRenderSources` from what the caller has already read (a poll's snapshot of the run). */
export function renderSourcesOf(
  run: Pick<FlowRunInfo, 'deployment_id'>,
  read: { deployment: DeploymentInfo | null; flow: FlowInfo; pool: WorkPoolInfo | null },
  fallbackPool: string,
): RenderSources {
  const { deployment, flow, pool } = read;
  if (run.deployment_id && !deployment) {
    throw new DeploymentNotFoundError(`Deployment ${run.deployment_id} no longer exists, cancelled run.`);
  }
  const template = hasJobConfiguration(pool?.base_job_template)
    ? pool.base_job_template
    : (defaultBaseJobTemplate as unknown as BaseJobTemplate);
  return {
    template,
    deployment,
    flow,
    workPool: { id: pool?.id ?? '', name: pool?.name ?? fallbackPool },
  };
}

function hasJobConfiguration(template: unknown): template is BaseJobTemplate {
  return (
    typeof template === 'object' &&
    template !== null &&
    typeof (template as { job_configuration?: unknown }).job_configuration === 'object'
  );
}
