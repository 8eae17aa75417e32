import { PrefectApiError } from '../../src/errors';
import { createPrefectClient, PrefectClient } from '../../src/prefect/client';
import { PrefectHttp } from '../../src/prefect/http';
import {
  cancelledState,
  crashedState,
  flowRunState,
  pendingState,
  scheduledState,
  submittingState,
} from '../../src/prefect/states';
import { LogLevel } from '../../src/prefect/types';
import {
  arrangeDeployment,
  prefectRaw,
  scheduleFlowRun,
  serverAtLeast,
  stackUrls,
  uniqueName,
} from '../harness/env';

let prefect: PrefectClient;

beforeAll(() => {
  prefect = createPrefectClient(
    { apiUrl: stackUrls().prefectApiUrl, timeoutMs: 15_000, maxRetries: 3 },
    { kind: 'none' },
    { backoffBaseMs: 250 },
  );
});

describe('work pools and workers', () => {
  it('creates a pool, tolerates a second create, updates it and reads it back', async () => {
    const name = uniqueName('pool');
    const created = await prefect.createWorkPool({ name, type: 'ecs', description: 'first' });
    expect(created).toMatchObject({ name, type: 'ecs', description: 'first', is_paused: false });

    const again = await prefect.createWorkPool({ name, type: 'ecs', description: 'second' });
    expect(again.id).toBe(created.id);

    await prefect.updateWorkPool(name, { description: 'updated', concurrency_limit: 3 });
    expect(await prefect.readWorkPool(name)).toMatchObject({
      id: created.id,
      description: 'updated',
      concurrency_limit: 3,
    });
    expect(await prefect.readWorkPool(uniqueName('missing'))).toBeNull();
  });

  it('makes the pool READY with a heartbeat', async () => {
    const { pool } = await arrangeDeployment();
    expect((await prefect.readWorkPool(pool))?.status).toBe('NOT_READY');

    const workerId = await prefect.heartbeatWorker(pool, {
      name: 'launcher test',
      heartbeatIntervalSeconds: 60,
    });

    expect(workerId).toBeNull(); // self-hosted servers answer 204 without an id
    expect((await prefect.readWorkPool(pool))?.status).toBe('READY');
    const workers = await prefectRaw<
      Array<{ name: string; status: string; heartbeat_interval_seconds: number }>
    >('POST', `/work_pools/${pool}/workers/filter`, {});
    expect(workers).toEqual([
      expect.objectContaining({ name: 'launcher test', status: 'ONLINE', heartbeat_interval_seconds: 60 }),
    ]);
  });

  it('reports a heartbeat for a missing pool as a readable 404', async () => {
    const pool = uniqueName('missing');
    const err = await prefect
      .heartbeatWorker(pool, { name: 'w', heartbeatIntervalSeconds: 30 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PrefectApiError);
    expect(err.message).toBe(
      `Prefect API POST /work_pools/${pool}/workers/heartbeat failed: 404 Not Found: Work pool "${pool}" not found.`,
    );
  });
});

describe('polling', () => {
  it('returns the due scheduled runs of an ecs pool', async () => {
    const { pool, deploymentId, flowId } = await arrangeDeployment();
    const due = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 1000) });
    const later = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 3_600_000) });
    const poolId = (await prefect.readWorkPool(pool))?.id;

    const runs = await prefect.getScheduledFlowRuns(pool, {
      workQueueNames: [],
      scheduledBefore: new Date(Date.now() + 10_000),
    });

    expect(runs).toHaveLength(1);
    const [entry] = runs;
    expect(entry?.work_pool_id).toBe(poolId);
    expect(entry?.flow_run).toMatchObject({
      id: due.id,
      name: due.name,
      flow_id: flowId,
      deployment_id: deploymentId,
      work_queue_name: 'default',
      state_type: 'SCHEDULED',
      state_name: 'Scheduled',
      infrastructure_pid: null,
    });
    expect(entry?.work_queue_id).toBe(entry?.flow_run.work_queue_id);

    const withLater = await prefect.getScheduledFlowRuns(pool, {
      workQueueNames: ['default'],
      scheduledBefore: new Date(Date.now() + 7_200_000),
      scheduledAfter: new Date(Date.now() + 60_000),
      limit: 5,
    });
    expect(withLater.map((r) => r.flow_run.id)).toEqual([later.id]);
  });

  it('treats a missing pool as no runs', async () => {
    const runs = await prefect.getScheduledFlowRuns(uniqueName('missing'), {
      workQueueNames: [],
      scheduledBefore: new Date(),
    });
    expect(runs).toEqual([]);
  });
});

