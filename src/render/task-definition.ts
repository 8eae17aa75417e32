/**
 * The ECS task definition for a job, as prefect-aws 0.7.12's `ECSWorker._prepare_task_definition` builds it,
 * with the worker's known bugs fixed (each fix is marked "Fix:"). Pure: no I/O.
 */
import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import { JobConfigurationError } from '../errors';
import { pyRepr } from './pyrepr';
import { FAMILY_MAX_LENGTH, sanitizeFamilyPart } from './slugify';
import type { EcsJobConfiguration } from './types';

/**
 * The worker defaults the image to its own `prefecthq/prefect:<prefect version>-python<X.Y>`; the launcher
 * has no Python of its own, so it uses Prefect 3's floating tag. Pin an image in the pool or deployment
 * (`image`) for reproducible runs. https://hub.docker.com/r/prefecthq/prefect/tags
 */
export const DEFAULT_PREFECT_IMAGE = 'prefecthq/prefect:3-latest';
export const DEFAULT_CONTAINER_NAME = 'prefect';
export const DEFAULT_CPU = 1024;
export const DEFAULT_MEMORY = 2048;
export const DEFAULT_FAMILY_PREFIX = 'prefect';

/** What rendering knows about the flow run besides its job configuration. */
export interface RenderContext {
  workPoolName: string;
  deploymentId: string | null;
  flowId: string;
  /** The ECS client's region (the worker puts it into the awslogs options). */
  region: string;
}

export type Obj = { [key: string]: unknown };

export function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
}

/** Python's truth value of a JSON-like value: None, False, 0, '', [] and {} are false. */
export function pyTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return true;
}

/**
 * prefect-aws's `_drop_empty_keys_from_dict`, exactly: removes keys whose value is None, '', 0, [] or {}
 * (but keeps False), recursing into dicts and into the dicts inside lists. Emptiness is judged before
 * recursing, so a dict that only becomes empty by the recursion stays (`{"a": {"b": null}}` → `{"a": {}}`),
 * and list items are never removed. Mutates `obj`.
 */
export function dropEmptyKeys(obj: Obj): void {
  for (const [key, value] of Object.entries(obj)) {
    if (!pyTruthy(value) && value !== false) delete obj[key];
    if (isObject(value)) dropEmptyKeys(value);
    if (Array.isArray(value) && key !== 'capacity_provider_strategy') {
      for (const item of value) if (isObject(item)) dropEmptyKeys(item);
    }
  }
}

function containersOf(taskDefinition: Obj): unknown[] {
  const defs = taskDefinition.containerDefinitions;
  return Array.isArray(defs) ? defs : [];
}

/**
 * prefect-aws's `_container_name_from_task_definition`: `prefect` if a container has that name, otherwise
 * the first container's name (which may be missing), otherwise null.
 */
export function containerNameFromTaskDefinition(
  taskDefinition: { containerDefinitions?: unknown } | null | undefined,
): string | null {
  if (!taskDefinition) return null;
  const defs = containersOf(taskDefinition as Obj);
  if (defs.some((c) => isObject(c) && c.name === DEFAULT_CONTAINER_NAME)) return DEFAULT_CONTAINER_NAME;
  const first = defs[0];
  return isObject(first) && typeof first.name === 'string' && first.name ? first.name : null;
}

/**
 * The family: the rendered `family`, else `prefect_<pool>_<deployment id or flow id>`.
 * Fix: prefect-aws computes a slug and discards it (§8.1), so e.g. a pool name with a space makes
 * registration fail; we use the slug (see `sanitizeFamilyPart`). A generated family shortens the pool part
 * rather than cutting off the id, so two deployments of a long-named pool never share a family.
 */
export function taskDefinitionFamily(rendered: unknown, ctx: RenderContext): string {
  let family: string;
  if (pyTruthy(rendered) && (typeof rendered === 'string' || typeof rendered === 'number')) {
    family = sanitizeFamilyPart(String(rendered));
  } else {
    const id = sanitizeFamilyPart(ctx.deploymentId ?? ctx.flowId);
    const room = FAMILY_MAX_LENGTH - DEFAULT_FAMILY_PREFIX.length - id.length - 2;
    family = `${DEFAULT_FAMILY_PREFIX}_${sanitizeFamilyPart(ctx.workPoolName, room)}_${id}`;
  }
  if (!family) {
    throw new JobConfigurationError(
      `Task definition family ${pyRepr(rendered)} has no character ECS allows in a family (letters, digits, '-' and '_').`,
    );
  }
  return family;
}

