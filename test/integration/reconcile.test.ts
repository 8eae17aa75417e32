import {
  DescribeTasksCommand,
  ECSClient,
  ListTaskDefinitionsCommand,
  ListTasksCommand,
  type Task,
} from '@aws-sdk/client-ecs';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { describeTask, runTask, stopTask } from '../../src/aws/ecs';
import { executionArnFor, stopExecution } from '../../src/aws/sfn';
import { runCrash, runPoll, runPrepare } from '../../src/launch/entrypoints';
import { parseCrashEvent, parsePrepareEvent } from '../../src/launch/events';
import { claimMessage, type ReconcileAws } from '../../src/launch/reconcile';
import { LocalExecutor } from '../../src/local/executor';
import { LocalLaunchMachine } from '../../src/local/launch-machine';
import { localLaunchMachine } from '../../src/local/launcher';
import type { EcsTaskApi } from '../../src/local/run-task-sync';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import type { Runtime } from '../../src/runtime';
import { arrangeDeployment, awsTestConfig, prefectRaw, scheduleFlowRun, serverAtLeast } from '../harness/env';
import { createCluster, createLaunchStateMachine, testRuntime } from '../harness/launcher';

/**
 * Cancellation and the reconciliation sweep, as each poll runs them, against the real Prefect server and
 * moto: a run cancelled in every phase of its launch ends Cancelled with its execution stopped and no task
 * left running; runs whose ECS events were all lost are ended by the next sweep, and healthy ones are not.
 */

type FlowRunView = {
  id: string;
  state_type: string;
  state_name: string;
  start_time: string | null;
  infrastructure_pid: string | null;
  state: { message: string | null };
  labels?: Record<string, unknown>;
};

const ecsClient = new ECSClient(awsTestConfig());
const sfnClient = new SFNClient(awsTestConfig());

const flowRun = (id: string) => prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);

/** What the UI's Cancel button does: propose Cancelling, not forced. */
async function cancel(id: string): Promise<void> {
  const out = await prefectRaw<{ status: string; state?: { type: string } }>(
    'POST',
    `/flow_runs/${id}/set_state`,
    { state: { type: 'CANCELLING', name: 'Cancelling' }, force: false },
  );
  // Prefect 3.0's SQLite server can commit a state and still answer 503; prefectRaw's retry is then refused
  // from the Cancelling state the first attempt set (docs/compatibility.md). The whole answer is compared,
  // so that any other refusal shows the server's reason.
  if (out.status === 'REJECT' && out.state?.type === 'CANCELLING') return;
  expect(out).toMatchObject({ status: 'ACCEPT' });
}

/** A run claimed as the poll claims it, then nothing: the poll's Lambda was killed before StartExecution. */
async function claimedOnly() {
  const { deploymentId, stateMachineArn, rt } = await launcher();
  const run = await scheduleFlowRun(deploymentId);
  const claim = await prefectRaw<{ status: string }>('POST', `/flow_runs/${run.id}/set_state`, {
    state: { type: 'PENDING', name: 'Pending', message: claimMessage(rt.config.workerName) },
    force: false,
  });
  expect(claim.status).toBe('ACCEPT');
  return { run, stateMachineArn, rt };
}

/** What the flow engine does when it starts: the run goes Running (and gets its start_time). */
async function engineStarts(id: string): Promise<void> {
  const out = await prefectRaw<{ status: string }>('POST', `/flow_runs/${id}/set_state`, {
    state: { type: 'RUNNING', name: 'Running' },
    force: false,
  });
  expect(out.status).toBe('ACCEPT');
}

async function executionStatus(stateMachineArn: string, id: string): Promise<string | undefined> {
  const out = await sfnClient.send(
    new DescribeExecutionCommand({ executionArn: executionArnFor(stateMachineArn, id) }),
  );
  return out.status;
}

async function tasksOfRun(cluster: string, id: string): Promise<Task[]> {
  const arns = [
    ...((await ecsClient.send(new ListTasksCommand({ cluster, desiredStatus: 'RUNNING' }))).taskArns ?? []),
    ...((await ecsClient.send(new ListTasksCommand({ cluster, desiredStatus: 'STOPPED' }))).taskArns ?? []),
  ];
  if (!arns.length) return [];
  const out = await ecsClient.send(new DescribeTasksCommand({ cluster, tasks: arns }));
  return (out.tasks ?? []).filter((t) => t.group === `prefect-flow-run:${id}`);
}

