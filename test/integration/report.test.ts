import fs from 'node:fs';
import path from 'node:path';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTaskDefinitionCommand, ECSClient } from '@aws-sdk/client-ecs';
import fc from 'fast-check';
import { describeTask, findOrRegisterTaskDefinition, runTask } from '../../src/aws/ecs';
import { runReport } from '../../src/launch/entrypoints';
import { parseTaskStateChangeEvent } from '../../src/launch/events';
import { infrastructurePid, RELAUNCH_STOP_REASON, type TaskStateChange } from '../../src/launch/report';
import { LogLevel } from '../../src/prefect/types';
import type { Runtime } from '../../src/runtime';
import { arrangeDeployment, awsTestConfig, prefectRaw, scheduleFlowRun, uniqueName } from '../harness/env';
import { createCluster, testRuntime } from '../harness/launcher';

/**
 * The report function against the real Prefect server, fed the ECS Task State Change events of
 * test/fixtures/ecs-events with the placeholder flow run id replaced by a real run's.
 */
const PLACEHOLDER = '00000000-0000-4000-8000-000000000000';
const dir = path.join(__dirname, '..', 'fixtures', 'ecs-events');

function event(name: string, flowRunId: string): unknown {
  const text = fs.readFileSync(path.join(dir, `${name}.json`), 'utf8');
  return JSON.parse(text.replaceAll(PLACEHOLDER, flowRunId)) as unknown;
}

function task(name: string, flowRunId: string): TaskStateChange {
  return parseTaskStateChangeEvent(event(name, flowRunId));
}

interface FlowRunView {
  state_type: string;
  state_name: string;
  infrastructure_pid: string | null;
  state: { message: string | null };
}

const flowRun = (id: string) => prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);

async function logsOf(id: string): Promise<{ message: string; level: number }[]> {
  return prefectRaw('POST', '/logs/filter', { logs: { flow_run_id: { any_: [id] } } });
}

async function stateHistory(id: string): Promise<{ type: string; name: string }[]> {
  return prefectRaw('GET', `/flow_run_states/?flow_run_id=${id}`);
}

async function setState(id: string, type: string, name?: string): Promise<void> {
  const out = await prefectRaw<{ status: string }>('POST', `/flow_runs/${id}/set_state`, {
    state: { type, ...(name ? { name } : {}) },
    force: false,
  });
  if (out.status !== 'ACCEPT') throw new Error(`could not set ${id} to ${type}: ${JSON.stringify(out)}`);
}

let rt: Runtime;
let deploymentId: string;

beforeAll(async () => {
  const arranged = await arrangeDeployment();
  deploymentId = arranged.deploymentId;
  rt = await testRuntime({ LAUNCHER_WORK_POOL: arranged.pool });
});

/** A run as the launcher leaves it after the claim: Pending. */
async function pendingRun(): Promise<string> {
  const run = await scheduleFlowRun(deploymentId);
  await setState(run.id, 'PENDING');
  return run.id;
}

/** A run whose engine has started: Pending, then Running, as the flow's container would set it. */
async function runningRun(): Promise<string> {
  const id = await pendingRun();
  await setState(id, 'RUNNING');
  return id;
}

const nonZero =
  "The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' exited with code 1; read the container's logs for the error";

