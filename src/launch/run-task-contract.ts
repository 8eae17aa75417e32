/**
 * What the launch state machine's RunTask states may send to Step Functions' optimized ECS integration
 * (`arn:aws:states:::ecs:runTask.sync`), and how a rendered ECS RunTask request becomes that. Pure.
 *
 * The integration takes a fixed set of RunTask fields, in PascalCase; any other field fails the state with
 * `States.Runtime` ("The field … is not supported by Step Functions"), which no Catch can handle, so the
 * launcher must never send one.
 * - Documented: Cluster, Group, LaunchType, NetworkConfiguration, Overrides, PlacementConstraints,
 *   PlacementStrategy, PlatformVersion, PropagateTags, TaskDefinition.
 *   https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html
 * - EnableExecuteCommand and CapacityProviderStrategy: not in that list, but emitted by AWS's own
 *   `EcsRunTask` construct and its integration tests, which run against real accounts.
 *   https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions_tasks.EcsRunTask.html
 * - StartedBy is set by the integration itself ("AWS Step Functions"), Tags are not taken at all.
 *
 * With JSONPath, a `Parameters` field whose path finds nothing is itself a `States.Runtime` failure, so a
 * Task state can only name fields that are always there. Requests therefore come in a few shapes, each with
 * its own RunTask state that names exactly its fields (statemachines/launch.asl.json chooses the state by
 * `shape`). Optional fields with a documented neutral value are always sent with it, so that the shapes
 * stay few: EnableExecuteCommand `false` (ECS's default), PropagateTags `NONE`, PlatformVersion `LATEST`
 * on Fargate (ECS's default), Cluster `default` (ECS's default), empty PlacementConstraints/PlacementStrategy on EC2 (the arrays have no
 * minimum length).
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
 */
import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { JobConfigurationError } from '../errors';
import { pyRepr } from '../render/pyrepr';
import { toPascalCase } from './casing';

/** Every RunTask field the launcher sends to Step Functions (PascalCase). */
export const STEP_FUNCTIONS_RUN_TASK_FIELDS = [
  'Cluster',
  'TaskDefinition',
  'Group',
  'Overrides',
  'LaunchType',
  'CapacityProviderStrategy',
  'NetworkConfiguration',
  'PlatformVersion',
  'PlacementConstraints',
  'PlacementStrategy',
  'PropagateTags',
  'EnableExecuteCommand',
] as const;
export type StepFunctionsRunTaskField = (typeof STEP_FUNCTIONS_RUN_TASK_FIELDS)[number];

const COMMON = [
  'Cluster',
  'TaskDefinition',
  'Group',
  'Overrides',
  'PropagateTags',
  'EnableExecuteCommand',
] as const satisfies readonly StepFunctionsRunTaskField[];
const FARGATE = [...COMMON, 'NetworkConfiguration', 'PlatformVersion'] as const;
const EC2 = [...COMMON, 'PlacementConstraints', 'PlacementStrategy'] as const;

/**
 * The request shapes and the fields each names. Fargate always runs in awsvpc mode; EC2 (and EXTERNAL)
 * tasks may not, and may leave placement to the cluster's default capacity provider strategy.
 */
export const RUN_TASK_SHAPES = {
  Fargate: [...FARGATE, 'LaunchType'],
  FargateCapacityProvider: [...FARGATE, 'CapacityProviderStrategy'],
  Ec2: [...EC2, 'LaunchType'],
  Ec2Awsvpc: [...EC2, 'LaunchType', 'NetworkConfiguration'],
  Ec2CapacityProvider: [...EC2, 'CapacityProviderStrategy'],
  Ec2CapacityProviderAwsvpc: [...EC2, 'CapacityProviderStrategy', 'NetworkConfiguration'],
  Ec2ClusterDefault: [...EC2],
  Ec2ClusterDefaultAwsvpc: [...EC2, 'NetworkConfiguration'],
} as const satisfies Record<string, readonly StepFunctionsRunTaskField[]>;
export type RunTaskShape = keyof typeof RUN_TASK_SHAPES;

/** The RunTask state that sends a shape, in statemachines/launch.asl.json. */
export function runTaskStateName(shape: RunTaskShape): string {
  return `RunTask${shape}`;
}