/**
 * Task-level cpu/memory may be written as "1 vCPU" / "2 GB"; ECS converts them to CPU units / MiB on
 * registration, so we do too (a kept "1 vCPU" would never compare equal to the registered revision).
 * https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html
 */
function resourceUnits(value: unknown, kind: 'cpu' | 'memory'): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (/^[+-]?\d+$/.test(text)) return Number.parseInt(text, 10);
  const unit = kind === 'cpu' ? 'vcpu' : 'gb';
  const m = new RegExp(`^(\\d+(?:\\.\\d+)?)\\s*${unit}$`, 'i').exec(text);
  return m ? Math.round(Number(m[1]) * 1024) : null;
}

/** Python's `str()` of a task-level cpu/memory value, with unit strings converted like ECS does. */
function taskLevelString(value: unknown, kind: 'cpu' | 'memory'): string {
  if (typeof value === 'string') {
    const units = /[a-z]/i.test(value) ? resourceUnits(value, kind) : null;
    return units === null ? value : String(units);
  }
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** Python's `int()` of a container cpu/memory value. */
function containerInt(value: unknown, kind: 'cpu' | 'memory'): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  const units = resourceUnits(value, kind);
  if (units === null) {
    throw new JobConfigurationError(`Invalid ${kind} ${pyRepr(value)}: expected a whole number.`);
  }
  return units;
}

/** Memory (MiB) Fargate accepts for each task cpu value (Linux). */
const FARGATE_SIZES: ReadonlyArray<readonly [cpu: number, min: number, max: number, step: number]> = [
  [256, 512, 2048, 512],
  [512, 1024, 4096, 1024],
  [1024, 2048, 8192, 1024],
  [2048, 4096, 16384, 1024],
  [4096, 8192, 30720, 1024],
  [8192, 16384, 61440, 4096],
  [16384, 32768, 122880, 8192],
];

/**
 * Fix: the worker does not check Fargate sizes and ECS rejects a bad pair only at registration ("Invalid
 * 'cpu' setting for task"), so the flow run crashes with an opaque message. We name the valid values.
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
 */
export function validateFargateSize(cpu: unknown, memory: unknown): void {
  const c = resourceUnits(cpu, 'cpu');
  const m = resourceUnits(memory, 'memory');
  const sizesUrl = 'https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html';
  if (c === null || m === null) {
    throw new JobConfigurationError(
      `Fargate needs task-level cpu and memory, got cpu ${pyRepr(cpu)} and memory ${pyRepr(memory)}. See ${sizesUrl}`,
    );
  }
  const size = FARGATE_SIZES.find(([sizeCpu]) => sizeCpu === c);
  if (!size) {
    throw new JobConfigurationError(
      `Fargate does not support cpu ${c}; use one of ${FARGATE_SIZES.map(([v]) => v).join(', ')}. See ${sizesUrl}`,
    );
  }
  const [, min, max, step] = size;
  if (m < min || m > max || (m - min) % step !== 0) {
    throw new JobConfigurationError(
      `Fargate does not support memory ${m} with cpu ${c}; with cpu ${c}, memory must be ${min} to ${max} MiB in steps of ${step}. See ${sizesUrl}`,
    );
  }
}

function environmentList(value: unknown, where: string): unknown[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value;
  // Fix: a dict here (e.g. `"environment": "{{ env }}"` in a task definition template) makes the worker
  // crash; it becomes ECS's list of {name, value}, as the worker does for container overrides.
  if (isObject(value)) return Object.entries(value).map(([name, v]) => ({ name, value: v }));
  throw new JobConfigurationError(`${where} must be a list of {name, value}, got ${pyRepr(value)}.`);
}

