import type { Task } from '@aws-sdk/client-ecs';
import {
  claimMessage,
  decideRun,
  isOwnRun,
  parseInfrastructurePid,
  type ReconcileSettings,
  type RunFacts,
} from '../../src/launch/reconcile';
import type { FlowRun, StateType } from '../../src/prefect/types';
import stoppedExit0 from '../fixtures/ecs-events/stopped-exit-0.json';
import stoppedExit1 from '../fixtures/ecs-events/stopped-exit-1.json';

const NOW = new Date('2026-11-28T12:00:00Z');
const WORKER = 'prefect-ecs-launcher pool-a';
const settings: ReconcileSettings = { workerName: WORKER, settleSeconds: 120, cancelGraceSeconds: 240 };
const CLUSTER = 'arn:aws:ecs:us-east-1:123456789012:cluster/prod';
const TASK_ARN = 'arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef';
const PID = `${CLUSTER}::${TASK_ARN}`;

const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();

function run(
  type: StateType,
  options: {
    name?: string;
    message?: string | null;
    since?: number;
    pid?: string | null;
    started?: boolean;
    labelled?: boolean;
  } = {},
): FlowRun {
  const name = options.name ?? type.charAt(0) + type.slice(1).toLowerCase();
  return {
    id: '6f1c2f7e-9a44-4f4e-8f7e-2b0f3c1d9a10',
    name: 'brave-otter',
    flow_id: 'f',
    deployment_id: 'd',
    labels: options.labelled === false ? {} : { 'prefect.worker.name': WORKER },
    state_type: type,
    state_name: name,
    state: {
      id: 's',
      type,
      name,
      message: options.message ?? null,
      timestamp: ago(options.since ?? 600),
      state_details: {},
    },
    infrastructure_pid: options.pid === undefined ? PID : options.pid,
    start_time: options.started ? ago(900) : null,
  } as unknown as FlowRun;
}

const stopped = (fixture: { detail: unknown }, stoppedSecondsAgo = 600): Task => ({
  ...(fixture.detail as Task),
  stoppedAt: new Date(NOW.getTime() - stoppedSecondsAgo * 1000),
});
const runningTask: Task = { taskArn: TASK_ARN, lastStatus: 'RUNNING', desiredStatus: 'RUNNING' };

const decide = (facts: RunFacts) => decideRun(facts, settings, NOW);

describe('parseInfrastructurePid', () => {
  it('splits the worker-style pid at the first ::', () => {
    expect(parseInfrastructurePid(PID)).toEqual({ cluster: CLUSTER, taskArn: TASK_ARN });
  });
  it.each([null, '', 'no-separator', '::task', 'cluster::'])('rejects %j', (pid) => {
    expect(parseInfrastructurePid(pid)).toBeNull();
  });
});

describe('isOwnRun', () => {
  it('knows its runs by label, by its claim message, or by an execution of its own', () => {
    expect(isOwnRun(run('RUNNING'), WORKER)).toBe(true);
    const claimed = run('PENDING', { labelled: false, message: claimMessage(WORKER), pid: null });
    expect(isOwnRun(claimed, WORKER)).toBe(true);
    const foreign = run('PENDING', { labelled: false, pid: null });
    expect(isOwnRun(foreign, WORKER)).toBe(false);
    expect(isOwnRun(foreign, WORKER, { status: 'MISSING' })).toBe(false);
    expect(isOwnRun(foreign, WORKER, { status: 'RUNNING' })).toBe(true);
    // Another launcher's (or a worker's) claim of the same pool is not ours.
    const other = run('PENDING', { labelled: false, message: claimMessage('other'), pid: null });
    expect(isOwnRun(other, WORKER)).toBe(false);
  });
});

