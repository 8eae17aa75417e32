import type { APIGatewayProxyEventV2, ScheduledEvent } from 'aws-lambda';
import { InvalidEventError } from '../errors';
import type { CrashInput } from './crash';
import type { PrepareInput } from './prepare';
import type { TaskStateChange } from './report';
import type { RunNowRequest } from './run-now';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The poll runs on an EventBridge schedule; an empty object (a manual test invoke) is accepted too. */
export function parsePollEvent(event: unknown): ScheduledEvent | null {
  if (isObject(event) && Object.keys(event).length === 0) return null;
  if (isObject(event) && event.source === 'aws.events' && event['detail-type'] === 'Scheduled Event') {
    return event as unknown as ScheduledEvent;
  }
  throw new InvalidEventError(
    `the poll function expects an EventBridge "Scheduled Event" (or {}), got ${JSON.stringify(event).slice(0, 200)}`,
  );
}

function flowRunId(event: unknown, who: string): string {
  const id = isObject(event) ? event.flowRunId : undefined;
  if (typeof id !== 'string' || !UUID.test(id)) {
    throw new InvalidEventError(
      `the ${who} function expects {"flowRunId": "<flow run UUID>", …} from the launch state machine, got flowRunId ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/**
 * Prepare's event is the execution's state: the launch input (flowRunId, scheduledStartTime, the poll's
 * snapshot) and, when a RunTask found a reused task definition inactive, `refreshTaskDefinition` (see
 * statemachines/launch.asl.json, RefreshTaskDefinition).
 */
export function parsePrepareEvent(event: unknown): PrepareInput {
  const id = flowRunId(event, 'prepare');
  const e = event as Record<string, unknown>;
  return {
    flowRunId: id,
    ...(e.snapshot !== undefined ? { snapshot: e.snapshot } : {}),
    refreshTaskDefinition: e.refreshTaskDefinition === true,
  };
}

export function parseCrashEvent(event: unknown): CrashInput {
  const id = flowRunId(event, 'crash');
  const e = event as Record<string, unknown>;
  const error = isObject(e.error) && typeof e.error.Error === 'string' ? e.error : undefined;
  const prepared = isObject(e.prepared) ? e.prepared : undefined;
  return {
    flowRunId: id,
    ...(error ? { error: { Error: error.Error as string, Cause: String(error.Cause ?? '') } } : {}),
    ...(prepared && typeof prepared.cluster === 'string' ? { prepared: { cluster: prepared.cluster } } : {}),
  };
}

/** An EventBridge "ECS Task State Change" event; its `detail` is the task, as DescribeTasks returns it. */
export function parseTaskStateChangeEvent(event: unknown): TaskStateChange {
  const e = isObject(event) ? event : {};
  const detail = e.detail;
  if (
    e.source !== 'aws.ecs' ||
    e['detail-type'] !== 'ECS Task State Change' ||
    !isObject(detail) ||
    typeof detail.taskArn !== 'string' ||
    typeof detail.clusterArn !== 'string' ||
    typeof detail.lastStatus !== 'string'
  ) {
    throw new InvalidEventError(
      `the report function expects an EventBridge "ECS Task State Change" event from aws.ecs with detail.taskArn, detail.clusterArn and detail.lastStatus, got ${JSON.stringify(event).slice(0, 300)}`,
    );
  }
  const bad = badTaskField(detail);
  if (bad) {
    throw new InvalidEventError(
      `the ECS Task State Change event for ${detail.taskArn} has a malformed detail.${bad}, got ${JSON.stringify(event).slice(0, 300)}`,
    );
  }
  return detail as unknown as TaskStateChange;
}

const OPTIONAL_TASK_STRINGS = ['group', 'desiredStatus', 'stopCode', 'stoppedReason', 'taskDefinitionArn'];

/** The first field the reporter reads that has the wrong shape, or null; absent fields are fine. */
function badTaskField(detail: Record<string, unknown>): string | null {
  for (const key of OPTIONAL_TASK_STRINGS) {
    if (detail[key] !== undefined && detail[key] !== null && typeof detail[key] !== 'string') return key;
  }
  const containers = detail.containers;
  if (containers !== undefined && (!Array.isArray(containers) || !containers.every(isObject))) {
    return 'containers';
  }
  const overrides = detail.overrides;
  if (overrides !== undefined) {
    if (!isObject(overrides)) return 'overrides';
    const list = overrides.containerOverrides;
    if (list !== undefined && (!Array.isArray(list) || !list.every(isObject))) {
      return 'overrides.containerOverrides';
    }
  }
  return null;
}

/**
 * A Lambda function URL request (payload format 2.0, header names in lower case):
 * https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads
 */
export function parseRunNowEvent(event: unknown): RunNowRequest {
  const e = isObject(event) ? (event as Partial<APIGatewayProxyEventV2>) : undefined;
  const method = e?.requestContext?.http?.method;
  if (typeof method !== 'string') {
    throw new InvalidEventError(
      'the run-now function expects a Lambda function URL request (payload format 2.0); invoke it through its function URL',
    );
  }
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(isObject(e?.headers) ? e.headers : {})) {
    if (typeof value === 'string') headers[name.toLowerCase()] = value;
  }
  return {
    method,
    headers,
    ...(typeof e?.body === 'string' ? { body: e.body } : {}),
    isBase64Encoded: e?.isBase64Encoded === true,
  };
}