/**
 * ECS's TaskOverride and ContainerOverride members; Step Functions passes `Overrides` on to ECS as that type.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskOverride.html
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html
 */
export const TASK_OVERRIDE_FIELDS: ReadonlySet<string> = new Set([
  'containerOverrides',
  'cpu',
  'ephemeralStorage',
  'executionRoleArn',
  'inferenceAcceleratorOverrides',
  'memory',
  'taskRoleArn',
]);
export const CONTAINER_OVERRIDE_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'command',
  'environment',
  'environmentFiles',
  'cpu',
  'memory',
  'memoryReservation',
  'resourceRequirements',
]);

/**
 * "A total of 8192 characters are allowed for overrides. This limit includes the JSON formatting characters
 * of the override structure." https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
 * It also bounds the `.sync` result (the stopped task echoes its overrides) far below Step Functions'
 * 256 KiB payload limit, whose breach (`States.DataLimitExceeded`) no Catch can handle.
 */
export const MAX_OVERRIDES_CHARACTERS = 8192;

/** The Fargate capacity providers; ECS does not let a strategy mix them with Auto Scaling group ones. */
const FARGATE_PROVIDERS: ReadonlySet<string> = new Set(['FARGATE', 'FARGATE_SPOT']);

export interface StepFunctionsRunTask {
  shape: RunTaskShape;
  /** Exactly the fields of `RUN_TASK_SHAPES[shape]`, PascalCase. */
  parameters: Record<string, unknown>;
  /** The job's tags, which the integration cannot apply to the task (see docs/compatibility.md). */
  droppedTags: { key: string; value: string }[];
}

type Request = Record<string, unknown>;

function templateKey(field: string): string {
  return `task_run_request.${field}`;
}

function refuse(field: string, why: string): never {
  throw new JobConfigurationError(
    `${templateKey(field)} is not supported by prefect-ecs-launcher: ${why} Remove \`${field}\` from ` +
      "`job_configuration.task_run_request` in the work pool's base job template.",
  );
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || (Array.isArray(value) && value.length === 0);
}

/**
 * Fields of ECS's RunTask that Step Functions does not take. Each either means the same as leaving it out
 * (dropped), or is refused with the reason, so the run ends Crashed naming the template key.
 */
function checkUnsupportedFields(request: Request): void {
  for (const [field, value] of Object.entries(request)) {
    switch (field) {
      case 'tags':
      case 'startedBy':
        // Dropped: tags are reported to the caller; Step Functions sets startedBy itself.
        break;
      case 'count':
        if (value !== undefined && value !== null && value !== 1) {
          refuse(field, `it asks for ${pyRepr(value)} tasks, and a flow run runs in exactly one.`);
        }
        break;
      case 'enableECSManagedTags':
        if (value === true) {
          refuse(
            field,
            "Step Functions' ECS integration does not take EnableECSManagedTags (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html).",
          );
        }
        break;
      case 'clientToken':
      case 'referenceId':
      case 'volumeConfigurations':
        if (!isEmpty(value)) {
          refuse(
            field,
            `Step Functions' ECS integration, which starts the task, does not take ${field.charAt(0).toUpperCase()}${field.slice(1)} (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html).`,
          );
        }
        break;
      default:
        if (!STEP_FUNCTIONS_RUN_TASK_FIELDS.some((f) => f.toLowerCase() === field.toLowerCase())) {
          refuse(field, "it is not a RunTask field that Step Functions' ECS integration takes.");
        }
    }
  }
}

function checkOverrides(overrides: unknown): void {
  if (overrides === undefined || overrides === null) return;
  if (typeof overrides !== 'object' || Array.isArray(overrides)) {
    refuse('overrides', `it must be an object, got ${pyRepr(overrides)}.`);
  }
  for (const key of Object.keys(overrides)) {
    if (!TASK_OVERRIDE_FIELDS.has(key)) {
      refuse(`overrides.${key}`, "it is not a member of ECS's TaskOverride.");
    }
  }
  const containers = (overrides as { containerOverrides?: unknown }).containerOverrides;
  for (const [i, container] of (Array.isArray(containers) ? containers : []).entries()) {
    for (const key of Object.keys((container as object) ?? {})) {
      if (!CONTAINER_OVERRIDE_FIELDS.has(key)) {
        refuse(`overrides.containerOverrides[${i}].${key}`, "it is not a member of ECS's ContainerOverride.");
      }
    }
  }
  const size = JSON.stringify(overrides).length;
  if (size > MAX_OVERRIDES_CHARACTERS) {
    throw new JobConfigurationError(
      `The task's overrides (${templateKey('overrides')}: the flow container's command and environment, ` +
        `from the job's \`command\` and \`env\`) are ${size} characters of JSON; ECS allows ${MAX_OVERRIDES_CHARACTERS}. ` +
        'Shrink `env` (put large values in the image, an environment file or a secret) or the command.',
    );
  }
}