describe('flow run states', () => {
  it('accepts the first Pending and aborts the second (the claim)', async () => {
    const { deploymentId } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);

    const first = await prefect.setFlowRunState(run.id, pendingState(run.id));
    expect(first.status).toBe('ACCEPT');
    expect(first.details).toEqual({ type: 'accept_details' });
    expect(first.state).toMatchObject({ type: 'PENDING', name: 'Pending' });

    const second = await prefect.setFlowRunState(run.id, pendingState(run.id));
    expect(second.status).toBe('ABORT');
    expect(second.details.reason).toBe(
      'This run is in a PENDING state and cannot transition to a PENDING state.',
    );
  });

  it('takes a repeated proposal (same transition id), which the server refuses as a duplicate, as accepted', async () => {
    const { deploymentId } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);
    const proposal = pendingState(run.id);

    expect((await prefect.setFlowRunState(run.id, proposal)).status).toBe('ACCEPT');
    // What a retry after a lost answer sends: the server answers REJECT ("already made this state
    // transition") with the proposal as the current state, which the client reports as the ACCEPT it was.
    const repeat = await prefect.setFlowRunState(run.id, proposal);
    expect(repeat.status).toBe('ACCEPT');
    expect(repeat.state).toMatchObject({
      type: 'PENDING',
      name: 'Pending',
      state_details: { transition_id: proposal.state_details?.transition_id },
    });
    expect(repeat.details).toMatchObject({ reason: 'This run has already made this state transition.' });
    // A new proposal of the same state is still someone's second claim: ABORT.
    expect((await prefect.setFlowRunState(run.id, pendingState(run.id))).status).toBe('ABORT');
  });

  it('walks Submitting and InfrastructurePending, then Crashed with its message', async () => {
    const { deploymentId } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);
    await prefect.setFlowRunState(run.id, pendingState(run.id));

    const submitting = await prefect.setFlowRunState(run.id, submittingState(run.id));
    if (!(await serverAtLeast(3, 9))) {
      // Servers before the 3.9 line refuse Pending → Pending (the worker's Submitting, an older launcher's
      // InfrastructurePending): "cannot transition to a PENDING state".
      expect(submitting).toMatchObject({ status: 'ABORT', state: { type: 'PENDING', name: 'Pending' } });
      return;
    }
    expect(submitting).toMatchObject({ status: 'ACCEPT', state: { type: 'PENDING', name: 'Submitting' } });
    const infra = await prefect.setFlowRunState(
      run.id,
      flowRunState(run.id, 'PENDING', { name: 'InfrastructurePending', message: 'ECS task is pending.' }),
    );
    expect(infra).toMatchObject({
      status: 'ACCEPT',
      state: { type: 'PENDING', name: 'InfrastructurePending', message: 'ECS task is pending.' },
    });
    const message =
      'Failed to submit flow run to infrastructure: RuntimeError: Failed to run ECS task: RESOURCE:ENI';
    const crashed = await prefect.setFlowRunState(run.id, crashedState(run.id, message));
    expect(crashed).toMatchObject({ status: 'ACCEPT', state: { type: 'CRASHED', name: 'Crashed', message } });

    expect(await prefect.readFlowRun(run.id)).toMatchObject({
      state_type: 'CRASHED',
      state: { type: 'CRASHED', message, state_details: { flow_run_id: run.id } },
    });
  });

  it('hands a run back to Scheduled at a given time, and cancels with force', async () => {
    const { deploymentId } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);
    await prefect.setFlowRunState(run.id, pendingState(run.id));
    const at = new Date(Date.now() + 600_000);

    const back = await prefect.setFlowRunState(run.id, scheduledState(run.id, at, { message: 'try later' }));
    expect(back.status).toBe('ACCEPT');
    expect(back.state?.type).toBe('SCHEDULED');
    expect(Date.parse(String(back.state?.state_details.scheduled_time))).toBe(at.getTime());

    const current = (await prefect.readFlowRun(run.id)).state;
    const cancelled = await prefect.setFlowRunState(
      run.id,
      cancelledState(run.id, `Deployment ${deploymentId} no longer exists, cancelled run.`, current),
      { force: true },
    );
    expect(cancelled).toMatchObject({
      status: 'ACCEPT',
      state: { type: 'CANCELLED', name: 'Cancelled', message: expect.stringContaining('no longer exists') },
    });
  });

  it('sits out a WAIT and proposes again', async () => {
    const { deploymentId } = await arrangeDeployment();
    // The server makes Scheduled → Running wait for the scheduled time (`WaitForScheduledTime`).
    const run = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 4000) });
    // Waits for WAIT are real (the server's clock must move) and recorded; HTTP retries are not recorded.
    const sleeps: number[] = [];
    const waiting = new PrefectClient(
      new PrefectHttp(
        { apiUrl: stackUrls().prefectApiUrl, timeoutMs: 15_000, maxRetries: 3 },
        { kind: 'none' },
      ),
      {
        sleep: (ms) => {
          sleeps.push(ms);
          return new Promise((resolve) => setTimeout(resolve, ms));
        },
      },
    );

    const handedBack = await waiting.setFlowRunState(run.id, flowRunState(run.id, 'RUNNING'), {
      maxWaits: 0,
    });
    expect(handedBack).toMatchObject({
      status: 'WAIT',
      details: { type: 'wait_details', reason: 'Scheduled time is in the future' },
      state: { type: 'SCHEDULED' },
    });
    expect(sleeps).toEqual([]);

    const result = await waiting.setFlowRunState(run.id, flowRunState(run.id, 'RUNNING'));
    expect(result).toMatchObject({ status: 'ACCEPT', state: { type: 'RUNNING' } });
    expect(sleeps.length).toBeGreaterThanOrEqual(1);
    expect(sleeps.every((ms) => ms >= 1000 && ms <= 4000)).toBe(true);
  });

  it('surfaces a deployment concurrency REJECT with the imposed state', async () => {
    const { pool, flowId } = await arrangeDeployment();
    const deployment = await prefectRaw<{ id: string }>('POST', '/deployments/', {
      name: uniqueName('limited'),
      flow_id: flowId,
      work_pool_name: pool,
      work_queue_name: 'default',
      concurrency_limit: 1,
      entrypoint: 'flows.py:my_flow',
      enforce_parameter_schema: false,
    });
    const a = await scheduleFlowRun(deployment.id);
    const b = await scheduleFlowRun(deployment.id);

    const first = await prefect.setFlowRunState(a.id, pendingState(a.id));
    expect(first.status).toBe('ACCEPT');
    // Deployment concurrency leases: on the 3.4 line and since, not on 3.0.
    if (await serverAtLeast(3, 4)) {
      expect(first.state?.state_details.deployment_concurrency_lease_id).toEqual(expect.any(String));
    }

    const second = await prefect.setFlowRunState(b.id, pendingState(b.id));
    expect(second.status).toBe('REJECT');
    expect(second.details.reason).toBe('Deployment concurrency limit reached.');
    expect(second.state).toMatchObject({ type: 'SCHEDULED', name: 'AwaitingConcurrencySlot' });
  });
});

