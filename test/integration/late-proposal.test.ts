import fs from 'node:fs';
import path from 'node:path';
import type { Task } from '@aws-sdk/client-ecs';
import { runReport } from '../../src/launch/entrypoints';
import { parseTaskStateChangeEvent } from '../../src/launch/events';
import { poll } from '../../src/launch/poll';
import { claimMessage, type ReconcileAws, reconcile, WORKER_NAME_LABEL } from '../../src/launch/reconcile';
import { infrastructurePid } from '../../src/launch/report';
import { isLateClaim, pendingState } from '../../src/prefect/states';
import type { State } from '../../src/prefect/types';
import type { Runtime } from '../../src/runtime';
import { arrangeDeployment, prefectRaw, scheduleFlowRun, serverAtLeast } from '../harness/env';
import { testRuntime } from '../harness/launcher';

/**
 * A proposal decided from a read that the run's own launch and end overtook, forced on the real Prefect
 * server: the server accepts a claim (PENDING "Pending") over COMPLETED, FAILED and CRASHED, as for a
 * re-run. The launcher must learn of it and give the run its end back, never crash it.
 */

const WORKER = 'prefect-ecs-launcher-late';
const PLACEHOLDER = '00000000-0000-4000-8000-000000000000';

interface RunView {
  state_type: string;
  state_name: string;
  infrastructure_pid: string | null;
  state: State;
}

const flowRun = (id: string) => prefectRaw<RunView>('GET', `/flow_runs/${id}`);
const history = async (id: string) =>
  (await prefectRaw<State[]>('GET', `/flow_run_states/?flow_run_id=${id}`)).sort((a, b) =>
    a.timestamp.localeCompare(b.timestamp),
  );

async function setState(id: string, type: string, name?: string): Promise<State> {
  const out = await prefectRaw<{ status: string; state: State }>('POST', `/flow_runs/${id}/set_state`, {
    state: { type, ...(name ? { name } : {}) },
    force: false,
  });
  if (out.status !== 'ACCEPT') throw new Error(`could not set ${id} to ${type}: ${JSON.stringify(out)}`);
  return out.state;
}

/** The launcher's claim, as the poll proposes it. */
async function claim(rt: Runtime, id: string) {
  return rt.prefect.setFlowRunState(id, pendingState(id, claimMessage(WORKER)), { force: false });
}

function task(
  name: string,
  flowRunId: string,
): Task & { clusterArn: string; taskArn: string; lastStatus: string } {
  const text = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'ecs-events', `${name}.json`), 'utf8');
  return parseTaskStateChangeEvent(JSON.parse(text.replaceAll(PLACEHOLDER, flowRunId)) as unknown);
}

let rt: Runtime;
let pool: string;
let deploymentId: string;

beforeAll(async () => {
  ({ pool, deploymentId } = await arrangeDeployment());
  rt = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_WORKER_NAME: WORKER });
});

describe('a claim tells where it came from: the server copies the scheduled time only from SCHEDULED', () => {
  it('a claim from Scheduled carries the scheduled time, also when the run was created without one', async () => {
    const timed = await scheduleFlowRun(deploymentId);
    const untimed = await prefectRaw<{ id: string }>('POST', `/deployments/${deploymentId}/create_flow_run`, {
      state: { type: 'SCHEDULED' },
    });
    for (const run of [timed, untimed]) {
      const result = await claim(rt, run.id);
      expect(result.status).toBe('ACCEPT');
      expect(result.state?.state_details.scheduled_time).toEqual(expect.any(String));
      expect(isLateClaim(result.state as State)).toBe(false);
    }
  });

  it.each([
    ['COMPLETED', ['RUNNING', 'COMPLETED']],
    ['FAILED', ['RUNNING', 'FAILED']],
    ['CRASHED', ['CRASHED']],
  ])('a claim accepted over %s carries none', async (_, path) => {
    const run = await scheduleFlowRun(deploymentId);
    await claim(rt, run.id);
    for (const type of path) await setState(run.id, type);
    const late = await claim(rt, run.id);
    expect(late.status).toBe('ACCEPT');
    expect(late.state?.state_details.scheduled_time ?? null).toBeNull();
    expect(isLateClaim(late.state as State)).toBe(true);
  });
});

describe('a claim delayed past the flow’s end', () => {
  it('the poll restores the end its claim displaced and starts no execution', async () => {
    const run = await scheduleFlowRun(deploymentId);
    // The poll reads the run while Scheduled; before its claim arrives, another poll claims and launches
    // it, and its flow runs and completes.
    const prefect = Object.create(rt.prefect) as Runtime['prefect'];
    prefect.getScheduledFlowRuns = async (...args) => {
      const due = await rt.prefect.getScheduledFlowRuns(...args);
      if (due.some((d) => d.flow_run.id === run.id)) {
        await claim(rt, run.id);
        await setState(run.id, 'RUNNING');
        await setState(run.id, 'COMPLETED');
      }
      return due.filter((d) => d.flow_run.id === run.id);
    };
    const started: string[] = [];
    const summary = await poll({
      prefect,
      startExecution: async ({ flowRunId }) => {
        started.push(flowRunId);
        return { alreadyStarted: false };
      },
      settings: {
        workPool: pool,
        workQueues: [],
        workerName: WORKER,
        lookaheadSeconds: 10,
        startLeadSeconds: 0,
        pollIntervalSeconds: 10,
        concurrency: 4,
      },
      log: rt.log,
    });

    expect(summary.outcomes).toMatchObject({ 'late-claim': 1, started: 0 });
    expect(started).toEqual([]);
    expect(await flowRun(run.id)).toMatchObject({ state_type: 'COMPLETED', state_name: 'Completed' });
    expect((await history(run.id)).map((s) => s.type)).toEqual([
      'SCHEDULED',
      'PENDING',
      'RUNNING',
      'COMPLETED',
      'PENDING',
      'COMPLETED',
    ]);
  });

  it('any ECS event of a run left in a late claim (its poll died) restores the end', async () => {
    const run = await scheduleFlowRun(deploymentId);
    await claim(rt, run.id);
    await setState(run.id, 'RUNNING');
    await setState(run.id, 'FAILED');
    await claim(rt, run.id);
    expect(await runReport(rt, task('pending', run.id))).toBe('run-moved-on');
    expect(await flowRun(run.id)).toMatchObject({ state_type: 'FAILED', state_name: 'Failed' });
  });
});

