import { createPrefectClient, type PrefectClientOptions } from '../../src/prefect/client';
import {
  cancelledState,
  crashedState,
  flowRunState,
  pendingState,
  scheduledState,
  submittingState,
} from '../../src/prefect/states';
import type { OrchestrationResult, State } from '../../src/prefect/types';

/** A recorded call and a scripted answer; the client's behaviour around the wire, without a server. */
interface Call {
  method: string;
  url: string;
  body: unknown;
}
type Answer = { status: number; body?: unknown; text?: string };

function scripted(
  answers: Answer[],
  options: PrefectClientOptions & { apiUrl?: string; maxRetries?: number } = {},
) {
  const calls: Call[] = [];
  const sleeps: number[] = [];
  const client = createPrefectClient(
    {
      apiUrl: options.apiUrl ?? 'http://prefect.test/api',
      timeoutMs: 1000,
      maxRetries: options.maxRetries ?? 0,
    },
    { kind: 'none' },
    {
      csrf: false,
      ...options,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      fetch: async (input, init) => {
        calls.push({
          method: init?.method ?? 'GET',
          url: String(input),
          body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
        });
        const answer = answers[calls.length - 1] ?? { status: 500, text: 'unexpected call' };
        const text = answer.text ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
        return new Response(answer.status === 204 ? null : text, { status: answer.status });
      },
    },
  );
  return { client, calls, sleeps };
}

const CLOUD = 'https://api.prefect.cloud/api/accounts/a/workspaces/w';
const WORKER_ID = '5b3f1c2e-9d7a-4b1e-8f00-1234567890ab';

describe('heartbeatWorker', () => {
  it('asks Prefect Cloud for the worker id and returns it', async () => {
    const { client, calls } = scripted([{ status: 200, text: WORKER_ID }], { apiUrl: CLOUD });
    await expect(
      client.heartbeatWorker('my pool', { name: 'w', heartbeatIntervalSeconds: 60 }),
    ).resolves.toBe(WORKER_ID);
    expect(calls).toEqual([
      {
        method: 'POST',
        url: `${CLOUD}/work_pools/my%20pool/workers/heartbeat`,
        body: { name: 'w', heartbeat_interval_seconds: 60, return_id: true },
      },
    ]);
  });

  it('also reads the id when it comes as a JSON string', async () => {
    const { client } = scripted([{ status: 200, body: WORKER_ID }], { apiUrl: CLOUD });
    await expect(client.heartbeatWorker('p', { name: 'w', heartbeatIntervalSeconds: 30 })).resolves.toBe(
      WORKER_ID,
    );
  });

  it('repeats the heartbeat without return_id when the server rejects it with 422', async () => {
    const { client, calls } = scripted([{ status: 422, body: { detail: 'extra field' } }, { status: 204 }], {
      apiUrl: CLOUD,
    });
    await expect(
      client.heartbeatWorker('p', { name: 'w', heartbeatIntervalSeconds: 30 }),
    ).resolves.toBeNull();
    expect(calls.map((c) => c.body)).toEqual([
      { name: 'w', heartbeat_interval_seconds: 30, return_id: true },
      { name: 'w', heartbeat_interval_seconds: 30 },
    ]);
  });

  it('does not ask a self-hosted server for an id', async () => {
    const { client, calls } = scripted([{ status: 204 }]);
    await expect(
      client.heartbeatWorker('p', { name: 'w', heartbeatIntervalSeconds: 30 }),
    ).resolves.toBeNull();
    expect(calls[0]?.body).toEqual({ name: 'w', heartbeat_interval_seconds: 30 });
  });

  it('does not swallow other errors', async () => {
    const { client } = scripted([{ status: 404, body: { detail: 'Work pool "p" not found.' } }], {
      apiUrl: CLOUD,
    });
    await expect(client.heartbeatWorker('p', { name: 'w', heartbeatIntervalSeconds: 30 })).rejects.toThrow(
      'Prefect API POST /work_pools/p/workers/heartbeat failed: 404 Not Found: Work pool "p" not found.',
    );
  });
});

