import type { ScheduledEvent } from 'aws-lambda';
import { InvalidEventError } from '../errors';
import type { CrashInput } from './crash';

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

export function parsePrepareEvent(event: unknown): { flowRunId: string } {
  return { flowRunId: flowRunId(event, 'prepare') };
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