const stoppedCases: Array<{
  name: string;
  action: string;
  state: string;
  message?: string;
  log?: { level: number; contains: string };
}> = [
  { name: 'stopped-exit-0', action: 'left-to-engine', state: 'RUNNING' },
  {
    name: 'stopped-exit-1',
    action: 'crashed',
    state: 'CRASHED',
    message: nonZero,
    log: {
      level: LogLevel.ERROR,
      contains: "Container exited with non-zero exit code: The flow container 'prefect' exited with code 1.",
    },
  },
  {
    name: 'stopped-exit-137',
    action: 'crashed',
    state: 'CRASHED',
    message:
      "The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' ran out of memory (exit code 137); raise the `memory` job variable",
    log: {
      level: LogLevel.ERROR,
      contains: 'ECS said: OutOfMemoryError: Container killed due to memory usage.',
    },
  },
  {
    name: 'stopped-user-initiated',
    action: 'crashed',
    state: 'CRASHED',
    message:
      'ECS task stopped: someone stopped the task (StopTask: Task stopped by user); nothing to fix if intended; CloudTrail names who called ecs:StopTask',
    log: { level: LogLevel.WARNING, contains: 'Task stopped on purpose: Someone stopped the task' },
  },
  {
    name: 'stopped-scale-in',
    action: 'crashed',
    state: 'CRASHED',
    message:
      'ECS task stopped: an ECS service scaled the task in; run flows as standalone tasks, not in a service',
    log: {
      level: LogLevel.WARNING,
      contains: 'ECS said: Scaling activity initiated by (deployment ecs-svc/',
    },
  },
  {
    name: 'stopped-cannot-pull',
    action: 'crashed',
    state: 'CRASHED',
    message:
      'Failed to submit flow run to infrastructure: TaskFailedToStart: The image does not exist; check the `image` job variable and that the tag is pushed (CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref docker.io/prefecthq/prefect:3-latset: docker.io/prefe…)',
    log: { level: LogLevel.ERROR, contains: 'Container image pull failed: The image does not exist.' },
  },
  {
    name: 'stopped-no-capacity',
    action: 'crashed',
    state: 'CRASHED',
    message:
      'Failed to submit flow run to infrastructure: TaskFailedToStart: No capacity could be found to place the task; retry later, or use FARGATE beside FARGATE_SPOT in the capacity provider strategy (Capacity is unavailable at this time. Please try again later or in a different availability zone)',
    log: { level: LogLevel.ERROR, contains: 'ECS task failed to start: No capacity could be found' },
  },
  {
    name: 'stopped-spot-interruption',
    action: 'crashed',
    state: 'CRASHED',
    message:
      'ECS task stopped: Spot capacity was reclaimed (Fargate Spot interruption); the run can be retried on FARGATE',
    log: {
      level: LogLevel.WARNING,
      contains:
        'Task stopped by AWS infrastructure: Spot capacity was reclaimed (Fargate Spot interruption). ECS said: Your Spot Task was interrupted.',
    },
  },
];

describe('report: STOPPED events on a Running flow run', () => {
  it.each(stoppedCases)('$name → $state', async (c) => {
    const id = await runningRun();
    const stopped = task(c.name, id);
    expect(await runReport(rt, stopped)).toBe(c.action);

    const run = await flowRun(id);
    expect(run.state_type).toBe(c.state);
    expect(run.infrastructure_pid).toBe(infrastructurePid(stopped));
    const logs = await logsOf(id);
    if (c.message === undefined || c.log === undefined) {
      expect(run.state_name).toBe('Running');
      expect(logs).toEqual([]);
      return;
    }
    expect(run.state.message).toBe(c.message);
    expect(logs).toEqual([
      { ...logs[0], level: c.log.level, message: expect.stringContaining(c.log.contains) },
    ]);
    expect(logs[0]?.message).toContain('Resolution:');

    // At least once delivery: the same event again finds the run final and changes nothing.
    expect(await runReport(rt, stopped)).toBe('run-moved-on');
    expect((await stateHistory(id)).filter((s) => s.type === 'CRASHED')).toHaveLength(1);
    expect(await logsOf(id)).toHaveLength(1);
  });

  it('ignores a task the launcher did not start, leaving the run alone', async () => {
    const id = await runningRun();
    expect(await runReport(rt, task('foreign-service-task', id))).toBe('ignored');
    const run = await flowRun(id);
    expect(run).toMatchObject({ state_type: 'RUNNING', infrastructure_pid: null });
  });

  it('ends a Cancelling run Cancelled when its task stops, whatever the exit code', async () => {
    const id = await runningRun();
    await setState(id, 'CANCELLING');
    expect(await runReport(rt, task('stopped-exit-1', id))).toBe('cancelled');
    const run = await flowRun(id);
    expect(run.state_type).toBe('CANCELLED');
    expect(run.state.message).toBe(
      'Flow run cancelled; its ECS task stopped (Essential container in task exited).',
    );
  });
});

