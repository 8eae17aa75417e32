/**
 * The ECS RunTask request for a job, as prefect-aws 0.7.12's `ECSWorker._prepare_task_run_request` builds
 * it, plus the worker's `_validate_task_definition` checks; the worker's known bugs are fixed (each fix is
 * marked "Fix:"). Pure: the network lookups it may need are planned here (`planNetwork`) and done by
 * src/aws/ec2.ts.
 */
import type { RunTaskCommandInput, Tag } from '@aws-sdk/client-ecs';
import { JobConfigurationError } from '../errors';
import { pyRepr } from './pyrepr';
import { ShlexError, shlexSplit } from './shlex';
import { slugifyTag } from './slugify';
import {
  containerNameFromTaskDefinition,
  DEFAULT_CONTAINER_NAME,
  isObject,
  type Obj,
  pyTruthy,
} from './task-definition';
import type { EcsJobConfiguration } from './types';

/** What the request builder needs to know about the task definition the task will run. */
export interface TaskDefinitionInfo {
  /** The full ARN (with revision). */
  arn: string;
  networkMode?: string | null;
  requiresCompatibilities?: string[] | null;
  executionRoleArn?: string | null;
  /** Only the names are read (to find the flow's container). */
  containerDefinitions?: { name?: string | null }[] | null;
  /** True when this launch registered the revision; auto-deregistration then tags the task. */
  registered?: boolean;
}

/** The summary of a task definition the builder needs, from a definition we built or ECS described. */
export function taskDefinitionInfo(
  arn: string,
  definition: {
    networkMode?: string | null;
    requiresCompatibilities?: string[] | null;
    executionRoleArn?: string | null;
    containerDefinitions?: { name?: string | null }[] | null;
  },
  registered = false,
): TaskDefinitionInfo {
  const info: TaskDefinitionInfo = { arn, registered };
  if (definition.networkMode != null) info.networkMode = definition.networkMode;
  if (definition.requiresCompatibilities != null)
    info.requiresCompatibilities = definition.requiresCompatibilities;
  if (definition.executionRoleArn != null) info.executionRoleArn = definition.executionRoleArn;
  if (definition.containerDefinitions != null) {
    info.containerDefinitions = definition.containerDefinitions.map((c) =>
      c.name == null ? {} : { name: c.name },
    );
  }
  return info;
}

/**
 * The existing task definition the job names (`task_definition_arn`, i.e. `task_run_request.taskDefinition`,
 * an ARN, `family:revision` or a family), or null when the launcher builds one.
 */
export function requestedTaskDefinition(config: EcsJobConfiguration): string | null {
  const ref = config.task_run_request?.taskDefinition;
  return typeof ref === 'string' && ref ? ref : null;
}

/**
 * The tag the worker puts on a task whose definition it registered with auto-deregistration on. The
 * misspelling is kept: prefect-aws's observer deregisters on exactly this key, and users' cleanup may too.
 */
export const AUTO_DEREGISTER_TAG_KEY = 'prefect.io/degregister-task-definition';
/** The tag the observer (and the launcher's reporter) find the flow run by. */
export const FLOW_RUN_ID_TAG_KEY = 'prefect.io/flow-run-id';
/** https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-using-tags.html#tag-restrictions */
export const MAX_TAGS = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;

/** Where the subnets come from, for a task definition in `awsvpc` mode. */
export type NetworkPlan =
  /** Not awsvpc, or the request template already has a `networkConfiguration`. */
  | { kind: 'none' }
  /** Every subnet of `vpcId`, or of the default VPC when null: `discoverSubnets` in src/aws/ec2.ts. */
  | { kind: 'discover'; vpcId: string | null }
  /** `network_configuration` is used as given once its subnets are checked: `assertSubnetsInVpc`. */
  | { kind: 'check'; vpcId: string; subnets: string[] };

export function planNetwork(
  config: EcsJobConfiguration,
  taskDefinition: Pick<TaskDefinitionInfo, 'networkMode'>,
): NetworkPlan {
  const custom = config.network_configuration;
  // prefect-aws's model validator, repeated so this function cannot silently skip the network.
  if (pyTruthy(custom) && !config.vpc_id) {
    throw new JobConfigurationError('You must provide a `vpc_id` to enable custom `network_configuration`.');
  }
  if (taskDefinition.networkMode !== 'awsvpc') return { kind: 'none' };
  if (custom && pyTruthy(custom) && config.vpc_id) {
    const subnets = custom.subnets ?? [];
    if (!Array.isArray(subnets) || !subnets.every((s) => typeof s === 'string')) {
      throw new JobConfigurationError(
        `network_configuration.subnets must be a list of subnet IDs, got ${pyRepr(subnets)}.`,
      );
    }
    return { kind: 'check', vpcId: config.vpc_id, subnets: subnets as string[] };
  }
  if (pyTruthy(config.task_run_request?.networkConfiguration)) return { kind: 'none' };
  return { kind: 'discover', vpcId: config.vpc_id || null };
}