describe('setFlowRunState', () => {
  const current: State = {
    id: 's1',
    type: 'SCHEDULED',
    name: 'Scheduled',
    timestamp: '2026-11-28T10:00:00Z',
    message: null,
    state_details: {},
  };
  const wait = (delay: number): Answer => ({
    status: 200,
    body: {
      status: 'WAIT',
      state: current,
      details: { type: 'wait_details', delay_seconds: delay, reason: 'later' },
    },
  });
  const accept: Answer = {
    status: 201,
    body: { status: 'ACCEPT', state: { ...current, type: 'PENDING' }, details: { type: 'accept_details' } },
  };

  it('sits out WAITs and proposes the very same state again', async () => {
    const { client, calls, sleeps } = scripted([wait(2), wait(1), accept]);
    const proposal = pendingState('run-1');
    const result = await client.setFlowRunState('run-1', proposal);
    expect(result.status).toBe('ACCEPT');
    expect(sleeps).toEqual([2000, 1000]);
    expect(calls.map((c) => c.url)).toEqual(
      Array(3).fill('http://prefect.test/api/flow_runs/run-1/set_state'),
    );
    expect(calls.map((c) => c.body)).toEqual(Array(3).fill({ state: proposal, force: false }));
  });

  it('hands the WAIT back after maxWaits', async () => {
    const { client, sleeps } = scripted([wait(1), wait(1), accept]);
    const result: OrchestrationResult = await client.setFlowRunState('r', pendingState('r'), { maxWaits: 1 });
    expect(result.status).toBe('WAIT');
    expect(sleeps).toEqual([1000]);
  });

  it('hands the WAIT back when it would exceed maxWaitSeconds', async () => {
    const { client, sleeps } = scripted([wait(5), wait(30)]);
    const result = await client.setFlowRunState('r', pendingState('r'), { maxWaitSeconds: 20 });
    expect(result).toMatchObject({ status: 'WAIT', details: { delay_seconds: 30 } });
    expect(sleeps).toEqual([5000]);
  });

  it('returns REJECT and ABORT as they are, and sends force', async () => {
    const reject = {
      status: 'REJECT',
      state: { ...current, name: 'AwaitingConcurrencySlot' },
      details: { type: 'reject_details', reason: 'Deployment concurrency limit reached.' },
    };
    const { client, calls } = scripted([{ status: 200, body: reject }]);
    await expect(client.setFlowRunState('r', crashedState('r', 'boom'), { force: true })).resolves.toEqual(
      reject,
    );
    expect(calls[0]?.body).toMatchObject({ force: true });
  });

  it('takes a duplicate-transition REJECT of its own proposal, retried after a lost answer, as the ACCEPT it was', async () => {
    // Seen on Prefect 3.0.11 with SQLite: the server committed the claim, answered 503, and refused the
    // retry as a duplicate with the claim itself as the current state.
    const proposal = pendingState('r');
    const duplicate = (transitionId: string | null | undefined): Answer => ({
      status: 200,
      body: {
        status: 'REJECT',
        state: {
          ...current,
          type: 'PENDING',
          name: 'Pending',
          state_details: { transition_id: transitionId },
        },
        details: { type: 'reject_details', reason: 'This run has already made this state transition.' },
      },
    });
    const { client: c1 } = scripted(
      [{ status: 503, text: 'Service Unavailable' }, duplicate(proposal.state_details?.transition_id)],
      {
        maxRetries: 1,
      },
    );
    await expect(c1.setFlowRunState('r', proposal)).resolves.toMatchObject({
      status: 'ACCEPT',
      state: { type: 'PENDING' },
    });
    // Someone else's transition stays a REJECT.
    const { client: c2 } = scripted([duplicate('another-transition')]);
    await expect(c2.setFlowRunState('r', pendingState('r'))).resolves.toMatchObject({ status: 'REJECT' });
  });
});

