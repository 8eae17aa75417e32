import path from 'node:path';
import { DescribeExecutionCommand, ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { executionArnFor } from '../../src/aws/sfn';
import { prefectRaw, scheduleFlowRun, uniqueName } from '../harness/env';
import { type NpmStart, npmStart, printed, within } from '../harness/npm-start';

/**
 * End to end on this machine: one `npm start` (the launcher's poll on a 5 s timer with 10 s look-ahead,
 * the deployed state machine executed locally, each ECS task's container command run as a local process)
 * serves one pool for the whole file, against the test Prefect server. Each case deploys a flow from
 * test/fixtures/flows and follows its run through Prefect; the cases run concurrently.
 * A command that exits non-zero before the engine starts is in local-run.test.ts.
 */

type StateView = {
  id: string;
  type: string;
  name: string;
  timestamp: string;
  message: string | null;
};
type FlowRunView = {
  id: string;
  name: string;
  state_type: string | null;
  state_name: string | null;
  state: StateView | null;
  infrastructure_pid: string | null;
};

const FINAL = ['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'];
const flowsDir = path.resolve(__dirname, '..', 'fixtures', 'flows');
const pool = uniqueName('e2e');
let launcher: NpmStart;
/** npm start's own moto, where the polls start the launch executions. */
let sfn: SFNClient;
let stateMachineArn: string;

beforeAll(async () => {
  // A cancelled run still running after 15 s has its task stopped by the launcher.
  launcher = npmStart(['--no-sample', '--pool', pool], { LAUNCHER_CANCEL_GRACE_SECONDS: '15' });
  await within(60_000, 'npm start', printed(launcher, /polling every/), launcher);
  const motoUrl = (await printed(launcher, /moto {2,}(http:\/\/\S+)/))[1] as string;
  sfn = new SFNClient({
    endpoint: motoUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const machines = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? [];
  stateMachineArn = machines.find((m) => m.name === 'prefect-ecs-launcher-launch')?.stateMachineArn ?? '';
  expect(stateMachineArn).not.toBe('');
}, 70_000);

afterAll(async () => {
  if (!launcher || launcher.child.exitCode !== null) return;
  launcher.child.kill('SIGTERM');
  await within(20_000, 'stopping npm start', launcher.exited, launcher);
}, 30_000);

/**
 * Test data is written one request at a time, however many cases run: the test server's SQLite answers
 * concurrent writers with 503 (see `prefectRaw`), and npm start's launcher is writing too.
 */
let arranging: Promise<unknown> = Promise.resolve();
function serially<T>(write: () => Promise<T>): Promise<T> {
  const next = arranging.then(write, write);
  arranging = next.catch(() => undefined);
  return next;
}

/**
 * A deployment of a flow under test/fixtures/flows in the pool, loaded from this checkout by
 * `prefect flow-run execute` (a `path` and no pull steps, as npm start deploys its sample).
 */
function deployFixture(entrypoint: string, jobVariables: Record<string, unknown> = {}): Promise<string> {
  return serially(async () => {
    const flow = await prefectRaw<{ id: string }>('POST', '/flows/', { name: uniqueName('e2e-flow') });
    const deployment = await prefectRaw<{ id: string }>('POST', '/deployments/', {
      name: uniqueName('e2e'),
      flow_id: flow.id,
      work_pool_name: pool,
      path: flowsDir,
      entrypoint,
      pull_steps: [],
      enforce_parameter_schema: false,
      // The fixtures' directory stays free of __pycache__.
      job_variables: { env: { PYTHONDONTWRITEBYTECODE: '1' }, ...jobVariables },
    });
    return deployment.id;
  });
}

/** A Scheduled run of the deployment, due at `scheduledTime` (default: now). */
function startRun(deploymentId: string, scheduledTime?: Date): Promise<{ id: string; name: string }> {
  return serially(() => scheduleFlowRun(deploymentId, scheduledTime ? { scheduledTime } : {}));
}

async function readRun(id: string): Promise<FlowRunView> {
  return prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);
}

/** The run once `done` holds for it, read every 250 ms; after `ms` an error with npm start's output. */
async function waitForRun(
  id: string,
  done: (run: FlowRunView) => boolean,
  what: string,
  ms = 45_000,
): Promise<FlowRunView> {
  const poll = async () => {
    for (;;) {
      const run = await readRun(id);
      if (done(run)) return run;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  return within(ms, `flow run ${id} ${what}`, poll(), launcher);
}

function finalState(id: string, ms?: number): Promise<FlowRunView> {
  return waitForRun(id, (run) => FINAL.includes(run.state_type ?? ''), 'to reach a final state', ms);
}

/** The run's launch execution once it has ended (the local executor ends it in moto when its run ends). */
async function launchEnded(id: string): Promise<string> {
  const executionArn = executionArnFor(stateMachineArn, id);
  const poll = async () => {
    for (;;) {
      const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      if (status && status !== 'RUNNING') return status;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  return within(30_000, `the launch execution of ${id} to end`, poll(), launcher);
}

async function statesOf(id: string): Promise<StateView[]> {
  const states = await prefectRaw<StateView[]>('GET', `/flow_run_states/?flow_run_id=${id}`);
  return states.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
}

async function logsOf(id: string): Promise<string[]> {
  const logs = await prefectRaw<{ message: string }[]>('POST', '/logs/filter', {
    logs: { flow_run_id: { any_: [id] } },
  });
  return logs.map((l) => l.message);
}

describe('end to end: npm start launches flow runs of an ecs pool as local ECS tasks', () => {
  it.concurrent('runs a flow that completes to Completed, with its logs and the task as its pid', async () => {
    const run = await startRun(await deployFixture('completes.py:completes'));
    const view = await finalState(run.id);
    expect(view.state_type).toBe('COMPLETED');
    expect(view.infrastructure_pid).toMatch(/^arn:aws:ecs:[^:]+:\d{12}:cluster\/default::arn:aws:ecs:/);
    // The local executor ends a finished execution in moto with StopExecution (moto's only way).
    expect(await launchEnded(run.id)).toBe('ABORTED');
    // The engine sends its last log lines as its process exits, which is before the execution ends.
    expect(await logsOf(run.id)).toContain('e2e fixture flow completed');
    expect((await statesOf(run.id)).map((s) => s.name)).toEqual([
      'Scheduled',
      'Pending',
      'Running',
      'Completed',
    ]);
  });

  it.concurrent('reports a flow that raises as Failed with its exception, not Crashed, after its task stopped', async () => {
    const run = await startRun(await deployFixture('raises.py:raises'));
    const view = await finalState(run.id);
    expect(view.state_type).toBe('FAILED');
    expect(view.state?.message).toContain('ValueError: e2e fixture flow failed on purpose');
    // The task's end reaches the report function and the state machine after the engine's Failed; neither
    // may turn it into Crashed.
    await launchEnded(run.id);
    const after = await readRun(run.id);
    expect(after.state_type).toBe('FAILED');
    expect(after.state?.id).toBe(view.state?.id);
  });

  it.concurrent('crashes a run whose task cannot start, naming the cause', async () => {
    const image = 'registry.example.com/not-prefect/worker:1';
    const run = await startRun(await deployFixture('completes.py:completes', { image }));
    const view = await finalState(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state?.message).toMatch(
      /^Failed to submit flow run to infrastructure: TaskFailedToStart: The image could not be pulled; .* \(CannotPullContainerError: /,
    );
    expect(view.state?.message).toContain(image);
    expect((await logsOf(run.id)).join('\n')).toContain('Container image pull failed');
    expect((await statesOf(run.id)).map((s) => s.name)).not.toContain('Running');
  });

  it.concurrent('claims a scheduled run early and starts its task at the scheduled second', async () => {
    const deploymentId = await deployFixture('completes.py:completes');
    // Far enough ahead that at least one 5 s poll sees it within its 10 s look-ahead before it is due.
    const scheduled = new Date(Date.now() + 22_000);
    const run = await startRun(deploymentId, scheduled);
    const view = await finalState(run.id, 60_000);
    expect(view.state_type).toBe('COMPLETED');

    const states = await statesOf(run.id);
    const at = (name: string) => {
      const state = states.find((s) => s.name === name);
      if (!state) throw new Error(`no ${name} state in ${states.map((s) => s.name).join(', ')}`);
      return Date.parse(state.timestamp);
    };
    const due = scheduled.getTime();
    // Claimed ahead of time…
    expect(at('Pending')).toBeLessThan(due);
    // …but its flow not started before the scheduled second, and soon after it (a Python engine's start-up
    // included; the launcher proposes no InfrastructurePending that would time the task itself).
    expect(at('Running')).toBeGreaterThanOrEqual(due);
    expect(at('Running') - due).toBeLessThan(20_000);
  });

  it.concurrent('cancels a running flow: the run ends Cancelled and its process is gone', async () => {
    const run = await startRun(await deployFixture('sleeps.py:sleeps'));
    await waitForRun(run.id, (r) => r.state_type === 'RUNNING', 'to run');
    const pidLine = await within(
      30_000,
      'the flow to log its pid',
      (async () => {
        for (;;) {
          const line = (await logsOf(run.id)).find((l) => l.startsWith('e2e sleeper pid '));
          if (line) return line;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })(),
      launcher,
    );
    const pid = Number(pidLine.slice('e2e sleeper pid '.length));
    expect(alive(pid)).toBe(true);

    // What the UI's Cancel button does.
    await serially(() =>
      prefectRaw('POST', `/flow_runs/${run.id}/set_state`, {
        state: { type: 'CANCELLING', name: 'Cancelling' },
        force: false,
      }),
    );
    // The engine in the task, or after the 15 s grace period the launcher, ends it.
    const view = await finalState(run.id, 60_000);
    expect(view.state_type).toBe('CANCELLED');
    await launchEnded(run.id);
    await within(
      15_000,
      `the flow's process ${pid} to end`,
      (async () => {
        while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 250));
      })(),
      launcher,
    );
  }, 120_000);
});

/** Whether a process exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