/**
 * prefect-aws's `_validate_task_definition`, with its messages. Runs on the definition we built (before
 * registering it) or on the one `task_definition_arn` names.
 * Fix: an EXTERNAL launch type is accepted for a definition that requires EXTERNAL (the worker demands
 * FARGATE in `requiresCompatibilities` for every launch type but EC2).
 */
export function validateTaskDefinition(
  taskDefinition: Omit<TaskDefinitionInfo, 'arn'>,
  config: EcsJobConfiguration,
): void {
  if (config.configure_cloudwatch_logs && !taskDefinition.executionRoleArn) {
    throw new JobConfigurationError(
      'An execution role arn must be set on the task definition to use `configure_cloudwatch_logs` or ' +
        '`stream_logs` but no execution role was found on the task definition.',
    );
  }
  const request = config.task_run_request ?? {};
  let launchType = pyTruthy(request.launchType) ? request.launchType : null;
  const capacityProviderStrategy = pyTruthy(request.capacityProviderStrategy);
  const compat = taskDefinition.requiresCompatibilities;
  const requiresEc2 = (compat ?? []).includes('EC2');

  // No launch type means FARGATE, unless a capacity provider strategy decides or an EC2 definition uses
  // the cluster's default capacity provider (https://github.com/PrefectHQ/prefect/issues/19627).
  if (!launchType && !capacityProviderStrategy && !requiresEc2) launchType = 'FARGATE';
  if (capacityProviderStrategy && launchType !== 'FARGATE_SPOT') return;
  if (requiresEc2 && !launchType) return;

  const effectiveCompat = compat ?? ['FARGATE'];
  if (
    launchType !== 'EC2' &&
    !effectiveCompat.includes('FARGATE') &&
    !(launchType === 'EXTERNAL' && effectiveCompat.includes('EXTERNAL'))
  ) {
    throw new JobConfigurationError(
      `Task definition does not have 'FARGATE' in 'requiresCompatibilities' and cannot be used with launch type ${pyRepr(launchType)}`,
    );
  }
  if (launchType === 'FARGATE' || launchType === 'FARGATE_SPOT') {
    const networkMode = taskDefinition.networkMode ?? 'awsvpc';
    if (networkMode !== 'awsvpc') {
      throw new JobConfigurationError(
        `Found network mode ${pyRepr(networkMode)} which is not compatible with launch type ${pyRepr(launchType)}. ` +
          "Use either the 'EC2' launch type or the 'awsvpc' network mode.",
      );
    }
  }
}

/** The subnets `discoverSubnets` found, when `planNetwork` asked for them. */
export interface NetworkInput {
  discoveredSubnets?: string[];
}

export interface RunTaskRequestOptions {
  /**
   * Tags the launcher itself adds (they win over job tags of the same key and always survive the 50-tag
   * cap). `group`, `startedBy` and the like are not set here; add them to the returned request.
   */
  extraTags?: readonly Tag[];
}

function objectList(value: unknown, where: string): Obj[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isObject)) {
    throw new JobConfigurationError(`${where} must be a list of objects, got ${pyRepr(value)}.`);
  }
  return value;
}