describe('other calls', () => {
  it('reads the existing pool when creating one that exists (409)', async () => {
    const pool = { id: 'p1', name: 'p', type: 'ecs' };
    const { client, calls } = scripted([
      { status: 409, body: { detail: 'A work pool with this name already exists.' } },
      { status: 200, body: pool },
    ]);
    await expect(client.createWorkPool({ name: 'p', type: 'ecs' })).resolves.toEqual(pool);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST http://prefect.test/api/work_pools/',
      'GET http://prefect.test/api/work_pools/p',
    ]);
  });

  it('sends log lines in the server shape and nothing for none', async () => {
    const { client, calls } = scripted([{ status: 201 }]);
    await client.createFlowRunLogs([]);
    await client.createFlowRunLogs([
      { flowRunId: 'r1', level: 40, message: 'm', timestamp: new Date('2026-11-28T10:00:00Z') },
      { flowRunId: 'r1', level: 20, message: 'n', name: 'prefect.ecs' },
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe('http://prefect.test/api/logs/');
    expect(calls[0]?.body).toEqual([
      {
        name: 'prefect.flow_runs.worker',
        level: 40,
        message: 'm',
        timestamp: '2026-11-28T10:00:00.000Z',
        flow_run_id: 'r1',
      },
      { name: 'prefect.ecs', level: 20, message: 'n', timestamp: expect.any(String), flow_run_id: 'r1' },
    ]);
  });

  it('encodes names in paths and asks for block secrets', async () => {
    const { client, calls } = scripted([
      { status: 200, body: { data: { a: 1 } } },
      { status: 404, body: { detail: 'Variable not found.' } },
    ]);
    await expect(client.readBlockDocumentDataByName('aws-credentials', 'prod/eu')).resolves.toEqual({ a: 1 });
    await expect(client.readVariableValue('my var')).resolves.toBeUndefined();
    expect(calls.map((c) => c.url)).toEqual([
      'http://prefect.test/api/block_types/slug/aws-credentials/block_documents/name/prod%2Feu?include_secrets=true',
      'http://prefect.test/api/variables/name/my%20var',
    ]);
  });
});

describe('state helpers', () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('builds the worker-shaped proposals', () => {
    expect(pendingState('r')).toEqual({
      type: 'PENDING',
      name: 'Pending',
      message: null,
      state_details: { flow_run_id: 'r', transition_id: expect.stringMatching(uuid) },
      data: null,
    });
    expect(submittingState('r')).toMatchObject({ type: 'PENDING', name: 'Submitting' });
    expect(crashedState('r', 'gone')).toMatchObject({ type: 'CRASHED', name: 'Crashed', message: 'gone' });
    expect(flowRunState('r', 'CANCELLING')).toMatchObject({ type: 'CANCELLING', name: 'Cancelling' });
    expect(scheduledState('r', new Date('2026-11-28T10:00:00Z'), { name: 'AwaitingRetry' })).toMatchObject({
      type: 'SCHEDULED',
      name: 'AwaitingRetry',
      state_details: { flow_run_id: 'r', scheduled_time: '2026-11-28T10:00:00.000Z' },
    });
  });

  it('gives every proposal a fresh transition id', () => {
    expect(pendingState('r').state_details?.transition_id).not.toBe(
      pendingState('r').state_details?.transition_id,
    );
  });

  it('builds Cancelled from the current state, with a fresh transition id', () => {
    const current: State = {
      id: 's',
      type: 'CANCELLING',
      name: 'Cancelling',
      timestamp: '2026-11-28T10:00:00Z',
      message: 'user asked',
      state_details: { flow_run_id: 'r', transition_id: 'old', deployment_concurrency_lease_id: 'lease' },
    };
    const cancelled = cancelledState('r', 'Flow run cancelled by worker while pending.', current);
    expect(cancelled).toMatchObject({
      type: 'CANCELLED',
      name: 'Cancelled',
      message: 'Flow run cancelled by worker while pending.',
      state_details: { flow_run_id: 'r', deployment_concurrency_lease_id: 'lease' },
    });
    expect(cancelled.state_details?.transition_id).toMatch(uuid);
    expect(cancelledState('r', 'm', null).state_details).toEqual({
      flow_run_id: 'r',
      transition_id: expect.stringMatching(uuid),
    });
  });
});