describe('report: task start-up events', () => {
  it.each([
    ['provisioning', 'ECS task is provisioning.'],
    ['pending', 'ECS task is pending.'],
  ])('%s on a Pending run sets the pid and proposes no InfrastructurePending', async (name) => {
    const id = await pendingRun();
    const t = task(name, id);
    expect(await runReport(rt, t)).toBe('pid-set');
    const run = await flowRun(id);
    expect(run).toMatchObject({
      state_type: 'PENDING',
      state_name: 'Pending',
      infrastructure_pid: infrastructurePid(t),
    });
    expect(await runReport(rt, t)).toBe('left-to-engine');
  });

  it('RUNNING sets the pid and leaves the state to the engine', async () => {
    const id = await runningRun();
    const t = task('running', id);
    expect(await runReport(rt, t)).toBe('pid-set');
    expect(await flowRun(id)).toMatchObject({
      state_type: 'RUNNING',
      infrastructure_pid: infrastructurePid(t),
    });
    expect(await runReport(rt, t)).toBe('left-to-engine');
  });

  it.each(['COMPLETED', 'FAILED'])(
    'a PENDING whose read the flow overtook (Running → %s in between) leaves the run as its flow ended',
    async (final) => {
      const id = await pendingRun();
      // The server would take a final run back to PENDING without force (it allows re-runs): the reporter
      // proposes nothing on a start-up event, so nothing can reopen the run.
      let overtaken = false;
      const prefect = Object.create(rt.prefect) as Runtime['prefect'];
      prefect.readFlowRun = async (runId) => {
        const run = await rt.prefect.readFlowRun(runId);
        if (!overtaken) {
          overtaken = true;
          await setState(id, 'RUNNING');
          await setState(id, final);
        }
        return run;
      };
      expect(await runReport({ ...rt, prefect }, task('pending', id))).toBe('pid-set');
      expect(await flowRun(id)).toMatchObject({ state_type: final });
      expect((await stateHistory(id)).map((h) => h.type)).toEqual(['SCHEDULED', 'PENDING', 'RUNNING', final]);
    },
  );

  it('any later event of a run an older launcher moved back from its end restores the end', async () => {
    const id = await runningRun();
    await setState(id, 'COMPLETED');
    await setState(id, 'PENDING', 'InfrastructurePending');
    expect(await runReport(rt, task('stopped-exit-1', id))).toBe('run-moved-on');
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED', state_name: 'Completed' });
  });

  it('a STOPPED read as Running, whose Crashed lands over a displacing InfrastructurePending, restores the end', async () => {
    const id = await runningRun();
    const stale = await rt.prefect.readFlowRun(id);
    await setState(id, 'FAILED');
    await setState(id, 'PENDING', 'InfrastructurePending');
    const prefect = Object.create(rt.prefect) as Runtime['prefect'];
    let reads = 0;
    // The report's own read is the stale one; later reads see the run as it is.
    prefect.readFlowRun = async (runId) => (reads++ === 0 ? stale : rt.prefect.readFlowRun(runId));
    expect(await runReport({ ...rt, prefect }, task('stopped-exit-1', id))).toBe('run-moved-on');
    expect(await flowRun(id)).toMatchObject({ state_type: 'FAILED', state_name: 'Failed' });
  });

  it('a STOPPED read as Running, whose Crashed lands over a late claim, restores the end', async () => {
    const id = await runningRun();
    const stale = await rt.prefect.readFlowRun(id);
    await setState(id, 'COMPLETED');
    // A claim from a read of the run while it was Scheduled: accepted over Completed, without scheduled time.
    await setState(id, 'PENDING');
    const prefect = Object.create(rt.prefect) as Runtime['prefect'];
    let reads = 0;
    prefect.readFlowRun = async (runId) => (reads++ === 0 ? stale : rt.prefect.readFlowRun(runId));
    expect(await runReport({ ...rt, prefect }, task('stopped-exit-1', id))).toBe('run-moved-on');
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED', state_name: 'Completed' });
  });

  it('a late PENDING after RUNNING does not move a Running run back', async () => {
    const id = await runningRun();
    await runReport(rt, task('running', id));
    await runReport(rt, task('pending', id));
    expect(await flowRun(id)).toMatchObject({ state_type: 'RUNNING', state_name: 'Running' });
  });
});

/**
 * Events arrive at least once and in any order. The runs start Pending, as the launcher's claim leaves them,
 * and nobody sets Running (no engine runs here): a Pending run that receives STOPPED with exit 1 ends Crashed just as a Running one does.
 */
describe('report: event order and duplicates', () => {
  const sequence = ['provisioning', 'pending', 'running', 'stopped-exit-1'] as const;

  async function deliver(names: readonly string[]) {
    const id = await pendingRun();
    for (const name of names) await runReport(rt, task(name, id));
    const run = await flowRun(id);
    const crashes = (await stateHistory(id)).filter((s) => s.type === 'CRASHED');
    return { id, run, crashes, logs: await logsOf(id) };
  }

  it('ends every permutation, with duplicates, where the ordered sequence ends, crashing once', async () => {
    const ordered = await deliver(sequence);
    expect(ordered.run).toMatchObject({ state_type: 'CRASHED', state: { message: nonZero } });
    expect(ordered.crashes).toHaveLength(1);
    expect(ordered.logs).toHaveLength(1);
    expect((await stateHistory(ordered.id)).map((s) => s.name)).toEqual(['Scheduled', 'Pending', 'Crashed']);

    const arrivals = fc
      .array(fc.constantFrom(...sequence), { maxLength: 4 })
      .chain((extra) =>
        fc.shuffledSubarray([...sequence, ...extra], { minLength: sequence.length + extra.length }),
      );
    await fc.assert(
      fc.asyncProperty(arrivals, async (names) => {
        const { id, run, crashes, logs } = await deliver(names);
        expect(run.state_type).toBe(ordered.run.state_type);
        expect(run.state.message).toBe(ordered.run.state.message);
        expect(run.infrastructure_pid).toBe(infrastructurePid(task('running', id)));
        expect(crashes).toHaveLength(1);
        expect(logs.map((l) => l.message)).toEqual(ordered.logs.map((l) => l.message));
      }),
      { numRuns: 20 },
    );
  }, 60_000);
});