describe('decideRun: the sweep', () => {
  it('leaves healthy runs alone: a live task, or a launch execution still running', () => {
    expect(decide({ run: run('RUNNING'), task: runningTask })).toEqual({ kind: 'none' });
    expect(decide({ run: run('PENDING', { pid: null }), execution: { status: 'RUNNING' } })).toEqual({
      kind: 'none',
    });
  });

  it('crashes a run whose task stopped with a failure, naming what was found and the diagnosis', () => {
    const decision = decide({ run: run('RUNNING'), task: stopped(stoppedExit1) });
    expect(decision).toEqual({
      kind: 'crash',
      message:
        "prefect-ecs-launcher found the flow run's ECS task stopped while the run was still Running: The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' exited with code 1; read the container's logs for the error",
      explanation: expect.stringContaining("Containers: 'prefect' exited with code 1."),
      stopExecution: false,
    });
  });

  it('crashes a run whose task exited 0 without the engine reporting a final state', () => {
    expect(decide({ run: run('RUNNING'), task: stopped(stoppedExit0) })).toEqual({
      kind: 'crash',
      message:
        "prefect-ecs-launcher found the flow run's ECS task stopped while the run was still Running: its flow container exited with code 0, but the flow run never reported a final state.",
      stopExecution: false,
    });
  });

  it('waits for a stopped task to settle, so the STOPPED event and the engine go first', () => {
    expect(decide({ run: run('RUNNING'), task: stopped(stoppedExit1, 30) })).toEqual({ kind: 'none' });
  });

  it('crashes a run whose task ECS no longer knows, and stops its execution, which has nothing left to do', () => {
    const decision = decide({
      run: run('PENDING', { name: 'InfrastructurePending' }),
      task: 'MISSING',
      execution: { status: 'RUNNING' },
    });
    expect(decision).toMatchObject({
      kind: 'crash',
      stopExecution: true,
      message: expect.stringMatching(
        /^prefect-ecs-launcher found no ECS task .*task\/prod\/0123456789abcdef in cluster .*cluster\/prod while the flow run was still InfrastructurePending;/,
      ),
    });
  });

  it('resumes a settled claim whose launch execution never started', () => {
    const claimed = run('PENDING', { pid: null, labelled: false, message: claimMessage(WORKER) });
    expect(decide({ run: claimed, execution: { status: 'MISSING' } })).toEqual({ kind: 'resume' });
    const fresh = run('PENDING', { pid: null, since: 10, message: claimMessage(WORKER) });
    expect(decide({ run: fresh, execution: { status: 'MISSING' } })).toEqual({ kind: 'none' });
  });

  it.each(['FAILED', 'SUCCEEDED', 'ABORTED', 'TIMED_OUT'] as const)(
    'crashes a run without a task whose execution ended %s',
    (status) => {
      const decision = decide({
        run: run('PENDING', { pid: null }),
        execution: { status, stopDate: new Date(ago(300)) },
      });
      expect(decision).toEqual({
        kind: 'crash',
        message: `prefect-ecs-launcher found the flow run's launch execution ${status.toLowerCase().replace('_', ' ')} while the run was still Pending; see execution 6f1c2f7e-9a44-4f4e-8f7e-2b0f3c1d9a10 of the launch state machine in Step Functions.`,
        stopExecution: false,
      });
    },
  );

  it('gives an execution that just ended time for its Crash step to report', () => {
    const decision = decide({
      run: run('PENDING', { pid: null }),
      execution: { status: 'FAILED', stopDate: new Date(ago(5)) },
    });
    expect(decision).toEqual({ kind: 'none' });
  });

  it('never touches final or scheduled runs', () => {
    for (const type of ['COMPLETED', 'FAILED', 'CRASHED', 'SCHEDULED'] as const) {
      expect(decide({ run: run(type), task: 'MISSING', execution: { status: 'FAILED' } })).toEqual({
        kind: 'none',
      });
    }
  });
});

describe('decideRun: cancellation', () => {
  it('cancels a run that never started running at once, stopping its execution and task', () => {
    expect(
      decide({
        run: run('CANCELLING', { since: 1 }),
        execution: { status: 'RUNNING' },
        task: runningTask,
      }),
    ).toEqual({
      kind: 'cancel',
      stopExecution: true,
      stopTask: true,
      message:
        'Flow run cancelled by prefect-ecs-launcher before it started running; its launch execution and its ECS task were stopped.',
    });
    expect(
      decide({ run: run('CANCELLING', { since: 1, pid: null }), execution: { status: 'RUNNING' } }),
    ).toMatchObject({
      kind: 'cancel',
      stopExecution: true,
      stopTask: false,
      message:
        'Flow run cancelled by prefect-ecs-launcher before it started running; its launch execution was stopped.',
    });
    expect(
      decide({ run: run('CANCELLING', { pid: null }), execution: { status: 'SUCCEEDED' } }),
    ).toMatchObject({
      kind: 'cancel',
      stopExecution: false,
      stopTask: false,
      message: 'Flow run cancelled by prefect-ecs-launcher before it started running.',
    });
  });

  it('leaves a running run to its engine for the grace period, then stops its task', () => {
    const facts = (since: number): RunFacts => ({
      run: run('CANCELLING', { since, started: true }),
      execution: { status: 'RUNNING' },
      task: runningTask,
    });
    expect(decide(facts(239))).toEqual({ kind: 'none' });
    expect(decide(facts(241))).toEqual({
      kind: 'cancel',
      stopExecution: true,
      stopTask: true,
      message:
        'Flow run was still Cancelling 241 s after the cancel request (the grace period is 240 s); prefect-ecs-launcher stopped its ECS task and marked it Cancelled.',
    });
  });

  it('stops a task that still runs after its run was marked Cancelled', () => {
    expect(decide({ run: run('CANCELLED'), task: runningTask })).toEqual({
      kind: 'stop-task',
      reason: 'Flow run was cancelled (prefect-ecs-launcher)',
    });
    expect(decide({ run: run('CANCELLED'), task: stopped(stoppedExit0) })).toEqual({ kind: 'none' });
  });
});