describe('flow run updates', () => {
  it('stores the infrastructure pid and labels', async () => {
    const { deploymentId, pool } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);
    const pid = 'prod::arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef';

    await prefect.updateFlowRun(run.id, { infrastructure_pid: pid });
    const labelled = await prefect.updateFlowRunLabels(run.id, {
      'prefect.worker.name': 'launcher test',
      'prefect.worker.type': 'ecs',
      'prefect.work-pool.name': pool,
    });

    const read = await prefect.readFlowRun(run.id);
    expect(read.infrastructure_pid).toBe(pid);
    if (!(await serverAtLeast(3, 1))) {
      // A 3.0 server has no labels route: the client says so rather than failing.
      expect(labelled).toBe(false);
      expect(read.labels).toBeUndefined();
      return;
    }
    expect(labelled).toBe(true);
    expect(read.labels).toMatchObject({
      'prefect.worker.name': 'launcher test',
      'prefect.worker.type': 'ecs',
      'prefect.work-pool.name': pool,
      'prefect.deployment.id': deploymentId,
    });
  });

  it('finds runs with a filter', async () => {
    const { deploymentId } = await arrangeDeployment();
    const a = await scheduleFlowRun(deploymentId);
    const b = await scheduleFlowRun(deploymentId);
    await prefect.setFlowRunState(b.id, pendingState(b.id));

    const pending = await prefect.filterFlowRuns({
      flow_runs: { id: { any_: [a.id, b.id] }, state: { type: { any_: ['PENDING'] } } },
      sort: 'ID_DESC',
      limit: 10,
    });
    expect(pending.map((r) => r.id)).toEqual([b.id]);
    expect(pending[0]?.state?.type).toBe('PENDING');
  });

  it('reports a missing flow run as a 404 PrefectApiError', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const err = await prefect.readFlowRun(id).catch((e) => e);
    expect(err).toBeInstanceOf(PrefectApiError);
    expect(err.status).toBe(404);
    expect(err.message).toBe(`Prefect API GET /flow_runs/${id} failed: 404 Not Found: Flow run not found`);
  });
});