describe('report: task definitions and tasks the launcher leaves behind', () => {
  const ecs = new ECSClient(awsTestConfig());
  const definition = (family: string) => ({
    family,
    requiresCompatibilities: ['FARGATE' as const],
    networkMode: 'awsvpc' as const,
    cpu: '256',
    memory: '512',
    containerDefinitions: [{ name: 'prefect', image: 'prefecthq/prefect:3-latest', essential: true }],
  });
  const statusOf = async (arn: string) =>
    (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: arn }))).taskDefinition?.status;

  it('deregisters, on STOPPED, a revision registered for auto-deregistration, never one registered without', async () => {
    const family = uniqueName('auto-deregister');
    const options = { settleMs: 0 };
    const tagged = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: true,
      ...options,
    });
    // A tagged revision belongs to its one run: the next launch registers its own instead of reusing it.
    const next = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: true,
      ...options,
    });
    expect(next.registered).toBe(true);
    expect(next.arn).not.toBe(tagged.arn);
    const plain = await findOrRegisterTaskDefinition(ecs, definition(uniqueName('keep')), {
      autoDeregister: false,
      ...options,
    });

    const id = await runningRun();
    await runReport(rt, { ...task('stopped-exit-0', id), taskDefinitionArn: tagged.arn });
    expect(await statusOf(tagged.arn)).toBe('INACTIVE');
    expect(await statusOf(next.arn)).toBe('ACTIVE');
    // A duplicate STOPPED event finds it inactive and does nothing.
    await runReport(rt, { ...task('stopped-exit-0', id), taskDefinitionArn: tagged.arn });
    await runReport(rt, { ...task('stopped-exit-0', id), taskDefinitionArn: plain.arn });
    expect(await statusOf(plain.arn)).toBe('ACTIVE');
  });

  it('stops a task that starts after its run was cancelled', async () => {
    const cluster = await createCluster();
    const family = uniqueName('late-task');
    const td = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      settleMs: 0,
    });
    const id = await pendingRun();
    await setState(id, 'CANCELLING');
    await prefectRaw('POST', `/flow_runs/${id}/set_state`, { state: { type: 'CANCELLED' }, force: true });
    const started = await runTask(ecs, {
      cluster,
      taskDefinition: td.arn,
      group: `prefect-flow-run:${id}`,
      launchType: 'FARGATE',
      // moto needs security groups where ECS would take the VPC's default.
      networkConfiguration: { awsvpcConfiguration: { subnets: await defaultSubnets(), securityGroups: [] } },
    });
    const live = started.tasks?.[0];
    expect(live?.taskArn).toBeDefined();
    expect(
      await runReport(rt, {
        ...(live as TaskStateChange),
        lastStatus: 'PROVISIONING',
        desiredStatus: 'RUNNING',
      }),
    ).toBe('task-stopped');
    const after = await describeTask(ecs, cluster, live?.taskArn as string);
    expect(after?.desiredStatus).toBe('STOPPED');
    expect((await flowRun(id)).state_type).toBe('CANCELLED');
  });
});

