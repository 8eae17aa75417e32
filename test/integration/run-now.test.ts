import { randomBytes } from 'node:crypto';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { runRunNow } from '../../src/launch/entrypoints';
import { handleRunNow } from '../../src/launch/run-now';
import {
  applyRunNowAutomation,
  removeRunNowAutomation,
  runNowNames,
} from '../../src/launch/run-now-automation';
import { startRunNowListener } from '../../src/local/run-now-listener';
import type { Runtime } from '../../src/runtime';
import { arrangeDeployment, awsTestConfig, prefectRaw, scheduleFlowRun } from '../harness/env';
import { createLaunchStateMachine, testRuntime } from '../harness/launcher';

const sfn = new SFNClient(awsTestConfig());

async function executionNames(stateMachineArn: string): Promise<string[]> {
  const out = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
  return (out.executions ?? []).map((e) => e.name ?? '').sort();
}

async function stateOf(flowRunId: string): Promise<string> {
  return (await prefectRaw<{ state_type: string }>('GET', `/flow_runs/${flowRunId}`)).state_type;
}

/** The states a run went through: a second claim would show as a second PENDING. */
async function historyOf(flowRunId: string): Promise<string[]> {
  const states = await prefectRaw<{ type: string }[]>('GET', `/flow_run_states/?flow_run_id=${flowRunId}`);
  return states.map((s) => s.type);
}

interface Entry {
  pool: string;
  deploymentId: string;
  stateMachineArn: string;
  rt: Runtime;
  token: string;
  url: string;
  calls: { flowRunId: string | undefined; at: number }[];
  stop: () => Promise<void>;
}

/** A pool with its launcher and the run-now entry point on loopback, as `npm start` runs it. */
async function entryPoint(): Promise<Entry> {
  const { pool, deploymentId } = await arrangeDeployment();
  const stateMachineArn = await createLaunchStateMachine();
  const rt = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: stateMachineArn });
  const token = randomBytes(32).toString('hex');
  const calls: Entry['calls'] = [];
  const listener = await startRunNowListener(
    (request) =>
      handleRunNow(
        {
          token: async () => token,
          claim: (flowRunId) => {
            calls.push({ flowRunId, at: Date.now() });
            return runRunNow(rt, flowRunId);
          },
          log: rt.log,
        },
        request,
      ),
    (error) => {
      throw error;
    },
  );
  return { pool, deploymentId, stateMachineArn, rt, token, url: listener.url, calls, stop: listener.stop };
}

