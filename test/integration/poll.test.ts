import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { runPoll } from '../../src/launch/entrypoints';
import { arrangeDeployment, awsTestConfig, prefectRaw, scheduleFlowRun } from '../harness/env';
import { createLaunchStateMachine, testRuntime } from '../harness/launcher';

type RunState = {
  state_type: string;
  state_name: string;
  state: { state_details: { scheduled_time?: string } };
};

const sfn = new SFNClient(awsTestConfig());

async function executions(stateMachineArn: string) {
  return (await sfn.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [];
}

describe('poll against the real Prefect server and moto Step Functions', () => {
  it('heartbeats, claims due runs once and starts one execution per run, named after it', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    const due = await Promise.all([1, 2, 3].map(() => scheduleFlowRun(deploymentId)));
    const later = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 3600_000) });
    const rt = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: stateMachineArn });

    const summary = await runPoll(rt);
    expect(summary).toMatchObject({ due: 3, outcomes: { started: 3 } });

    expect((await prefectRaw<{ status: string }>('GET', `/work_pools/${pool}`)).status).toBe('READY');
    for (const run of due) {
      expect(await prefectRaw<RunState>('GET', `/flow_runs/${run.id}`)).toMatchObject({
        state_type: 'PENDING',
      });
    }
    expect(await prefectRaw<RunState>('GET', `/flow_runs/${later.id}`)).toMatchObject({
      state_type: 'SCHEDULED',
    });

    const started = await executions(stateMachineArn);
    expect(started.map((e) => e.name).sort()).toEqual(due.map((r) => r.id).sort());
    const first = await sfn.send(new DescribeExecutionCommand({ executionArn: started[0]?.executionArn }));
    expect(JSON.parse(first.input ?? '{}')).toMatchObject({
      flowRunId: first.name,
      scheduledStartTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      // What Prepare renders from, read once by this poll (src/launch/snapshot.ts).
      snapshot: {
        readAt: expect.any(String),
        flowRun: { id: first.name, deployment_id: deploymentId, state_type: 'PENDING' },
        deployment: { id: deploymentId, work_pool_name: pool },
        flow: { id: expect.any(String) },
        workPool: { name: pool, type: 'ecs' },
      },
    });

    const again = await runPoll(rt);
    expect(again.due).toBe(0);
    expect(await executions(stateMachineArn)).toHaveLength(3);
  });

  it('claims a run scheduled within the look-ahead window, and not one beyond it', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    const soon = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 20_000) });
    const far = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 120_000) });
    const rt = await testRuntime({
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_LOOKAHEAD_SECONDS: '60',
    });
    await runPoll(rt);
    const names = (await executions(stateMachineArn)).map((e) => e.name);
    expect(names).toEqual([soon.id]);
    expect((await prefectRaw<RunState>('GET', `/flow_runs/${far.id}`)).state_type).toBe('SCHEDULED');
  });

  it('claims its start lead further ahead and starts each task that lead before its time, a run overriding it', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    const second = (offsetMs: number) => new Date(Math.ceil((Date.now() + offsetMs) / 1000) * 1000);
    // Look-ahead 10 s and lead 30 s: claimed when due within 40 s.
    const led = await scheduleFlowRun(deploymentId, { scheduledTime: second(35_000) });
    const own = await scheduleFlowRun(deploymentId, {
      scheduledTime: second(20_000),
      jobVariables: { start_lead_seconds: 5 },
    });
    const far = await scheduleFlowRun(deploymentId, { scheduledTime: second(70_000) });
    const rt = await testRuntime({
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_LOOKAHEAD_SECONDS: '10',
      LAUNCHER_START_LEAD_SECONDS: '30',
    });
    await runPoll(rt);
    const started = await executions(stateMachineArn);
    expect(started.map((e) => e.name).sort()).toEqual([led.id, own.id].sort());
    expect((await prefectRaw<RunState>('GET', `/flow_runs/${far.id}`)).state_type).toBe('SCHEDULED');
    for (const [run, lead] of [
      [led, 30],
      [own, 5],
    ] as const) {
      const execution = started.find((e) => e.name === run.id);
      const described = await sfn.send(
        new DescribeExecutionCommand({ executionArn: execution?.executionArn }),
      );
      const { scheduledStartTime, startAt } = JSON.parse(described.input ?? '{}');
      expect(new Date(scheduledStartTime).getTime() - new Date(startAt).getTime()).toBe(lead * 1000);
    }
    const logs = await prefectRaw<{ message: string }[]>('POST', '/logs/filter', {
      logs: { flow_run_id: { any_: [led.id] } },
    });
    expect(logs.map((l) => l.message).join('\n')).toContain(
      '(its start lead, 30 s, before its scheduled time',
    );
  });

  it('returns a run to Scheduled at its original time when the execution cannot start, and the next poll launches it', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    const scheduledTime = new Date(Date.now() - 5_000);
    const run = await scheduleFlowRun(deploymentId, { scheduledTime });
    const missing = stateMachineArn.replace(/:stateMachine:.*/, ':stateMachine:does-not-exist');
    const broken = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: missing });

    expect((await runPoll(broken)).outcomes['returned-to-scheduled']).toBe(1);
    const back = await prefectRaw<RunState & { state: { message: string } }>('GET', `/flow_runs/${run.id}`);
    expect(back.state_type).toBe('SCHEDULED');
    expect(new Date(back.state.state_details.scheduled_time ?? '').getTime()).toBe(scheduledTime.getTime());
    expect(back.state.message).toContain('could not start its Step Functions execution');

    const fixed = await testRuntime({
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
    });
    expect((await runPoll(fixed)).outcomes.started).toBe(1);
    expect((await executions(stateMachineArn)).map((e) => e.name)).toEqual([run.id]);
  });

  it('keeps a run Pending when StartExecution failed on the way back after creating the execution', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    const run = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 5_000) });
    const rt = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: stateMachineArn });
    // Step Functions created the execution, and the answer was lost (a timeout, a reset connection): back to
    // Scheduled, the run would be claimed again, by a worker on the same pool too, and launched twice.
    rt.aws.sfn.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName !== 'StartExecutionCommand') return out;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      },
      { step: 'initialize', name: 'loseStartExecutionAnswer' },
    );

    expect((await runPoll(rt)).outcomes['already-started']).toBe(1);
    const after = await prefectRaw<RunState>('GET', `/flow_runs/${run.id}`);
    expect(after.state_type).toBe('PENDING');
    expect((await executions(stateMachineArn)).map((e) => e.name)).toEqual([run.id]);
  });

  it('fails with a clear error for a missing pool or a pool of another type', async () => {
    const stateMachineArn = await createLaunchStateMachine();
    const missing = await testRuntime({
      LAUNCHER_WORK_POOL: 'no-such-pool-xyz',
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
    });
    await expect(runPoll(missing)).rejects.toThrow('work pool "no-such-pool-xyz" does not exist');

    await prefectRaw('POST', '/work_pools/', { name: 'a-process-pool', type: 'process' }).catch(
      () => undefined,
    );
    const wrong = await testRuntime({
      LAUNCHER_WORK_POOL: 'a-process-pool',
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
    });
    await expect(runPoll(wrong)).rejects.toThrow(
      `is of type "process"; the launcher serves only 'ecs' pools`,
    );
  });

  it('does not claim runs of a paused pool', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const stateMachineArn = await createLaunchStateMachine();
    await scheduleFlowRun(deploymentId);
    await prefectRaw('PATCH', `/work_pools/${pool}`, { is_paused: true });
    const rt = await testRuntime({ LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: stateMachineArn });
    expect((await runPoll(rt)).due).toBe(0);
    expect(await executions(stateMachineArn)).toHaveLength(0);
  });
});
