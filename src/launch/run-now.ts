import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log';

/**
 * "Run now": a Prefect automation calls the launcher's HTTPS entry point the moment a flow run of the pool
 * enters Scheduled by hand (UI "Run", `prefect deployment run`, the API), and the entry point claims and
 * starts it as the poll would, instead of leaving it for the next minute's poll.
 *
 * The caller is authenticated by a bearer token: Prefect's webhook block sends fixed headers and cannot sign
 * a body, so an HMAC is not an option. Replaying a captured call gains nothing: it only claims runs that are
 * due in the pool, which the poll would claim anyway, and the Scheduled → Pending lock and the execution
 * name make a second claim of the same run a no-op (src/launch/poll.ts).
 */

/** `Authorization: Bearer <token>`. */
export const RUN_NOW_HEADER = 'authorization';
/** Long enough that guessing is hopeless; serverless.yml generates 64 characters. */
export const MIN_TOKEN_LENGTH = 32;
/** The automation's payload is about 100 bytes; anything much larger is not from it. */
export const MAX_BODY_BYTES = 4096;

/** A request as both a Lambda function URL and the local stack's listener see it. */
export interface RunNowRequest {
  method: string;
  /** Header names in lower case (function URLs deliver them so). */
  headers: Record<string, string | undefined>;
  body?: string | undefined;
  isBase64Encoded?: boolean;
}

export interface RunNowResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export type RunNowDecision =
  | { kind: 'refuse'; statusCode: 400 | 401 | 403 | 405 | 413; reason: string }
  | { kind: 'claim'; flowRunId: string | undefined };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Equal in constant time: both sides are hashed first, so neither the length of the token nor where the
 * first difference lies shows in the time taken.
 * https://nodejs.org/api/crypto.html#cryptotimingsafeequala-b
 */
export function tokenMatches(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * Whether to claim, and what: checked in this order so that nothing from an unauthenticated caller is
 * parsed. Pure: no I/O, no logging of what the caller sent.
 */
export function decideRunNow(request: RunNowRequest, token: string): RunNowDecision {
  if (request.method.toUpperCase() !== 'POST') {
    return { kind: 'refuse', statusCode: 405, reason: 'only POST is accepted' };
  }
  const header = request.headers[RUN_NOW_HEADER];
  if (!header) return { kind: 'refuse', statusCode: 401, reason: 'no Authorization header' };
  const match = /^Bearer (.+)$/.exec(header);
  if (!match?.[1] || !tokenMatches(match[1], token)) {
    return { kind: 'refuse', statusCode: 403, reason: 'wrong token' };
  }
  const raw = request.body ?? '';
  const body = request.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
    return { kind: 'refuse', statusCode: 413, reason: `the body is over ${MAX_BODY_BYTES} bytes` };
  }
  if (!body.trim()) return { kind: 'claim', flowRunId: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
    // Prefect 3.0's webhook block sends the rendered payload JSON-encoded once more, as a JSON string.
    if (typeof parsed === 'string') parsed = JSON.parse(parsed);
  } catch {
    return { kind: 'refuse', statusCode: 400, reason: 'the body is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { kind: 'refuse', statusCode: 400, reason: 'the body is not a JSON object' };
  }
  const id = (parsed as Record<string, unknown>).flow_run_id;
  if (id === undefined || id === '') return { kind: 'claim', flowRunId: undefined };
  if (typeof id !== 'string' || !UUID.test(id)) {
    return { kind: 'refuse', statusCode: 400, reason: 'flow_run_id is not a UUID' };
  }
  return { kind: 'claim', flowRunId: id.toLowerCase() };
}

/** What a claim did, as the response tells the caller (counts only: nothing the caller sent is echoed). */
export interface RunNowOutcome {
  due: number;
  started: number;
}

export interface RunNowDeps {
  /** The token the caller must present; read from its secret and cached by the caller of this function. */
  token: () => Promise<string>;
  /** Claims and starts the named run (or every due run of the pool), as the poll does. */
  claim: (flowRunId: string | undefined) => Promise<RunNowOutcome>;
  log: Logger;
}

function json(statusCode: number, body: object): RunNowResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The entry point: refuse what is not from the automation before anything reaches Prefect or AWS. */
export async function handleRunNow(deps: RunNowDeps, request: RunNowRequest): Promise<RunNowResponse> {
  const decision = decideRunNow(request, await deps.token());
  if (decision.kind === 'refuse') {
    // The reason is ours, never the caller's input.
    deps.log.warn('run-now call refused', { statusCode: decision.statusCode, reason: decision.reason });
    return json(decision.statusCode, { message: decision.reason });
  }
  const outcome = await deps.claim(decision.flowRunId);
  deps.log.info('run-now call served', { flowRunId: decision.flowRunId, ...outcome });
  return json(200, outcome);
}
