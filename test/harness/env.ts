import { randomUUID } from 'node:crypto';

/** Addresses of the servers that global-setup started; only valid inside the integration project. */
export function stackUrls(): { prefectApiUrl: string; motoUrl: string } {
  const prefectApiUrl = process.env.TEST_PREFECT_API_URL;
  const motoUrl = process.env.TEST_MOTO_URL;
  if (!prefectApiUrl || !motoUrl)
    throw new Error('integration stack not started (run through jest --selectProjects integration)');
  return { prefectApiUrl, motoUrl };
}

/** A name no other test uses, so tests sharing one Prefect server do not see each other's pools. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** SDK v3 client settings that point at moto. Access keys must be non-numeric (moto maps them to one account). */
export function awsTestConfig() {
  return {
    endpoint: stackUrls().motoUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
}

export async function resetMoto(): Promise<void> {
  const res = await fetch(`${stackUrls().motoUrl}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
}

/**
 * Raw calls to the Prefect server for arranging test data and playing the flow engine and the user,
 * independent of the client under test. Throws with the server's answer on any non-2xx. A connection error
 * (e.g. a kept-alive connection the server closed meanwhile, "other side closed") and a 503 are retried, as
 * Prefect's own client retries them: the SQLite-backed server answers 503 when the database is busy
 * (`is_client_retryable_exception` in prefect/server/api/server.py). Creations that must not happen twice
 * carry an idempotency key.
 */
export async function prefectRaw<T = unknown>(method: string, route: string, body?: unknown): Promise<T> {
  const attempts = 10;
  for (let attempt = 1; ; attempt++) {
    const backoff = () => new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    let res: Response;
    try {
      res = await fetch(`${stackUrls().prefectApiUrl}${route}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (attempt >= attempts) throw err;
      await backoff();
      continue;
    }
    const text = await res.text();
    if (res.status === 503 && attempt < attempts) {
      await backoff();
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${route} -> ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

let version: Promise<number[]> | undefined;

/**
 * Whether the test server's Prefect (`GET /admin/version`) is at least `major.minor`: `npm run test:servers`
 * runs these tests against older lines, which lack features the newest has (docs/compatibility.md).
 */
export async function serverAtLeast(major: number, minor: number): Promise<boolean> {
  version ??= prefectRaw<string>('GET', '/admin/version').then((v) =>
    v.split('.').map((n) => Number.parseInt(n, 10)),
  );
  const [ma = 0, mi = 0] = await version;
  return ma > major || (ma === major && mi >= minor);
}

export interface Arranged {
  pool: string;
  flowId: string;
  deploymentId: string;
}

/** An `ecs` pool (with the given base job template), a flow and a deployment in it. */
export async function arrangeDeployment(
  options: { pool?: string; baseJobTemplate?: unknown; jobVariables?: Record<string, unknown> } = {},
): Promise<Arranged> {
  const pool = options.pool ?? uniqueName('pool');
  await prefectRaw('POST', '/work_pools/', {
    name: pool,
    type: 'ecs',
    ...(options.baseJobTemplate ? { base_job_template: options.baseJobTemplate } : {}),
  }).catch(async (err: unknown) => {
    // Prefect 3.0's SQLite server can commit the pool and still answer 503; the retry then finds it (409).
    // The names are unique to each test, so an `ecs` pool of that name is the one this call made.
    if (!String(err).includes('-> 409')) throw err;
    const existing = await prefectRaw<{ type: string }>('GET', `/work_pools/${encodeURIComponent(pool)}`);
    if (existing.type !== 'ecs') throw err;
  });
  const flow = await prefectRaw<{ id: string }>('POST', '/flows/', { name: uniqueName('flow') });
  const deployment = await prefectRaw<{ id: string }>('POST', '/deployments/', {
    name: uniqueName('dep'),
    flow_id: flow.id,
    work_pool_name: pool,
    work_queue_name: 'default',
    job_variables: options.jobVariables ?? {},
    entrypoint: 'flows.py:my_flow',
    enforce_parameter_schema: false,
  });
  return { pool, flowId: flow.id, deploymentId: deployment.id };
}

/** A flow run of the deployment, Scheduled at `scheduledTime` (default: now). */
export async function scheduleFlowRun(
  deploymentId: string,
  options: { scheduledTime?: Date; jobVariables?: Record<string, unknown> } = {},
): Promise<{ id: string; name: string }> {
  return prefectRaw('POST', `/deployments/${deploymentId}/create_flow_run`, {
    state: {
      type: 'SCHEDULED',
      state_details: { scheduled_time: (options.scheduledTime ?? new Date()).toISOString() },
    },
    ...(options.jobVariables ? { job_variables: options.jobVariables } : {}),
  });
}