describe('deployments and flows', () => {
  it('reads a deployment and its flow, and null for a deleted deployment', async () => {
    const { deploymentId, flowId, pool } = await arrangeDeployment({ jobVariables: { cpu: 512 } });
    const deployment = await prefect.readDeployment(deploymentId);
    expect(deployment).toMatchObject({
      id: deploymentId,
      flow_id: flowId,
      work_pool_name: pool,
      job_variables: { cpu: 512 },
    });
    expect((await prefect.readFlow(flowId)).id).toBe(flowId);

    await prefectRaw('DELETE', `/deployments/${deploymentId}`);
    expect(await prefect.readDeployment(deploymentId)).toBeNull();
  });
});

describe('logs', () => {
  it('writes log lines to a flow run and reads them back', async () => {
    const { deploymentId } = await arrangeDeployment();
    const run = await scheduleFlowRun(deploymentId);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

    await prefect.createFlowRunLogs([
      { flowRunId: run.id, level: LogLevel.ERROR, message: 'Container image pull failed', timestamp: at },
      { flowRunId: run.id, level: LogLevel.INFO, message: 'second', name: 'prefect.ecs' },
    ]);

    const logs = await prefect.readLogs({ logs: { flow_run_id: { any_: [run.id] } }, sort: 'TIMESTAMP_ASC' });
    expect(logs).toEqual([
      expect.objectContaining({
        flow_run_id: run.id,
        level: 40,
        message: 'Container image pull failed',
        name: 'prefect.flow_runs.worker',
      }),
      expect.objectContaining({ level: 20, message: 'second', name: 'prefect.ecs' }),
    ]);
    expect(Date.parse(logs[0]?.timestamp ?? '')).toBe(at.getTime());
  });
});

describe('template references', () => {
  it('reads block documents by id and by name with secrets, and variables', async () => {
    const slug = uniqueName('launcher-test-creds');
    const blockType = await prefectRaw<{ id: string }>('POST', '/block_types/', { name: slug, slug });
    const schema = await prefectRaw<{ id: string }>('POST', '/block_schemas/', {
      block_type_id: blockType.id,
      fields: {
        title: 'Creds',
        type: 'object',
        properties: {
          region_name: { title: 'Region', type: 'string' },
          secret_key: { title: 'Secret', type: 'string', format: 'password', writeOnly: true },
        },
        secret_fields: ['secret_key'],
      },
    });
    const data = { region_name: 'eu-west-1', secret_key: 'not-obfuscated' };
    const doc = await prefectRaw<{ id: string }>('POST', '/block_documents/', {
      name: 'prod',
      block_type_id: blockType.id,
      block_schema_id: schema.id,
      data,
    });
    // Without include_secrets the server hides the secret; the client must ask for it.
    const hidden = await prefectRaw<{ data: { secret_key: string } }>('GET', `/block_documents/${doc.id}`);
    expect(hidden.data.secret_key).not.toBe('not-obfuscated');

    expect(await prefect.readBlockDocumentData(doc.id)).toEqual(data);
    expect(await prefect.readBlockDocumentDataByName(slug, 'prod')).toEqual(data);
    expect(await prefect.readBlockDocumentDataByName(slug, 'nope')).toBeNull();
    await expect(prefect.readBlockDocumentData('00000000-0000-4000-8000-000000000000')).rejects.toThrow(
      /404 Not Found: Block document not found/,
    );

    const name = uniqueName('launcher_var').replace(/-/g, '_');
    await prefectRaw('POST', '/variables/', { name, value: { subnets: ['subnet-a'], public: false } });
    await prefectRaw('POST', '/variables/', { name: `${name}_s`, value: 'plain' });
    expect(await prefect.readVariableValue(name)).toEqual({ subnets: ['subnet-a'], public: false });
    expect(await prefect.readVariableValue(`${name}_s`)).toBe('plain');
    expect(await prefect.readVariableValue(`${name}_missing`)).toBeUndefined();
  });
});