/**
 * The second interleaving of issue 19: a late claim reopened the Completed run; an older launcher then
 * proposed InfrastructurePending on a late ECS PENDING event (accepted over a Pending); the sweep found the
 * task stopped with exit 0 and crashed the run. The displaced-final rule looked only after the newest claim,
 * which was the late one. The launcher proposes InfrastructurePending no more; the sweep restores the end.
 */
describe('the sweep over a run that a late proposal reopened', () => {
  const stoppedTask = (taskArn: string): Task => ({
    taskArn,
    lastStatus: 'STOPPED',
    stoppedAt: new Date(Date.now() - 60_000),
    containers: [{ name: 'prefect', exitCode: 0, lastStatus: 'STOPPED' }],
    stopCode: 'EssentialContainerExited',
    stoppedReason: 'Essential container in task exited',
  });

  /** One sweep of the run's own pool, a little later, whose task stopped a minute ago with exit 0. */
  async function sweep(sweptPool: string) {
    const aws: ReconcileAws = {
      runningExecutions: async () => new Set(),
      describeExecution: async () => ({ status: 'SUCCEEDED', stopDate: new Date(Date.now() - 60_000) }),
      startExecution: async () => {
        throw new Error('no execution may start');
      },
      stopExecution: async () => {},
      describeTasks: async (_, arns) => new Map(arns.map((arn) => [arn, stoppedTask(arn)])),
      stopTask: async () => {},
    };
    return reconcile({
      prefect: rt.prefect,
      aws,
      settings: {
        workPool: sweptPool,
        workerName: WORKER,
        settleSeconds: 1,
        cancelGraceSeconds: 30,
        concurrency: 4,
      },
      log: rt.log,
      // A sweep leaves a state younger than settleSeconds to a later sweep: this one comes after it settled.
      now: new Date(Date.now() + 2_000),
    });
  }

  /** A run of ours, as Prepare labels it and the report function records its task. */
  async function launched(flowRunId: string): Promise<void> {
    await rt.prefect.updateFlowRunLabels(flowRunId, { [WORKER_NAME_LABEL]: WORKER });
    await rt.prefect.updateFlowRun(flowRunId, {
      infrastructure_pid: infrastructurePid(task('running', flowRunId)),
    });
  }

  /** A run in a pool of its own, claimed, its task known, and Completed by its flow. */
  async function launchedAndCompleted(): Promise<{ id: string; pool: string }> {
    const own = await arrangeDeployment();
    const run = await scheduleFlowRun(own.deploymentId);
    await claim(rt, run.id);
    await launched(run.id);
    await setState(run.id, 'RUNNING');
    await setState(run.id, 'COMPLETED');
    return { id: run.id, pool: own.pool };
  }

  it('Completed, a late claim, an older launcher’s InfrastructurePending: the sweep restores Completed', async () => {
    const { id, pool: own } = await launchedAndCompleted();
    await claim(rt, id);
    if (!(await serverAtLeast(3, 9))) {
      // Before the 3.9 line the server refuses Pending → Pending, so this history cannot arise there.
      const refused = await prefectRaw<{ status: string }>('POST', `/flow_runs/${id}/set_state`, {
        state: { type: 'PENDING', name: 'InfrastructurePending' },
        force: false,
      });
      expect(refused.status).toBe('ABORT');
      return;
    }
    await setState(id, 'PENDING', 'InfrastructurePending');
    const summary = await sweep(own);
    expect(summary).toMatchObject({ restored: 1, crashed: 0 });
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED', state_name: 'Completed' });
  });

  it('Completed then a late claim whose poll died before restoring: the sweep restores Completed', async () => {
    const { id, pool: own } = await launchedAndCompleted();
    await claim(rt, id);
    expect(await sweep(own)).toMatchObject({ restored: 1, crashed: 0 });
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED' });
  });

  it('Completed, back to Scheduled (a failed start that had started), claimed again: Completed is restored', async () => {
    const { id, pool: own } = await launchedAndCompleted();
    await prefectRaw('POST', `/flow_runs/${id}/set_state`, {
      state: { type: 'SCHEDULED', state_details: { scheduled_time: new Date().toISOString() } },
      force: false,
    });
    const again = await claim(rt, id);
    expect(isLateClaim(again.state as State)).toBe(false);
    expect(await sweep(own)).toMatchObject({ restored: 1, crashed: 0 });
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED' });
  });

  it('a claimed run whose task stopped without a final state is still crashed', async () => {
    const own = await arrangeDeployment();
    const run = await scheduleFlowRun(own.deploymentId);
    await claim(rt, run.id);
    await launched(run.id);
    expect(await sweep(own.pool)).toMatchObject({ restored: 0, crashed: 1 });
    expect(await flowRun(run.id)).toMatchObject({ state_type: 'CRASHED' });
  });
});