/** How many revisions of the family moto holds. */
async function taskDefinitionsOf(family: string): Promise<number> {
  const out = await ecsClient.send(new ListTaskDefinitionsCommand({ familyPrefix: family }));
  return out.taskDefinitionArns?.length ?? 0;
}

async function launcher(settings: Record<string, string> = {}) {
  const cluster = await createCluster();
  const { pool, deploymentId } = await arrangeDeployment({
    baseJobTemplate: defaultTemplate,
    jobVariables: { cluster, image: 'prefecthq/prefect:3-latest' },
  });
  const stateMachineArn = await createLaunchStateMachine();
  const runtime = (extra: Record<string, string> = {}) =>
    testRuntime({
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_SWEEP_SETTLE_SECONDS: '0',
      ...settings,
      ...extra,
    });
  return { cluster, pool, deploymentId, stateMachineArn, rt: await runtime(), runtime };
}

/**
 * moto's ECS task moves one status per DescribeTasks and never runs anything (test-infra.md §1.4); the
 * test's ECS keeps the launcher's tasks in the status the test chooses (a slow Fargate start, a long flow)
 * until they are stopped — which is what cancellation must do. Both the `.sync` emulation and the sweep see
 * ECS through it.
 */
function held(task: Task | undefined, status: 'PROVISIONING' | 'RUNNING'): Task | undefined {
  if (!task || task.desiredStatus === 'STOPPED') return task;
  return { ...task, lastStatus: status };
}

function heldTasks(rt: Runtime, status: 'PROVISIONING' | 'RUNNING'): EcsTaskApi {
  return {
    runTask: (request) => runTask(rt.aws.ecs, request),
    describeTask: async (cluster, taskArn) => {
      const out = await ecsClient.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }));
      return held(out.tasks?.[0], status);
    },
    stopTask: (cluster, taskArn, reason) => stopTask(rt.aws.ecs, cluster, taskArn, reason),
  };
}

/** The sweep's AWS as the local executor overlays it, seeing ECS through `held`. */
function heldAws(exec: LocalExecutor, base: ReconcileAws, status: 'PROVISIONING' | 'RUNNING'): ReconcileAws {
  const aws = exec.reconcileAws(base);
  return {
    ...aws,
    describeTasks: async (cluster, arns) => {
      const found = await aws.describeTasks(cluster, arns);
      for (const [arn, task] of found) if (task !== 'MISSING') found.set(arn, held(task, status) as Task);
      return found;
    },
  };
}