function shapeOf(request: Request): RunTaskShape {
  const strategy = request.capacityProviderStrategy;
  const usesStrategy = Array.isArray(strategy) && strategy.length > 0;
  const awsvpc = !isEmpty(request.networkConfiguration);
  let fargate: boolean;
  if (usesStrategy) {
    const providers = (strategy as { capacityProvider?: unknown }[]).map((s) => String(s.capacityProvider));
    const onFargate = providers.filter((p) => FARGATE_PROVIDERS.has(p)).length;
    if (onFargate > 0 && onFargate < providers.length) {
      refuse(
        'capacityProviderStrategy',
        `it mixes Fargate and Auto Scaling group capacity providers (${providers.join(', ')}), which ECS does not allow (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html).`,
      );
    }
    fargate = onFargate > 0;
  } else {
    fargate = request.launchType === 'FARGATE';
  }
  if (fargate) {
    if (!awsvpc) {
      refuse('networkConfiguration', 'Fargate tasks need one (awsvpc network mode), and the job has none.');
    }
    for (const field of ['placementConstraints', 'placementStrategy']) {
      if (!isEmpty(request[field])) {
        refuse(
          field,
          'ECS does not support task placement constraints or strategies on Fargate (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement.html).',
        );
      }
    }
    return usesStrategy ? 'FargateCapacityProvider' : 'Fargate';
  }
  if (!isEmpty(request.platformVersion)) {
    refuse(
      'platformVersion',
      'ECS takes a platform version only for Fargate tasks (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#ECS-RunTask-request-platformVersion).',
    );
  }
  if (usesStrategy) return awsvpc ? 'Ec2CapacityProviderAwsvpc' : 'Ec2CapacityProvider';
  if (isEmpty(request.launchType)) return awsvpc ? 'Ec2ClusterDefaultAwsvpc' : 'Ec2ClusterDefault';
  return awsvpc ? 'Ec2Awsvpc' : 'Ec2';
}

/** The neutral value of an optional field a shape always names (see the file comment). */
const NEUTRAL: Partial<Record<StepFunctionsRunTaskField, unknown>> = {
  // "If you do not specify a cluster, the default cluster is assumed."
  Cluster: 'default',
  EnableExecuteCommand: false,
  PropagateTags: 'NONE',
  PlatformVersion: 'LATEST',
  PlacementConstraints: [],
  PlacementStrategy: [],
};

/**
 * The Step Functions parameters for a rendered RunTask request (camelCase, as `buildRunTaskRequest` makes
 * it): its shape and exactly that shape's fields. Throws JobConfigurationError, naming the template key,
 * for a field the integration does not take and that cannot be dropped without changing what runs.
 */
export function toStepFunctionsRunTask(request: RunTaskCommandInput): StepFunctionsRunTask {
  const camel = request as unknown as Request;
  checkUnsupportedFields(camel);
  checkOverrides(camel.overrides);
  const shape = shapeOf(camel);
  const pascal = toPascalCase(camel) as Record<string, unknown>;
  const parameters: Record<string, unknown> = {};
  for (const field of RUN_TASK_SHAPES[shape]) {
    const value = pascal[field];
    parameters[field] = isEmpty(value) || value === '' ? NEUTRAL[field] : value;
    if (parameters[field] === undefined) {
      throw new JobConfigurationError(
        `The RunTask request has no ${templateKey(field.charAt(0).toLowerCase() + field.slice(1))}, which a ${shape} task needs.`,
      );
    }
  }
  const droppedTags = (request.tags ?? []).map((t) => ({ key: t.key ?? '', value: t.value ?? '' }));
  return { shape, parameters, droppedTags };
}