describe("report: prefect-aws's worker on the same pool (a migration)", () => {
  const ecs = new ECSClient(awsTestConfig());
  let cluster: string;
  let taskDefinition: string;
  beforeAll(async () => {
    cluster = await createCluster();
    const family = uniqueName('prefect_worker');
    taskDefinition = (
      await findOrRegisterTaskDefinition(
        ecs,
        {
          family,
          requiresCompatibilities: ['FARGATE'],
          networkMode: 'awsvpc',
          cpu: '256',
          memory: '512',
          containerDefinitions: [{ name: 'prefect', image: 'prefecthq/prefect:3-latest', essential: true }],
        },
        { autoDeregister: false, settleMs: 0 },
      )
    ).arn;
  });

  /** A task as the worker starts it (../shared/reference/prefect-ecs-worker.md §4.5), and its PROVISIONING event. */
  async function workerTask(flowRunId: string): Promise<TaskStateChange> {
    const started = await runTask(ecs, {
      cluster,
      taskDefinition,
      // The group ECS gives a task started without one: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
      group: `family:${taskDefinition.split('/').at(-1)?.split(':')[0]}`,
      launchType: 'FARGATE',
      overrides: {
        containerOverrides: [
          {
            name: 'prefect',
            command: ['prefect', 'flow-run', 'execute'],
            environment: [{ name: 'PREFECT__FLOW_RUN_ID', value: flowRunId }],
          },
        ],
      },
      networkConfiguration: { awsvpcConfiguration: { subnets: await defaultSubnets(), securityGroups: [] } },
    });
    const live = started.tasks?.[0] as TaskStateChange;
    expect(live.taskArn).toBeDefined();
    return { ...live, lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' };
  }

  /**
   * A run the launcher ran to Completed, then claimed again by the worker from a read made while Scheduled,
   * followed by the worker's "Submitting" (prefect-aws 0.7 on prefect ≥ 3.6.22) before its RunTask.
   */
  async function lateClaimed(deployment = deploymentId): Promise<string> {
    const run = await scheduleFlowRun(deployment);
    for (const type of ['PENDING', 'RUNNING', 'COMPLETED', 'PENDING']) await setState(run.id, type);
    // Older servers abort Pending → Pending whatever its name (npm run test:servers); so does the worker's.
    await prefectRaw('POST', `/flow_runs/${run.id}/set_state`, {
      state: { type: 'PENDING', name: 'Submitting' },
      force: false,
    });
    return run.id;
  }

  it('stops the second launch of a run that had ended, and gives the run its end back', async () => {
    const id = await lateClaimed();
    const provisioning = await workerTask(id);
    expect(await runReport(rt, provisioning)).toBe('relaunch-stopped');
    const stopped = await describeTask(ecs, cluster, provisioning.taskArn);
    expect(stopped).toMatchObject({ desiredStatus: 'STOPPED', stoppedReason: RELAUNCH_STOP_REASON });
    expect(await flowRun(id)).toMatchObject({ state_type: 'COMPLETED', infrastructure_pid: null });
    // Redelivered, and the task's STOPPED event: the run is final again, nothing more is done.
    expect(await runReport(rt, provisioning)).toBe('ignored');
    expect(await runReport(rt, { ...provisioning, lastStatus: 'STOPPED', desiredStatus: 'STOPPED' })).toBe(
      'ignored',
    );
    const history = (await stateHistory(id)).map((s) => s.type);
    expect([history.slice(0, 5), history.at(-1)]).toEqual([
      ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED', 'PENDING'],
      'COMPLETED',
    ]);
    // The worker's Submitting between them, where the server accepted it.
    expect([[], ['PENDING']]).toContainEqual(history.slice(5, -1));
  });

  it("gives the end back on the STOPPED event alone, when the task's earlier events were lost", async () => {
    const id = await lateClaimed();
    const task = { ...(await workerTask(id)), lastStatus: 'STOPPED', desiredStatus: 'STOPPED' };
    expect(await runReport(rt, task)).toBe('run-moved-on');
    expect((await flowRun(id)).state_type).toBe('COMPLETED');
  });

  it("leaves the worker's own launches, and other pools' and workspaces' runs, to the worker", async () => {
    const claimed = await scheduleFlowRun(deploymentId);
    await setState(claimed.id, 'PENDING');
    const other = await arrangeDeployment();
    const elsewhere = await lateClaimed(other.deploymentId);
    // A run this workspace does not have: the worker of another workspace's pool.
    const unknown = await workerTask('7b4a3c1e-0000-4000-8000-00000000dead');
    expect(await runReport(rt, unknown)).toBe('ignored');
    expect((await describeTask(ecs, cluster, unknown.taskArn))?.desiredStatus).toBe('RUNNING');
    for (const id of [claimed.id, elsewhere]) {
      const provisioning = await workerTask(id);
      expect(await runReport(rt, provisioning)).toBe('ignored');
      expect((await describeTask(ecs, cluster, provisioning.taskArn))?.desiredStatus).toBe('RUNNING');
      expect(await flowRun(id)).toMatchObject({ state_type: 'PENDING', infrastructure_pid: null });
    }
  });
});

/** A subnet of moto's default VPC, for an awsvpc task. */
async function defaultSubnets(): Promise<string[]> {
  const out = await new EC2Client(awsTestConfig()).send(new DescribeSubnetsCommand({}));
  return (out.Subnets ?? []).map((s) => s.SubnetId as string).slice(0, 1);
}