function splitCommand(command: string): string[] {
  try {
    return shlexSplit(command);
  } catch (err) {
    if (err instanceof ShlexError) {
      throw new JobConfigurationError(`Cannot split command ${pyRepr(command)}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Override environment: a dict becomes [{name, value}], and entries whose value is null go (ECS refuses them).
 * Entries named in `replaced` go too: the job's env replaces them (with Python `str()` values, so a
 * template's `"environment": "{{ env }}"` may hold non-strings there).
 */
function overrideEnvironment(value: unknown, container: unknown, replaced: ReadonlySet<string>): Obj[] {
  const items = isObject(value)
    ? Object.entries(value).map(([name, v]) => ({ name, value: v }) as Obj)
    : objectList(value, `The environment of container override ${pyRepr(container)}`);
  return items.filter((item) => {
    if (item.value === null || item.value === undefined) return false;
    if (typeof item.name === 'string' && replaced.has(item.name)) return false;
    if (typeof item.value !== 'string') {
      throw new JobConfigurationError(
        `Environment variable ${pyRepr(item.name)} of container override ${pyRepr(container)} must be a string, got ${pyRepr(item.value)}.`,
      );
    }
    return true;
  });
}

/** `{key: value}` or `[{key, value}]` → `[{key, value}]`; a null value drops the tag (the worker crashes). */
function tagList(value: unknown): Tag[] {
  const entries: [unknown, unknown][] = isObject(value)
    ? Object.entries(value)
    : objectList(value, 'task_run_request.tags').map((t) => [t.key, t.value]);
  const tags: Tag[] = [];
  for (const [key, v] of entries) {
    if (v === null || v === undefined) continue;
    if (typeof key !== 'string' || typeof v !== 'string') {
      throw new JobConfigurationError(
        `Tag ${pyRepr(key)} must have a string key and value, got ${pyRepr(v)}.`,
      );
    }
    tags.push({ key, value: v });
  }
  return tags;
}

function tagPriority(key: string, launcherKeys: ReadonlySet<string>): number {
  if (launcherKeys.has(key)) return 0;
  if (key === AUTO_DEREGISTER_TAG_KEY) return 1;
  if (key === FLOW_RUN_ID_TAG_KEY) return 2;
  if (key.startsWith('prefect.io/')) return 3;
  return 4;
}

/**
 * Fix: the worker sends tags ECS rejects. Keys and values are cut to ECS's 128/256 characters, a key that
 * is empty or starts with the reserved `aws:` is dropped, a repeated key keeps its last value, and at most
 * 50 tags survive: the launcher's own, then the auto-deregistration tag, then `prefect.io/flow-run-id`, then
 * the other `prefect.io/*` labels, then the rest, each group in its original order; the survivors keep
 * their original order.
 */
function limitTags(tags: Tag[], launcherKeys: ReadonlySet<string>): Tag[] {
  const byKey = new Map<string, string>();
  for (const { key, value } of tags) {
    const k = (key ?? '').slice(0, MAX_TAG_KEY_LENGTH);
    if (!k || k.toLowerCase().startsWith('aws:')) continue;
    byKey.set(k, (value ?? '').slice(0, MAX_TAG_VALUE_LENGTH));
  }
  const ordered = [...byKey.keys()];
  const kept = new Set(
    ordered
      .map((key, index) => ({ key, index, priority: tagPriority(key, launcherKeys) }))
      .sort((a, b) => a.priority - b.priority || a.index - b.index)
      .slice(0, MAX_TAGS)
      .map((t) => t.key),
  );
  return ordered.filter((key) => kept.has(key)).map((key) => ({ key, value: byKey.get(key) as string }));
}

/** Fix (§8.6): explicit nulls (job variables set to null) never reach ECS. */
function pruneNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== null && v !== undefined).map(pruneNulls);
  if (isObject(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = pruneNulls(v);
    return out;
  }
  return value;
}

/**
 * The RunTask input for a job, given the task definition it runs (registered, reused or named by
 * `task_definition_arn`) and, when `planNetwork` said so, the discovered subnets.
 * Fixes besides those noted on the helpers: the flow container always gets an override (the worker sends
 * no command and no environment when the template has no `overrides` or no override for that container,
 * so the flow cannot start); an empty `capacityProviderStrategy` and a zero task-level cpu/memory override
 * are dropped; a `task_definition_arn` whose definition lacks the flow's container is refused early.
 */
export function buildRunTaskRequest(
  config: EcsJobConfiguration,
  taskDefinition: TaskDefinitionInfo,
  network: NetworkInput,
  options: RunTaskRequestOptions = {},
): RunTaskCommandInput {
  validateTaskDefinition(taskDefinition, config);
  const request = structuredClone(config.task_run_request ?? {}) as Obj;

  if (!pyTruthy(request.taskDefinition)) request.taskDefinition = taskDefinition.arn;
  if (config.cluster && !pyTruthy(request.cluster)) request.cluster = config.cluster;

  const requiresEc2 = (taskDefinition.requiresCompatibilities ?? []).includes('EC2');
  if (!pyTruthy(request.launchType)) {
    // An EC2 definition without a launch type runs on the cluster's default capacity provider.
    if (requiresEc2) delete request.launchType;
    else request.launchType = 'FARGATE';
  }
  if (pyTruthy(request.capacityProviderStrategy)) {
    // ECS refuses launchType together with a strategy.
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#ECS-RunTask-request-capacityProviderStrategy
    delete request.launchType;
  } else {
    if (request.capacityProviderStrategy !== undefined) delete request.capacityProviderStrategy;
    if (request.launchType === 'FARGATE_SPOT') {
      // Fargate Spot is a capacity provider, not a launch type.
      delete request.launchType;
      request.capacityProviderStrategy = [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }];
    }
  }

  const plan = planNetwork(config, taskDefinition);
  if (plan.kind === 'discover') {
    if (!network.discoveredSubnets?.length) {
      throw new Error(
        'buildRunTaskRequest: planNetwork() asked for subnet discovery; pass its discoveredSubnets',
      );
    }
    // The worker's default: every subnet of the VPC, a public IP, no security groups (§8.7).
    request.networkConfiguration = {
      awsvpcConfiguration: {
        subnets: network.discoveredSubnets,
        assignPublicIp: 'ENABLED',
        securityGroups: [],
      },
    };
  } else if (plan.kind === 'check') {
    request.networkConfiguration = { awsvpcConfiguration: structuredClone(config.network_configuration) };
  }

  const overrides = request.overrides ?? {};
  if (!isObject(overrides)) {
    throw new JobConfigurationError(
      `task_run_request.overrides must be an object, got ${pyRepr(overrides)}.`,
    );
  }
  request.overrides = overrides;
  const containerOverrides = objectList(overrides.containerOverrides, 'overrides.containerOverrides');

  const containerName =
    config.container_name ||
    containerNameFromTaskDefinition(config.task_definition) ||
    containerNameFromTaskDefinition(taskDefinition) ||
    DEFAULT_CONTAINER_NAME;
  const knownContainers = taskDefinition.containerDefinitions;
  if (knownContainers && !knownContainers.some((c) => c.name === containerName)) {
    throw new JobConfigurationError(`Container ${pyRepr(containerName)} not found in task definition.`);
  }

  const first = containerOverrides[0];
  if (first && !pyTruthy(first.name)) first.name = containerName;
  let flowContainer = containerOverrides.find((c) => c.name === containerName);
  if (!flowContainer) {
    flowContainer = { name: containerName };
    containerOverrides.push(flowContainer);
  }
  if (config.command) flowContainer.command = config.command;

  for (const container of containerOverrides) {
    if (typeof container.command === 'string') container.command = splitCommand(container.command);
    const replaced = new Set(container === flowContainer ? Object.keys(config.env ?? {}) : []);
    container.environment = overrideEnvironment(container.environment, container.name, replaced);
  }

  if (pyTruthy(overrides.cpu)) overrides.cpu = String(overrides.cpu);
  else delete overrides.cpu;
  if (pyTruthy(overrides.memory)) overrides.memory = String(overrides.memory);
  else delete overrides.memory;

  // Job labels win over request tags of the same key; everything is slugified like the worker does.
  const labels = Object.entries(config.labels ?? {}).filter(([, v]) => v !== null && v !== undefined);
  const labelKeys = new Set(labels.map(([k]) => k));
  const tags: Tag[] = [
    ...tagList(request.tags).filter((t) => !labelKeys.has(t.key as string)),
    ...labels.map(([key, value]) => ({ key, value })),
  ].map((t) => ({ key: slugifyTag(t.key as string), value: slugifyTag(t.value as string) }));
  if (taskDefinition.registered && config.auto_deregister_task_definition) {
    tags.push({ key: AUTO_DEREGISTER_TAG_KEY, value: 'true' });
  }
  const extraTags = options.extraTags ?? [];
  tags.push(...extraTags);
  const finalTags = limitTags(tags, new Set(extraTags.map((t) => t.key as string)));
  if (finalTags.length > 0) request.tags = finalTags;
  else delete request.tags;

  // The flow container's environment ends with the job's env (which carries PREFECT_API_URL and the run id).
  const env = Object.entries(config.env ?? {});
  const environment = [
    ...(flowContainer.environment as Obj[]).filter((item) => !env.some(([name]) => name === item.name)),
    ...env.filter(([, v]) => v !== null && v !== undefined).map(([name, value]) => ({ name, value })),
  ];
  if (environment.length > 0) flowContainer.environment = environment;

  overrides.containerOverrides = containerOverrides.filter((c) => pyTruthy(c));

  return pruneNulls(request) as RunTaskCommandInput;
}