/**
 * The RegisterTaskDefinition input for a job that has no `task_definition_arn`.
 * Behaviour and order follow the worker; fixes:
 * - an explicit null (a job variable set to null) counts as unset wherever the worker fills a default
 *   (container name, image, cpu, memory, networkMode, requiresCompatibilities, family), instead of reaching
 *   ECS as a missing required field;
 * - the family is sanitised; Fargate cpu/memory pairs are checked; "1 vCPU"/"2 GB" are converted.
 */
export function buildTaskDefinition(
  config: EcsJobConfiguration,
  ctx: RenderContext,
): RegisterTaskDefinitionCommandInput {
  const td = structuredClone(config.task_definition ?? {}) as Obj;

  const rawDefs = td.containerDefinitions ?? [];
  if (!Array.isArray(rawDefs)) {
    throw new JobConfigurationError(
      `task_definition.containerDefinitions must be a list, got ${pyRepr(rawDefs)}.`,
    );
  }
  const defs: Obj[] = [];
  for (const d of rawDefs) {
    if (!pyTruthy(d)) continue;
    if (!isObject(d)) {
      throw new JobConfigurationError(`Each container definition must be an object, got ${pyRepr(d)}.`);
    }
    defs.push(d);
  }
  td.containerDefinitions = defs;

  // Fix: the name comes from the template as written, as prefect-aws's config validator reads it. The
  // worker re-derives it after dropping empty entries, so a sidecar added to the default template (whose
  // flow container renders as `{}` when neither image nor container_name is set) became the flow container.
  const containerName =
    config.container_name ||
    containerNameFromTaskDefinition(config.task_definition) ||
    DEFAULT_CONTAINER_NAME;
  let container = defs.find((c) => c.name === containerName);
  if (!container) {
    if (containerName !== DEFAULT_CONTAINER_NAME) {
      throw new JobConfigurationError(`Container ${pyRepr(containerName)} not found in task definition.`);
    }
    container = defs.find((c) => c.name === undefined || c.name === null);
    if (container) container.name = containerName;
    else {
      container = { name: containerName };
      defs.push(container);
    }
  }

  if (!container.image) container.image = DEFAULT_PREFECT_IMAGE;

  // Definition env items with a null value, or unset (null) in the job's env, are dropped.
  if (container.environment !== undefined) {
    const unset = new Set(
      Object.entries(config.env ?? {})
        .filter(([, v]) => v === null)
        .map(([k]) => k),
    );
    container.environment = environmentList(
      container.environment,
      'containerDefinitions[].environment',
    ).filter(
      (item) =>
        !isObject(item) ||
        (item.value !== null && item.value !== undefined && !unset.has(item.name as string)),
    );
  }

  if (config.configure_cloudwatch_logs) {
    const prefix = `prefect-logs_${ctx.workPoolName}_${ctx.deploymentId ?? ctx.flowId}`;
    container.logConfiguration = {
      logDriver: 'awslogs',
      options: {
        'awslogs-create-group': 'true',
        'awslogs-group': 'prefect',
        'awslogs-region': ctx.region,
        'awslogs-stream-prefix': config.cloudwatch_logs_prefix || prefix,
        ...(config.cloudwatch_logs_options ?? {}),
      },
    };
  }

  td.family = taskDefinitionFamily(td.family, ctx);

  const cpu = pyTruthy(td.cpu) ? td.cpu : DEFAULT_CPU;
  const memory = pyTruthy(td.memory) ? td.memory : DEFAULT_MEMORY;
  const launchType = config.task_run_request?.launchType;
  if (launchType === 'FARGATE' || launchType === 'FARGATE_SPOT') {
    td.cpu = taskLevelString(cpu, 'cpu');
    td.memory = taskLevelString(memory, 'memory');
    const compat = td.requiresCompatibilities ?? [];
    if (!Array.isArray(compat)) {
      throw new JobConfigurationError(
        `task_definition.requiresCompatibilities must be a list, got ${pyRepr(compat)}.`,
      );
    }
    if (!compat.includes('FARGATE')) compat.push('FARGATE');
    td.requiresCompatibilities = compat;
    if (td.networkMode === undefined || td.networkMode === null) td.networkMode = 'awsvpc';
  } else {
    if (container.cpu === undefined || container.cpu === null) container.cpu = containerInt(cpu, 'cpu');
    if (container.memory === undefined || container.memory === null) {
      container.memory = containerInt(memory, 'memory');
    }
  }
  if (pyTruthy(td.cpu)) td.cpu = taskLevelString(td.cpu, 'cpu');
  if (pyTruthy(td.memory)) td.memory = taskLevelString(td.memory, 'memory');

  dropEmptyKeys(td);

  if (Array.isArray(td.requiresCompatibilities) && td.requiresCompatibilities.includes('FARGATE')) {
    validateFargateSize(td.cpu, td.memory);
  }

  // The Prefect credential comes from Secrets Manager / SSM instead of the overrides' environment.
  const secretArns = new Map<string, string>();
  if (config.prefect_api_key_secret_arn) secretArns.set('PREFECT_API_KEY', config.prefect_api_key_secret_arn);
  if (config.prefect_api_auth_string_secret_arn) {
    secretArns.set('PREFECT_API_AUTH_STRING', config.prefect_api_auth_string_secret_arn);
  }
  if (secretArns.size > 0) {
    if (Array.isArray(container.environment)) {
      container.environment = container.environment.filter(
        (item) => !(isObject(item) && secretArns.has(item.name as string)),
      );
    }
    const secrets = Array.isArray(container.secrets) ? [...container.secrets] : [];
    for (const secret of secrets) {
      if (isObject(secret) && typeof secret.name === 'string' && secretArns.has(secret.name)) {
        secret.valueFrom = secretArns.get(secret.name);
        secretArns.delete(secret.name);
      }
    }
    for (const [name, valueFrom] of secretArns) secrets.push({ name, valueFrom });
    container.secrets = secrets;
  }

  return td as unknown as RegisterTaskDefinitionCommandInput;
}