function call(url: string, init: { token?: string; body?: string; method?: string }) {
  return fetch(url, {
    method: init.method ?? 'POST',
    headers: {
      'content-type': 'application/json',
      ...(init.token !== undefined ? { authorization: `Bearer ${init.token}` } : {}),
    },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('run now, against the real Prefect server and moto', () => {
  const entries: Entry[] = [];
  afterAll(async () => {
    for (const entry of entries) {
      await removeRunNowAutomation(entry.rt.prefect, entry.pool);
      await entry.stop();
    }
  });

  it("launches a run started by hand within seconds, through the pool's real automation", async () => {
    const entry = await entryPoint();
    entries.push(entry);
    const pool = await entry.rt.prefect.readWorkPool(entry.pool);
    if (!pool) throw new Error('no pool');
    expect(
      await applyRunNowAutomation(entry.rt.prefect, pool, { url: entry.url, token: entry.token }),
    ).toEqual({
      automationId: expect.any(String),
      created: true,
    });

    const created = Date.now();
    const run = await scheduleFlowRun(entry.deploymentId);
    // The automation calls the entry point, which claims the run and starts its execution: no poll ran.
    await until(
      'the execution',
      async () => ((await executionNames(entry.stateMachineArn)).includes(run.id) ? true : undefined),
      20_000,
    );
    const seconds = (Date.now() - created) / 1000;
    expect(seconds).toBeLessThan(20);
    expect(entry.calls.map((c) => c.flowRunId)).toContain(run.id);
    expect(await stateOf(run.id)).toBe('PENDING');
    expect(await historyOf(run.id)).toEqual(['SCHEDULED', 'PENDING']);
  });

  it('is updated in place when applied again, and removed with its webhook block', async () => {
    const entry = await entryPoint();
    const pool = await entry.rt.prefect.readWorkPool(entry.pool);
    if (!pool) throw new Error('no pool');
    const first = await applyRunNowAutomation(entry.rt.prefect, pool, { url: entry.url, token: entry.token });
    const rotated = randomBytes(32).toString('hex');
    const second = await applyRunNowAutomation(entry.rt.prefect, pool, { url: entry.url, token: rotated });
    expect(second).toEqual({ automationId: first.automationId, created: false });
    const names = runNowNames(entry.pool);
    expect(await entry.rt.prefect.readAutomationsByName(names.automation)).toHaveLength(1);
    // The block holds the new token (read back with its secrets, as the automation's action reads it).
    const block = await entry.rt.prefect.readBlockDocumentDataByName('webhook', names.block);
    expect(block).toMatchObject({ headers: { authorization: `Bearer ${rotated}` } });

    expect(await removeRunNowAutomation(entry.rt.prefect, entry.pool)).toBe(true);
    expect(await entry.rt.prefect.readAutomationsByName(names.automation)).toEqual([]);
    expect(await entry.rt.prefect.readBlockDocumentId('webhook', names.block)).toBeNull();
    expect(await removeRunNowAutomation(entry.rt.prefect, entry.pool)).toBe(false);
    await entry.stop();
  });

  describe('security of the entry point (no automation: each call is the test’s own)', () => {
    let entry: Entry;
    beforeAll(async () => {
      entry = await entryPoint();
    });
    afterAll(() => entry.stop());

    it('does nothing for a missing or wrong credential: 401/403, the run stays Scheduled, no execution', async () => {
      const run = await scheduleFlowRun(entry.deploymentId);
      const body = JSON.stringify({ flow_run_id: run.id });
      const missing = await call(entry.url, { body });
      expect(missing.status).toBe(401);
      // The last character changed to one it is not, so the wrong token is never the right one by chance.
      const last = entry.token.endsWith('0') ? '1' : '0';
      const wrong = await call(entry.url, { body, token: `${entry.token.slice(0, -1)}${last}` });
      expect(wrong.status).toBe(403);
      const wrongMethod = await call(entry.url, { method: 'GET', token: entry.token });
      expect(wrongMethod.status).toBe(405);
      expect(entry.calls).toEqual([]);
      expect(await stateOf(run.id)).toBe('SCHEDULED');
      expect(await executionNames(entry.stateMachineArn)).toEqual([]);

      const ok = await call(entry.url, { body, token: entry.token });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ due: 1, started: 1 });
      expect(await executionNames(entry.stateMachineArn)).toEqual([run.id]);

      // A replayed call finds the run claimed: nothing more happens.
      const replayed = await call(entry.url, { body, token: entry.token });
      expect(await replayed.json()).toEqual({ due: 0, started: 0 });
      expect(await executionNames(entry.stateMachineArn)).toEqual([run.id]);
      expect(await historyOf(run.id)).toEqual(['SCHEDULED', 'PENDING']);
    });

    it('launches each run once under a flood of valid calls, named or not', async () => {
      const before = await executionNames(entry.stateMachineArn);
      const runs = await Promise.all([1, 2, 3, 4, 5].map(() => scheduleFlowRun(entry.deploymentId)));
      const bodies = runs.flatMap((r) => [
        JSON.stringify({ flow_run_id: r.id }),
        JSON.stringify({ flow_run_id: r.id }),
      ]);
      const responses = await Promise.all(
        [...bodies, '{}', '', '{}', ''].map((body) => call(entry.url, { body, token: entry.token })),
      );
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
      const outcomes = (await Promise.all(responses.map((r) => r.json()))) as { started: number }[];
      expect(outcomes.reduce((sum, o) => sum + o.started, 0)).toBe(5);
      const after = await executionNames(entry.stateMachineArn);
      expect(after).toEqual([...before, ...runs.map((r) => r.id)].sort());
      for (const run of runs) {
        expect((await historyOf(run.id)).filter((t) => t === 'PENDING')).toHaveLength(1);
      }
    });

    it('ignores a run of another pool, and one not yet due, leaving both to their pollers', async () => {
      const other = await arrangeDeployment();
      const foreign = await scheduleFlowRun(other.deploymentId);
      const later = await scheduleFlowRun(entry.deploymentId, {
        scheduledTime: new Date(Date.now() + 3_600_000),
      });
      for (const run of [foreign, later]) {
        const response = await call(entry.url, {
          body: JSON.stringify({ flow_run_id: run.id }),
          token: entry.token,
        });
        expect(await response.json()).toEqual({ due: 0, started: 0 });
        expect(await stateOf(run.id)).toBe('SCHEDULED');
      }
    });
  });
});