function localExecutor(rt: Runtime, stateMachineArn: string, ecs?: EcsTaskApi) {
  return new LocalExecutor(
    sfnClient,
    stateMachineArn,
    localLaunchMachine(rt, { retryIntervalMs: 1, pollIntervalMs: 50, ...(ecs ? { ecs } : {}) }),
  );
}

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 200; i++) {
    last = await read();
    if (ok(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} never happened; last seen: ${JSON.stringify(last)}`);
}

/** Stopped by someone (moto's own status progression never sets desiredStatus). */
const notRunning = (tasks: Task[]) => tasks.every((t) => t.desiredStatus === 'STOPPED');

describe('cancellation: a run cancelled in any phase of its launch ends Cancelled, nothing left running', () => {
  it('claimed (its execution not yet started work): the execution is stopped and the run Cancelled', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId);
    expect((await runPoll(rt)).outcomes.started).toBe(1);
    await cancel(run.id);

    const summary = await runPoll(rt);
    expect(summary.reconciled).toMatchObject({ cancelled: 1 });
    const view = await flowRun(run.id);
    expect(view).toMatchObject({
      state_type: 'CANCELLED',
      state: {
        message:
          'Flow run cancelled by prefect-ecs-launcher before it started running; its launch execution was stopped.',
      },
    });
    expect(await executionStatus(stateMachineArn, run.id)).toBe('ABORTED');
    expect(await tasksOfRun(cluster, run.id)).toEqual([]);
  });

  it('waiting for its scheduled second: the local execution is aborted before it starts a task', async () => {
    const { cluster, pool, deploymentId, stateMachineArn, rt } = await launcher({
      LAUNCHER_LOOKAHEAD_SECONDS: '300',
    });
    const run = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 120_000) });
    await runPoll(rt);
    const exec = localExecutor(rt, stateMachineArn);
    expect(await exec.pickUp()).toBe(1);
    // Prepared (its labels are written last), now in the Wait state. A 3.0 server has no labels: there,
    // Prepare's last word is its task definition, registered in moto.
    const labels = await serverAtLeast(3, 1);
    await until(
      'Prepare',
      async () => ({
        run: await flowRun(run.id),
        registered: labels ? 0 : await taskDefinitionsOf(`prefect_${pool}_${deploymentId}`),
      }),
      ({ run: r, registered }) =>
        r.state_type === 'PENDING' &&
        (labels ? r.labels?.['prefect.work-pool.name'] !== undefined : registered > 0),
    );
    await cancel(run.id);

    await runPoll(rt, { aws: (base) => heldAws(exec, base, 'RUNNING') });
    await exec.pickUp();
    const results = await exec.settle();
    expect(results.get(run.id)?.status).toBe('ABORTED');
    expect((await flowRun(run.id)).state_type).toBe('CANCELLED');
    expect(await executionStatus(stateMachineArn, run.id)).toBe('ABORTED');
    expect(await tasksOfRun(cluster, run.id)).toEqual([]);
  });

  it('provisioning (task started, not running yet): execution and task are stopped', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId);
    await runPoll(rt);
    const exec = localExecutor(rt, stateMachineArn, heldTasks(rt, 'PROVISIONING'));
    await exec.pickUp();
    // The PENDING event reached the reporter: the pid is set, and the run still Pending.
    await until(
      'the pid',
      () => flowRun(run.id),
      (r) => Boolean(r.infrastructure_pid),
    );
    await cancel(run.id);

    const summary = await runPoll(rt, { aws: (base) => heldAws(exec, base, 'PROVISIONING') });
    expect(summary.reconciled).toMatchObject({ cancelled: 1 });
    expect(await flowRun(run.id)).toMatchObject({
      state_type: 'CANCELLED',
      state: {
        message:
          'Flow run cancelled by prefect-ecs-launcher before it started running; its launch execution and its ECS task were stopped.',
      },
    });
    // Locally the aborted run may also see its stopped task first and end on its own; moto, like Step
    // Functions, keeps the execution ABORTED either way.
    await exec.pickUp();
    await exec.settle();
    expect(await executionStatus(stateMachineArn, run.id)).toBe('ABORTED');
    const tasks = await tasksOfRun(cluster, run.id);
    expect(tasks).toHaveLength(1);
    expect(notRunning(tasks)).toBe(true);
  });

  it('running: left to the engine for the grace period, then its task is stopped and the run Cancelled', async () => {
    const { cluster, deploymentId, stateMachineArn, rt, runtime } = await launcher({
      LAUNCHER_CANCEL_GRACE_SECONDS: '3600',
    });
    const run = await scheduleFlowRun(deploymentId);
    await runPoll(rt);
    const exec = localExecutor(rt, stateMachineArn, heldTasks(rt, 'RUNNING'));
    await exec.pickUp();
    await until(
      'the pid',
      () => flowRun(run.id),
      (r) => Boolean(r.infrastructure_pid),
    );
    await engineStarts(run.id);
    await cancel(run.id);

    // Within the grace period the engine in the container owns the cancellation.
    expect((await runPoll(rt, { aws: (base) => heldAws(exec, base, 'RUNNING') })).reconciled).toMatchObject({
      cancelled: 0,
    });
    expect((await flowRun(run.id)).state_type).toBe('CANCELLING');
    expect(notRunning(await tasksOfRun(cluster, run.id))).toBe(false);

    // The engine never finished it: once the grace period is over, the launcher does.
    const impatient = await runtime({ LAUNCHER_CANCEL_GRACE_SECONDS: '0' });
    expect(
      (await runPoll(impatient, { aws: (base) => heldAws(exec, base, 'RUNNING') })).reconciled,
    ).toMatchObject({ cancelled: 1 });
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CANCELLED');
    expect(view.state.message).toMatch(
      /^Flow run was still Cancelling \d+ s after the cancel request \(the grace period is 0 s\); prefect-ecs-launcher stopped its ECS task and marked it Cancelled\.$/,
    );
    await exec.pickUp();
    await exec.settle();
    expect(await executionStatus(stateMachineArn, run.id)).toBe('ABORTED');
    expect(notRunning(await tasksOfRun(cluster, run.id))).toBe(true);
  });
});

describe('reconciliation sweep: lost ECS events and lost reports', () => {
  it('ends runs whose task stopped or vanished, or whose execution ended, as Crashed; healthy runs are untouched', async () => {
    const { cluster, deploymentId, stateMachineArn, rt, runtime } = await launcher();
    const runs: { id: string }[] = [];
    for (let i = 0; i < 6; i++) runs.push(await scheduleFlowRun(deploymentId));
    await runPoll(rt);
    // Every run launched: prepared and its task started, each STOPPED event then lost (nothing reports).
    const exec = localExecutor(rt, stateMachineArn, heldTasks(rt, 'RUNNING'));
    await exec.pickUp();
    for (const run of runs) {
      await until(
        'the pid',
        () => flowRun(run.id),
        (r) => Boolean(r.infrastructure_pid),
      );
      await engineStarts(run.id);
    }
    type Run = { id: string };
    const [stopped, vanished, executionEnded, healthyA, healthyB, healthyC] = runs as [
      Run,
      Run,
      Run,
      Run,
      Run,
      Run,
    ];
    const pidOf = async (id: string) => {
      const pid = (await flowRun(id)).infrastructure_pid as string;
      const at = pid.indexOf('::');
      return { cluster: pid.slice(0, at), taskArn: pid.slice(at + 2) };
    };

    // 1. The container died; its STOPPED event and the execution's own report were both lost. The
    // execution is stopped first (locally it stops its task, as Step Functions does) so that no `.sync`
    // poll of the stopped task can deliver the event after all.
    const s = await pidOf(stopped.id);
    await stopExecution(sfnClient, executionArnFor(stateMachineArn, stopped.id), 'lost');
    // 3. No task recorded (its events were lost), and its execution ended without reporting.
    await prefectRaw('PATCH', `/flow_runs/${executionEnded.id}`, { infrastructure_pid: null });
    await stopExecution(sfnClient, executionArnFor(stateMachineArn, executionEnded.id), 'lost');
    await exec.pickUp();
    await until(
      'the local executions to end',
      async () => exec.results(),
      (results) => results.has(stopped.id) && results.has(executionEnded.id),
    );
    await stopTask(rt.aws.ecs, s.cluster, s.taskArn, 'Essential container in task exited');
    // 2. The pid names a task ECS no longer knows (stopped tasks are forgotten after about an hour).
    const gone = `${cluster}::arn:aws:ecs:us-east-1:123456789012:task/${cluster}/00000000000000000000000000000000`;
    await prefectRaw('PATCH', `/flow_runs/${vanished.id}`, { infrastructure_pid: gone });
    // Healthy: A and B run on; C has no pid recorded but its execution still runs.
    await prefectRaw('PATCH', `/flow_runs/${healthyC.id}`, { infrastructure_pid: null });

    const summary = await runPoll(rt, { aws: (base) => heldAws(exec, base, 'RUNNING') });
    expect(summary.reconciled).toMatchObject({ crashed: 3, cancelled: 0, resumed: 0 });

    const crashed = await Promise.all([stopped, vanished, executionEnded].map((r) => flowRun(r.id)));
    expect(crashed.map((r) => r.state_type)).toEqual(['CRASHED', 'CRASHED', 'CRASHED']);
    expect(crashed[0]?.state.message).toMatch(
      /^prefect-ecs-launcher found the flow run's ECS task stopped while the run was still Running: /,
    );
    expect(crashed[1]?.state.message).toMatch(
      /^prefect-ecs-launcher found no ECS task .*00000000000000000000000000000000 in cluster .* while the flow run was still Running;/,
    );
    expect(crashed[2]?.state.message).toBe(
      `prefect-ecs-launcher found the flow run's launch execution aborted while the run was still Running; see execution ${executionEnded.id} of the launch state machine in Step Functions.`,
    );
    for (const run of [healthyA, healthyB, healthyC]) {
      expect(await flowRun(run.id)).toMatchObject({ state_type: 'RUNNING' });
    }

    // A second sweep finds nothing more to do.
    expect((await runPoll(rt, { aws: (base) => heldAws(exec, base, 'RUNNING') })).reconciled).toMatchObject({
      crashed: 0,
      cancelled: 0,
      resumed: 0,
      'task-stopped': 0,
      restored: 0,
    });

    // Done: cancelling the healthy runs ends their executions and tasks too.
    for (const run of [healthyA, healthyB, healthyC]) await cancel(run.id);
    const impatient = await runtime({ LAUNCHER_CANCEL_GRACE_SECONDS: '0' });
    expect(
      (await runPoll(impatient, { aws: (base) => heldAws(exec, base, 'RUNNING') })).reconciled,
    ).toMatchObject({
      cancelled: 3,
    });
    await exec.pickUp();
    await exec.settle();
    for (const run of runs) expect(notRunning(await tasksOfRun(cluster, run.id))).toBe(true);
  });

  it('resumes a claim whose poll died before it started the execution', async () => {
    const { run, stateMachineArn, rt } = await claimedOnly();
    await expect(executionStatus(stateMachineArn, run.id)).rejects.toThrow(/does not exist/i);

    const summary = await runPoll(rt);
    expect(summary.reconciled).toMatchObject({ resumed: 1 });
    expect(await executionStatus(stateMachineArn, run.id)).toBe('RUNNING');
    // It runs like any other launch from here.
    const results = await localExecutor(rt, stateMachineArn).settle();
    expect(results.get(run.id)?.status).toBeDefined();
    expect((await runPoll(rt)).reconciled).toMatchObject({ resumed: 0 });
  });

  it('ends a run whose execution failed with an error no Catch handles, naming that error', async () => {
    // A Prepare whose output lacks a field its RunTask state names (say, functions and state machine of two
    // different deploys): Step Functions fails the execution with States.Runtime, the Crash state never runs.
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId);
    const machine = new LocalLaunchMachine(
      {
        prepare: async (input) => {
          const prepared = (await runPrepare(rt, parsePrepareEvent(input))) as {
            runTask: Record<string, unknown>;
          };
          delete prepared.runTask.Overrides;
          return prepared;
        },
        crash: (input) => runCrash(rt, parseCrashEvent(input)),
        ecs: {
          runTask: (request) => runTask(rt.aws.ecs, request),
          describeTask: (c, arn) => describeTask(rt.aws.ecs, c, arn),
        },
      },
      { retryIntervalMs: 1, pollIntervalMs: 50 },
    );
    const exec = new LocalExecutor(sfnClient, stateMachineArn, machine);
    expect((await runPoll(rt)).outcomes.started).toBe(1);
    const results = await exec.settle();
    expect(results.get(run.id)).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    expect(await flowRun(run.id)).toMatchObject({ state_type: 'PENDING' });

    const summary = await runPoll(rt, { aws: (base) => exec.reconcileAws(base) });
    expect(summary.reconciled).toMatchObject({ crashed: 1 });
    const crashed = await flowRun(run.id);
    expect(crashed.state_type).toBe('CRASHED');
    expect(crashed.state.message).toMatch(
      /^prefect-ecs-launcher found the flow run's launch execution failed with States\.Runtime: .*\$\.prepared\.runTask\.Overrides.* while the run was still Pending;/,
    );
    expect(await tasksOfRun(cluster, run.id)).toEqual([]);
  });

  it('cancels a claim whose poll died before it started the execution, once the user cancels it', async () => {
    const { run, stateMachineArn, rt } = await claimedOnly();
    // No label and no execution: only its history says the launcher claimed it.
    await cancel(run.id);

    expect((await runPoll(rt)).reconciled).toMatchObject({ cancelled: 1, resumed: 0 });
    expect(await flowRun(run.id)).toMatchObject({ state_type: 'CANCELLED' });
    await expect(executionStatus(stateMachineArn, run.id)).rejects.toThrow(/does not exist/i);
  });
});
