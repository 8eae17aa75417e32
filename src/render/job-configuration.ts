/**
 * The flow run's ECS job configuration: the pool's base job template with the merged job variables
 * applied, references resolved, checked as prefect-aws's `ECSJobConfiguration` checks it, and prepared for
 * the flow run as `prepare_for_flow_run` prepares it (environment, labels, name, command). Pure apart from
 * the reference reads.
 * https://github.com/PrefectHQ/prefect/blob/main/src/prefect/workers/base.py
 * https://github.com/PrefectHQ/prefect/blob/main/src/integrations/prefect-aws/prefect_aws/workers/ecs_worker.py
 */
import { version as launcherVersion } from '../../package.json';
import { JobConfigurationError } from '../errors';
import { describeValue, mergeJobVariables } from './job-variables';
import { resolveReferences } from './references';
import { containerNameFromTaskDefinition, pyTruthy } from './task-definition';
import { applyValues, isJsonObject, pyStr } from './template';
import type {
  BaseJobTemplate,
  DeploymentInfo,
  EcsJobConfiguration,
  FlowInfo,
  FlowRunInfo,
  Json,
  JsonObject,
  TemplateReferenceReader,
} from './types';

/**
 * How the flow's container gets a Prefect credential. A plain value goes into the container's environment
 * (the worker's behaviour); a secret ARN (Secrets Manager or SSM) goes into the task definition as an ECS
 * secret, so the value never appears in RunTask overrides, which Step Functions history and ECS events show.
 */
export type ContainerCredential =
  | { kind: 'none' }
  | { kind: 'apiKey'; value: string }
  | { kind: 'authString'; value: string }
  | { kind: 'apiKeySecret'; arn: string }
  | { kind: 'authStringSecret'; arn: string };

/** Everything about the flow run that preparation reads, besides the job configuration itself. */
export interface FlowRunContext {
  deployment: DeploymentInfo | null;
  flowRun: FlowRunInfo;
  flow: FlowInfo;
  workPool: { id: string; name: string };
  workerName: string;
  /** PREFECT_API_URL for the flow's container. */
  apiUrl: string;
  containerCredential: ContainerCredential;
}

export interface PrepareJobConfigurationInput extends FlowRunContext {
  template: BaseJobTemplate;
  references: TemplateReferenceReader;
}

/** The configuration as validated, before flow-run preparation: `env` still holds `null` (unset) values. */
export type ParsedJobConfiguration = Omit<EcsJobConfiguration, 'env'> & {
  env: { [name: string]: string | null };
};

/** `BaseJobConfiguration._base_flow_run_command`; it reads PREFECT__FLOW_RUN_ID. */
export const DEFAULT_COMMAND = 'prefect flow-run execute';

/**
 * The `prefect.io/version` label. The worker puts its Prefect version there; the launcher runs no Prefect,
 * so it names itself instead, in a form no one can mistake for a Prefect version.
 */
export const VERSION_LABEL = `prefect-ecs-launcher/${launcherVersion}`;

/**
 * The prepared job configuration for a flow run, as prefect-aws's `ECSJobConfiguration.resolve_for_flow_run`
 * builds it: merge job variables (`mergeJobVariables`), apply them to the template (`applyValues`), resolve
 * block and variable references (`resolveReferences`), check (`parseJobConfiguration`) and prepare
 * (`prepareForFlowRun`). Throws JobConfigurationError for anything the user must fix.
 */
export async function prepareJobConfiguration(
  input: PrepareJobConfigurationInput,
): Promise<EcsJobConfiguration> {
  const { jobConfiguration, variables } = mergeJobVariables(input.template, input.deployment, input.flowRun);
  const applied = applyValues(jobConfiguration, variables) ?? {};
  const resolved = await resolveReferences(applied, input.references);
  return prepareForFlowRun(parseJobConfiguration(resolved), input);
}

// ---------------------------------------------------------------------------------------------------------
// ECSJobConfiguration(**rendered): field types (pydantic's lax mode) and the model validators.

function fieldError(field: string, expected: string, value: Json | undefined): JobConfigurationError {
  return new JobConfigurationError(
    `Job configuration field '${field}' must be ${expected}, got ${describeValue(value)}. Check the job variable that sets it and the work pool's base job template (job_configuration.${field.split(/[.[]/)[0]}).`,
  );
}