/** Fields ECS adds to a registered revision, which the comparison ignores (prefect-aws's list). */
const POST_REGISTRATION_FIELDS = [
  'compatibilities',
  'taskDefinitionArn',
  'revision',
  'status',
  'requiresAttributes',
  'registeredAt',
  'registeredBy',
  'deregisteredAt',
];

function sortedBy(items: unknown, key: string): unknown {
  if (!Array.isArray(items)) return items;
  const keyOf = (item: unknown) =>
    isObject(item) && typeof item[key] === 'string' ? (item[key] as string) : '';
  return [...items].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

/** prefect-aws's `_task_definitions_equal` normalisation of one side. */
function normalizeForComparison(taskDefinition: object): Obj {
  const td = structuredClone(taskDefinition) as Obj;
  if (!('networkMode' in td) || td.networkMode === undefined) td.networkMode = 'bridge';
  for (const container of containersOf(td)) {
    if (!isObject(container)) continue;
    if (!('essential' in container) || container.essential === undefined) container.essential = true;
    if ('environment' in container) container.environment = sortedBy(container.environment, 'name');
    if ('secrets' in container) container.secrets = sortedBy(container.secrets, 'name');
    if ('environmentFiles' in container) {
      container.environmentFiles = sortedBy(container.environmentFiles, 'value');
    }
    // Fix: defaults that DescribeTaskDefinition reports although nobody set them; the worker keeps `false`
    // and so never matches a revision on current AWS.
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html (versionConsistency)
    if (container.versionConsistency === 'enabled') delete container.versionConsistency;
  }
  // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskDefinition.html (enableFaultInjection)
  if (td.enableFaultInjection === false) delete td.enableFaultInjection;
  // Fix: DescribeTaskDefinition returns no tags (they are not part of the revision), so tags in a task
  // definition template made the worker register a new revision on every run.
  delete td.tags;
  dropEmptyKeys(td);
  for (const field of POST_REGISTRATION_FIELDS) delete td[field];
  return td;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Whether a definition we would register and one ECS returned (DescribeTaskDefinition) are the same,
 * under prefect-aws's rules: networkMode defaults to bridge and essential to true, environment and secrets
 * are compared sorted by name and environmentFiles by value, empty values are ignored (ECS reports `0`,
 * `[]` and `{}` for unset fields), and the fields ECS adds on registration are ignored.
 */
export function taskDefinitionsEqual(ours: object, registered: object): boolean {
  return deepEqual(normalizeForComparison(ours), normalizeForComparison(registered));
}