function optionalString(rendered: JsonObject, field: string): string | null {
  const value = rendered[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw fieldError(field, 'a string or null', value);
  return value;
}

/** pydantic's lax bool: true/false, 0/1, and the strings it reads as booleans ("true", "off", "y"…). */
function laxBool(field: string, value: Json): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string') {
    const text = value.toLowerCase();
    if (['1', 'on', 't', 'true', 'y', 'yes'].includes(text)) return true;
    if (['0', 'off', 'f', 'false', 'n', 'no'].includes(text)) return false;
  }
  throw fieldError(field, 'a boolean (true or false)', value);
}

function optionalBool(rendered: JsonObject, field: string): boolean | null {
  const value = rendered[field];
  return value === undefined || value === null ? null : laxBool(field, value);
}

/** Fix: pydantic refuses `null` for these non-optional booleans; the launcher takes it as the default. */
function bool(rendered: JsonObject, field: string): boolean {
  return optionalBool(rendered, field) ?? false;
}

/** Fix: pydantic refuses `null` for these dicts (the server's schema check lets it through); here it is `{}`. */
function object(rendered: JsonObject, field: string): JsonObject {
  const value = rendered[field];
  if (value === undefined || value === null) return {};
  if (!isJsonObject(value)) throw fieldError(field, 'an object', value);
  return value;
}

function stringMap(rendered: JsonObject, field: string): { [key: string]: string } {
  const map = object(rendered, field);
  for (const [key, value] of Object.entries(map)) {
    if (typeof value !== 'string') throw fieldError(`${field}.${key}`, 'a string', value);
  }
  return map as { [key: string]: string };
}

function containerDefinitionsOf(taskDefinition: JsonObject): JsonObject[] {
  const containers = taskDefinition.containerDefinitions;
  if (containers === undefined || containers === null) return [];
  if (!Array.isArray(containers)) {
    throw fieldError('task_definition.containerDefinitions', 'a list of container definitions', containers);
  }
  containers.forEach((container, i) => {
    if (!isJsonObject(container)) {
      throw fieldError(
        `task_definition.containerDefinitions[${i}]`,
        'a container definition (an object)',
        container,
      );
    }
  });
  return containers as JsonObject[];
}

/**
 * `ECSJobConfiguration(**rendered)`: the fields' types as pydantic checks them (in lax mode; `env` values
 * are converted with Python's `str()`), then the model validators, with messages that also say which job
 * variable to set. Unknown keys are ignored, as are the deprecated `stream_output`,
 * `task_start_timeout_seconds` and `task_watch_poll_interval` that stale pool templates still carry.
 */
export function parseJobConfiguration(rendered: Json): ParsedJobConfiguration {
  if (!isJsonObject(rendered)) {
    throw new JobConfigurationError(
      `The rendered job configuration must be an object, got ${describeValue(rendered)}. Fix the work pool's base job template.`,
    );
  }
  const env: { [name: string]: string | null } = {};
  for (const [name, value] of Object.entries(object(rendered, 'env'))) {
    env[name] = value === null ? null : pyStr(value);
  }
  const awsCredentials = rendered.aws_credentials;
  if (awsCredentials !== undefined && awsCredentials !== null && !isJsonObject(awsCredentials)) {
    throw fieldError('aws_credentials', 'an AwsCredentials block (an object)', awsCredentials);
  }
  const config: ParsedJobConfiguration = {
    // Prefect's `return_v_or_none`: an empty command is no command.
    command: optionalString(rendered, 'command') || null,
    env,
    labels: stringMap(rendered, 'labels'),
    name: optionalString(rendered, 'name'),
    task_definition: object(rendered, 'task_definition'),
    task_run_request: object(rendered, 'task_run_request'),
    cluster: optionalString(rendered, 'cluster'),
    container_name: optionalString(rendered, 'container_name'),
    vpc_id: optionalString(rendered, 'vpc_id'),
    network_configuration: object(rendered, 'network_configuration'),
    configure_cloudwatch_logs: optionalBool(rendered, 'configure_cloudwatch_logs'),
    cloudwatch_logs_options: stringMap(rendered, 'cloudwatch_logs_options'),
    cloudwatch_logs_prefix: optionalString(rendered, 'cloudwatch_logs_prefix'),
    execution_role_arn: optionalString(rendered, 'execution_role_arn'),
    auto_deregister_task_definition: bool(rendered, 'auto_deregister_task_definition'),
    match_latest_revision_in_family: bool(rendered, 'match_latest_revision_in_family'),
    prefect_api_key_secret_arn: optionalString(rendered, 'prefect_api_key_secret_arn'),
    prefect_api_auth_string_secret_arn: optionalString(rendered, 'prefect_api_auth_string_secret_arn'),
    aws_credentials: isJsonObject(awsCredentials) ? awsCredentials : null,
  };
  const containers = containerDefinitionsOf(config.task_definition);
  const namesDefinition = pyTruthy(config.task_run_request.taskDefinition);

  if (!namesDefinition && !pyTruthy(config.task_definition)) {
    throw new JobConfigurationError(
      "A task definition must be provided if a task definition ARN is not present on the task run request. Set the task_definition_arn job variable, or give the work pool's base job template a job_configuration.task_definition.",
    );
  }
  if (config.container_name === null) {
    config.container_name = containerNameFromTaskDefinition(config.task_definition);
  }
  if (containers.length > 0 && containers.every((c) => c.essential === false)) {
    throw new JobConfigurationError(
      'At least one container in the task definition must be marked as essential. Remove `"essential": false` from the flow container in the task definition of the work pool\'s base job template.',
    );
  }
  if (
    config.configure_cloudwatch_logs &&
    !config.execution_role_arn &&
    !namesDefinition &&
    !pyTruthy(config.task_definition.executionRoleArn)
  ) {
    throw new JobConfigurationError(
      'An `execution_role_arn` must be provided to use `configure_cloudwatch_logs` or `stream_logs`. Set the execution_role_arn job variable to a task execution role that may write to CloudWatch Logs, or turn configure_cloudwatch_logs off.',
    );
  }
  if (pyTruthy(config.cloudwatch_logs_options) && !config.configure_cloudwatch_logs) {
    throw new JobConfigurationError(
      '`configure_cloudwatch_logs` must be enabled to use `cloudwatch_logs_options`. Set the configure_cloudwatch_logs job variable to true, or remove cloudwatch_logs_options.',
    );
  }
  if (pyTruthy(config.network_configuration) && !config.vpc_id) {
    throw new JobConfigurationError(
      "You must provide a `vpc_id` to enable custom `network_configuration`. Set the vpc_id job variable to the VPC of the network configuration's subnets.",
    );
  }
  return config;
}

// ---------------------------------------------------------------------------------------------------------
// prepare_for_flow_run

/** Python's `datetime.astimezone(UTC).isoformat()` of an API timestamp; undefined if it is not one. */
export function utcIsoformat(timestamp: string): string | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/.exec(
      timestamp,
    );
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s = '0', fraction = '', zone = 'Z'] = m;
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  const utc = new Date(ms - offsetMinutes * 60_000).toISOString().slice(0, 19);
  const micros = fraction.slice(0, 6).padEnd(6, '0');
  return `${utc}${/^0*$/.test(micros) ? '' : `.${micros}`}+00:00`;
}

/**
 * `prepare_for_flow_run` of prefect-aws's ECSJobConfiguration, for the launcher:
 * - env, later entries winning and `null`s then dropped: PREFECT_API_URL; the credential when it is a
 *   plain value; PREFECT__FLOW_RUN_ID, PREFECT__WORKER_NAME, PREFECT__FLOW_ID, PREFECT__FLOW_NAME,
 *   PREFECT__DEPLOYMENT_ID, PREFECT__DEPLOYMENT_NAME; the job's env. The worker copies every PREFECT_*
 *   setting it has; the launcher passes only the URL and the credential, never its own settings. A
 *   `*_secret_arn` removes the same-named variable, since the container gets it as a secret.
 * - a secret-ARN credential fills the job's `prefect_api_key_secret_arn` / `prefect_api_auth_string_secret_arn`
 *   unless the job already provides that variable itself (its own ARN, or the name in its env, where
 *   `null` means "none"), or names an existing task definition, to which no secret can be added.
 * - labels: the worker's `prefect.io/*` labels (with `VERSION_LABEL`), the job's labels winning.
 * - name: `{{ ctx.flow.* }}` / `{{ ctx.flow_run.* }}` applied, else the flow run's name; command: the
 *   job's, else `prefect flow-run execute`.
 */
export function prepareForFlowRun(parsed: ParsedJobConfiguration, ctx: FlowRunContext): EcsJobConfiguration {
  const config = structuredClone(parsed);
  const { flowRun, flow, deployment, containerCredential: credential } = ctx;
  const namesDefinition = pyTruthy(config.task_run_request.taskDefinition);

  if (
    credential.kind === 'apiKeySecret' &&
    !config.prefect_api_key_secret_arn &&
    !Object.hasOwn(config.env, 'PREFECT_API_KEY') &&
    !namesDefinition
  ) {
    config.prefect_api_key_secret_arn = credential.arn;
  }
  if (
    credential.kind === 'authStringSecret' &&
    !config.prefect_api_auth_string_secret_arn &&
    !Object.hasOwn(config.env, 'PREFECT_API_AUTH_STRING') &&
    !namesDefinition
  ) {
    config.prefect_api_auth_string_secret_arn = credential.arn;
  }

  const merged: { [name: string]: string | null } = {
    PREFECT_API_URL: ctx.apiUrl,
    ...(credential.kind === 'apiKey' ? { PREFECT_API_KEY: credential.value } : {}),
    ...(credential.kind === 'authString' ? { PREFECT_API_AUTH_STRING: credential.value } : {}),
    PREFECT__FLOW_RUN_ID: flowRun.id,
    PREFECT__WORKER_NAME: ctx.workerName,
    ...(flowRun.flow_id ? { PREFECT__FLOW_ID: flowRun.flow_id } : {}),
    ...(flow.name ? { PREFECT__FLOW_NAME: flow.name } : {}),
    ...(flowRun.deployment_id ? { PREFECT__DEPLOYMENT_ID: flowRun.deployment_id } : {}),
    ...(deployment?.name ? { PREFECT__DEPLOYMENT_NAME: deployment.name } : {}),
    ...config.env,
  };
  // Fix: prefect-aws `del`s PREFECT_API_KEY unconditionally and fails when there is none (§8.2).
  if (config.prefect_api_key_secret_arn) delete merged.PREFECT_API_KEY;
  if (config.prefect_api_auth_string_secret_arn) delete merged.PREFECT_API_AUTH_STRING;
  const env: { [name: string]: string } = {};
  for (const [name, value] of Object.entries(merged)) if (value !== null) env[name] = value;

  const updated = deployment?.updated ? utcIsoformat(deployment.updated) : undefined;
  const labels: { [key: string]: string } = {
    'prefect.io/flow-run-id': flowRun.id,
    'prefect.io/flow-run-name': flowRun.name,
    'prefect.io/version': VERSION_LABEL,
    'prefect.io/work-pool-name': ctx.workPool.name,
    ...(ctx.workPool.id ? { 'prefect.io/work-pool-id': ctx.workPool.id } : {}),
    'prefect.io/worker-name': ctx.workerName,
    'prefect.io/flow-id': flow.id,
    'prefect.io/flow-name': flow.name,
    ...(deployment
      ? {
          'prefect.io/deployment-id': deployment.id,
          'prefect.io/deployment-name': deployment.name,
          ...(updated ? { 'prefect.io/deployment-updated': updated } : {}),
        }
      : {}),
    ...config.labels,
  };

  let name: Json | undefined = config.name;
  if (pyTruthy(name)) {
    const values = {
      ctx: { flow: flow as unknown as JsonObject, flow_run: flowRun as unknown as JsonObject },
    };
    // Prefect keeps the name as written when its one placeholder has no value.
    name = applyValues(name as string, values) ?? name;
  }
  const prepared: EcsJobConfiguration = {
    ...config,
    env,
    labels,
    name: pyTruthy(name) ? pyStr(name as Json) : flowRun.name,
    command: config.command || DEFAULT_COMMAND,
  };
  requireExecutionRoleForSecrets(prepared, credential);
  return prepared;
}

/**
 * ECS refuses to register a task definition with container secrets but no execution role ("When you are
 * specifying container secrets, you must also specify a value for 'executionRoleArn'"), and the role must
 * be allowed to read them. Said here, where the job variable to set can be named.
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
 */
function requireExecutionRoleForSecrets(config: EcsJobConfiguration, credential: ContainerCredential): void {
  if (pyTruthy(config.task_run_request.taskDefinition)) return;
  if (config.execution_role_arn || pyTruthy(config.task_definition.executionRoleArn)) return;
  const secrets: [field: string, arn: string | null, launcherKind: ContainerCredential['kind']][] = [
    ['prefect_api_key_secret_arn', config.prefect_api_key_secret_arn, 'apiKeySecret'],
    ['prefect_api_auth_string_secret_arn', config.prefect_api_auth_string_secret_arn, 'authStringSecret'],
  ];
  for (const [field, arn, launcherKind] of secrets) {
    if (!arn) continue;
    const fromLauncher = credential.kind === launcherKind && 'arn' in credential && credential.arn === arn;
    const what = fromLauncher
      ? `The launcher passes its Prefect credential to the flow container as the ECS secret ${arn}`
      : `The job's ${field} puts ${arn} into the flow container as an ECS secret`;
    throw new JobConfigurationError(
      `${what}, and ECS reads secrets with the task execution role, but the job has none. Set the execution_role_arn job variable to a role that may read that secret (secretsmanager:GetSecretValue, or ssm:GetParameters for a parameter).`,
    );
  }
}
